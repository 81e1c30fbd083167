//! The empty directories of an offer on the wire: in `p2p-bulk/3` a non-empty list of them
//! may follow the files of an `Offer` frame ([`super::Manifest::dirs`]); `p2p-bulk/2` has no
//! such list, and an offer without directories is the same bytes in both.
//!
//! The list is a postcard sequence (varint count, then each path as a string). Its count is
//! checked against [`MAX_DIRS`] before anything is allocated for it.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::MAX_DIRS;
use crate::frame::FrameError;
use crate::share::wire;

/// A list of at most [`MAX_DIRS`] items, refused on its announced count alone when longer.
#[derive(Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
struct Capped<T>(#[serde(deserialize_with = "wire::seq::<_, _, MAX_DIRS>")] Vec<T>);

/// The directory list that may follow an offer's files: none when `rest` is empty, else the
/// list, which must use up `rest` exactly.
pub(super) fn trailing<T: DeserializeOwned>(rest: &[u8]) -> Result<Vec<T>, FrameError> {
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let (Capped(dirs), extra) = postcard::take_from_bytes::<Capped<T>>(rest)?;
    if !extra.is_empty() {
        return Err(FrameError::Trailing { extra: extra.len() });
    }
    Ok(dirs)
}

/// Bytes of a postcard varint holding `n`.
fn varint_len(n: u64) -> usize {
    (64 - n.max(1).leading_zeros() as usize).div_ceil(7)
}

/// Bytes of a postcard string of `len` bytes: its length, then the bytes.
fn str_len(len: usize) -> usize {
    varint_len(len as u64) + len
}

/// The payload length of the [`super::TransferFrame::Offer`] frame of a manifest whose files
/// have paths of `files` (path length in bytes, file size) and whose empty directories have
/// paths of `dirs` bytes, without building it: a sender checks this against the frame limit
/// ([`super::MAX_CHUNK_FRAME`]) when it lists what to send.
pub fn offer_len(
    files: impl IntoIterator<Item = (usize, u64)>,
    dirs: impl IntoIterator<Item = usize>,
) -> usize {
    // The tag, the id, then the file count and each file: path, size, 32-byte hash.
    let (mut count, mut len) = (0u64, 1 + 16);
    for (path, size) in files {
        count += 1;
        len += str_len(path) + varint_len(size) + 32;
    }
    len += varint_len(count);
    let (mut count, mut dirs_len) = (0u64, 0);
    for path in dirs {
        count += 1;
        dirs_len += str_len(path);
    }
    if count > 0 {
        len += varint_len(count) + dirs_len;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::super::{FileEntry, Manifest, RelPath, TransferFrame, TransferId};
    use super::*;
    use crate::frame;

    #[test]
    fn the_offer_length_is_that_of_the_encoded_frame() {
        let entry = |n: usize, size: u64| FileEntry {
            path: RelPath::new(&format!("d{n}/{}", "é".repeat(n % 90 + 1))).unwrap(),
            size,
            hash: [9; 32],
        };
        let dir = |n: usize| RelPath::new(&format!("e{n}/{}", "x".repeat(n % 200 + 1))).unwrap();
        for (files, dirs) in [(1, 0), (3, 2), (200, 0), (130, 300)] {
            let m = Manifest {
                id: TransferId([3; 16]),
                files: (0..files).map(|n| entry(n, (n as u64) << 30)).collect(),
                dirs: (0..dirs).map(dir).collect(),
            };
            let encoded = frame::encode(&TransferFrame::Offer(m.clone()), usize::MAX).unwrap();
            let len = offer_len(
                m.files.iter().map(|f| (f.path.as_str().len(), f.size)),
                m.dirs.iter().map(|d| d.as_str().len()),
            );
            assert_eq!(
                len,
                encoded.len() - frame::HEADER_LEN,
                "{files} files, {dirs} dirs"
            );
        }
    }
}
