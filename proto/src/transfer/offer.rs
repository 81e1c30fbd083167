//! An offer as its receiver reads it: decoded first with the paths as plain bytes, then
//! checked rule by rule, so a refused offer can be answered with its id and the exact rule it
//! broke. (Decoding straight into a [`Manifest`] refuses the same offers, but postcard keeps
//! only "invalid" of a serde error, not why.)

use serde::{Deserialize, Deserializer};

use super::path::shown;
use super::{FileEntry, Manifest, ManifestError, PathError, RelPath, TransferId};
use crate::frame::FrameError;

/// Why an offer's manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    /// A path that is not UTF-8.
    #[error("the path of file {file} is not UTF-8")]
    NotUtf8 {
        /// Index of the file in the offer.
        file: usize,
    },
    /// The path of an empty directory that is not UTF-8.
    #[error("the path of directory {dir} is not UTF-8")]
    DirNotUtf8 {
        /// Index of the directory in the offer.
        dir: usize,
    },
    /// The path of an empty directory that breaks a [`RelPath`] rule.
    #[error("directory {path}: {source}")]
    DirPath {
        /// Index of the directory in the offer.
        dir: usize,
        /// The path as shown: quoted, neutralised, cut when long.
        path: String,
        /// The rule it breaks.
        source: PathError,
    },
    /// A path that breaks a [`RelPath`] rule.
    #[error("path {path}: {source}")]
    Path {
        /// Index of the file in the offer.
        file: usize,
        /// The path as shown: quoted, neutralised, cut when long.
        path: String,
        /// The rule it breaks.
        source: PathError,
    },
    /// Valid paths, but the manifest as a whole breaks a rule.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

/// The first frame of a bulk link, an [`Offer`](super::TransferFrame::Offer), as a receiver
/// reads it: the transfer id, and the manifest if every rule holds, else the first rule it
/// breaks. It decodes from exactly the bytes of an `Offer` frame and from nothing else; an
/// `Ok` manifest is the one `TransferFrame::Offer` decodes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingOffer {
    /// The transfer the offer opens (known even when the manifest is refused).
    pub id: TransferId,
    /// The validated manifest, or why it is refused.
    pub manifest: Result<Manifest, OfferError>,
}

/// The frame layout of `TransferFrame`, reduced to its tag 0.
#[derive(Deserialize)]
enum RawFrame {
    Offer(RawManifest),
}

#[derive(Deserialize)]
struct RawManifest {
    id: TransferId,
    files: Vec<RawEntry>,
}

#[derive(Deserialize)]
struct RawEntry {
    path: RawPath,
    size: u64,
    #[serde(with = "super::hash_hex")]
    hash: [u8; 32],
}

/// A path as the bytes of its string, UTF-8 or not.
struct RawPath(Vec<u8>);

impl<'de> Deserialize<'de> for RawPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = RawPath;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a path")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawPath, E> {
                Ok(RawPath(v.as_bytes().to_vec()))
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<RawPath, E> {
                Ok(RawPath(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<RawPath, E> {
                Ok(RawPath(v))
            }
        }
        // postcard writes a string as a byte string; decoding it as bytes defers the UTF-8
        // check to us.
        d.deserialize_byte_buf(V)
    }
}

/// Deserialising reads an offer without directories (the `p2p-bulk/2` form, or JSON);
/// [`IncomingOffer::from_payload`] reads one with them too.
impl<'de> Deserialize<'de> for IncomingOffer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let RawFrame::Offer(raw) = RawFrame::deserialize(d)?;
        Ok(IncomingOffer {
            id: raw.id,
            manifest: check(raw, Vec::new()),
        })
    }
}

impl IncomingOffer {
    /// Reads the payload of an offer frame (no length prefix): the offer of `p2p-bulk/2`,
    /// followed in `p2p-bulk/3` by its empty directories when it has any. Bytes that are no
    /// offer, a directory list longer than [`MAX_DIRS`](super::MAX_DIRS) (refused on its
    /// count, before anything is allocated) and trailing bytes are errors; broken rules are
    /// kept in [`IncomingOffer::manifest`].
    pub fn from_payload(payload: &[u8]) -> Result<IncomingOffer, FrameError> {
        let (RawFrame::Offer(raw), rest) = postcard::take_from_bytes::<RawFrame>(payload)?;
        let dirs = super::dirs::trailing::<RawPath>(rest)?;
        Ok(IncomingOffer {
            id: raw.id,
            manifest: check(raw, dirs),
        })
    }
}

/// Every rule of [`RelPath`] per file, in order, then per directory, then
/// [`Manifest::validate`].
fn check(raw: RawManifest, raw_dirs: Vec<RawPath>) -> Result<Manifest, OfferError> {
    let mut files = Vec::with_capacity(raw.files.len());
    for (file, entry) in raw.files.into_iter().enumerate() {
        let text = String::from_utf8(entry.path.0).map_err(|_| OfferError::NotUtf8 { file })?;
        let path = RelPath::new(&text).map_err(|source| OfferError::Path {
            file,
            path: shown(&text),
            source,
        })?;
        files.push(FileEntry {
            path,
            size: entry.size,
            hash: entry.hash,
        });
    }
    let mut dirs = Vec::with_capacity(raw_dirs.len());
    for (dir, raw) in raw_dirs.into_iter().enumerate() {
        let text = String::from_utf8(raw.0).map_err(|_| OfferError::DirNotUtf8 { dir })?;
        let path = RelPath::new(&text).map_err(|source| OfferError::DirPath {
            dir,
            path: shown(&text),
            source,
        })?;
        dirs.push(path);
    }
    let manifest = Manifest {
        id: raw.id,
        files,
        dirs,
    };
    manifest.validate()?;
    Ok(manifest)
}
