//! File transfer, the pure part (design §2 Transfers): transfer ids, validated relative paths,
//! manifests, chunk arithmetic and the frames of a transfer. Nothing here touches a file.
//!
//! Intended flow: the sender sends [`TransferFrame::Offer`]; the receiver answers
//! [`TransferFrame::Accept`] (saying which leading chunks it already holds verified) or
//! [`TransferFrame::Decline`]. For each file still needed the sender sends
//! [`TransferFrame::ChunkCvs`] runs holding the value of every chunk of the file, from chunk 0
//! (see [`crate::content`]), then the chunks the receiver lacks in order, then
//! [`TransferFrame::FileDone`]; finally [`TransferFrame::Done`]. Either side may
//! [`TransferFrame::Cancel`]; a side that hits an error sends [`TransferFrame::Failed`].
//!
//! The chunk values come from the sender: the receiver checks that they merge into the
//! file's content id ([`FileEntry::hash`]) before it takes any chunk of the file, then
//! verifies each chunk against its value. A file whose every chunk verified is the file the
//! manifest names: no second pass over its bytes.
//!
//! Deserialising a [`Manifest`] (and so an `Offer`) validates it completely: a decoded manifest
//! never holds a hostile path, a duplicate, or sizes past the limits. A receiver reads the
//! first frame as an [`IncomingOffer`] instead, which holds the same verdict with its reason,
//! so a refused offer can be answered with [`TransferFrame::Failed`] saying why.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::content::{ChunkCvs, ContentId};

/// Chunk size for verified streaming: 1 MiB. Every chunk but a file's last is this long.
pub const CHUNK: u64 = 1 << 20;
/// Cap on any transfer frame: one full [`TransferFrame::Chunk`] plus room for its header.
pub const MAX_CHUNK_FRAME: usize = CHUNK as usize + 1024;
/// Most chunk values in one [`TransferFrame::ChunkCvs`] (512 KiB of values, under
/// [`MAX_CHUNK_FRAME`]); longer files send their values in several frames.
pub const MAX_HASHES_PER_FRAME: usize = crate::content::MAX_CVS_PER_FRAME;
/// Most files in one manifest.
pub const MAX_FILES: usize = 10_000;
/// Most empty directories in one manifest ([`Manifest::dirs`]).
pub const MAX_DIRS: usize = 10_000;
/// Largest total size of one manifest: 2^50 bytes (1 PiB).
pub const MAX_TOTAL_SIZE: u64 = 1 << 50;
/// Longest relative path, in bytes of UTF-8.
pub const MAX_PATH_LEN: usize = 4096;
/// Longest path component, in bytes of UTF-8.
pub const MAX_COMPONENT_LEN: usize = 255;
/// Most components in one relative path.
pub const MAX_COMPONENTS: usize = 64;
/// The reason of a `Decline` that means the receiver let the offer expire undecided: the
/// sender records the transfer as expired rather than declined.
pub const OFFER_EXPIRED: &str = "the offer expired before the receiver decided";
/// The reason of a `Failed` that refuses a bulk link because its peer holds too many at once:
/// the sender keeps the transfer and offers it again later.
pub const BULK_LINKS_BUSY: &str = "too many bulk links from you at once; offer again later";

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// Exactly `2 * N` hex digits (either case), nothing else (no sign, no spaces).
fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, self.0)
    }
}

// ---------------------------------------------------------------------------------------------
// TransferId

/// A transfer's unique id: 16 random bytes chosen by the sender, shown as 32 hex characters
/// (JSON carries the hex string, the wire the 16 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransferId(pub [u8; 16]);

impl Serialize for TransferId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for TransferId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            String::deserialize(d)?
                .parse()
                .map_err(serde::de::Error::custom)
        } else {
            <[u8; 16]>::deserialize(d).map(TransferId)
        }
    }
}

impl fmt::Display for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransferId({self})")
    }
}

/// A transfer id that is not 32 hex characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a transfer id (32 hex characters)")]
pub struct BadTransferId;

impl FromStr for TransferId {
    type Err = BadTransferId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex(s).map(Self).ok_or(BadTransferId)
    }
}

// ---------------------------------------------------------------------------------------------
// RelPath

mod bulk;
mod dirs;
mod offer;
mod path;
mod unicode;
pub use bulk::chunk_frame_head;
pub use dirs::offer_len;
pub use offer::{IncomingOffer, OfferError};
pub use path::{PathError, RelPath};
pub use unicode::{collision_key, to_nfc, unicode_problem};

/// `[u8; 32]` as 64 hex characters in human-readable formats, 32 raw bytes otherwise.
mod hash_hex {
    use super::*;

    pub fn serialize<S: Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(&Hex(h))
        } else {
            h.serialize(s)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            parse_hex(&s).ok_or_else(|| serde::de::Error::custom("not a hash (64 hex characters)"))
        } else {
            <[u8; 32]>::deserialize(d)
        }
    }
}

/// [`Bytes`] as a byte string (postcard: varint length, then the bytes). The `bytes` crate's
/// own serde feature is not enabled in the workspace, hence this module.
mod byte_string {
    use super::*;
    use serde::de::{SeqAccess, Visitor};

    pub fn serialize<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(b)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        d.deserialize_byte_buf(ByteString)
    }

    struct ByteString;

    impl<'de> Visitor<'de> for ByteString {
        type Value = Bytes;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
            Ok(Bytes::copy_from_slice(v))
        }

        fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
            Ok(Bytes::from(v))
        }

        // Formats without byte strings (JSON) write a list of numbers.
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(b) = seq.next_element::<u8>()? {
                out.push(b);
            }
            Ok(Bytes::from(out))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Chunks

/// Chunks in a file of `size` bytes: `ceil(size / CHUNK)`. An empty file has none.
pub fn chunk_count(size: u64) -> u64 {
    size.div_ceil(CHUNK)
}

/// `(offset, len)` of chunk `idx` in a file of `size` bytes, or `None` past the last chunk.
/// Every chunk is [`CHUNK`] bytes except the last, which holds the rest (never 0 bytes).
pub fn chunk_range(size: u64, idx: u64) -> Option<(u64, u64)> {
    if idx >= chunk_count(size) {
        return None;
    }
    // idx < ceil(size / CHUNK), so idx * CHUNK < size: no overflow.
    let offset = idx * CHUNK;
    Some((offset, (size - offset).min(CHUNK)))
}

// ---------------------------------------------------------------------------------------------
// Manifest

/// One file of an offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Where it goes, relative to the destination directory.
    pub path: RelPath,
    /// Its exact size in bytes; a sender that sends more or fewer fails the transfer.
    pub size: u64,
    /// The file's content id: the BLAKE3 hash of the whole file, what `b3sum` prints (hex
    /// in JSON, 32 bytes on the wire).
    #[serde(with = "hash_hex")]
    pub hash: [u8; 32],
}

impl FileEntry {
    /// The file's content id ([`FileEntry::hash`]).
    pub fn content_id(&self) -> ContentId {
        ContentId(self.hash)
    }

    /// Chunks in this file; see [`chunk_count`].
    pub fn chunk_count(&self) -> u64 {
        chunk_count(self.size)
    }

    /// `(offset, len)` of chunk `idx`; see [`chunk_range`].
    pub fn chunk_range(&self, idx: u64) -> Option<(u64, u64)> {
        chunk_range(self.size, idx)
    }
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Neither files nor directories: nothing to send.
    #[error("the offer holds neither files nor directories")]
    Empty,
    /// More than [`MAX_FILES`] files.
    #[error("the offer holds {count} files; at most {MAX_FILES} are allowed")]
    TooManyFiles {
        /// Files listed.
        count: usize,
    },
    /// The same path twice, compared in Unicode NFC: `café` composed and decomposed is one
    /// path.
    #[error("the offer lists {path} twice")]
    Duplicate {
        /// The path.
        path: RelPath,
    },
    /// Two paths that differ only in case (compared in NFC), so collide on a
    /// case-insensitive filesystem.
    #[error("the offer lists {first} and {second}, which differ only in case")]
    CaseCollision {
        /// The earlier path.
        first: RelPath,
        /// The later path.
        second: RelPath,
    },
    /// A file whose path is also a directory of another file (`a` and `a/b`), compared
    /// case-insensitively.
    #[error("the offer lists {file} as a file and also {inside} inside it")]
    FileIsDirectory {
        /// The path listed as a file.
        file: RelPath,
        /// A path that needs it to be a directory.
        inside: RelPath,
    },
    /// The sizes add up to more than [`MAX_TOTAL_SIZE`] (or overflow).
    #[error("the files add up to more than {MAX_TOTAL_SIZE} bytes")]
    TooLarge,
    /// More than [`MAX_DIRS`] empty directories.
    #[error("the offer holds {count} empty directories; at most {MAX_DIRS} are allowed")]
    TooManyDirs {
        /// Directories listed.
        count: usize,
    },
}

/// What a sender offers: a transfer id, the files, each with path, size and hash, and the
/// empty directories. A directory is sent as the list of its files, plus those of its
/// directories that hold nothing to send. Deserialising runs [`Manifest::validate`].
///
/// In postcard (the wire) `dirs` is left out when empty, so a manifest without directories
/// has the bytes of `p2p-bulk/2`; a non-empty list follows the files, which only
/// `p2p-bulk/3` receivers read (see [`TransferFrame::decode_payload`] and
/// [`IncomingOffer::from_payload`]: the frame decoders read that trailing list, postcard
/// decoding of a `Manifest` alone does not). JSON (the store) carries it as an optional
/// `dirs` field. An offer of directories alone (no file, a tree of empty directories) thus
/// exists only in `p2p-bulk/3`: as a `p2p-bulk/2` offer it would hold nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// The transfer this manifest opens.
    pub id: TransferId,
    /// The files; a frame's `file: u32` is an index into this list.
    pub files: Vec<FileEntry>,
    /// Empty directories to create, relative to the destination like file paths: only those
    /// that hold no file of the manifest (a file's directories are implied). At most
    /// [`MAX_DIRS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirs: Vec<RelPath>,
}

/// The manifest as decoded from JSON, before validation.
#[derive(Deserialize)]
struct ManifestJson {
    id: TransferId,
    files: Vec<FileEntry>,
    #[serde(default)]
    dirs: Vec<RelPath>,
}

/// The manifest as decoded from postcard, before validation: the directories, if any, follow
/// in the frame and are read by the frame decoders.
#[derive(Deserialize)]
struct ManifestWire {
    id: TransferId,
    files: Vec<FileEntry>,
}

impl<'de> Deserialize<'de> for Manifest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = if d.is_human_readable() {
            let w = ManifestJson::deserialize(d)?;
            Manifest {
                id: w.id,
                files: w.files,
                dirs: w.dirs,
            }
        } else {
            let w = ManifestWire::deserialize(d)?;
            Manifest {
                id: w.id,
                files: w.files,
                dirs: Vec::new(),
            }
        };
        m.validate().map_err(serde::de::Error::custom)?;
        Ok(m)
    }
}

impl Manifest {
    /// Checks the whole-manifest rules (each path was already checked by [`RelPath`]):
    /// at most [`MAX_FILES`] files and [`MAX_DIRS`] directories, at least one of either (an
    /// offer of directories alone makes them), no two paths (files and
    /// directories together) equal even ignoring case and Unicode form ([`collision_key`]),
    /// no file that is also a directory of another file or of a directory, total size at
    /// most [`MAX_TOTAL_SIZE`].
    pub fn validate(&self) -> Result<(), ManifestError> {
        let count = self.files.len();
        if count == 0 && self.dirs.is_empty() {
            return Err(ManifestError::Empty);
        }
        if count > MAX_FILES {
            return Err(ManifestError::TooManyFiles { count });
        }
        if self.dirs.len() > MAX_DIRS {
            return Err(ManifestError::TooManyDirs {
                count: self.dirs.len(),
            });
        }
        let mut total: u64 = 0;
        for f in &self.files {
            total = total
                .checked_add(f.size)
                .filter(|t| *t <= MAX_TOTAL_SIZE)
                .ok_or(ManifestError::TooLarge)?;
        }
        // Folding never creates or removes a '/', so prefixes of a folded path at its '/'s
        // are the folded ancestor directories. Paths are NFC already (`RelPath`), so two
        // spellings of one name are equal paths, reported as a duplicate.
        // Files first, then directories: index `i` is a file when `i < count`.
        let paths: Vec<&RelPath> = self
            .files
            .iter()
            .map(|f| &f.path)
            .chain(&self.dirs)
            .collect();
        let folded: Vec<String> = paths.iter().map(|p| collision_key(p.as_str())).collect();
        let mut by_key: HashMap<&str, usize> = HashMap::with_capacity(folded.len());
        for (i, key) in folded.iter().enumerate() {
            if let Some(&j) = by_key.get(key.as_str()) {
                let (first, second) = (paths[j], paths[i]);
                return Err(if first == second {
                    ManifestError::Duplicate {
                        path: first.clone(),
                    }
                } else {
                    ManifestError::CaseCollision {
                        first: first.clone(),
                        second: second.clone(),
                    }
                });
            }
            by_key.insert(key, i);
        }
        for (i, key) in folded.iter().enumerate() {
            for (slash, _) in key.match_indices('/') {
                if let Some(&j) = by_key.get(&key[..slash])
                    && j < count
                {
                    return Err(ManifestError::FileIsDirectory {
                        file: paths[j].clone(),
                        inside: paths[i].clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Sum of the file sizes (saturating; exact for a valid manifest).
    pub fn total_size(&self) -> u64 {
        self.files
            .iter()
            .fold(0u64, |acc, f| acc.saturating_add(f.size))
    }

    /// The file a frame's `file` index names, if there is one.
    pub fn file(&self, file: u32) -> Option<&FileEntry> {
        self.files.get(usize::try_from(file).ok()?)
    }
}

// ---------------------------------------------------------------------------------------------
// Frames

/// What the receiver already holds of one file when it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileResume {
    /// Index into [`Manifest::files`].
    pub file: u32,
    /// How many leading chunks the receiver holds verified; the sender starts at this chunk.
    /// Files not listed start at chunk 0.
    pub verified_chunks: u64,
}

/// Frames of a transfer. Variant index = tag byte: append new variants at the end and never
/// reorder. Every frame fits in [`MAX_CHUNK_FRAME`] except an `Offer` whose manifest is larger
/// (the sender learns that when encoding).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransferFrame {
    /// Tag 0, sender: offers these files. Decoding validates the manifest. Its
    /// [`Manifest::dirs`], when there are any, follow the files: only over `p2p-bulk/3`.
    Offer(Manifest),
    /// Tag 1, receiver: the user accepted; send what is not already held.
    Accept {
        /// The transfer.
        id: TransferId,
        /// Verified data already held, per file (for resume); may be empty.
        resume: Vec<FileResume>,
    },
    /// Tag 2, receiver: the offer is refused; the transfer is over.
    Decline {
        /// The transfer.
        id: TransferId,
        /// Human explanation (untrusted text: neutralise before display).
        reason: String,
    },
    /// Tag 3, either side: the user cancelled; the transfer is over.
    Cancel {
        /// The transfer.
        id: TransferId,
        /// Human explanation (untrusted text).
        reason: String,
    },
    /// Tag 4, sender: one chunk of file data, exactly [`chunk_range`] long, to be checked
    /// against its value from `ChunkCvs` before it is written.
    Chunk {
        /// The transfer.
        id: TransferId,
        /// Index into [`Manifest::files`].
        file: u32,
        /// Chunk index within the file.
        index: u64,
        /// The bytes (at most [`CHUNK`]).
        #[serde(with = "byte_string")]
        data: Bytes,
    },
    /// Tag 5, sender: the values ([`ChunkCv`](crate::content::ChunkCv)) of chunks
    /// `run.first ..` of a file. A file's runs cover all its chunks from chunk 0, in order,
    /// and come before its first chunk, so the receiver checks the whole list against the
    /// content id before it takes any chunk. At most [`MAX_HASHES_PER_FRAME`] per frame.
    /// (In `p2p-bulk/1` this tag held plain BLAKE3 hashes of the chunks to follow.)
    ChunkCvs {
        /// The transfer.
        id: TransferId,
        /// Index into [`Manifest::files`].
        file: u32,
        /// The values; postcard encodes `first`, then the values, as the old hash frame did.
        run: ChunkCvs,
    },
    /// Tag 6, sender: every chunk of this file has been sent.
    FileDone {
        /// The transfer.
        id: TransferId,
        /// Index into [`Manifest::files`].
        file: u32,
    },
    /// Tag 7, sender: every file has been sent; receiver: every file is stored and verified.
    Done {
        /// The transfer.
        id: TransferId,
    },
    /// Tag 8, either side: an error ended the transfer (bad data, disk full, size lie ...).
    Failed {
        /// The transfer.
        id: TransferId,
        /// Human explanation (untrusted text).
        reason: String,
    },
}

impl TransferFrame {
    /// The transfer this frame belongs to.
    pub fn id(&self) -> TransferId {
        match self {
            TransferFrame::Offer(m) => m.id,
            TransferFrame::Accept { id, .. }
            | TransferFrame::Decline { id, .. }
            | TransferFrame::Cancel { id, .. }
            | TransferFrame::Chunk { id, .. }
            | TransferFrame::ChunkCvs { id, .. }
            | TransferFrame::FileDone { id, .. }
            | TransferFrame::Done { id }
            | TransferFrame::Failed { id, .. } => *id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_parsing_is_strict() {
        assert_eq!(parse_hex::<2>("0aFf"), Some([0x0a, 0xff]));
        for bad in ["", "0a", "0aff0", "+a+f", " aff", "0a\u{e9}"] {
            assert_eq!(parse_hex::<2>(bad), None, "{bad:?}");
        }
    }
}
