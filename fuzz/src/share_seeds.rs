//! Seeds of the `share_frame` target, and a small share state the target runs the request
//! rules against.

use bytes::Bytes;
use proto::share::rules::{Access, ShareState};
use proto::share::{
    Bitfield, ContentId, Cursor, Entry, EntryKind, EntryName, ErrorKind, HaveQuery, MAX_FRAME,
    ManifestPage, Page, Request, RequestFrame, RequestId, Response, ResponseFrame, ShareInfo,
    ShareName, VersionInfo,
};
use proto::transfer::RelPath;
use proto::{PeerId, SecretKey};

use crate::seeds::frames;

/// Two shares and two peers: `docs` holds content `[1; 32]`, peer 1 reads it, peer 2
/// writes it; `private` holds content `[2; 32]` and grants nobody.
pub struct Toy {
    /// The shares, `docs` first.
    pub shares: Vec<ShareName>,
    peers: Vec<PeerId>,
}

impl Toy {
    /// The state described above.
    pub fn new() -> Self {
        Toy {
            shares: vec![share("docs"), share("private")],
            peers: vec![
                SecretKey::from_seed([1; 32]).peer_id(),
                SecretKey::from_seed([2; 32]).peer_id(),
                SecretKey::from_seed([3; 32]).peer_id(),
            ],
        }
    }

    /// Peers 1, 2 and a stranger.
    pub fn peers(&self) -> Vec<PeerId> {
        self.peers.clone()
    }
}

impl Default for Toy {
    fn default() -> Self {
        Self::new()
    }
}

impl ShareState for Toy {
    fn shares(&self) -> Vec<ShareName> {
        self.shares.clone()
    }

    fn access(&self, share: &ShareName, peer: &PeerId) -> Option<Access> {
        if share != &self.shares[0] {
            return None;
        }
        match self.peers.iter().position(|p| p == peer) {
            Some(0) => Some(Access::Read),
            Some(1) => Some(Access::Write),
            _ => None,
        }
    }

    fn shares_holding(&self, id: &ContentId) -> Vec<ShareName> {
        match id.0[0] {
            1 => vec![self.shares[0].clone()],
            2 => vec![self.shares[1].clone()],
            _ => vec![],
        }
    }
}

fn share(s: &str) -> ShareName {
    ShareName::new(s).expect("a valid seed share")
}

fn path(s: &str) -> RelPath {
    RelPath::new(s).expect("a valid seed path")
}

/// One of each request, numbered from 1.
pub fn requests() -> Vec<RequestFrame> {
    let (docs, id) = (share("docs"), ContentId([1; 32]));
    let all = [
        Request::ListShares,
        Request::List {
            share: docs.clone(),
            path: Some(path("dir/sub")),
            cursor: Some(Cursor(b"after:b".to_vec())),
            limit: 100,
        },
        Request::Stat {
            share: docs.clone(),
            path: None,
        },
        Request::GetManifest { id, first: 0 },
        Request::GetChunk { id, index: 1 },
        Request::Have(HaveQuery::Ids(vec![id, ContentId([2; 32])])),
        Request::Have(HaveQuery::Chunks {
            id,
            first: 0,
            count: 16,
        }),
        Request::Put {
            share: docs.clone(),
            path: path("new.txt"),
            size: 2,
            id,
            replaces: Some(ContentId([2; 32])),
        },
        Request::PutChunk {
            put: RequestId(8),
            index: 0,
            data: Bytes::from_static(b"hi"),
        },
        Request::Remove {
            share: docs.clone(),
            path: path("old.txt"),
        },
        Request::Rename {
            share: docs.clone(),
            from: path("a"),
            to: path("b/a"),
        },
        Request::MakeDir {
            share: docs.clone(),
            path: path("b"),
        },
        Request::Versions {
            share: docs.clone(),
            path: path("new.txt"),
        },
        Request::Pull {
            share: docs.clone(),
            path: Some(path("new.txt")),
        },
        Request::Restore {
            share: docs,
            path: path("new.txt"),
            version: 1,
        },
        Request::Cancel {
            request: RequestId(5),
        },
    ];
    all.into_iter()
        .zip(1..)
        .map(|(request, n)| RequestFrame {
            id: RequestId(n),
            request,
        })
        .collect()
}

/// One of each response.
pub fn responses() -> Vec<ResponseFrame> {
    let id = ContentId([1; 32]);
    let entry = |name: &str, kind, id| Entry {
        name: EntryName::new(name).expect("a valid seed name"),
        kind,
        size: 2,
        mtime: 1_700_000_000_000,
        id,
    };
    let all = [
        Response::Shares(vec![ShareInfo {
            name: share("docs"),
            access: Access::Write,
        }]),
        Response::Page(Page {
            entries: vec![
                entry("a.txt", EntryKind::File, Some(id)),
                entry("sub", EntryKind::Dir, None),
            ],
            next: Some(Cursor(b"after:sub".to_vec())),
        }),
        Response::Stat(entry("a.txt", EntryKind::File, None)),
        Response::Manifest(ManifestPage {
            id,
            len: 2,
            first: 0,
            cvs: vec![proto::content::ChunkCv([3; 32])],
        }),
        Response::Chunk {
            id,
            index: 0,
            data: Bytes::from_static(b"hi"),
        },
        Response::Have(Bitfield::from_bools(&[true, false, true]).expect("3 bits fit")),
        Response::Versions(vec![VersionInfo {
            number: 1,
            size: 2,
            replaced_at: 1_700_000_000_000,
            id,
            by: Some(SecretKey::from_seed([2; 32]).peer_id()),
        }]),
        Response::Done,
        Response::Pulling(proto::transfer::TransferId([9; 16])),
        Response::error(
            ErrorKind::Denied,
            "permission denied: docs (ask the owner for write)",
        ),
    ];
    all.into_iter()
        .zip(1..)
        .map(|(response, n)| ResponseFrame {
            id: RequestId(n),
            response,
        })
        .collect()
}

/// Framed requests and responses (each, then each kind as one stream), and raw request
/// payloads the server must answer `Invalid`: an unknown tag, a hostile path, trailing bytes.
pub fn share_frames() -> Vec<Vec<u8>> {
    let mut seeds = frames(&requests(), MAX_FRAME);
    seeds.extend(frames(&responses(), MAX_FRAME));
    seeds.push(vec![7, 15, 1, 2, 3]);
    let hostile = (9u64, 2u8, "docs", Some("../../etc/passwd"));
    seeds.push(postcard::to_stdvec(&hostile).expect("a seed encodes"));
    let mut trailing = postcard::to_stdvec(&requests()[0]).expect("a seed encodes");
    trailing.push(0);
    seeds.push(trailing);
    seeds
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::share::Incoming;

    #[test]
    fn seeds_decode_as_meant() {
        let seeds = share_frames();
        let at = requests().len();
        let reqs = crate::frames::check_stream::<RequestFrame>(&seeds[at], MAX_FRAME);
        assert_eq!(
            reqs,
            requests(),
            "the request stream seed holds every request"
        );
        let at = at + 1 + responses().len();
        let resps = crate::frames::check_stream::<ResponseFrame>(&seeds[at], MAX_FRAME);
        assert_eq!(
            resps,
            responses(),
            "the response stream seed holds every response"
        );
        let n = seeds.len();
        for raw in &seeds[n - 3..] {
            let incoming = RequestFrame::decode(raw).expect("an id is there");
            assert!(!matches!(incoming, Incoming::Request(_)), "{incoming:?}");
            assert!(incoming.refusal().is_some());
        }
    }
}
