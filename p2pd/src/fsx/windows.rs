//! The Windows side of [`super`]: cap-std and std with `FILE_FLAG_OPEN_REPARSE_POINT`, so
//! an open lands on a reparse point (a symlink, a junction) itself rather than on what it
//! points to, and a reparse point is then refused.

use std::fs::{File, Metadata};
use std::io;
use std::os::windows::fs::{FileExt, MetadataExt, OpenOptionsExt as _};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt as _};

use super::{FileAt, Kind, Stat};

/// A directory opened by this module.
pub(crate) type DirHandle = Dir;

/// What the functions here accept as a directory.
pub(crate) trait AsDir {
    /// The directory.
    fn as_dir(&self) -> &Dir;
}

impl AsDir for Dir {
    fn as_dir(&self) -> &Dir {
        self
    }
}

/// Opens the reparse point itself instead of its target.
const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
/// Needed to open a directory.
const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
/// The attribute of a reparse point.
const FILE_ATTRIBUTE_REPARSE_POINT: u32 = 0x0400;

/// The error for a reparse point met where a real file or directory was wanted.
#[derive(Debug, thiserror::Error)]
#[error("a reparse point (symlink or junction) is not followed")]
struct ReparsePoint;

/// The error for something other than the file or directory wanted.
#[derive(Debug, thiserror::Error)]
#[error("not a {0}")]
struct WrongKind(&'static str);

/// Checks what an open handle is: a reparse point is refused, and so is a directory where a
/// file is wanted or the reverse.
fn check(file: File, want_dir: bool) -> io::Result<File> {
    let m = file.metadata()?;
    if m.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
        return Err(io::Error::other(ReparsePoint));
    }
    match (want_dir, m.is_dir()) {
        (true, false) => Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            WrongKind("directory"),
        )),
        (false, true) => Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            WrongKind("file"),
        )),
        _ => Ok(file),
    }
}

/// Opens the directory at `path`, refusing a reparse point as its last component.
pub(crate) fn open_dir_path(path: &Path) -> io::Result<DirHandle> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)?;
    Ok(Dir::from_std_file(check(file, true)?))
}

/// Opens the directory `name` of `dir`, refusing a reparse point.
pub(crate) fn open_dir_at(dir: &impl AsDir, name: impl AsRef<Path>) -> io::Result<DirHandle> {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT);
    let file = dir.as_dir().open_with(name, &options)?.into_std();
    Ok(Dir::from_std_file(check(file, true)?))
}

/// Makes a directory handle into a cap-std `Dir`.
pub(crate) fn into_cap_dir(dir: DirHandle) -> Dir {
    dir
}

/// Opens the file at `path` for reading, refusing a reparse point as its last component.
pub(crate) fn open_read_path(path: &Path) -> io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)?;
    check(file, false)
}

/// Opens `name` of `dir` for reading, refusing a reparse point.
pub(crate) fn open_read_at(dir: &impl AsDir, name: impl AsRef<Path>) -> io::Result<File> {
    let file = dir.as_dir().open_with(name, &read_nofollow_options())?;
    check(file.into_std(), false)
}

/// As [`open_read_at`] (an open never blocks on Windows).
pub(crate) fn open_read_nonblocking_at(
    dir: &impl AsDir,
    name: impl AsRef<Path>,
) -> io::Result<File> {
    open_read_at(dir, name)
}

/// cap-std open options that read and open a reparse point itself.
pub(crate) fn read_nofollow_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT);
    options
}

/// Creates `name` in `dir` for reading and writing, failing if anything is there already.
pub(crate) fn create_new_at(dir: &impl AsDir, name: impl AsRef<Path>) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .create_new(true)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT);
    Ok(dir.as_dir().open_with(name, &options)?.into_std())
}

fn kind_of(is_link: bool, is_file: bool, is_dir: bool) -> Kind {
    if is_link {
        Kind::Other
    } else if is_file {
        Kind::File
    } else if is_dir {
        Kind::Dir
    } else {
        Kind::Other
    }
}

/// What `name` in `dir` is, not following a reparse point.
pub(crate) fn stat_at(dir: &impl AsDir, name: impl AsRef<Path>) -> io::Result<Stat> {
    let m = dir.as_dir().symlink_metadata(name)?;
    Ok(Stat {
        kind: kind_of(m.file_type().is_symlink(), m.is_file(), m.is_dir()),
        len: m.len(),
    })
}

/// What an open file is.
pub(crate) fn stat_file(file: &File) -> io::Result<Stat> {
    let m = file.metadata()?;
    let link = m.file_attributes() & FILE_ATTRIBUTE_REPARSE_POINT != 0;
    Ok(Stat {
        kind: kind_of(link, m.is_file(), m.is_dir()),
        len: m.len(),
    })
}

/// Bytes free on the filesystem of `dir`: not measured on Windows (a write to a full disk
/// fails instead).
pub(crate) fn free_space(_dir: &impl AsDir) -> io::Result<u64> {
    Ok(u64::MAX)
}

/// Moves `from` in `from_dir` over `to` in `to_dir`.
pub(crate) fn rename_at(
    from_dir: &impl AsDir,
    from: impl AsRef<Path>,
    to_dir: &impl AsDir,
    to: impl AsRef<Path>,
) -> io::Result<()> {
    from_dir.as_dir().rename(from, to_dir.as_dir(), to)
}

/// Windows has no rename that refuses to replace through a directory handle here:
/// `Ok(false)`, nothing done (the caller checks the target, then renames).
pub(crate) fn rename_noreplace_at(
    _from_dir: &impl AsDir,
    _from: impl AsRef<Path>,
    _to_dir: &impl AsDir,
    _to: impl AsRef<Path>,
) -> io::Result<bool> {
    Ok(false)
}

/// Removes the file `name` of `dir`.
pub(crate) fn unlink_at(dir: &impl AsDir, name: impl AsRef<Path>) -> io::Result<()> {
    dir.as_dir().remove_file(name)
}

/// A directory's entries need no sync of their own on Windows (NTFS journals them).
pub(crate) fn fsync_dir(_dir: &impl AsDir) -> io::Result<()> {
    Ok(())
}

/// As [`fsync_dir`].
pub(crate) fn sync_dir_reopened(_dir: &impl AsDir) -> io::Result<()> {
    Ok(())
}

fn is_reparse(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<ReparsePoint>())
}

/// Whether an open refused a reparse point as the last component.
pub(crate) fn is_symlink_refused(e: &io::Error) -> bool {
    is_reparse(e)
}

/// Whether an open met a reparse point or a file where a directory was wanted.
pub(crate) fn is_link_or_not_dir(e: &io::Error) -> bool {
    is_reparse(e) || e.kind() == io::ErrorKind::NotADirectory
}

/// Whether an open met something else than what it was told was there: a reparse point, a
/// file where a directory was wanted, or a directory.
pub(crate) fn is_other_kind(e: &io::Error) -> bool {
    is_link_or_not_dir(e) || e.kind() == io::ErrorKind::IsADirectory
}

/// Seconds and nanoseconds since the epoch (negative before it).
fn since_epoch(t: SystemTime) -> (i64, i64) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            i64::from(d.subsec_nanos()),
        ),
        Err(e) => {
            let d = e.duration();
            (
                -i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                -i64::from(d.subsec_nanos()),
            )
        }
    }
}

/// The modification time as seconds and nanoseconds since the epoch.
pub(crate) fn mtime(m: &Metadata) -> (i64, i64) {
    m.modified().map(since_epoch).unwrap_or((0, 0))
}

/// The creation time (Windows has no status-change time) as seconds and nanoseconds since
/// the epoch.
pub(crate) fn ctime(m: &Metadata) -> (i64, i64) {
    m.created().map(since_epoch).unwrap_or((0, 0))
}

/// No stable file index on Windows: always the same, so size and times alone tell versions
/// apart.
pub(crate) fn inode(_m: &Metadata) -> (u64, u64) {
    (0, 0)
}

impl FileAt for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.seek_read(buf, offset)
    }

    fn write_all_at(&self, mut data: &[u8], mut offset: u64) -> io::Result<()> {
        while !data.is_empty() {
            match self.seek_write(data, offset) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    data = &data[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
