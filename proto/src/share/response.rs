//! Responses: what a share server answers, one per request, carrying the request's id.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};

use super::names::{ContentId, EntryName, ShareName};
use super::request::Cursor;
use super::rules::Access;
use super::wire;
use super::{
    CHUNK, MAX_CVS_PER_PAGE, MAX_ERROR_TEXT, MAX_HAVE_BITS, MAX_PAGE, MAX_SHARES, MAX_VERSIONS,
    RequestId,
};
use crate::PeerId;
use crate::text::neutralize;

/// One share the asker may read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareInfo {
    /// The share's name.
    pub name: ShareName,
    /// The asker's right on it.
    pub access: Access,
}

/// Whether an entry is a file or a directory. Tag 0 file, 1 directory; in JSON `"file"` or
/// `"dir"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// One entry of a listing, or the answer to a stat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Its name (for the share's root, the share's name).
    pub name: EntryName,
    /// File or directory.
    pub kind: EntryKind,
    /// A file's size in bytes; 0 for a directory.
    pub size: u64,
    /// Last modification, Unix milliseconds.
    pub mtime: u64,
    /// A file's content id, once the index has hashed it; `None` for a directory.
    pub id: Option<ContentId>,
}

/// One page of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    /// The entries, at most [`MAX_PAGE`].
    #[serde(deserialize_with = "wire::seq::<_, _, MAX_PAGE>")]
    pub entries: Vec<Entry>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

/// Part of a content's manifest: its length and the BLAKE3 chaining values of its 1 MiB
/// chunks `first .. first + cvs.len()`, each of which verifies one chunk on its own
/// ([`crate::content`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestPage {
    /// The content.
    pub id: ContentId,
    /// Its length in bytes.
    pub len: u64,
    /// The index of the chunk the first value belongs to.
    pub first: u64,
    /// One value per chunk, in order, at most [`MAX_CVS_PER_PAGE`].
    #[serde(deserialize_with = "wire::seq::<_, _, MAX_CVS_PER_PAGE>")]
    pub cvs: Vec<crate::content::ChunkCv>,
}

impl ManifestPage {
    /// Whether the page fits its content: its values cover chunks inside the content's
    /// length ([`chunk_count`](crate::transfer::chunk_count)), at least one unless the
    /// content is empty. A client checks this before it uses the values.
    pub fn fits(&self) -> bool {
        let chunks = crate::transfer::chunk_count(self.len);
        let end = self.first.checked_add(self.cvs.len() as u64);
        match end {
            Some(end) if chunks == 0 => self.first == 0 && end == 0,
            Some(end) => !self.cvs.is_empty() && end <= chunks,
            None => false,
        }
    }
}

/// One kept version of a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// Its number: 1 for the oldest kept, never reused for another version of the path.
    pub number: u64,
    /// Its size in bytes.
    pub size: u64,
    /// When it was replaced or removed, Unix milliseconds.
    pub replaced_at: u64,
    /// Its content id.
    pub id: ContentId,
    /// The peer whose request replaced it; `None` for the owner.
    pub by: Option<PeerId>,
}

/// A set of bits, one per content id or chunk asked about in a
/// [`Request::Have`](super::Request::Have); at most [`MAX_HAVE_BITS`]. On the wire: the
/// number of bits, then a byte string of `ceil(bits / 8)` bytes, bit `i` in byte `i / 8` at
/// `1 << (i % 8)`, spare bits of the last byte zero. Deserialising checks all of it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BitfieldWire")]
pub struct Bitfield {
    bits: u32,
    #[serde(serialize_with = "wire::ser_bytes")]
    bytes: Vec<u8>,
}

#[derive(Deserialize)]
struct BitfieldWire {
    bits: u32,
    #[serde(deserialize_with = "wire::bytes::<_, _, { MAX_HAVE_BITS as usize / 8 }>")]
    bytes: Vec<u8>,
}

/// A bitfield whose byte string does not match its length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed bitfield")]
pub struct BadBitfield;

impl TryFrom<BitfieldWire> for Bitfield {
    type Error = BadBitfield;
    fn try_from(w: BitfieldWire) -> Result<Self, Self::Error> {
        let spare_ok = match w.bits % 8 {
            0 => true,
            r => w.bytes.last().is_some_and(|b| b >> r == 0),
        };
        if w.bits > MAX_HAVE_BITS || w.bytes.len() != w.bits.div_ceil(8) as usize || !spare_ok {
            return Err(BadBitfield);
        }
        Ok(Bitfield {
            bits: w.bits,
            bytes: w.bytes,
        })
    }
}

impl Bitfield {
    /// `bits` bits, all clear; `None` over [`MAX_HAVE_BITS`].
    pub fn new(bits: u32) -> Option<Self> {
        (bits <= MAX_HAVE_BITS).then(|| Bitfield {
            bits,
            bytes: vec![0; bits.div_ceil(8) as usize],
        })
    }

    /// The bits of `values`, in order; `None` for more than [`MAX_HAVE_BITS`].
    pub fn from_bools(values: &[bool]) -> Option<Self> {
        let mut out = Self::new(u32::try_from(values.len()).ok()?)?;
        for (i, v) in values.iter().enumerate() {
            if *v {
                out.set(i as u32);
            }
        }
        Some(out)
    }

    /// How many bits.
    pub fn len(&self) -> u32 {
        self.bits
    }

    /// Whether it holds no bits at all.
    pub fn is_empty(&self) -> bool {
        self.bits == 0
    }

    /// Bit `i`; false past the end.
    pub fn get(&self, i: u32) -> bool {
        i < self.bits && self.bytes[(i / 8) as usize] & (1 << (i % 8)) != 0
    }

    /// Sets bit `i`; does nothing past the end.
    pub fn set(&mut self, i: u32) {
        if i < self.bits {
            self.bytes[(i / 8) as usize] |= 1 << (i % 8);
        }
    }

    /// How many bits are set.
    pub fn count_ones(&self) -> u32 {
        self.bytes.iter().map(|b| b.count_ones()).sum()
    }
}

impl fmt::Debug for Bitfield {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bitfield(")?;
        for i in 0..self.bits.min(64) {
            f.write_str(if self.get(i) { "1" } else { "0" })?;
        }
        if self.bits > 64 {
            write!(f, "... {} bits", self.bits)?;
        }
        f.write_str(")")
    }
}

/// Why a request failed. Tags 0 to 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// No such entry, content or version (or none the asker may read).
    NotFound,
    /// The asker lacks the right, or the share does not exist: the two read alike.
    Denied,
    /// The target changed since the asker saw it (a put's `replaces`), or a rename's
    /// destination exists.
    Conflict,
    /// The server is over a limit for now (requests in flight, a quota in time); retry later.
    Busy,
    /// The request is malformed, of an unknown kind, or breaks a rule (a path, a size).
    Invalid,
}

/// An error message: neutralised (no control or bidi character) and at most
/// [`MAX_ERROR_TEXT`] bytes. [`ErrorText::new`] makes one out of any text; deserialising
/// refuses text that is not already so.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ErrorText(String);

impl ErrorText {
    /// `text`, neutralised, then cut at a character boundary to [`MAX_ERROR_TEXT`] bytes.
    pub fn new(text: &str) -> Self {
        let mut s = neutralize(text);
        if s.len() > MAX_ERROR_TEXT {
            let cut = (0..=MAX_ERROR_TEXT)
                .rev()
                .find(|i| s.is_char_boundary(*i))
                .unwrap_or(0);
            s.truncate(cut);
        }
        Self(s)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ErrorText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ErrorText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() > MAX_ERROR_TEXT || neutralize(&s) != s {
            return Err(serde::de::Error::custom(
                "error text too long or not neutralised",
            ));
        }
        Ok(Self(s))
    }
}

/// A failed request: the kind and a message for the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// Human explanation.
    pub message: ErrorText,
}

impl ShareError {
    /// An error of `kind` saying `message` (neutralised and capped).
    pub fn new(kind: ErrorKind, message: &str) -> Self {
        Self {
            kind,
            message: ErrorText::new(message),
        }
    }
}

impl fmt::Display for ShareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message.as_str())
    }
}

/// A response. Variant index = tag: append new variants at the end and never reorder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Tag 0, to `ListShares`: the shares the asker may read (at most [`MAX_SHARES`]).
    Shares(#[serde(deserialize_with = "wire::seq::<_, _, MAX_SHARES>")] Vec<ShareInfo>),
    /// Tag 1, to `List`: one page.
    Page(Page),
    /// Tag 2, to `Stat`.
    Stat(Entry),
    /// Tag 3, to `GetManifest`.
    Manifest(ManifestPage),
    /// Tag 4, to `GetChunk`: the chunk, exactly as long as its range in the content.
    Chunk {
        /// The content.
        id: ContentId,
        /// The chunk's index.
        index: u64,
        /// The bytes (at most [`CHUNK`]).
        #[serde(
            serialize_with = "wire::ser_bytes",
            deserialize_with = "wire::bytes::<_, _, { CHUNK as usize }>"
        )]
        data: Bytes,
    },
    /// Tag 5, to `Have`: one bit per id or chunk asked about.
    Have(Bitfield),
    /// Tag 6, to `Versions`: the kept versions, oldest first (at most [`MAX_VERSIONS`]).
    Versions(#[serde(deserialize_with = "wire::seq::<_, _, MAX_VERSIONS>")] Vec<VersionInfo>),
    /// Tag 7, to `Put`, `PutChunk`, `Remove`, `Rename`, `MakeDir`, `Restore` and `Cancel`:
    /// done.
    Done,
    /// Tag 8, to any request: it failed.
    Error(ShareError),
    /// Tag 9, to `Pull`: the transfer that carries the entry, offered on a bulk link.
    Pulling(crate::transfer::TransferId),
}

impl Response {
    /// [`Response::Error`] of `kind` saying `message` (neutralised and capped).
    pub fn error(kind: ErrorKind, message: &str) -> Self {
        Response::Error(ShareError::new(kind, message))
    }

    /// The response's tag (its variant index, the first byte after the request id).
    pub fn tag(&self) -> u32 {
        match self {
            Response::Shares(_) => 0,
            Response::Page(_) => 1,
            Response::Stat(_) => 2,
            Response::Manifest(_) => 3,
            Response::Chunk { .. } => 4,
            Response::Have(_) => 5,
            Response::Versions(_) => 6,
            Response::Done => 7,
            Response::Error(_) => 8,
            Response::Pulling(_) => 9,
        }
    }
}

/// One response frame's payload: the request's id, then the response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseFrame {
    /// The id of the request answered.
    pub id: RequestId,
    /// The answer.
    pub response: Response,
}
