//! Reaching the entries of one of our shares for a change: every component is opened below
//! the share's root through a directory handle with no symlink followed (`O_NOFOLLOW` on
//! each directory), so a change never lands outside the share. A path that goes through a
//! symlink, or whose last component is one, reads as absent, as the index serves symlinks
//! as nothing.

use std::fs::File;
use std::io;
use std::path::Path;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, Metadata};
use proto::transfer::RelPath;

use crate::files::other_spelling;
use crate::fsx;

/// The directory that holds an entry, and the entry's name in it (as spelled on disk when
/// it exists under another Unicode spelling).
pub(super) struct Parent {
    /// The directory, opened below the root.
    pub dir: Dir,
    /// The entry's name in `dir`.
    pub name: String,
}

/// What an entry is, never following a symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    /// A regular file of this many bytes.
    File(u64),
    /// A directory.
    Dir,
    /// A symlink or a special file: served as nothing.
    Other,
}

/// Opens a share's root directory.
pub(super) fn open_root(root: &Path) -> io::Result<Dir> {
    Dir::open_ambient_dir(root, ambient_authority())
}

/// Opens the directory `name` of `dir`, refusing a symlink.
fn open_dir_nofollow(dir: &Dir, name: &str) -> io::Result<Dir> {
    let fd = fsx::open_dir_at(dir, name).map_err(not_found)?;
    Ok(fsx::into_cap_dir(fd))
}

/// ELOOP and ENOTDIR (a symlink or a file on the way) read as `NotFound`.
fn not_found(e: io::Error) -> io::Error {
    if fsx::is_link_or_not_dir(&e) {
        io::ErrorKind::NotFound.into()
    } else {
        e
    }
}

/// The parent directory of `path` below `root` and the entry's name in it. `NotFound` if a
/// directory on the way is missing, is a symlink or is not a directory.
pub(super) fn parent_of(root: &Dir, path: &RelPath) -> io::Result<Parent> {
    let comps: Vec<&str> = path.components().collect();
    let Some((last, parents)) = comps.split_last() else {
        return Err(io::ErrorKind::NotFound.into());
    };
    let mut cur = root.try_clone()?;
    for c in parents {
        let name = spelling(&cur, c)?;
        cur = open_dir_nofollow(&cur, &name)?;
    }
    let name = spelling(&cur, last)?;
    Ok(Parent { dir: cur, name })
}

/// `name` as it is on disk in `dir`: itself, or another Unicode spelling of it; itself when
/// neither exists.
fn spelling(dir: &Dir, name: &str) -> io::Result<String> {
    match dir.symlink_metadata(name) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Ok(other_spelling(dir, name)?.unwrap_or_else(|| name.to_owned()))
        }
        _ => Ok(name.to_owned()),
    }
}

/// What `name` is in `dir`, not followed; `None` if absent.
pub(super) fn found(dir: &Dir, name: &str) -> io::Result<Option<Found>> {
    match dir.symlink_metadata(name) {
        Ok(m) => Ok(Some(kind(&m))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn kind(m: &Metadata) -> Found {
    if m.is_file() {
        Found::File(m.len())
    } else if m.is_dir() {
        Found::Dir
    } else {
        Found::Other
    }
}

/// Opens the regular file `name` of `dir` for reading, refusing a symlink (`NotFound`) and
/// anything but a regular file.
pub(super) fn open_file(dir: &Dir, name: &str) -> io::Result<File> {
    let file = fsx::open_read_nonblocking_at(dir, name).map_err(not_found)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// Moves `from` in `from_dir` to `to` in `to_dir`, failing with `AlreadyExists` rather
/// than replacing an entry there. Where the filesystem cannot refuse to replace in the
/// kernel, the target is checked first (the caller holds the share's write lock).
pub(super) fn rename_noreplace(
    from_dir: &Dir,
    from: &str,
    to_dir: &Dir,
    to: &str,
) -> io::Result<()> {
    if fsx::rename_noreplace_at(from_dir, from, to_dir, to)? {
        return Ok(());
    }
    if found(to_dir, to)?.is_some() {
        return Err(io::ErrorKind::AlreadyExists.into());
    }
    rename_over(from_dir, from, to_dir, to)
}

/// Moves `from` in `from_dir` over `to` in `to_dir` (replacing a file there).
pub(super) fn rename_over(from_dir: &Dir, from: &str, to_dir: &Dir, to: &str) -> io::Result<()> {
    fsx::rename_at(from_dir, from, to_dir, to)
}

/// Makes what was done to `dir`'s entries durable.
pub(super) fn sync_dir(dir: &Dir) -> io::Result<()> {
    fsx::sync_dir_reopened(dir)
}
