//! The disk side of a put served here (blocking; run off the runtime's workers): the target's
//! directory opened one component at a time from the share's root with no symlink followed,
//! the checks made before any byte is written (the target a regular file or absent, the
//! share's quota, free space on its filesystem), the staging file beside the target, and the
//! content id of what a path holds now.

use std::fs::File;
use std::io;
use std::path::Path;

use proto::share::{ContentId, ErrorKind, ShareError};
use proto::transfer::RelPath;

use crate::fsx::{self, AsDir, DirHandle, FileAt, Kind};

/// Names of staging files start with this (hidden; the share's index leaves them out).
pub(super) use super::index::STAGING_PREFIX;

/// How much of a file one read takes while hashing.
const READ_BLOCK: usize = 1 << 20;

fn refuse(kind: ErrorKind, message: &str) -> ShareError {
    ShareError::new(kind, message)
}

/// The directory a put lands in, opened without following symlinks, and the target's name.
pub(super) struct Target {
    /// The directory holding the target.
    pub dir: DirHandle,
    /// The target's file name in it.
    pub name: String,
}

/// What the target holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Current {
    /// Nothing.
    Absent,
    /// A regular file of this many bytes.
    File(u64),
}

/// Opens the directory of `path` below `root`: every component on the way must be a real
/// directory (a symlink, a file or a missing one is refused), and the target, if present, a
/// regular file.
pub(super) fn open_target(root: &Path, path: &RelPath) -> Result<(Target, Current), ShareError> {
    let mut dir = fsx::open_dir_path(root)
        .map_err(|e| refuse(ErrorKind::Busy, &format!("the share cannot be opened: {e}")))?;
    let text = path.as_str();
    let (parent, name) = match text.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, text),
    };
    let mut upto = 0;
    for part in parent.into_iter().flat_map(|p| p.split('/')) {
        upto += part.len() + usize::from(upto > 0);
        dir = fsx::open_dir_at(&dir, part).map_err(|e| {
            let why = if e.kind() == io::ErrorKind::NotFound {
                "does not exist"
            } else if fsx::is_link_or_not_dir(&e) {
                "is not a directory"
            } else {
                "cannot be opened"
            };
            refuse(ErrorKind::NotFound, &format!("{} {why}", &text[..upto]))
        })?;
    }
    let current = current_kind(&dir, name, text)?;
    Ok((
        Target {
            dir,
            name: name.to_owned(),
        },
        current,
    ))
}

fn current_kind(dir: &DirHandle, name: &str, shown: &str) -> Result<Current, ShareError> {
    match fsx::stat_at(dir, name) {
        Ok(st) if st.kind == Kind::File => Ok(Current::File(st.len)),
        Ok(_) => Err(refuse(
            ErrorKind::Invalid,
            &format!("{shown} is not a regular file"),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Current::Absent),
        Err(e) => Err(refuse(
            ErrorKind::Busy,
            &format!("cannot stat {shown}: {e}"),
        )),
    }
}

/// Whether a put of `size` bytes over a file of `replaced` bytes keeps a share holding
/// `total` bytes within `quota` (none: no limit).
pub(super) fn within_quota(
    share: &str,
    size: u64,
    total: u64,
    replaced: u64,
    quota: Option<u64>,
) -> Result<(), ShareError> {
    let Some(quota) = quota else { return Ok(()) };
    let after = total.saturating_sub(replaced).saturating_add(size);
    if after <= quota {
        return Ok(());
    }
    Err(refuse(
        ErrorKind::Invalid,
        &format!(
            "over the quota of {share}: it holds {total} of {quota} bytes, and this put of \
             {size} bytes would bring it to {after}"
        ),
    ))
}

/// Whether `size` bytes fit in the `free` bytes of the share's filesystem.
pub(super) fn fits_on_disk(shown: &str, size: u64, free: u64) -> Result<(), ShareError> {
    if size <= free {
        return Ok(());
    }
    Err(refuse(
        ErrorKind::Invalid,
        &format!(
            "not enough space for {shown}: {size} bytes needed, {free} free on the share's disk"
        ),
    ))
}

/// Bytes free to an unprivileged writer on the filesystem of `dir`.
pub(super) fn free_space(dir: &DirHandle) -> Result<u64, ShareError> {
    fsx::free_space(dir).map_err(|e| {
        refuse(
            ErrorKind::Busy,
            &format!("cannot read the share's free space: {e}"),
        )
    })
}

/// A staging file beside the target: created new (never over anything), removed on drop
/// unless it was put in place.
pub(super) struct Staging {
    /// The directory holding it (and the target).
    pub dir: std::sync::Arc<DirHandle>,
    /// Its name in `dir`.
    pub name: String,
    /// The open file.
    pub file: std::sync::Arc<File>,
    placed: bool,
}

impl Staging {
    /// Creates a new staging file in `dir`.
    pub fn create(dir: std::sync::Arc<DirHandle>) -> Result<Staging, ShareError> {
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw)
            .map_err(|e| refuse(ErrorKind::Busy, &format!("no randomness: {e}")))?;
        let name = format!("{STAGING_PREFIX}{:016x}.part", u64::from_le_bytes(raw));
        let file = fsx::create_new_at(&*dir, name.as_str())
            .map_err(|e| refuse(ErrorKind::Busy, &format!("cannot create the file: {e}")))?;
        Ok(Staging {
            dir,
            name,
            file: std::sync::Arc::new(file),
            placed: false,
        })
    }

    /// Renames the staged file over `target` in the same directory, then syncs the
    /// directory; the file is no longer removed on drop.
    pub fn place(&mut self, target: &str) -> io::Result<()> {
        fsx::rename_at(&*self.dir, self.name.as_str(), &*self.dir, target)?;
        self.placed = true;
        fsx::fsync_dir(&*self.dir)?;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.placed {
            let _ = fsx::unlink_at(&*self.dir, self.name.as_str());
        }
    }
}

/// The content id (BLAKE3 of the bytes) of the first `len` bytes of `file`.
pub(super) fn content_of(file: &File, len: u64) -> io::Result<ContentId> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; READ_BLOCK];
    let mut at = 0u64;
    while at < len {
        let want = usize::try_from((len - at).min(READ_BLOCK as u64)).unwrap_or(READ_BLOCK);
        let n = file.read_at(&mut buf[..want], at)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file is shorter than announced",
            ));
        }
        hasher.update(&buf[..n]);
        at += n as u64;
    }
    Ok(ContentId(*hasher.finalize().as_bytes()))
}

/// The size of the regular file `name` in `dir` (0 if absent or not a regular file).
pub(super) fn current_len(dir: &impl AsDir, name: &str) -> u64 {
    match fsx::stat_at(dir, name) {
        Ok(st) if st.kind == Kind::File => st.len,
        _ => 0,
    }
}

/// The content id of what `name` in `dir` holds now (`None`: absent), read from the disk
/// through a handle that follows no symlink.
pub(super) fn current_id(dir: &impl AsDir, name: &str) -> Result<Option<ContentId>, ShareError> {
    let file = match fsx::open_read_at(dir, name) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(refuse(
                ErrorKind::Invalid,
                &format!("{name} cannot be replaced: {e}"),
            ));
        }
    };
    let st = fsx::stat_file(&file)
        .map_err(|e| refuse(ErrorKind::Busy, &format!("cannot stat {name}: {e}")))?;
    if st.kind != Kind::File {
        return Err(refuse(
            ErrorKind::Invalid,
            &format!("{name} is not a regular file"),
        ));
    }
    content_of(&file, st.len)
        .map(Some)
        .map_err(|e| refuse(ErrorKind::Busy, &format!("cannot read {name}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_counts_what_the_put_replaces() {
        assert!(within_quota("docs", 10, 1_000, 0, None).is_ok());
        assert!(within_quota("docs", 10, 90, 0, Some(100)).is_ok());
        assert!(within_quota("docs", 30, 90, 20, Some(100)).is_ok());
        let e = within_quota("docs", 11, 90, 0, Some(100)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
        assert_eq!(
            e.message.as_str(),
            "over the quota of docs: it holds 90 of 100 bytes, and this put of 11 bytes would \
             bring it to 101"
        );
        assert!(within_quota("docs", u64::MAX, u64::MAX, 0, Some(u64::MAX)).is_ok());
    }

    #[test]
    fn a_put_larger_than_the_free_space_is_refused_with_the_figures() {
        assert!(fits_on_disk("a", 100, 100).is_ok());
        let e = fits_on_disk("docs/a", 101, 100).unwrap_err();
        assert_eq!(
            e.message.as_str(),
            "not enough space for docs/a: 101 bytes needed, 100 free on the share's disk"
        );
    }

    #[test]
    fn the_target_is_reached_without_symlinks_and_must_be_a_file_or_absent() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
        std::fs::write(root.join("sub/a"), b"abc").unwrap();
        std::os::unix::fs::symlink(root.join("sub"), root.join("via")).unwrap();
        std::os::unix::fs::symlink(root.join("sub/a"), root.join("sub/link")).unwrap();
        let p = |s: &str| RelPath::new(s).unwrap();
        let (t, cur) = open_target(root, &p("sub/a")).unwrap();
        assert_eq!((t.name.as_str(), cur), ("a", Current::File(3)));
        assert_eq!(
            current_id(&t.dir, "a").unwrap(),
            Some(ContentId(*blake3::hash(b"abc").as_bytes()))
        );
        assert_eq!(current_id(&t.dir, "b").unwrap(), None);
        assert_eq!((current_len(&t.dir, "a"), current_len(&t.dir, "b")), (3, 0));
        assert_eq!(open_target(root, &p("new")).unwrap().1, Current::Absent);
        let refused = |s: &str| open_target(root, &p(s)).err().unwrap();
        assert_eq!(refused("via/a").kind, ErrorKind::NotFound);
        assert_eq!(
            refused("missing/a").message.as_str(),
            "missing does not exist"
        );
        assert_eq!(refused("sub/a/x").kind, ErrorKind::NotFound);
        assert_eq!(refused("sub/link").kind, ErrorKind::Invalid);
        assert_eq!(refused("sub/deeper").kind, ErrorKind::Invalid);
        assert!(current_id(&t.dir, "link").is_err());
    }

    #[test]
    fn a_staging_file_is_removed_unless_placed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (t, _) = open_target(root, &RelPath::new("a").unwrap()).unwrap();
        let fd = std::sync::Arc::new(t.dir);
        let s = Staging::create(fd.clone()).unwrap();
        assert!(s.name.starts_with(STAGING_PREFIX), "{}", s.name);
        // The index never serves it.
        assert!(crate::share::index::is_staging(std::ffi::OsStr::new(
            &s.name
        )));
        assert!(!crate::share::index::is_staging(std::ffi::OsStr::new(
            ".p2p-put-x"
        )));
        s.file.write_all_at(b"xyz", 0).unwrap();
        assert_eq!(std::fs::read_dir(root).unwrap().count(), 1);
        drop(s);
        assert_eq!(std::fs::read_dir(root).unwrap().count(), 0);
        let mut s = Staging::create(fd).unwrap();
        s.file.write_all_at(b"xyz", 0).unwrap();
        s.place("a").unwrap();
        drop(s);
        assert_eq!(std::fs::read(root.join("a")).unwrap(), b"xyz");
        assert_eq!(std::fs::read_dir(root).unwrap().count(), 1);
    }
}
