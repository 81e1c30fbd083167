//! Listing another peer's shares: a share link dialled through the router's [`Dialer`],
//! `ListShares`, or `Stat` then `List` pages (and, recursively, the pages of each
//! subdirectory, up to [`MAX_LISTED`] entries).

use std::collections::VecDeque;
use std::time::Duration;

use proto::api::{ListEntry, Listing, MAX_LISTED};
use proto::peer::ALPN_SHARE;
use proto::share::{
    Access, Cursor, Entry, EntryKind, ErrorKind, MAX_FRAME, Request, RequestFrame, RequestId,
    Response, ResponseFrame, ShareName,
};
use proto::transfer::RelPath;
use proto::{PeerId, PeerName};

use super::{Shares, SharesError, share_name};
use crate::link::LinkConn;

/// How long one answer may take.
const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// What `ls` asks for.
#[derive(Debug, Clone, Default)]
pub struct LsQuery {
    /// The share; `None` lists the shares.
    pub share: Option<String>,
    /// The path in it; `None` (or empty, or `/`) is its root.
    pub path: Option<String>,
    /// Keep content ids in the answer.
    pub long: bool,
    /// Walk subdirectories.
    pub recursive: bool,
}

/// The path of a request, from the user's text: `None` for the root; leading and trailing
/// `/` ignored; `..`, hostile characters and the like refused.
pub fn parse_path(path: Option<&str>) -> Result<Option<RelPath>, SharesError> {
    let Some(text) = path else { return Ok(None) };
    let trimmed = text.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(None);
    }
    RelPath::new(trimmed)
        .map(Some)
        .map_err(|source| SharesError::BadPath {
            path: text.to_owned(),
            source,
        })
}

impl Shares {
    /// Lists `peer`'s shares, or a directory or file in one of them, over a new share link.
    pub async fn ls(&self, peer: PeerId, q: LsQuery) -> Result<Listing, SharesError> {
        let share = q.share.as_deref().map(share_name).transpose()?;
        let path = parse_path(q.path.as_deref())?;
        let mut link = self.connect(peer).await?;
        let name = link.peer.clone();
        let mut listing = Listing {
            peer: name,
            share: share.clone(),
            path: path.as_ref().map(|p| p.to_string()),
            shares: Vec::new(),
            entries: Vec::new(),
            truncated: false,
        };
        let r = match share {
            None => link.shares(&mut listing).await,
            Some(share) => link.walk(&share, path, &q, &mut listing).await,
        };
        let _ = link.conn.shutdown().await;
        r.map(|()| listing)
    }
}

impl Shares {
    /// A new share link to `peer`.
    pub(super) async fn connect(&self, peer: PeerId) -> Result<Remote, SharesError> {
        let Some(info) = self.node.dial_target(peer, self.dialer.looks_up()) else {
            let name = self.peer_name(peer);
            return Err(SharesError::Offline(name));
        };
        let name = info.name.clone();
        let conn = self
            .dialer
            .dial(ALPN_SHARE, &info)
            .await
            .map_err(|e| (name.clone(), e))?;
        let mut link = Remote {
            conn,
            next: 0,
            peer: name,
        };
        link.conn.set_limits(MAX_FRAME, MAX_FRAME);
        Ok(link)
    }
}

/// One share link, as the asking side.
pub(super) struct Remote {
    pub(super) conn: LinkConn,
    next: u64,
    pub(super) peer: PeerName,
}

impl Remote {
    /// A request id not used before on this link.
    pub(super) fn take_id(&mut self) -> RequestId {
        let id = RequestId(self.next);
        self.next += 1;
        id
    }

    /// The link, the next request id not used on it, and the peer's name.
    pub(super) fn into_parts(self) -> (LinkConn, u64, PeerName) {
        (self.conn, self.next, self.peer)
    }

    /// Sends `request` and waits for its answer.
    pub(super) async fn ask(&mut self, request: Request) -> Result<Response, SharesError> {
        let id = self.take_id();
        let peer = self.peer.clone();
        let exchange = async {
            self.conn.send(&RequestFrame { id, request }).await?;
            loop {
                match self.conn.read::<ResponseFrame>().await? {
                    Some(f) if f.id == id => return Ok(Some(f.response)),
                    Some(_) => {}
                    None => return Ok(None),
                }
            }
        };
        let r: Result<Option<Response>, transport::ConnError> =
            match tokio::time::timeout(ANSWER_WAIT, exchange).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(SharesError::link(
                        &peer,
                        format!("no answer within {} s", ANSWER_WAIT.as_secs()),
                    ));
                }
            };
        match r {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(SharesError::link(&peer, "the share link was closed")),
            Err(e) => Err(SharesError::link(&peer, e)),
        }
    }

    /// The error a refusal (or an unexpected answer) means.
    pub(super) fn refused(&self, share: Option<&ShareName>, r: Response) -> SharesError {
        match (r, share) {
            (Response::Error(e), Some(share)) if e.kind == ErrorKind::Denied => {
                SharesError::Denied {
                    share: share.clone(),
                    peer: self.peer.clone(),
                    right: Access::Read,
                }
            }
            (Response::Error(e), _) => SharesError::Remote {
                peer: self.peer.clone(),
                message: e.message.to_string(),
            },
            (other, _) => SharesError::link(
                &self.peer,
                format!("unexpected answer (tag {})", other.tag()),
            ),
        }
    }

    async fn shares(&mut self, listing: &mut Listing) -> Result<(), SharesError> {
        match self.ask(Request::ListShares).await? {
            Response::Shares(s) => {
                listing.shares = s;
                Ok(())
            }
            other => Err(self.refused(None, other)),
        }
    }

    async fn walk(
        &mut self,
        share: &ShareName,
        path: Option<RelPath>,
        q: &LsQuery,
        listing: &mut Listing,
    ) -> Result<(), SharesError> {
        let stat = Request::Stat {
            share: share.clone(),
            path: path.clone(),
        };
        let top = match self.ask(stat).await? {
            Response::Stat(e) => e,
            other => return Err(self.refused(Some(share), other)),
        };
        if top.kind == EntryKind::File {
            listing
                .entries
                .push(list_entry(top.name.as_str(), &top, q.long));
            return Ok(());
        }
        let mut dirs = VecDeque::from([(path, String::new())]);
        while let Some((dir, prefix)) = dirs.pop_front() {
            let mut cursor: Option<Cursor> = None;
            loop {
                let list = Request::List {
                    share: share.clone(),
                    path: dir.clone(),
                    cursor: cursor.take(),
                    limit: 0,
                };
                let page = match self.ask(list).await? {
                    Response::Page(p) => p,
                    other => return Err(self.refused(Some(share), other)),
                };
                for e in &page.entries {
                    if listing.entries.len() == MAX_LISTED {
                        listing.truncated = true;
                        return Ok(());
                    }
                    let rel = format!("{prefix}{}", e.name.as_str());
                    if q.recursive && e.kind == EntryKind::Dir {
                        let child = match &dir {
                            Some(d) => format!("{d}/{}", e.name.as_str()),
                            None => e.name.as_str().to_owned(),
                        };
                        if let Ok(child) = RelPath::new(&child) {
                            dirs.push_back((Some(child), format!("{rel}/")));
                        }
                    }
                    listing.entries.push(list_entry(&rel, e, q.long));
                }
                match page.next {
                    Some(next) if !page.entries.is_empty() => cursor = Some(next),
                    _ => break,
                }
            }
        }
        Ok(())
    }
}

fn list_entry(path: &str, e: &Entry, long: bool) -> ListEntry {
    ListEntry {
        path: path.to_owned(),
        kind: e.kind,
        size: e.size,
        mtime: e.mtime,
        id: e.id.filter(|_| long).map(|id| id.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked_before_anything_is_sent() {
        assert_eq!(parse_path(None).unwrap(), None);
        assert_eq!(parse_path(Some("/")).unwrap(), None);
        assert_eq!(parse_path(Some("")).unwrap(), None);
        let sub = parse_path(Some("sub/deeper/")).unwrap().unwrap();
        assert_eq!(sub.as_str(), "sub/deeper");
        for bad in ["../etc", "sub/../../x", "a/./b", "a\0b"] {
            let e = parse_path(Some(bad)).unwrap_err();
            assert!(matches!(e, SharesError::BadPath { .. }), "{bad}: {e}");
            assert!(e.to_string().starts_with("bad path"), "{e}");
        }
    }
}
