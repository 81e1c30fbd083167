//! Where the control socket lives by default, and whether a directory is safe to hold it.
//! Pure: callers pass in the environment and what they read from the file system.

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

/// Prefix of the default control socket on Windows, a named pipe per user.
pub const PIPE_PREFIX: &str = r"\\.\pipe\p2pd-";

/// The default control socket on Windows: the named pipe `\\.\pipe\p2pd-USER`, `user`
/// being the account name (`%USERNAME%`). Characters a pipe name may not hold (`\`, `/`)
/// become `_`; an empty name becomes `user`. A pipe's default ACL lets only its creator's
/// account (and administrators and LocalSystem) write to it, so there is no directory to
/// check as on Unix.
pub fn default_pipe(user: &str) -> PathBuf {
    let user: String = user
        .chars()
        .map(|c| if matches!(c, '\\' | '/') { '_' } else { c })
        .collect();
    let user = if user.is_empty() { "user" } else { &user };
    PathBuf::from(format!("{PIPE_PREFIX}{user}"))
}

/// What p2pd and p2pctl read about the directory holding the control socket (its
/// metadata, following symlinks), so the verdict stays pure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirFacts {
    /// Whether it is a directory.
    pub is_dir: bool,
    /// Its owner's uid.
    pub owner: u32,
    /// Its mode bits (permission bits and sticky/setgid; the file type is ignored).
    pub mode: u32,
}

/// Why a directory may not hold the control socket: another user could put their own
/// socket there, and p2pctl would hand them what it meant for p2pd.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SocketDirError {
    /// Owned by someone else.
    #[error(
        "control socket directory {} is owned by uid {owner}, not you (uid {me}); \
         remove it or use --socket in a directory of your own",
        dir.display()
    )]
    NotOwned {
        /// The directory.
        dir: PathBuf,
        /// Its owner.
        owner: u32,
        /// The uid that checked it.
        me: u32,
    },
    /// Writable by group or others, who could replace the socket.
    #[error(
        "control socket directory {} is writable by {who} (mode {mode:04o}); \
         use --socket in a directory of your own that only you can write \
         (p2pd makes a missing one with mode 0700)",
        dir.display()
    )]
    TooOpen {
        /// The directory.
        dir: PathBuf,
        /// `group`, `others` or `group and others`.
        who: &'static str,
        /// Its mode bits.
        mode: u32,
    },
    /// Not a directory at all.
    #[error("control socket directory {} is not a directory; use --socket to choose another path", dir.display())]
    NotADirectory {
        /// The path.
        dir: PathBuf,
    },
}

/// Checks that `dir`, described by `facts`, may hold the control socket of user `me`: a
/// directory owned by `me` that neither group nor others can write.
pub fn check_socket_dir(dir: &Path, facts: DirFacts, me: u32) -> Result<(), SocketDirError> {
    if !facts.is_dir {
        return Err(SocketDirError::NotADirectory {
            dir: dir.to_owned(),
        });
    }
    if facts.owner != me {
        return Err(SocketDirError::NotOwned {
            dir: dir.to_owned(),
            owner: facts.owner,
            me,
        });
    }
    let who = match (facts.mode & 0o020 != 0, facts.mode & 0o002 != 0) {
        (false, false) => return Ok(()),
        (true, false) => "group",
        (false, true) => "others",
        (true, true) => "group and others",
    };
    Err(SocketDirError::TooOpen {
        dir: dir.to_owned(),
        who,
        mode: facts.mode & 0o7777,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(owner: u32, mode: u32) -> DirFacts {
        DirFacts {
            is_dir: true,
            owner,
            mode,
        }
    }

    #[test]
    fn a_private_or_read_only_directory_of_ours_is_fine() {
        let dir = Path::new("/run/user/1000/p2pd");
        assert_eq!(check_socket_dir(dir, facts(1000, 0o700), 1000), Ok(()));
        assert_eq!(check_socket_dir(dir, facts(1000, 0o40755), 1000), Ok(()));
    }

    #[test]
    fn another_owner_is_refused_with_both_uids_and_what_to_do() {
        let err = check_socket_dir(Path::new("/tmp/p2pd-1000"), facts(65534, 0o700), 1000)
            .expect_err("refused");
        assert_eq!(
            err.to_string(),
            "control socket directory /tmp/p2pd-1000 is owned by uid 65534, not you (uid 1000); \
             remove it or use --socket in a directory of your own"
        );
    }

    #[test]
    fn group_or_world_writable_is_refused_and_says_by_whom() {
        let dir = Path::new("/tmp");
        let who = |mode| match check_socket_dir(dir, facts(0, mode), 0) {
            Err(SocketDirError::TooOpen { who, .. }) => who,
            other => panic!("mode {mode:o}: {other:?}"),
        };
        assert_eq!(who(0o770), "group");
        assert_eq!(who(0o702), "others");
        assert_eq!(who(0o41777), "group and others");
        let err = check_socket_dir(dir, facts(0, 0o41777), 0).expect_err("refused");
        assert!(
            err.to_string().starts_with(
                "control socket directory /tmp is writable by group and others (mode 1777); "
            ),
            "{err}"
        );
    }

    #[test]
    fn not_a_directory_is_refused() {
        let f = DirFacts {
            is_dir: false,
            owner: 7,
            mode: 0o600,
        };
        assert!(matches!(
            check_socket_dir(Path::new("/x"), f, 7),
            Err(SocketDirError::NotADirectory { .. })
        ));
    }

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

    #[test]
    fn the_default_pipe_is_per_user() {
        assert_eq!(default_pipe("alice"), PathBuf::from(r"\\.\pipe\p2pd-alice"));
        assert_eq!(
            default_pipe(r"DOM\bob/x"),
            PathBuf::from(r"\\.\pipe\p2pd-DOM_bob_x")
        );
        assert_eq!(default_pipe(""), PathBuf::from(r"\\.\pipe\p2pd-user"));
    }
}
