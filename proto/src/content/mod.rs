//! Content identity (design §2 "Content identity"), the pure part: a file's [`ContentId`] is
//! its BLAKE3 hash, exactly what `b3sum` prints, and a file of several chunks is described by
//! one [`ChunkCv`] per [`CHUNK`] (1 MiB) of data.
//!
//! BLAKE3 hashes 1 KiB blocks into a binary tree whose left subtrees are complete. A chunk of
//! [`CHUNK`] bytes starting at a multiple of [`CHUNK`] is therefore a complete subtree, and its
//! non-root hash (its *chaining value*, `blake3::hazmat`) depends on nothing but its bytes and
//! its index. So:
//!
//! - each chunk is verified on its own: [`chunk_cv`] of the bytes received equals the listed
//!   value ([`ChunkList::verify_chunk`]);
//! - the file's hash is the merge of the chunk values in BLAKE3's tree shape ([`content_id`]):
//!   for `n >= 2` chunks the left subtree holds the largest power of two of chunks below `n`,
//!   and only the topmost merge is a root merge. Nobody hashes the data a second time;
//! - a list of chunk values from any peer is checked against the content id before any chunk
//!   is trusted ([`ChunkList::check`]): right count for the length, and the merge equals.
//!
//! A file of a single chunk (1 byte to [`CHUNK`]) has no tree: its hash is a root hash
//! computed over the chunk, and no non-root value exists that could be checked against the
//! id. Its chunk list is then the one root hash, equal to the content id, and its chunk is
//! verified by hashing it as a whole file. An empty file has no chunks and an empty list; its
//! id is [`ContentId::EMPTY`].
//!
//! Nothing here reads a file; callers hash the bytes they hold.

use std::fmt;
use std::str::FromStr;

use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::transfer::{CHUNK, chunk_count, chunk_range};

mod wire;
pub use wire::{ChunkCvs, MAX_CHUNK_CVS_PAYLOAD, MAX_CVS_PER_FRAME};

/// `CHUNK` as a `usize`, for slicing in-memory data.
const CHUNK_BYTES: usize = CHUNK as usize;

/// Defines a 32-byte hash type shown as 64 lowercase hex digits: `Display`, `Debug`,
/// `FromStr` (either case) and serde as the hex string in human-readable formats (JSON), as
/// the 32 raw bytes otherwise (postcard).
macro_rules! hash32 {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The 32 bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&data_encoding::HEXLOWER.encode(&self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl FromStr for $name {
            type Err = ContentError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let bad = || ContentError::BadHex { what: $what };
                // The length check comes first, so decoding writes into exactly 32 bytes.
                if s.len() != 64 {
                    return Err(bad());
                }
                let mut out = [0u8; 32];
                data_encoding::HEXLOWER_PERMISSIVE
                    .decode_mut(s.as_bytes(), &mut out)
                    .map_err(|_| bad())?;
                Ok(Self(out))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.collect_str(self)
                } else {
                    self.0.serialize(s)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    String::deserialize(d)?
                        .parse()
                        .map_err(serde::de::Error::custom)
                } else {
                    <[u8; 32]>::deserialize(d).map(Self)
                }
            }
        }
    };
}

hash32!(
    /// A file's content id: the BLAKE3 hash of its bytes (what `b3sum` prints), shown as 64
    /// lowercase hex digits.
    ContentId,
    "content id"
);

hash32!(
    /// The value listed for one chunk of a file: the chunk's BLAKE3 chaining value when the
    /// file has two chunks or more, the file's root hash (its [`ContentId`]) when the chunk is
    /// the file's only one. See [`chunk_cv`].
    ChunkCv,
    "chunk value"
);

impl ContentId {
    /// The first 12 hex characters, as tables show it.
    pub fn short(&self) -> String {
        self.to_string()[..12].to_owned()
    }

    /// The id of the empty file: `blake3::hash(b"")`.
    pub const EMPTY: ContentId = ContentId([
        0xaf, 0x13, 0x49, 0xb9, 0xf5, 0xf9, 0xa1, 0xa6, 0xa0, 0x40, 0x4d, 0xea, 0x36, 0xdc, 0xc9,
        0x49, 0x9b, 0xcb, 0x25, 0xc9, 0xad, 0xc1, 0x12, 0xb7, 0xcc, 0x9a, 0x93, 0xca, 0xe4, 0x1f,
        0x32, 0x62,
    ]);

    /// The id of `data` hashed in one pass (`blake3::hash`).
    pub fn of(data: &[u8]) -> ContentId {
        ContentId(*blake3::hash(data).as_bytes())
    }
}

/// Why content or a chunk list was refused. Every check returns one of these; none panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// Text that is not 64 hex digits.
    #[error("not a {what} (64 hex characters)")]
    BadHex {
        /// What was being parsed.
        what: &'static str,
    },
    /// A chunk longer than [`CHUNK`].
    #[error("a chunk of {len} bytes; chunks hold at most {CHUNK}")]
    ChunkTooLong {
        /// Its length.
        len: usize,
    },
    /// A chunk with no bytes: files have no empty chunks.
    #[error("an empty chunk; files have no empty chunks")]
    EmptyChunk,
    /// A chunk index past what a file can hold, or an "only chunk" that is not chunk 0.
    #[error("chunk {index} cannot exist in a file")]
    BadIndex {
        /// The index.
        index: u64,
    },
    /// A chunk index past the end of the file.
    #[error("chunk {index} is past the end of a {len}-byte file")]
    IndexPastEnd {
        /// The index.
        index: u64,
        /// The file's length.
        len: u64,
    },
    /// A chunk whose length is not what the file's length says it must be.
    #[error("chunk {index} holds {got} bytes; the file's length says {want}")]
    WrongChunkLen {
        /// The index.
        index: u64,
        /// Bytes given.
        got: usize,
        /// Bytes the chunk must hold.
        want: u64,
    },
    /// A list with the wrong number of chunk values for the file's length.
    #[error("{got} chunk values for a {len}-byte file, which has {want} chunks")]
    WrongCount {
        /// The file's length.
        len: u64,
        /// Values given.
        got: u64,
        /// Chunks the file has.
        want: u64,
    },
    /// The chunk values do not merge into the content id.
    #[error("the chunk values do not add up to content id {id}")]
    IdMismatch {
        /// The content id expected.
        id: ContentId,
    },
    /// A chunk's bytes do not hash to its listed value.
    #[error("chunk {index} does not match its listed value")]
    ChunkMismatch {
        /// The index.
        index: u64,
    },
}

/// The value of chunk `index` of a file: `bytes` are that chunk's data (1 to [`CHUNK`] bytes;
/// only a file's last chunk may be shorter than [`CHUNK`]). `is_only_chunk` says the file has
/// this one chunk (`index` must be 0): the value is then the root hash of `bytes`, which is
/// the file's [`ContentId`]. Otherwise it is the chunk's BLAKE3 chaining value, computed at
/// the chunk's offset in the file.
pub fn chunk_cv(index: u64, bytes: &[u8], is_only_chunk: bool) -> Result<ChunkCv, ContentError> {
    if bytes.len() > CHUNK_BYTES {
        return Err(ContentError::ChunkTooLong { len: bytes.len() });
    }
    if bytes.is_empty() {
        return Err(ContentError::EmptyChunk);
    }
    if is_only_chunk {
        if index != 0 {
            return Err(ContentError::BadIndex { index });
        }
        return Ok(ChunkCv(*blake3::hash(bytes).as_bytes()));
    }
    // The chunk must end within 2^64 bytes, BLAKE3's bound on the input length.
    let offset = index
        .checked_mul(CHUNK)
        .filter(|o| o.checked_add(bytes.len() as u64).is_some())
        .ok_or(ContentError::BadIndex { index })?;
    Ok(non_root_cv(offset, bytes))
}

/// The chaining value of a chunk of 1 to [`CHUNK`] bytes at `offset`, a multiple of
/// [`CHUNK`] (so of BLAKE3's 1 KiB block) where a subtree of [`CHUNK`] bytes may start:
/// `set_input_offset`, `update` and `finalize_non_root` have nothing to assert.
fn non_root_cv(offset: u64, bytes: &[u8]) -> ChunkCv {
    let cv = blake3::Hasher::new()
        .set_input_offset(offset)
        .update(bytes)
        .finalize_non_root();
    ChunkCv(cv)
}

/// The chunk values of `data`, a whole file held in memory: [`chunk_cv`] of each chunk.
pub fn chunk_cvs(data: &[u8]) -> Vec<ChunkCv> {
    if data.len() <= CHUNK_BYTES {
        return match data {
            [] => Vec::new(),
            _ => vec![ChunkCv(*blake3::hash(data).as_bytes())],
        };
    }
    data.chunks(CHUNK_BYTES)
        .zip((0u64..).step_by(CHUNK_BYTES))
        .map(|(bytes, offset)| non_root_cv(offset, bytes))
        .collect()
}

/// The content id of a file of `len` bytes whose chunks have the values `cvs`: the values
/// merged in BLAKE3's tree shape. Fails when the count is not [`chunk_count`]`(len)`. Costs
/// one compression per chunk, whatever the file's size.
pub fn content_id(cvs: &[ChunkCv], len: u64) -> Result<ContentId, ContentError> {
    let want = chunk_count(len);
    let got = cvs.len() as u64;
    if got != want {
        return Err(ContentError::WrongCount { len, got, want });
    }
    Ok(merge_root(cvs))
}

/// The root of the tree whose leaves are `cvs` (the values of all of a file's chunks).
fn merge_root(cvs: &[ChunkCv]) -> ContentId {
    match cvs {
        [] => ContentId::EMPTY,
        [only] => ContentId(only.0),
        _ => {
            let (left, right) = cvs.split_at(left_count(cvs.len()));
            let root = merge_subtrees_root(&merge(left), &merge(right), Mode::Hash);
            ContentId(*root.as_bytes())
        }
    }
}

/// Chunks in the left subtree of a tree of `n >= 2` chunks: the largest power of two below
/// `n`. (In bytes this is `blake3::hazmat::left_subtree_len`, since chunks are whole
/// subtrees.)
fn left_count(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The non-root chaining value of the subtree made of `cvs` (at least one). Recursion depth
/// is the tree's height: at most 64.
fn merge(cvs: &[ChunkCv]) -> ChainingValue {
    match cvs {
        [] => [0; 32], // never called with none
        [one] => one.0,
        _ => {
            let (left, right) = cvs.split_at(left_count(cvs.len()));
            merge_subtrees_non_root(&merge(left), &merge(right), Mode::Hash)
        }
    }
}

/// A file's chunk values, checked against its content id and length: from then on each chunk
/// can be verified on its own as it arrives ([`ChunkList::verify_chunk`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkList {
    id: ContentId,
    len: u64,
    /// Exactly `chunk_count(len)` values that merge into `id`.
    cvs: Vec<ChunkCv>,
}

impl ChunkList {
    /// Checks that `cvs`, from any peer, belong to the file with content id `id` and `len`
    /// bytes: one value per chunk, and their merge equals `id`.
    pub fn check(id: &ContentId, len: u64, cvs: &[ChunkCv]) -> Result<(), ContentError> {
        if content_id(cvs, len)? == *id {
            Ok(())
        } else {
            Err(ContentError::IdMismatch { id: *id })
        }
    }

    /// Keeps `cvs` once [`ChunkList::check`] accepts them.
    pub fn new(id: ContentId, len: u64, cvs: Vec<ChunkCv>) -> Result<Self, ContentError> {
        Self::check(&id, len, &cvs)?;
        Ok(Self { id, len, cvs })
    }

    /// The chunk list of `data`, a whole file held in memory.
    pub fn of(data: &[u8]) -> Self {
        let cvs = chunk_cvs(data);
        Self {
            id: merge_root(&cvs),
            len: data.len() as u64,
            cvs,
        }
    }

    /// The content id.
    pub fn id(&self) -> ContentId {
        self.id
    }

    /// The file's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for the empty file.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunk values, one per chunk.
    pub fn cvs(&self) -> &[ChunkCv] {
        &self.cvs
    }

    /// Checks that `bytes` are chunk `index` of this file: the length [`chunk_range`] gives,
    /// and the value listed for it.
    pub fn verify_chunk(&self, index: u64, bytes: &[u8]) -> Result<(), ContentError> {
        let len = self.len;
        let (_, want) = chunk_range(len, index).ok_or(ContentError::IndexPastEnd { index, len })?;
        if bytes.len() as u64 != want {
            return Err(ContentError::WrongChunkLen {
                index,
                got: bytes.len(),
                want,
            });
        }
        let listed = usize::try_from(index)
            .ok()
            .and_then(|i| self.cvs.get(i))
            .ok_or(ContentError::IndexPastEnd { index, len })?;
        if chunk_cv(index, bytes, self.cvs.len() == 1)? == *listed {
            Ok(())
        } else {
            Err(ContentError::ChunkMismatch { index })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_subtree_is_the_largest_power_of_two_below() {
        for (n, left) in [(2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (1000, 512)] {
            assert_eq!(left_count(n), left, "{n}");
        }
        for n in [2u64, 3, 4, 5, 8, 9, 1000] {
            let bytes = blake3::hazmat::left_subtree_len(n * CHUNK);
            assert_eq!(bytes, left_count(n as usize) as u64 * CHUNK, "{n}");
        }
    }

    #[test]
    fn empty_id_is_the_hash_of_nothing() {
        assert_eq!(ContentId::EMPTY, ContentId::of(b""));
    }
}
