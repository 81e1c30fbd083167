//! Chunks a download finds on this machine before it asks any source: a file of one of the
//! daemon's shares with the same content id, or the file of that name already at the
//! destination (an earlier download, an older version). Whatever the candidate, each chunk
//! is read at its own offset and verified against the manifest's value before it is written
//! into the part file, so a candidate that differs in places still gives the chunks it
//! shares, and one that changes while read gives nothing wrong.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proto::content::{CHUNK, ChunkList, chunk_range};

use crate::files::{FilesError, PartFile};
use crate::fsx::FileAt;
use crate::share::index::ShareIndex;

/// Takes into `part` (the download of `list` as `name` in `dir`) the chunks not in `have`
/// that this machine holds: first from the file `name` already in `dir` (an earlier
/// download, an older version), then from `copies`, the share files of the same content id
/// (each index with the file's path below its root). Returns the bytes taken.
pub fn take_local(
    part: &PartFile,
    list: &ChunkList,
    have: &mut Vec<u64>,
    dir: &Path,
    name: &str,
    copies: &[(Arc<ShareIndex>, PathBuf)],
) -> Result<u64, FilesError> {
    let at_dest = crate::fsx::open_dir_path(dir)
        .and_then(|d| crate::fsx::open_read_nonblocking_at(&d, name))
        .ok();
    let shared = copies
        .iter()
        .filter_map(|(index, disk)| index.open_file(disk).ok());
    let mut taken = 0;
    for f in at_dest.into_iter().chain(shared) {
        if have.len() == list.cvs().len() {
            break;
        }
        taken += take_from(part, list, have, &f)?;
    }
    Ok(taken)
}

/// Copies into `part` every chunk of `list` not in `have` that `copy` holds at the same
/// offset with the right value, adding each to `have`; returns the bytes taken. A candidate
/// that is not a regular file, or that cannot be read, gives nothing; only a write to the
/// part file fails.
pub fn take_from(
    part: &PartFile,
    list: &ChunkList,
    have: &mut Vec<u64>,
    copy: &File,
) -> Result<u64, FilesError> {
    let Ok(meta) = copy.metadata() else {
        return Ok(0);
    };
    if !meta.is_file() {
        return Ok(0);
    }
    let chunks = list.cvs().len() as u64;
    let mut held = vec![false; usize::try_from(chunks).unwrap_or(0)];
    for c in have.iter() {
        if let Some(h) = usize::try_from(*c).ok().and_then(|i| held.get_mut(i)) {
            *h = true;
        }
    }
    let mut taken = 0u64;
    let mut buf = vec![0u8; CHUNK as usize];
    for (index, _) in held.iter().enumerate().filter(|(_, h)| !**h) {
        let index = index as u64;
        let Some((start, len)) = chunk_range(list.len(), index) else {
            break;
        };
        if start + len > meta.len() {
            break;
        }
        // A chunk is at most CHUNK bytes.
        let bytes = &mut buf[..len as usize];
        if copy.read_exact_at(bytes, start).is_err() || list.verify_chunk(index, bytes).is_err() {
            continue;
        }
        part.write_at(start, bytes)?;
        have.push(index);
        taken += len;
    }
    have.sort_unstable();
    Ok(taken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::Dest;

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    #[test]
    fn only_chunks_that_verify_are_taken() {
        let data = pattern((3 * CHUNK + 100) as usize, 1);
        let list = ChunkList::of(&data);
        let dir = tempfile::tempdir().unwrap();
        // An older version: chunk 1 differs, and it stops inside chunk 3.
        let mut older = data[..(3 * CHUNK + 10) as usize].to_vec();
        older[CHUNK as usize + 5] ^= 0xff;
        std::fs::write(dir.path().join("older"), &older).unwrap();
        let dest = Dest::open(dir.path()).unwrap();
        let part = dest.create_part("t", &["f"], data.len() as u64).unwrap();
        let mut have = vec![2];
        let copy = File::open(dir.path().join("older")).unwrap();
        let taken = take_from(&part, &list, &mut have, &copy).unwrap();
        assert_eq!(have, [0, 2]);
        assert_eq!(taken, CHUNK);
        let mut got = vec![0u8; CHUNK as usize];
        part.read_at(0, &mut got).unwrap();
        assert_eq!(got, data[..CHUNK as usize]);
        // The file itself gives the rest; a directory gives nothing.
        std::fs::write(dir.path().join("same"), &data).unwrap();
        let copy = File::open(dir.path().join("same")).unwrap();
        let taken = take_from(&part, &list, &mut have, &copy).unwrap();
        assert_eq!(have, [0, 1, 2, 3]);
        assert_eq!(taken, CHUNK + 100);
        let d = File::open(dir.path()).unwrap();
        let mut none = Vec::new();
        assert_eq!(take_from(&part, &list, &mut none, &d).unwrap(), 0);
        assert!(none.is_empty());
    }
}
