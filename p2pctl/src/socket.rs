//! Which control socket to use: `--socket`, else `P2PD_SOCKET` (both handled by clap), else
//! the default from [`proto::paths::default_socket`] (on Windows the named pipe of
//! [`proto::paths::default_pipe`]); and, on Unix, whether it can be trusted: its directory
//! must be ours and closed to others ([`check_dir`], before connecting), and the process
//! listening must run as us ([`check_server`], before sending anything). On Windows a named
//! pipe's default ACL lets only its creator's account (and administrators) write to it, so
//! there is nothing to check.

#[cfg(unix)]
use std::os::unix::fs::MetadataExt as _;
#[cfg(unix)]
use std::path::Path;
use std::path::PathBuf;

use crate::error::Error;

/// The socket to connect to. `given` is the `--socket` / `P2PD_SOCKET` value, if any.
pub(crate) fn resolve(given: Option<PathBuf>) -> Result<PathBuf, Error> {
    if let Some(path) = given.filter(|p| !p.as_os_str().is_empty()) {
        return Ok(path);
    }
    Ok(default_socket())
}

/// Where p2pd listens unless told otherwise: under `$XDG_RUNTIME_DIR`, else `/tmp/p2pd-UID`.
#[cfg(unix)]
fn default_socket() -> PathBuf {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    proto::paths::default_socket(runtime.as_deref(), current_uid())
}

/// Where p2pd listens unless told otherwise: the named pipe of this user (`%USERNAME%`).
#[cfg(windows)]
fn default_socket() -> PathBuf {
    let user = std::env::var("USERNAME").unwrap_or_default();
    proto::paths::default_pipe(&user)
}

/// Refuses a socket whose directory another user owns or can write to: anyone who can put
/// a socket there could receive what p2pctl meant for p2pd. A directory that cannot be read
/// is left for the connection to report (no daemon, not allowed). Returns our uid.
#[cfg(unix)]
pub(crate) fn check_dir(socket: &Path) -> Result<u32, Error> {
    let me = current_uid();
    let dir = match socket.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if let Ok(meta) = std::fs::metadata(dir) {
        let facts = proto::paths::DirFacts {
            is_dir: meta.is_dir(),
            owner: meta.uid(),
            mode: meta.mode(),
        };
        proto::paths::check_socket_dir(dir, facts, me)?;
    }
    Ok(me)
}

/// Refuses a connection unless the process that listens on it runs as `me`: `served_by` is
/// its effective uid as SO_PEERCRED reported it (`None` when unknown).
#[cfg(unix)]
pub(crate) fn check_server(
    socket: &Path,
    served_by: std::io::Result<Option<u32>>,
    me: u32,
) -> Result<(), Error> {
    match served_by {
        Ok(Some(uid)) if uid == me => Ok(()),
        Ok(uid) => Err(Error::ForeignServer {
            path: socket.to_owned(),
            uid,
            me,
        }),
        Err(e) => Err(Error::Unreachable {
            path: socket.to_owned(),
            source: std::io::Error::new(e.kind(), format!("cannot tell which user serves it: {e}")),
        }),
    }
}

/// This process's effective uid (`geteuid`): the one `SO_PEERCRED` reports for the daemon
/// and the owner of the directories it makes, so both checks compare like with like.
#[cfg(unix)]
fn current_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_uid_owns_what_we_create() {
        let path = std::env::temp_dir().join(format!("p2pctl-uid-{}", std::process::id()));
        std::fs::write(&path, b"").expect("create");
        let owner = std::fs::metadata(&path).expect("stat").uid();
        let _ = std::fs::remove_file(&path);
        assert_eq!(current_uid(), owner);
    }

    #[test]
    fn only_a_server_running_as_us_is_trusted() {
        let path = Path::new("/tmp/p2pd-1000/p2pd.sock");
        assert!(check_server(path, Ok(Some(1000)), 1000).is_ok());
        let err = check_server(path, Ok(Some(65534)), 1000).expect_err("refused");
        assert!(matches!(
            err,
            Error::ForeignServer {
                uid: Some(65534),
                me: 1000,
                ..
            }
        ));
        assert!(
            err.to_string()
                .starts_with("the control socket /tmp/p2pd-1000/p2pd.sock is served by uid 65534, not you (uid 1000)"),
            "{err}"
        );
        assert!(matches!(
            check_server(path, Ok(None), 1000),
            Err(Error::ForeignServer { uid: None, .. })
        ));
        assert!(matches!(
            check_server(path, Err(std::io::ErrorKind::Other.into()), 1000),
            Err(Error::Unreachable { .. })
        ));
    }

    #[test]
    fn a_directory_open_to_others_is_refused_before_connecting() {
        use std::os::unix::fs::PermissionsExt as _;
        let me = current_uid();
        let dir = std::env::temp_dir().join(format!("p2pctl-test-open-{}", std::process::id()));
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let open = check_dir(&dir.join("p2pd.sock"));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let private = check_dir(&dir.join("p2pd.sock"));
        std::fs::remove_dir(&dir).expect("rmdir");
        assert!(
            matches!(
                open,
                Err(Error::SocketDir(
                    proto::paths::SocketDirError::TooOpen { .. }
                ))
            ),
            "{open:?}"
        );
        assert_eq!(private.ok(), Some(me));
        // A missing directory is left to the connection to report.
        assert_eq!(
            check_dir(Path::new("/nonexistent-p2pctl-dir/p2pd.sock")).ok(),
            Some(me)
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
