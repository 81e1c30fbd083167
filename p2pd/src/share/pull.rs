//! Pulls over `p2p-share/1`. Serving: `Pull` checked for `read` (by the caller), its path
//! resolved inside the share's root with no symlink on the way, then sent as a transfer
//! marked as a pull. Asking (`get`): `Pull` on a share link, then the transfer service told
//! to expect the offer of the id answered and to accept it into the destination.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use proto::PeerId;
use proto::api::TransferInfo;
use proto::share::rules::{self, ShareState};
use proto::share::{ErrorKind, Request, Response, ShareName};
use proto::transfer::RelPath;
use tracing::info;

use super::remote::parse_path;
use super::{Shares, SharesError, share_name};
use crate::transfer::{TransferError, Transfers};

/// Where `path` of a share rooted at `root` is, if every component on the way is a real
/// directory and the last a file or directory: a symlink anywhere is as if absent.
fn resolve(root: &Path, path: Option<&RelPath>) -> Option<PathBuf> {
    let mut at = root.to_path_buf();
    for part in path.map(|p| p.as_str()).unwrap_or("").split('/') {
        if part.is_empty() {
            continue;
        }
        at.push(part);
        let meta = std::fs::symlink_metadata(&at).ok()?;
        if !(meta.is_dir() || meta.is_file()) {
            return None;
        }
    }
    Some(at)
}

impl Shares {
    /// Lets the share service start pulls on `transfers`, and resumes the multi-source pulls
    /// a stop interrupted.
    pub fn carry_pulls_with(self: &Arc<Self>, transfers: Arc<Transfers>) {
        self.resume_swarms(&transfers);
        let _ = self.transfers.set(transfers);
    }

    /// Ends the pulls being sent from the share rooted at `root` that their asker may no
    /// longer read (revoked, or the share removed): `peer` only, or anyone (`None`).
    pub(super) async fn end_pulls(&self, peer: Option<PeerId>, root: &Path, reason: &str) {
        let Some(transfers) = self.transfers.get() else {
            return;
        };
        // Roots of the shares each asker may still read: a pull inside one of them goes on.
        let still: Vec<(PeerId, PathBuf)> = {
            let live = self.lock();
            live.names()
                .iter()
                .filter_map(|n| live.get(n).map(|s| (n, PathBuf::from(&s.row.path))))
                .flat_map(|(n, r)| live.grants_of(n).map(move |(p, _)| (p, r.clone())))
                .collect()
        };
        let ends = |asker: PeerId, at: &Path| {
            peer.is_none_or(|p| p == asker)
                && at.starts_with(root)
                && !still.iter().any(|(p, r)| *p == asker && at.starts_with(r))
        };
        let n = transfers.end_pulls(ends, reason).await;
        if n > 0 {
            info!(root = %root.display(), pulls = n, "pulls ended: {reason}");
        }
    }

    /// The activity-log line of a pull refused to `peer`.
    pub(super) fn log_pull_refused(
        &self,
        peer: PeerId,
        share: &ShareName,
        path: Option<&RelPath>,
        why: &str,
    ) {
        let who = self.peer_name(peer);
        let shown = path.map_or_else(String::new, |p| p.to_string());
        info!(target: svc::logging::ACTIVITY, op = "pull-refused", peer = %who, share = %share, path = %shown, error = why, "pull refused");
    }

    /// The answer to `Pull` from `peer`, whose `read` right was checked already.
    pub(super) async fn serve_pull(
        &self,
        peer: PeerId,
        share: &ShareName,
        path: Option<&RelPath>,
    ) -> Response {
        let refuse = |kind, why: &str| {
            self.log_pull_refused(peer, share, path, why);
            Response::error(kind, why)
        };
        let root = self.lock().get(share).map(|s| PathBuf::from(&s.row.path));
        let Some(root) = root else {
            return Response::Error(rules::denied(share, rules::Access::Read));
        };
        let Some(at) = resolve(&root, path) else {
            return refuse(ErrorKind::NotFound, "no such entry");
        };
        let Some(transfers) = self.transfers.get() else {
            return refuse(ErrorKind::Busy, "cannot send now");
        };
        match transfers.serve_pull(peer, &at).await {
            Ok(t) => {
                // A revoke while the transfer was being made found nothing to end.
                if self.lock().access(share, &peer).is_none() {
                    self.end_pulls(Some(peer), &root, "access revoked").await;
                    let denied = rules::denied(share, rules::Access::Read);
                    self.log_pull_refused(peer, share, path, denied.message.as_str());
                    return Response::Error(denied);
                }
                let who = self.peer_name(peer);
                let shown = path.map_or_else(String::new, |p| p.to_string());
                info!(target: svc::logging::ACTIVITY, op = "pull", peer = %who, share = %share, path = %shown, id = %t.id, "pull served");
                Response::Pulling(t.id)
            }
            Err(e) => refuse(ErrorKind::Busy, &e.to_string()),
        }
    }

    /// Pulls `path` of `share` from `peer` into `dest` (default: the download directory);
    /// a file is fetched from the `from` peers at once, or without them from the other peers
    /// that hold its content and let us read it, if any (see `swarm_get.rs`).
    pub async fn get(
        self: &Arc<Self>,
        peer: PeerId,
        share: &str,
        path: Option<&str>,
        dest: Option<&str>,
        from: &[PeerId],
    ) -> Result<TransferInfo, SharesError> {
        let share = share_name(share)?;
        let rel = parse_path(path)?;
        let transfers = self
            .transfers
            .get()
            .ok_or_else(|| TransferError::Destination("transfers are not running".into()))?;
        let dest = transfers.pull_destination(dest)?;
        if !from.is_empty() {
            return self.swarm_get(peer, &share, rel, dest, from).await;
        }
        if let Some(t) = self
            .discovered_get(peer, &share, rel.clone(), dest.clone())
            .await?
        {
            return Ok(t);
        }
        let mut link = self.connect(peer).await?;
        let request = Request::Pull {
            share: share.clone(),
            path: rel.clone(),
        };
        let answer = link.ask(request).await;
        let _ = link.conn.shutdown().await;
        match answer? {
            Response::Pulling(id) => Ok(transfers.expect_pull(peer, id, dest).await?),
            Response::Error(e) if e.kind == ErrorKind::NotFound => Err(SharesError::NotFound {
                path: match &rel {
                    Some(p) => format!("{share}/{p}"),
                    None => share.to_string(),
                },
                peer: link.peer.clone(),
            }),
            Response::Error(e)
                if e.kind == ErrorKind::Invalid && e.message.as_str().starts_with("unknown") =>
            {
                Err(SharesError::TooOld(link.peer.clone()))
            }
            other => Err(link.refused(Some(&share), other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_on_the_way_is_as_if_absent() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a"), b"a").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("out")).unwrap();
        std::os::unix::fs::symlink(root.join("sub"), root.join("via")).unwrap();
        let p = |s: &str| RelPath::new(s).unwrap();
        assert_eq!(resolve(root, None), Some(root.to_path_buf()));
        assert_eq!(resolve(root, Some(&p("sub/a"))), Some(root.join("sub/a")));
        assert_eq!(resolve(root, Some(&p("out"))), None);
        assert_eq!(resolve(root, Some(&p("out/passwd"))), None);
        assert_eq!(resolve(root, Some(&p("via/a"))), None);
        assert_eq!(resolve(root, Some(&p("missing"))), None);
    }
}
