//! What the control API's `versions`, `restore`, `rm`, `mkdir` and `mv` do: on a peer's
//! share, one request over a new share link (`remote.rs`), its refusal turned into the error
//! users see; on one of ours (`versions` and `restore` with no peer), the change itself
//! (`write.rs`).

use proto::api::{ShareChanged, VersionEntry, VersionList};
use proto::share::{Access, ErrorKind, Request, Response, ShareName, VersionInfo};
use proto::transfer::RelPath;
use proto::{PeerId, PeerName};

use super::{Shares, SharesError, share_name};

/// A path in a share as the user typed it, for a change: a trailing `/` is dropped; empty,
/// absolute, `..` and the like are refused.
fn entry_path(text: &str) -> Result<RelPath, SharesError> {
    let bad = |source| SharesError::BadPath {
        path: text.to_owned(),
        source,
    };
    let trimmed = text.strip_suffix('/').unwrap_or(text);
    RelPath::new(trimmed).map_err(bad)
}

impl Shares {
    fn version_entry(&self, v: VersionInfo) -> VersionEntry {
        VersionEntry {
            number: v.number,
            size: v.size,
            replaced_at: v.replaced_at,
            id: v.id.to_string(),
            by: v.by.map(|id| self.peer_name(id)),
            by_id: v.by,
        }
    }

    /// Sends `request` about `path` of `share` to `peer` on a new share link; the answer,
    /// or the error its refusal means (`right`: what the request needs).
    async fn ask_peer(
        &self,
        peer: PeerId,
        share: &ShareName,
        path: &RelPath,
        request: Request,
        right: Access,
    ) -> Result<(PeerName, Response), SharesError> {
        let mut link = self.connect(peer).await?;
        let answer = link.ask(request).await;
        let _ = link.conn.shutdown().await;
        let name = link.peer.clone();
        match answer? {
            Response::Error(e) if e.kind == ErrorKind::Denied => Err(SharesError::Denied {
                share: share.clone(),
                peer: name,
                right,
            }),
            // A version not kept: the owner's message says which.
            Response::Error(e)
                if e.kind == ErrorKind::NotFound
                    && e.message.as_str().starts_with("no version") =>
            {
                Err(SharesError::Remote {
                    peer: name,
                    message: e.message.to_string(),
                })
            }
            Response::Error(e) if e.kind == ErrorKind::NotFound => Err(SharesError::NotFound {
                path: format!("{share}/{path}"),
                peer: name,
            }),
            Response::Error(e) => Err(SharesError::Remote {
                peer: name,
                message: e.message.to_string(),
            }),
            other => Ok((name, other)),
        }
    }

    /// A change on `peer`'s share: `Done` expected.
    async fn change_peer(
        &self,
        peer: PeerId,
        share: &ShareName,
        path: &RelPath,
        request: Request,
    ) -> Result<PeerName, SharesError> {
        match self
            .ask_peer(peer, share, path, request, Access::Write)
            .await?
        {
            (name, Response::Done) => Ok(name),
            (name, other) => Err(SharesError::link(
                &name,
                format!("unexpected answer (tag {})", other.tag()),
            )),
        }
    }

    /// `versions`: the kept versions of `path` in `peer`'s share, or (no peer) in ours.
    pub async fn versions(
        &self,
        peer: Option<PeerId>,
        share: &str,
        path: &str,
    ) -> Result<VersionList, SharesError> {
        let share = share_name(share)?;
        let rel = entry_path(path)?;
        let (peer, versions) = match peer {
            None => (None, self.versions_of(&share, &rel).await?),
            Some(id) => {
                let request = Request::Versions {
                    share: share.clone(),
                    path: rel.clone(),
                };
                match self
                    .ask_peer(id, &share, &rel, request, Access::Read)
                    .await?
                {
                    (name, Response::Versions(v)) => (Some(name), v),
                    (name, other) => {
                        return Err(SharesError::link(
                            &name,
                            format!("unexpected answer (tag {})", other.tag()),
                        ));
                    }
                }
            }
        };
        Ok(VersionList {
            peer,
            share,
            path: rel.to_string(),
            versions: versions
                .into_iter()
                .map(|v| self.version_entry(v))
                .collect(),
        })
    }

    /// `restore`: puts version `version` of `path` back, in `peer`'s share or (no peer) ours.
    pub async fn restore(
        &self,
        peer: Option<PeerId>,
        share: &str,
        path: &str,
        version: u64,
    ) -> Result<ShareChanged, SharesError> {
        let share = share_name(share)?;
        let rel = entry_path(path)?;
        let peer = match peer {
            None => {
                self.restore_version(&share, &rel, version, None).await?;
                None
            }
            Some(id) => {
                let request = Request::Restore {
                    share: share.clone(),
                    path: rel.clone(),
                    version,
                };
                Some(self.change_peer(id, &share, &rel, request).await?)
            }
        };
        Ok(ShareChanged {
            peer,
            share,
            path: rel.to_string(),
            to: None,
            version: Some(version),
        })
    }

    /// `rm`: removes a file (kept as a version there) or an empty directory of `peer`'s share.
    pub async fn rm(
        &self,
        peer: PeerId,
        share: &str,
        path: &str,
    ) -> Result<ShareChanged, SharesError> {
        self.change_at(peer, share, path, |share, path| Request::Remove {
            share,
            path,
        })
        .await
    }

    /// `mkdir`: makes a directory in `peer`'s share.
    pub async fn mkdir(
        &self,
        peer: PeerId,
        share: &str,
        path: &str,
    ) -> Result<ShareChanged, SharesError> {
        self.change_at(peer, share, path, |share, path| Request::MakeDir {
            share,
            path,
        })
        .await
    }

    /// A change of one path of `peer`'s share, the request made by `request`.
    async fn change_at(
        &self,
        peer: PeerId,
        share: &str,
        path: &str,
        request: impl FnOnce(ShareName, RelPath) -> Request,
    ) -> Result<ShareChanged, SharesError> {
        let share = share_name(share)?;
        let rel = entry_path(path)?;
        let asked = request(share.clone(), rel.clone());
        let name = self.change_peer(peer, &share, &rel, asked).await?;
        Ok(changed(name, share, &rel, None))
    }

    /// `mv`: moves an entry within `peer`'s share, never over an existing one.
    pub async fn mv(
        &self,
        peer: PeerId,
        share: &str,
        from: &str,
        to: &str,
    ) -> Result<ShareChanged, SharesError> {
        let share = share_name(share)?;
        let (from, to) = (entry_path(from)?, entry_path(to)?);
        let request = Request::Rename {
            share: share.clone(),
            from: from.clone(),
            to: to.clone(),
        };
        let name = self.change_peer(peer, &share, &from, request).await?;
        Ok(changed(name, share, &from, Some(&to)))
    }
}

fn changed(peer: PeerName, share: ShareName, path: &RelPath, to: Option<&RelPath>) -> ShareChanged {
    ShareChanged {
        peer: Some(peer),
        share,
        path: path.to_string(),
        to: to.map(ToString::to_string),
        version: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_needs_a_relative_path_in_the_share() {
        assert_eq!(entry_path("sub/a.txt/").unwrap().as_str(), "sub/a.txt");
        for bad in ["", "/", "/etc/passwd", "../x", "a/../../b", "a//b"] {
            let e = entry_path(bad).unwrap_err();
            assert!(matches!(e, SharesError::BadPath { .. }), "{bad}: {e}");
        }
    }
}
