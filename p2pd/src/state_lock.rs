//! One p2pd per state directory: an exclusive lock on `<state>/p2pd.lock`, which holds the
//! pid of the daemon that has it. The kernel releases the lock when that process ends, however
//! it ends (SIGKILL included), so a stale file never blocks a restart.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use svc::private::OwnerOnly as _;

/// File name of the lock inside the state directory.
pub const LOCK_FILE: &str = "p2pd.lock";

/// How often, and how long apart, a refused start re-reads the holder's pid when the holder
/// has locked the file but not yet written it.
const PID_READS: u32 = 20;
const PID_READ_GAP: Duration = Duration::from_millis(25);

/// Errors taking the state directory's lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another daemon holds it.
    #[error(
        "another p2pd ({}) is using {}; stop it first, or give this one another --state-dir",
        holder(*.pid),
        dir.display()
    )]
    Held {
        /// The state directory.
        dir: PathBuf,
        /// The holder's pid as it wrote it, if readable.
        pid: Option<u32>,
    },
    /// The lock file could not be opened, locked or written.
    #[error("cannot lock {}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// `pid N`, or `pid unknown`.
fn holder(pid: Option<u32>) -> String {
    pid.map_or_else(|| "pid unknown".to_owned(), |pid| format!("pid {pid}"))
}

/// The lock of one state directory, held until dropped (or the process ends).
#[derive(Debug)]
pub struct StateLock {
    /// Kept open: closing it releases the lock.
    _file: File,
}

impl StateLock {
    /// Takes the lock of `state_dir` (which must exist) and writes this process's pid into
    /// it; if another process holds it, fails with [`LockError::Held`] naming that pid. The
    /// file is created 0600 and narrowed to 0600 if it was wider.
    pub fn acquire(state_dir: &Path) -> Result<StateLock, LockError> {
        let path = state_dir.join(LOCK_FILE);
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .owner_only()
            .open(&path)
            .map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    dir: state_dir.to_owned(),
                    pid: holder_pid(&mut file),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(e)),
        }
        svc::private::restrict_file(&file).map_err(io_err)?;
        file.set_len(0).map_err(io_err)?;
        file.rewind().map_err(io_err)?;
        writeln!(file, "{}", std::process::id()).map_err(io_err)?;
        Ok(StateLock { _file: file })
    }
}

/// The pid the holder wrote. It writes right after it locks, so an empty file is read again
/// a few times before giving up.
fn holder_pid(file: &mut File) -> Option<u32> {
    for attempt in 0..PID_READS {
        let mut text = String::new();
        if file.rewind().is_ok()
            && file.read_to_string(&mut text).is_ok()
            && let Ok(pid) = text.trim().parse()
        {
            return Some(pid);
        }
        if attempt + 1 < PID_READS {
            std::thread::sleep(PID_READ_GAP);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_second_lock_names_the_first_holder_and_a_dropped_lock_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).expect("first");
        let text = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        let mode = std::fs::metadata(dir.path().join(LOCK_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A second open file description conflicts, even in the same process.
        match StateLock::acquire(dir.path()) {
            Err(e @ LockError::Held { pid: Some(pid), .. }) => {
                assert_eq!(pid, std::process::id());
                assert!(
                    e.to_string().starts_with(&format!(
                        "another p2pd (pid {pid}) is using {}",
                        dir.path().display()
                    )),
                    "{e}"
                );
            }
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        StateLock::acquire(dir.path()).expect("free again once dropped");
    }
}
