//! Which control socket to use: `--socket`, else `P2PD_SOCKET` (both handled by clap), else
//! the default from [`proto::paths::default_socket`].

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The socket to connect to. `given` is the `--socket` / `P2PD_SOCKET` value, if any.
pub(crate) fn resolve(given: Option<PathBuf>) -> Result<PathBuf, Error> {
    if let Some(path) = given.filter(|p| !p.as_os_str().is_empty()) {
        return Ok(path);
    }
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    let runtime = runtime.as_deref();
    let uid = match current_uid() {
        Ok(uid) => uid,
        // With an absolute runtime directory the uid is not part of the path.
        Err(_) if runtime.is_some_and(Path::is_absolute) => 0,
        Err(e) => return Err(Error::NoDefaultSocket(e)),
    };
    Ok(proto::paths::default_socket(runtime, uid))
}

/// This process's effective uid, read without libc: from `/proc/self/status`, else from
/// the owner of `/proc/self`.
fn current_uid() -> Result<u32, String> {
    if let Some(uid) = std::fs::read_to_string("/proc/self/status")
        .ok()
        .as_deref()
        .and_then(effective_uid)
    {
        return Ok(uid);
    }
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|e| format!("cannot read the user id from /proc/self: {e}"))
}

/// The effective uid from the `Uid:` line of `/proc/PID/status` (real, effective, saved, fs).
fn effective_uid(status: &str) -> Option<u32> {
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_effective_uid() {
        let status = "Name:\tp2pctl\nUmask:\t0022\nState:\tR (running)\nUid:\t1000\t1001\t1000\t1000\nGid:\t100\t100\t100\t100\n";
        assert_eq!(effective_uid(status), Some(1001));
        assert_eq!(effective_uid("Name:\tx\n"), None);
        assert_eq!(effective_uid("Uid:\t1000\n"), None);
        assert_eq!(effective_uid("Uid:\tx\ty\n"), None);
    }

    #[test]
    fn own_uid_is_readable_here() {
        let uid = current_uid().expect("uid");
        assert_eq!(
            Some(uid),
            std::fs::metadata("/proc/self").ok().map(|m| m.uid())
        );
    }

    #[test]
    fn a_given_path_wins_and_empty_means_unset() {
        assert_eq!(
            resolve(Some(PathBuf::from("/x/y.sock"))).ok(),
            Some(PathBuf::from("/x/y.sock"))
        );
        let default = resolve(Some(PathBuf::new())).expect("default");
        assert!(
            default.ends_with(proto::paths::SOCKET_FILE),
            "{}",
            default.display()
        );
    }
}
