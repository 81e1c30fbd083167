//! Early write-back of a part file's data: the receiver asks the kernel to start writing each
//! stretch of the file soon after it is written, and waits for the stretch before it, so dirty
//! pages never pile up behind the one fsync at the end of the file (and behind other
//! programs' fsyncs on the same file system, such as the chat database's commits). Only a
//! hint for the kernel: durability still comes from that fsync. Linux with glibc only; a
//! no-op elsewhere.

use cap_std::fs::File;

/// Starts writing `len` bytes at `offset` back to disk, without waiting for them.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(super) fn start(file: &File, offset: u64, len: u64) {
    range(file, offset, len, libc::SYNC_FILE_RANGE_WRITE);
}

/// Waits until `len` bytes at `offset` are on the disk (starting any write-back not started
/// yet), so the page cache holds at most a few stretches of dirty data.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(super) fn wait(file: &File, offset: u64, len: u64) {
    range(
        file,
        offset,
        len,
        libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER,
    );
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn range(file: &File, offset: u64, len: u64, flags: libc::c_uint) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (
        libc::off64_t::try_from(offset),
        libc::off64_t::try_from(len),
    ) else {
        return;
    };
    // SAFETY: the descriptor is open for as long as `file` is borrowed, and sync_file_range
    // touches no memory of this process. Its result is ignored: a failure only means the
    // data is written back later, by the kernel or by the file's fsync.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, flags);
    }
}

/// Nothing to start outside Linux with glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(super) fn start(_file: &File, _offset: u64, _len: u64) {}

/// Nothing to wait for outside Linux with glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(super) fn wait(_file: &File, _offset: u64, _len: u64) {}
