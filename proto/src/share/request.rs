//! Requests: what a client asks of a share server, and how the server reads them.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::names::{ContentId, ShareName};
use super::response::{ErrorKind, Response, ResponseFrame};
use super::wire;
use super::{CHUNK, MAX_CURSOR, MAX_HAVE_IDS, RequestId};
use crate::frame::{self, FrameError};
use crate::transfer::RelPath;

/// Number of [`Request`] tags this version knows (0 to `KNOWN_REQUESTS - 1`). A request of a
/// higher tag comes from a newer client: it decodes as [`Incoming::Unknown`].
pub const KNOWN_REQUESTS: u32 = 15;

/// Where a listing resumes: opaque bytes of at most [`MAX_CURSOR`], made by the server (the
/// `next` of the previous [`Page`](super::Page)) and handed back unchanged by the client.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cursor(
    #[serde(
        serialize_with = "wire::ser_bytes",
        deserialize_with = "wire::bytes::<_, _, MAX_CURSOR>"
    )]
    pub Vec<u8>,
);

/// What a [`Request::Have`] asks about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HaveQuery {
    /// Tag 0: which of these contents the server holds whole (at most [`MAX_HAVE_IDS`]); bit
    /// `i` of the answer is `ids[i]`.
    Ids(#[serde(deserialize_with = "wire::seq::<_, _, MAX_HAVE_IDS>")] Vec<ContentId>),
    /// Tag 1: which chunks `first .. first + count` of one content the server holds verified
    /// (`count` at most [`MAX_HAVE_BITS`](super::MAX_HAVE_BITS)); bit `i` is chunk
    /// `first + i`.
    Chunks {
        /// The content.
        id: ContentId,
        /// The first chunk asked about.
        first: u64,
        /// How many chunks.
        count: u32,
    },
}

/// A request. Variant index = tag: append new variants at the end and never reorder. Paths
/// are relative to the share's root, validated as they decode ([`RelPath`]: no `..`, not
/// absolute, no hostile Unicode); `None` is the root itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Tag 0: the shares the asker may read, with its right on each. Answer:
    /// [`Response::Shares`].
    ListShares,
    /// Tag 1: one page of a directory listing, in the server's order (by name). Answer:
    /// [`Response::Page`].
    List {
        /// The share.
        share: ShareName,
        /// The directory; `None` is the share's root.
        path: Option<RelPath>,
        /// Where to resume: `None` for the first page, else the previous page's `next`.
        cursor: Option<Cursor>,
        /// Most entries wanted; 0 or more than [`MAX_PAGE`](super::MAX_PAGE) means
        /// [`MAX_PAGE`](super::MAX_PAGE).
        limit: u32,
    },
    /// Tag 2: one entry (file or directory). Answer: [`Response::Stat`].
    Stat {
        /// The share.
        share: ShareName,
        /// The entry; `None` is the share's root.
        path: Option<RelPath>,
    },
    /// Tag 3: the chunk chaining values of a content, from chunk `first` on. Answer:
    /// [`Response::Manifest`].
    GetManifest {
        /// The content.
        id: ContentId,
        /// The first chunk whose value is wanted (0 for the first page).
        first: u64,
    },
    /// Tag 4: one chunk of a content. Answer: [`Response::Chunk`].
    GetChunk {
        /// The content.
        id: ContentId,
        /// The chunk's index.
        index: u64,
    },
    /// Tag 5: which contents, or which chunks of one, the server holds. Answer:
    /// [`Response::Have`].
    Have(HaveQuery),
    /// Tag 6: write a file of `size` bytes and content `id` at `path`, if what is there now is
    /// `replaces` (`None`: nothing is there): compare and swap. The bytes follow as
    /// [`Request::PutChunk`]s naming this request; the answer, [`Response::Done`], comes once
    /// the whole file is verified against `id` and in place, or an error
    /// ([`ErrorKind::Conflict`] if the path changed).
    Put {
        /// The share.
        share: ShareName,
        /// Where the file goes.
        path: RelPath,
        /// Its exact size in bytes.
        size: u64,
        /// Its content id.
        id: ContentId,
        /// The content id the client saw there; `None` if the path was absent.
        replaces: Option<ContentId>,
    },
    /// Tag 7: chunk `index` of the file of an accepted [`Request::Put`] on this link
    /// (exactly as long as the chunk's range; chunks may come in any order). Answer:
    /// [`Response::Done`] once written.
    PutChunk {
        /// The `Put` request.
        put: RequestId,
        /// The chunk's index.
        index: u64,
        /// The bytes (at most [`CHUNK`]).
        #[serde(
            serialize_with = "wire::ser_bytes",
            deserialize_with = "wire::bytes::<_, _, { CHUNK as usize }>"
        )]
        data: Bytes,
    },
    /// Tag 8: remove a file or an empty directory (a file is kept as a version). Answer:
    /// [`Response::Done`].
    Remove {
        /// The share.
        share: ShareName,
        /// The entry.
        path: RelPath,
    },
    /// Tag 9: move an entry within the share, never over an existing one. Answer:
    /// [`Response::Done`].
    Rename {
        /// The share.
        share: ShareName,
        /// The entry.
        from: RelPath,
        /// Its new path.
        to: RelPath,
    },
    /// Tag 10: make a directory (its parent must exist). Answer: [`Response::Done`].
    MakeDir {
        /// The share.
        share: ShareName,
        /// The new directory.
        path: RelPath,
    },
    /// Tag 11: the kept versions of a path. Answer: [`Response::Versions`].
    Versions {
        /// The share.
        share: ShareName,
        /// The path.
        path: RelPath,
    },
    /// Tag 12: put a kept version back (the current content becomes a version in turn).
    /// Answer: [`Response::Done`].
    Restore {
        /// The share.
        share: ShareName,
        /// The path.
        path: RelPath,
        /// The version's number ([`VersionInfo::number`](super::VersionInfo::number)).
        version: u64,
    },
    /// Tag 13: stop serving an earlier request of this link. Answer: [`Response::Done`];
    /// after it nothing more comes for `request` (an answer already sent may arrive first).
    Cancel {
        /// The request to stop.
        request: RequestId,
    },
    /// Tag 14: send me this file or directory. The server checks `read` on the share now,
    /// then starts an ordinary transfer of the entry to the asker over `p2p-bulk/2` and
    /// answers [`Response::Pulling`] with its id (the asker accepts that offer on its own).
    Pull {
        /// The share.
        share: ShareName,
        /// The entry; `None` is the share's root.
        path: Option<RelPath>,
    },
}

impl Request {
    /// The request's tag (its variant index, the first byte after the request id).
    pub fn tag(&self) -> u32 {
        match self {
            Request::ListShares => 0,
            Request::List { .. } => 1,
            Request::Stat { .. } => 2,
            Request::GetManifest { .. } => 3,
            Request::GetChunk { .. } => 4,
            Request::Have(_) => 5,
            Request::Put { .. } => 6,
            Request::PutChunk { .. } => 7,
            Request::Remove { .. } => 8,
            Request::Rename { .. } => 9,
            Request::MakeDir { .. } => 10,
            Request::Versions { .. } => 11,
            Request::Restore { .. } => 12,
            Request::Cancel { .. } => 13,
            Request::Pull { .. } => 14,
        }
    }
}

/// One request frame's payload: the id, then the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestFrame {
    /// Chosen by the client; the response carries it back.
    pub id: RequestId,
    /// What is asked.
    pub request: Request,
}

/// A request frame as the server reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A request this version knows.
    Request(RequestFrame),
    /// A request whose tag is past the known ones (a newer client's); its body is not read.
    Unknown {
        /// The request's id.
        id: RequestId,
        /// Its tag.
        tag: u32,
    },
    /// A request whose id was read but whose tag or body does not decode: a hostile path or
    /// name, a list or byte string over its cap, trailing bytes.
    Malformed {
        /// The request's id.
        id: RequestId,
        /// What was wrong, from the decoder.
        detail: String,
    },
}

impl RequestFrame {
    /// Decodes one whole payload (no length prefix). Fails only when not even the request id
    /// can be read (the link then ends); anything else that does not decode is answered
    /// (see [`Incoming::refusal`]) and the link stays up. Never panics.
    pub fn decode(payload: &[u8]) -> Result<Incoming, FrameError> {
        let (id, rest) = postcard::take_from_bytes::<RequestId>(payload)?;
        let tag = match postcard::take_from_bytes::<u32>(rest) {
            Ok((tag, _)) => tag,
            Err(e) => {
                let detail = format!("request: {e}");
                return Ok(Incoming::Malformed { id, detail });
            }
        };
        if tag >= KNOWN_REQUESTS {
            return Ok(Incoming::Unknown { id, tag });
        }
        Ok(match frame::decode_payload::<RequestFrame>(payload) {
            Ok(req) => Incoming::Request(req),
            Err(e) => Incoming::Malformed {
                id,
                detail: format!("request {tag}: {}", why(&e)),
            },
        })
    }
}

/// The decoder's complaint, in words for the client. postcard keeps no text of a field's
/// own refusal, so a path, a name, or a list over its cap all read alike.
fn why(e: &FrameError) -> String {
    match e {
        FrameError::Malformed(postcard::Error::SerdeDeCustom) => {
            "a path or name breaks the naming rules, or a list or byte string is over its cap"
                .into()
        }
        FrameError::Malformed(e) => e.to_string(),
        other => other.to_string(),
    }
}

impl Incoming {
    /// The request's id.
    pub fn id(&self) -> RequestId {
        match self {
            Incoming::Request(r) => r.id,
            Incoming::Unknown { id, .. } | Incoming::Malformed { id, .. } => *id,
        }
    }

    /// The answer to a request the server cannot serve because it does not understand it:
    /// `Invalid("unknown request N")` or `Invalid("malformed request N: ...")`. `None` for a
    /// request that decoded.
    pub fn refusal(&self) -> Option<ResponseFrame> {
        let message = match self {
            Incoming::Request(_) => return None,
            Incoming::Unknown { tag, .. } => format!("unknown request {tag}"),
            Incoming::Malformed { detail, .. } => format!("malformed {detail}"),
        };
        Some(ResponseFrame {
            id: self.id(),
            response: Response::error(ErrorKind::Invalid, &message),
        })
    }
}
