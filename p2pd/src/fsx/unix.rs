//! The Unix side of [`super`]: rustix's `openat` family.

use std::fs::{File, Metadata};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

use super::{FileAt, Kind, Stat};

/// A directory opened by this module.
pub(crate) type DirHandle = OwnedFd;

/// What the functions here accept as a directory: any file descriptor (an [`OwnedFd`], a
/// cap-std `Dir`).
pub(crate) use std::os::fd::AsFd as AsDir;

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Opens the directory at `path`, refusing a symlink as its last component.
pub(crate) fn open_dir_path(path: &Path) -> io::Result<DirHandle> {
    Ok(rustix::fs::open(path, DIR_FLAGS, Mode::empty())?)
}

/// Opens the directory `name` of `dir`, refusing a symlink.
pub(crate) fn open_dir_at(dir: &impl AsDir, name: impl AsRef<Path>) -> io::Result<DirHandle> {
    Ok(rustix::fs::openat(
        dir,
        name.as_ref(),
        DIR_FLAGS,
        Mode::empty(),
    )?)
}

/// Makes a directory handle into a cap-std `Dir`.
pub(crate) fn into_cap_dir(dir: DirHandle) -> cap_std::fs::Dir {
    cap_std::fs::Dir::from_std_file(File::from(dir))
}

/// Opens the file at `path` for reading, refusing a symlink as its last component.
pub(crate) fn open_read_path(path: &Path) -> io::Result<File> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(File::from(rustix::fs::open(path, flags, Mode::empty())?))
}

/// Opens `name` of `dir` for reading, refusing a symlink.
pub(crate) fn open_read_at(dir: &impl AsDir, name: impl AsRef<Path>) -> io::Result<File> {
    open_file_at(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
    )
}

/// As [`open_read_at`], non-blocking (so a FIFO put there since never blocks the open).
pub(crate) fn open_read_nonblocking_at(
    dir: &impl AsDir,
    name: impl AsRef<Path>,
) -> io::Result<File> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    open_file_at(dir, name, flags)
}

fn open_file_at(dir: &impl AsDir, name: impl AsRef<Path>, flags: OFlags) -> io::Result<File> {
    let fd = rustix::fs::openat(dir, name.as_ref(), flags, Mode::empty())?;
    Ok(File::from(fd))
}

/// cap-std open options that read, follow no symlink as the last component, and never
/// block on a special file.
pub(crate) fn read_nofollow_options() -> cap_std::fs::OpenOptions {
    use cap_std::fs::OpenOptionsExt;
    let nofollow = (OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32;
    let mut options = cap_std::fs::OpenOptions::new();
    options.read(true).custom_flags(nofollow);
    options
}

/// Creates `name` in `dir` for reading and writing, failing if anything is there already.
pub(crate) fn create_new_at(dir: &impl AsDir, name: impl AsRef<Path>) -> io::Result<File> {
    let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, name.as_ref(), flags, Mode::from_raw_mode(0o644))?;
    Ok(File::from(fd))
}

fn stat_of(st: &rustix::fs::Stat) -> Stat {
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => Kind::File,
        FileType::Directory => Kind::Dir,
        _ => Kind::Other,
    };
    Stat {
        kind,
        len: u64::try_from(st.st_size).unwrap_or(0),
    }
}

/// What `name` in `dir` is, not following a symlink.
pub(crate) fn stat_at(dir: &impl AsDir, name: impl AsRef<Path>) -> io::Result<Stat> {
    let st = rustix::fs::statat(dir, name.as_ref(), AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(stat_of(&st))
}

/// What an open file is.
pub(crate) fn stat_file(file: &File) -> io::Result<Stat> {
    Ok(stat_of(&rustix::fs::fstat(file)?))
}

/// Bytes free to an unprivileged writer on the filesystem of `dir`.
pub(crate) fn free_space(dir: &impl AsDir) -> io::Result<u64> {
    let st = rustix::fs::fstatvfs(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Moves `from` in `from_dir` over `to` in `to_dir`.
pub(crate) fn rename_at(
    from_dir: &impl AsDir,
    from: impl AsRef<Path>,
    to_dir: &impl AsDir,
    to: impl AsRef<Path>,
) -> io::Result<()> {
    Ok(rustix::fs::renameat(
        from_dir,
        from.as_ref(),
        to_dir,
        to.as_ref(),
    )?)
}

/// Moves `from` in `from_dir` to `to` in `to_dir` unless an entry is there (`AlreadyExists`).
/// `Ok(false)`: the filesystem cannot refuse to replace, and nothing was done.
pub(crate) fn rename_noreplace_at(
    from_dir: &impl AsDir,
    from: impl AsRef<Path>,
    to_dir: &impl AsDir,
    to: impl AsRef<Path>,
) -> io::Result<bool> {
    let r = rustix::fs::renameat_with(
        from_dir,
        from.as_ref(),
        to_dir,
        to.as_ref(),
        RenameFlags::NOREPLACE,
    );
    match r {
        Ok(()) => Ok(true),
        Err(Errno::INVAL | Errno::NOSYS) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Removes the file `name` of `dir`.
pub(crate) fn unlink_at(dir: &impl AsDir, name: impl AsRef<Path>) -> io::Result<()> {
    Ok(rustix::fs::unlinkat(dir, name.as_ref(), AtFlags::empty())?)
}

/// Makes what was done to the entries of `dir` durable, through `dir` itself.
pub(crate) fn fsync_dir(dir: &impl AsDir) -> io::Result<()> {
    Ok(rustix::fs::fsync(dir)?)
}

/// Makes what was done to the entries of `dir` durable, through the directory opened again
/// (a handle may be `O_PATH`, which cannot be synced).
pub(crate) fn sync_dir_reopened(dir: &impl AsDir) -> io::Result<()> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, ".", flags, Mode::empty())?;
    Ok(rustix::fs::fsync(&fd)?)
}

fn is_errno(e: &io::Error, errnos: &[Errno]) -> bool {
    errnos
        .iter()
        .any(|errno| e.raw_os_error() == Some(errno.raw_os_error()))
}

/// Whether an open refused a symlink as the last component (`ELOOP`).
pub(crate) fn is_symlink_refused(e: &io::Error) -> bool {
    is_errno(e, &[Errno::LOOP])
}

/// Whether an open met a symlink or a file where a directory was wanted (`ELOOP`,
/// `ENOTDIR`).
pub(crate) fn is_link_or_not_dir(e: &io::Error) -> bool {
    is_errno(e, &[Errno::LOOP, Errno::NOTDIR])
}

/// Whether an open met something else than what it was told was there: a symlink, a
/// file where a directory was wanted, or a directory (`ELOOP`, `ENOTDIR`, `EISDIR`).
pub(crate) fn is_other_kind(e: &io::Error) -> bool {
    is_errno(e, &[Errno::LOOP, Errno::NOTDIR, Errno::ISDIR])
}

/// The modification time as seconds and nanoseconds since the epoch.
pub(crate) fn mtime(m: &Metadata) -> (i64, i64) {
    (m.mtime(), m.mtime_nsec())
}

/// The status-change time as seconds and nanoseconds since the epoch.
pub(crate) fn ctime(m: &Metadata) -> (i64, i64) {
    (m.ctime(), m.ctime_nsec())
}

/// The device and inode numbers.
pub(crate) fn inode(m: &Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

impl FileAt for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, offset)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }

    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(self, data, offset)
    }
}
