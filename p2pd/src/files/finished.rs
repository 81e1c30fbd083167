//! Finding, on resume, a file that got its final name but was not yet recorded as done.
//!
//! [`PartFile::link_final`](super::PartFile::link_final) leaves the part name beside the
//! final name until the caller has recorded the file. A part that still shares its inode with
//! a `name`/`name (n).ext` entry next to it, has the announced size and the announced hash,
//! is such a file: its final name is known and nothing needs receiving again.

use std::io::{self, Read};

use cap_std::fs::{Dir, Metadata, OpenOptions};

use super::names::{check_names, copy_name, part_name, rel_path};
use super::{Dest, FilesError, FinalName, MAX_COPIES, Op, check_file_entry, same_file};

impl Dest {
    /// If the part file of `components` in transfer `transfer` is already linked to a final
    /// name (a crash came between [`PartFile::link_final`](super::PartFile::link_final) and
    /// the done record), and that file holds `size` bytes hashing to `hash` (BLAKE3), returns
    /// the final name. The part stays: remove it with [`Dest::remove_part`] once the file is
    /// recorded. Creates nothing.
    pub fn finished_part(
        &self,
        transfer: &str,
        components: &[&str],
        size: u64,
        hash: &[u8; 32],
    ) -> Result<Option<FinalName>, FilesError> {
        let components = &self.landed(components)[..];
        let name = check_names(transfer, components)?;
        let (parents, _) = components.split_at(components.len() - 1);
        let Some((dir, parents)) = self.walk(parents, false)? else {
            return Ok(None);
        };
        let part = part_name(name, transfer);
        let part_rel = rel_path(&parents).join(&part);
        let meta = match dir.symlink_metadata(&part) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(FilesError::io(Op::Stat, part_rel, e)),
        };
        check_file_entry(&meta, &part_rel)?;
        if link_count(&meta) < 2 || meta.len() != size {
            return Ok(None);
        }
        let Some(found) = linked_name(&dir, name, &meta)
            .map_err(|e| FilesError::io(Op::ReadDir, rel_path(&parents), e))?
        else {
            return Ok(None);
        };
        let found_rel = rel_path(&parents).join(&found);
        let file = dir
            .open_with(&found, OpenOptions::new().read(true))
            .map_err(|e| FilesError::io(Op::Stat, found_rel.clone(), e))?;
        let opened = file
            .metadata()
            .map_err(|e| FilesError::io(Op::Stat, found_rel.clone(), e))?;
        if !same_file(&opened, &meta) {
            return Ok(None);
        }
        let got = hash_file(file.into_std()).map_err(|e| FilesError::io(Op::Stat, found_rel, e))?;
        if &got != hash {
            return Ok(None);
        }
        let mut components = parents;
        components.push(found);
        Ok(Some(FinalName { components }))
    }
}

/// The entry of `dir`, other than the part, that is `name` or one of its `name (n).ext`
/// copies and is a regular file on the same inode as `part`.
fn linked_name(dir: &Dir, name: &str, part: &Metadata) -> io::Result<Option<String>> {
    for entry in dir.entries()? {
        let entry = entry?;
        let Ok(candidate) = entry.file_name().into_string() else {
            continue;
        };
        if !is_copy_name(&candidate, name) {
            continue;
        }
        let m = match dir.symlink_metadata(&candidate) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if m.is_file() && !m.file_type().is_symlink() && same_file(&m, part) {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

/// Whether `candidate` is a name [`PartFile::finish`](super::PartFile::finish) may give a
/// file offered as `name`.
fn is_copy_name(candidate: &str, name: &str) -> bool {
    if candidate == name {
        return true;
    }
    // `stem (n).ext`: read n back from the candidate and compare with that copy name.
    let Some(open) = candidate.rfind(" (") else {
        return false;
    };
    let digits: String = candidate[open + 2..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse::<u32>()
        .is_ok_and(|n| n > 0 && n < MAX_COPIES && copy_name(name, n) == candidate)
}

#[cfg(unix)]
fn link_count(m: &Metadata) -> u64 {
    use cap_std::fs::MetadataExt;
    m.nlink()
}

/// Without hard links the part is renamed to its final name: there is no second name to find.
#[cfg(not(unix))]
fn link_count(_m: &Metadata) -> u64 {
    1
}

fn hash_file(mut file: std::fs::File) -> io::Result<[u8; 32]> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(*hasher.finalize().as_bytes());
        }
        hasher.update(&buf[..n]);
    }
}
