//! Plumbing shared by trackerd and p2pd: identity key files, logging (stderr or journald,
//! plus the rotated activity log), systemd readiness notification, the stop signals,
//! file-descriptor limits, connection caps, TCP listeners, and the daemons' generated
//! completions and man pages.

pub mod config_file;
pub mod conn_limit;
pub mod daily_file;
pub mod docs;
pub mod keyfile;
pub mod listen;
pub mod logging;
pub mod notify;
pub mod private;
pub mod schema;
pub mod signals;

/// The exit status of a daemon refusing its configuration (`EX_CONFIG` of sysexits.h).
pub const EXIT_CONFIG: u8 = 78;

/// Raises the soft open-file limit to the hard limit, so many peers can connect.
/// Returns the new soft limit.
pub fn raise_fd_limit() -> Option<u64> {
    rlimit::increase_nofile_limit(u64::MAX).ok()
}

/// Seconds since the Unix epoch, saturating at 0 for a clock before 1970.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch, saturating at 0 for a clock before 1970.
pub fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The effective user id of this process (`geteuid`): the uid that owns the files and
/// sockets it creates, that `SO_PEERCRED` reports to the other end of a local socket, and
/// whose privileges it acts with. Every ownership and peer check compares against this one.
/// Unix only: Windows has no uids (and no such checks).
#[cfg(unix)]
pub fn current_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Creates `dir` (and its parents) if needed; a directory this creates gets mode 0700.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use private::OwnerOnly as _;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .owner_only()
        .create(dir)
}
