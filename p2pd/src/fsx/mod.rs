//! File-system operations that reach below a directory handle one component at a time and
//! never follow a symlink: the few the share and transfer code need, with one
//! implementation per platform. On Unix they are the `openat` family through rustix
//! (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, `renameat2(RENAME_NOREPLACE)`); on Windows they go
//! through cap-std with `FILE_FLAG_OPEN_REPARSE_POINT` and refuse what turns out to be a
//! reparse point.

use std::io;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;

/// What an entry is, as seen without following a symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symlink (a reparse point on Windows) or a special file.
    Other,
}

/// The kind and size of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    /// What it is.
    pub kind: Kind,
    /// Its size in bytes (meaningful for a regular file).
    pub len: u64,
}

/// Positioned reads and writes that leave the file's cursor alone (Unix) or need no
/// cursor of their own (Windows moves it; nothing here relies on it).
pub(crate) trait FileAt {
    /// Reads at most `buf.len()` bytes at `offset`; 0 at the end of the file.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// Fills `buf` from `offset`; a file that ends first is `UnexpectedEof`.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "failed to fill whole buffer",
                    ));
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes all of `data` at `offset`.
    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()>;
}
