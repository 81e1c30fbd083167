//! Where the control socket lives by default. Pure: callers pass in the environment.

use std::path::{Path, PathBuf};

/// Environment variable that overrides the control socket path for p2pd and p2pctl.
pub const SOCKET_ENV: &str = "P2PD_SOCKET";
/// Socket file name inside the runtime directory.
pub const SOCKET_FILE: &str = "p2pd.sock";
/// Directory under `$XDG_RUNTIME_DIR` (or the fallback) holding the socket.
pub const RUNTIME_SUBDIR: &str = "p2pd";

/// The default control socket: `$XDG_RUNTIME_DIR/p2pd/p2pd.sock`, or, with no runtime
/// directory, `/tmp/p2pd-UID/p2pd.sock`.
pub fn default_socket(runtime_dir: Option<&Path>, uid: u32) -> PathBuf {
    match runtime_dir {
        Some(dir) if dir.is_absolute() => dir.join(RUNTIME_SUBDIR).join(SOCKET_FILE),
        _ => PathBuf::from(format!("/tmp/p2pd-{uid}")).join(SOCKET_FILE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_xdg_runtime_dir() {
        assert_eq!(
            default_socket(Some(Path::new("/run/user/1000")), 1000),
            PathBuf::from("/run/user/1000/p2pd/p2pd.sock")
        );
        assert_eq!(
            default_socket(None, 7),
            PathBuf::from("/tmp/p2pd-7/p2pd.sock")
        );
        assert_eq!(
            default_socket(Some(Path::new("rel")), 7),
            PathBuf::from("/tmp/p2pd-7/p2pd.sock")
        );
    }
}
