//! The server's rules for share requests, pure: which right each request needs, and the
//! verdict on a request from a given key (design §2 "Shares", §3 refusals).
//!
//! - Rights are per share and per peer key: `read`, or `write`, which implies read; no grant
//!   means no access. They are checked on every request as it is served, so a revoke holds
//!   from the next request on.
//! - A peer without a grant cannot tell a missing share from one it may not use: both get
//!   the same [`ErrorKind::Denied`] message, naming the share and the right it needs.
//! - A hash is not a capability: a request for content by id (`GetManifest`, `GetChunk`,
//!   `Have` of chunks) is served only if the content lies in a share the asker may read, or
//!   in a transfer offered to it; otherwise it gets the same [`ErrorKind::NotFound`] as
//!   content the server does not hold at all. `Have` of ids answers, for each id, "held"
//!   only under the same condition.
//! - Shape rules that need no state (a chunk range past [`MAX_HAVE_BITS`], a put larger
//!   than a transfer may be, a rename into itself, version 0) are [`ErrorKind::Invalid`],
//!   checked after the rights, so they say nothing about a share the asker may not use.

use serde::{Deserialize, Serialize};

use super::names::{ContentId, ShareName};
use super::request::{HaveQuery, Request};
use super::response::{Bitfield, ErrorKind, ShareError, ShareInfo};
use super::{MAX_HAVE_BITS, MAX_PAGE, MAX_SHARES, RequestId};
use crate::PeerId;
use crate::transfer::MAX_TOTAL_SIZE;

/// A right on a share: `Write` implies `Read` (`Read < Write`). Tag 0 read, 1 write; in
/// JSON `"read"` or `"write"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// List, stat, get, versions.
    Read,
    /// Also put, remove, rename, make directories, restore.
    Write,
}

impl Access {
    /// `read` or `write`, as the command line and messages spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// What the rules ask of the server's state; the daemon answers from its shares, grants and
/// index.
pub trait ShareState {
    /// Every share the server serves.
    fn shares(&self) -> Vec<ShareName>;
    /// The right `peer` holds on `share`; `None` without a grant or without such a share.
    fn access(&self, share: &ShareName, peer: &PeerId) -> Option<Access>;
    /// The shares that hold a file of content `id`.
    fn shares_holding(&self, id: &ContentId) -> Vec<ShareName>;
    /// Whether content `id` is in a transfer offered to `peer`. None by default.
    fn offered_to(&self, _id: &ContentId, _peer: &PeerId) -> bool {
        false
    }
}

/// What a request needs before it may be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    /// Nothing: `ListShares` (its answer lists only readable shares) and `Cancel` (of the
    /// asker's own request).
    Nothing,
    /// This right on this share.
    Share(&'a ShareName, Access),
    /// Read access to this content ([`may_read_content`]).
    Content(&'a ContentId),
    /// Nothing up front; each id is answered as held only if readable ([`have_ids`]).
    EachContent,
    /// Write on the share of the `Put` this chunk belongs to.
    PutOf(RequestId),
}

/// The right each request needs.
pub fn need(req: &Request) -> Need<'_> {
    use Access::{Read, Write};
    match req {
        Request::ListShares | Request::Cancel { .. } => Need::Nothing,
        Request::List { share, .. }
        | Request::Stat { share, .. }
        | Request::Versions { share, .. }
        | Request::Pull { share, .. } => Need::Share(share, Read),
        Request::Put { share, .. }
        | Request::Remove { share, .. }
        | Request::Rename { share, .. }
        | Request::MakeDir { share, .. }
        | Request::Restore { share, .. } => Need::Share(share, Write),
        Request::GetManifest { id, .. }
        | Request::GetChunk { id, .. }
        | Request::Have(HaveQuery::Chunks { id, .. }) => Need::Content(id),
        Request::Have(HaveQuery::Ids(_)) => Need::EachContent,
        Request::PutChunk { put, .. } => Need::PutOf(*put),
    }
}

/// The refusal of `share` to a peer lacking `access`: the same whether the share exists or
/// not.
pub fn denied(share: &ShareName, access: Access) -> ShareError {
    ShareError::new(
        ErrorKind::Denied,
        &format!(
            "permission denied: {share} (ask the owner for {})",
            access.as_str()
        ),
    )
}

/// The refusal of content `id` that is not held or not readable by the asker: one message
/// for both.
pub fn content_not_found(id: &ContentId) -> ShareError {
    ShareError::new(
        ErrorKind::NotFound,
        &format!("content {} not found in any share you may read", id.short()),
    )
}

/// Whether `peer` may read content `id`: it lies in a share `peer` may read, or in a
/// transfer offered to it.
pub fn may_read_content(state: &impl ShareState, peer: &PeerId, id: &ContentId) -> bool {
    state
        .shares_holding(id)
        .iter()
        .any(|s| state.access(s, peer).is_some())
        || state.offered_to(id, peer)
}

/// The verdict on `req` from `peer`: `Ok` to serve it, or the error to answer.
/// `put_share` is, for a `PutChunk`, the share of the `Put` it names if that put is in
/// flight on the asker's link (`None` otherwise: the chunk is refused as invalid).
pub fn check(
    state: &impl ShareState,
    peer: &PeerId,
    req: &Request,
    put_share: Option<&ShareName>,
) -> Result<(), ShareError> {
    match need(req) {
        Need::Nothing | Need::EachContent => {}
        Need::Share(share, access) => {
            if state.access(share, peer) < Some(access) {
                return Err(denied(share, access));
            }
        }
        Need::Content(id) => {
            if !may_read_content(state, peer, id) {
                return Err(content_not_found(id));
            }
        }
        Need::PutOf(put) => {
            let Some(share) = put_share else {
                return Err(invalid(&format!("no put {put} in progress on this link")));
            };
            if state.access(share, peer) < Some(Access::Write) {
                return Err(denied(share, Access::Write));
            }
        }
    }
    shape(req)
}

fn invalid(message: &str) -> ShareError {
    ShareError::new(ErrorKind::Invalid, message)
}

/// The rules that need no state.
fn shape(req: &Request) -> Result<(), ShareError> {
    match req {
        Request::Have(HaveQuery::Chunks { first, count, .. }) => {
            if *count > MAX_HAVE_BITS {
                return Err(invalid(&format!(
                    "at most {MAX_HAVE_BITS} chunks may be asked about at once"
                )));
            }
            if first.checked_add(u64::from(*count)).is_none() {
                return Err(invalid("the chunk range overflows"));
            }
        }
        Request::Put { size, .. } if *size > MAX_TOTAL_SIZE => {
            return Err(invalid(&format!(
                "a file of {size} bytes is over the {MAX_TOTAL_SIZE}-byte limit"
            )));
        }
        Request::Rename { from, to, .. } => {
            let (from, to) = (from.as_str(), to.as_str());
            if from == to || to.strip_prefix(from).is_some_and(|r| r.starts_with('/')) {
                return Err(invalid(&format!("cannot move {from} into itself")));
            }
        }
        Request::Restore { version: 0, .. } => {
            return Err(invalid("version numbers start at 1"));
        }
        _ => {}
    }
    Ok(())
}

/// The answer to `ListShares` from `peer`: the shares it may read, by name, each with its
/// right, at most [`MAX_SHARES`].
pub fn list_shares(state: &impl ShareState, peer: &PeerId) -> Vec<ShareInfo> {
    let mut out: Vec<ShareInfo> = state
        .shares()
        .into_iter()
        .filter_map(|name| {
            let access = state.access(&name, peer)?;
            Some(ShareInfo { name, access })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.truncate(MAX_SHARES);
    out
}

/// The answer to `Have(Ids)` from `peer`: bit `i` set when the server holds `ids[i]` whole
/// (`holds`) and `peer` may read it. `ids` is at most [`MAX_HAVE_IDS`](super::MAX_HAVE_IDS)
/// long as decoded.
pub fn have_ids(
    state: &impl ShareState,
    peer: &PeerId,
    ids: &[ContentId],
    holds: impl Fn(&ContentId) -> bool,
) -> Bitfield {
    let bits: Vec<bool> = ids
        .iter()
        .take(MAX_HAVE_BITS as usize)
        .map(|id| holds(id) && may_read_content(state, peer, id))
        .collect();
    Bitfield::from_bools(&bits).unwrap_or_default()
}

/// How many entries a `List` with `limit` gets at most: `limit`, or [`MAX_PAGE`] for 0 or
/// more than that.
pub fn page_limit(limit: u32) -> usize {
    match limit as usize {
        0 => MAX_PAGE,
        n => n.min(MAX_PAGE),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::SecretKey;
    use crate::share::response::ShareInfo;
    use crate::transfer::RelPath;

    #[derive(Default)]
    struct State {
        grants: HashMap<(ShareName, PeerId), Access>,
        shares: Vec<ShareName>,
        content: HashMap<ContentId, Vec<ShareName>>,
        offered: Vec<(ContentId, PeerId)>,
    }

    impl ShareState for State {
        fn shares(&self) -> Vec<ShareName> {
            self.shares.clone()
        }
        fn access(&self, share: &ShareName, peer: &PeerId) -> Option<Access> {
            self.grants.get(&(share.clone(), *peer)).copied()
        }
        fn shares_holding(&self, id: &ContentId) -> Vec<ShareName> {
            self.content.get(id).cloned().unwrap_or_default()
        }
        fn offered_to(&self, id: &ContentId, peer: &PeerId) -> bool {
            self.offered.contains(&(*id, *peer))
        }
    }

    fn peer(n: u8) -> PeerId {
        SecretKey::from_seed([n; 32]).peer_id()
    }

    fn share(s: &str) -> ShareName {
        ShareName::new(s).unwrap()
    }

    fn path(s: &str) -> RelPath {
        RelPath::new(s).unwrap()
    }

    const DOCS: ContentId = ContentId([1; 32]);
    const SECRET: ContentId = ContentId([2; 32]);
    const OFFERED: ContentId = ContentId([3; 32]);

    /// Share `docs` (alice reads, bob writes, holding DOCS) and share `private` (nobody,
    /// holding SECRET); OFFERED is in a transfer offered to alice.
    fn state() -> State {
        let mut st = State {
            shares: vec![share("private"), share("docs")],
            ..State::default()
        };
        st.grants.insert((share("docs"), peer(1)), Access::Read);
        st.grants.insert((share("docs"), peer(2)), Access::Write);
        st.content
            .insert(DOCS, vec![share("private"), share("docs")]);
        st.content.insert(SECRET, vec![share("private")]);
        st.offered.push((OFFERED, peer(1)));
        st
    }

    fn list(s: &str) -> Request {
        Request::List {
            share: share(s),
            path: None,
            cursor: None,
            limit: 0,
        }
    }

    fn put(s: &str) -> Request {
        Request::Put {
            share: share(s),
            path: path("a.txt"),
            size: 3,
            id: DOCS,
            replaces: None,
        }
    }

    fn kind(r: Result<(), ShareError>) -> Option<ErrorKind> {
        r.err().map(|e| e.kind)
    }

    #[test]
    fn reading_needs_read_and_writing_needs_write() {
        let st = state();
        let (alice, bob, eve) = (peer(1), peer(2), peer(3));
        assert_eq!(check(&st, &alice, &list("docs"), None), Ok(()));
        assert_eq!(check(&st, &bob, &list("docs"), None), Ok(()));
        assert_eq!(check(&st, &bob, &put("docs"), None), Ok(()));
        let err = check(&st, &alice, &put("docs"), None).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Denied);
        assert_eq!(
            err.message.as_str(),
            "permission denied: docs (ask the owner for write)"
        );
        assert_eq!(
            kind(check(&st, &eve, &list("docs"), None)),
            Some(ErrorKind::Denied)
        );
        for req in [
            Request::Remove {
                share: share("docs"),
                path: path("a"),
            },
            Request::MakeDir {
                share: share("docs"),
                path: path("a"),
            },
            Request::Rename {
                share: share("docs"),
                from: path("a"),
                to: path("b"),
            },
            Request::Restore {
                share: share("docs"),
                path: path("a"),
                version: 1,
            },
        ] {
            assert_eq!(need(&req), Need::Share(&share("docs"), Access::Write));
            assert_eq!(
                kind(check(&st, &alice, &req, None)),
                Some(ErrorKind::Denied)
            );
            assert_eq!(check(&st, &bob, &req, None), Ok(()));
        }
        for req in [
            Request::Stat {
                share: share("docs"),
                path: None,
            },
            Request::Versions {
                share: share("docs"),
                path: path("a"),
            },
        ] {
            assert_eq!(need(&req), Need::Share(&share("docs"), Access::Read));
            assert_eq!(check(&st, &alice, &req, None), Ok(()));
            assert_eq!(kind(check(&st, &eve, &req, None)), Some(ErrorKind::Denied));
        }
    }

    #[test]
    fn a_missing_share_reads_like_a_denied_one() {
        let st = state();
        let eve = peer(3);
        for access_req in [list, put] {
            let existing = check(&st, &eve, &access_req("private"), None).unwrap_err();
            let missing = check(&st, &eve, &access_req("nothere"), None).unwrap_err();
            assert_eq!(existing.kind, missing.kind);
            assert_eq!(
                existing.message.as_str().replace("private", "X"),
                missing.message.as_str().replace("nothere", "X")
            );
        }
    }

    #[test]
    fn a_revoke_holds_from_the_next_request() {
        let mut st = state();
        let bob = peer(2);
        assert_eq!(check(&st, &bob, &put("docs"), None), Ok(()));
        st.grants.insert((share("docs"), bob), Access::Read);
        assert_eq!(
            kind(check(&st, &bob, &put("docs"), None)),
            Some(ErrorKind::Denied)
        );
        st.grants.clear();
        assert_eq!(
            kind(check(&st, &bob, &list("docs"), None)),
            Some(ErrorKind::Denied)
        );
    }

    #[test]
    fn a_hash_is_not_a_capability() {
        let st = state();
        let (alice, eve) = (peer(1), peer(3));
        let get = |id| Request::GetChunk { id, index: 0 };
        let manifest = |id| Request::GetManifest { id, first: 0 };
        let chunks = |id| {
            Request::Have(HaveQuery::Chunks {
                id,
                first: 0,
                count: 8,
            })
        };
        for req in [get(DOCS), manifest(DOCS), chunks(DOCS), get(OFFERED)] {
            assert_eq!(check(&st, &alice, &req, None), Ok(()), "{req:?}");
        }
        let absent = ContentId([9; 32]);
        for (who, id) in [
            (alice, SECRET),
            (eve, DOCS),
            (eve, OFFERED),
            (alice, absent),
        ] {
            for req in [get(id), manifest(id), chunks(id)] {
                let err = check(&st, &who, &req, None).unwrap_err();
                assert_eq!(err, content_not_found(&id), "{req:?}");
            }
        }
        // Have of ids: held and readable only.
        let ids = [DOCS, SECRET, absent, OFFERED];
        let bits = have_ids(&st, &alice, &ids, |id| *id != absent);
        assert_eq!(
            (0..4).map(|i| bits.get(i)).collect::<Vec<_>>(),
            [true, false, false, true]
        );
        assert_eq!(have_ids(&st, &eve, &ids, |_| true).count_ones(), 0);
        let req = Request::Have(HaveQuery::Ids(ids.to_vec()));
        assert_eq!(check(&st, &eve, &req, None), Ok(()));
    }

    #[test]
    fn put_chunks_need_their_put_and_write_now() {
        let mut st = state();
        let bob = peer(2);
        let chunk = Request::PutChunk {
            put: RequestId(7),
            index: 0,
            data: bytes::Bytes::from_static(b"abc"),
        };
        assert_eq!(need(&chunk), Need::PutOf(RequestId(7)));
        let err = check(&st, &bob, &chunk, None).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
        assert_eq!(err.message.as_str(), "no put #7 in progress on this link");
        assert_eq!(check(&st, &bob, &chunk, Some(&share("docs"))), Ok(()));
        st.grants.insert((share("docs"), bob), Access::Read);
        let err = check(&st, &bob, &chunk, Some(&share("docs"))).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Denied);
    }

    #[test]
    fn shape_rules_come_after_the_rights() {
        let st = state();
        let (bob, eve) = (peer(2), peer(3));
        let into_itself = Request::Rename {
            share: share("docs"),
            from: path("a"),
            to: path("a/b"),
        };
        assert_eq!(
            kind(check(&st, &eve, &into_itself, None)),
            Some(ErrorKind::Denied)
        );
        assert_eq!(
            kind(check(&st, &bob, &into_itself, None)),
            Some(ErrorKind::Invalid)
        );
        let sibling = Request::Rename {
            share: share("docs"),
            from: path("a"),
            to: path("ab"),
        };
        assert_eq!(check(&st, &bob, &sibling, None), Ok(()));
        let v0 = Request::Restore {
            share: share("docs"),
            path: path("a"),
            version: 0,
        };
        assert_eq!(kind(check(&st, &bob, &v0, None)), Some(ErrorKind::Invalid));
        let huge = Request::Put {
            share: share("docs"),
            path: path("a"),
            size: MAX_TOTAL_SIZE + 1,
            id: DOCS,
            replaces: None,
        };
        assert_eq!(
            kind(check(&st, &bob, &huge, None)),
            Some(ErrorKind::Invalid)
        );
        let alice = peer(1);
        for (first, count) in [(0, MAX_HAVE_BITS + 1), (u64::MAX, 1)] {
            let req = Request::Have(HaveQuery::Chunks {
                id: DOCS,
                first,
                count,
            });
            assert_eq!(
                kind(check(&st, &alice, &req, None)),
                Some(ErrorKind::Invalid)
            );
        }
    }

    #[test]
    fn list_shares_shows_only_readable_ones_with_the_right() {
        let st = state();
        assert_eq!(
            list_shares(&st, &peer(2)),
            [ShareInfo {
                name: share("docs"),
                access: Access::Write
            }]
        );
        assert!(list_shares(&st, &peer(3)).is_empty());
        assert_eq!(check(&st, &peer(3), &Request::ListShares, None), Ok(()));
    }

    #[test]
    fn page_limits_are_clamped() {
        assert_eq!(page_limit(0), MAX_PAGE);
        assert_eq!(page_limit(10), 10);
        assert_eq!(page_limit(u32::MAX), MAX_PAGE);
    }
}
