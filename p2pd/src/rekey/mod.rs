//! Planned key rotation: make a new identity key, sign the handover of our name with the old
//! one, and keep that statement in the state directory until the tracker has accepted it.
//!
//! Files in the state directory, each written whole (temp file, fsync, rename, directory
//! fsync) and 0600: `identity.key` (the new key), `identity.key.old` (the previous key, kept
//! for recovery; the user may delete it), and `rekey.pending` (the statement, removed once the
//! tracker accepted it). The order makes a crash safe: the statement is written before the new
//! key replaces the old one, and a statement that does not hand the name to the key in
//! `identity.key` (the crash came between the two) is discarded at start.

pub mod chain;

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use std::sync::{Mutex, PoisonError};

use proto::api::Rekeyed;
use proto::tracker::{Handover, SignedHandover};
use proto::{PeerId, PeerName, SecretKey};
use svc::private::OwnerOnly as _;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::node::Node;

/// The identity key file in the state directory.
pub const KEY_FILE: &str = "identity.key";
/// The previous identity key, kept after a rotation.
pub const OLD_KEY_FILE: &str = "identity.key.old";
/// The handover statement waiting for the tracker.
pub const PENDING_FILE: &str = "rekey.pending";
/// Cap on the pending statement file (a statement is about 140 bytes).
const MAX_PENDING: usize = 4096;

/// Why a rotation could not be made or its statement read.
#[derive(Debug, thiserror::Error)]
pub enum RekeyError {
    /// A statement from an earlier rotation still waits for the tracker.
    #[error(
        "a key rotation is still pending: the tracker has not yet accepted the handover of \
         the name to {new_key}; wait until the daemon is registered again (p2pctl status), \
         then try again"
    )]
    Pending {
        /// The key the pending statement hands the name to.
        new_key: PeerId,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The pending statement file does not hold a statement.
    #[error("pending handover statement {} is corrupt: {detail}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The OS random source failed.
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

/// A rotation made on disk.
#[derive(Debug, Clone)]
pub struct Rotated {
    /// The new key (now in `identity.key`).
    pub key: SecretKey,
    /// The statement, signed by the old key (now in `rekey.pending`).
    pub statement: SignedHandover,
}

/// Makes a new key and hands `name` from `old` to it with a statement carrying `seq` (above
/// every seq `old` used). Refused while an earlier statement is pending. Writes the old key
/// to `identity.key.old`, the statement to `rekey.pending`, then the new key to
/// `identity.key`.
pub fn rotate(
    state_dir: &Path,
    old: &SecretKey,
    name: &PeerName,
    seq: u64,
) -> Result<Rotated, RekeyError> {
    if let Some(st) = read_pending(state_dir)? {
        return Err(RekeyError::Pending {
            new_key: st.handover.new_key,
        });
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| RekeyError::Random(e.to_string()))?;
    let key = SecretKey::from_seed(seed);
    let statement = Handover {
        name: name.clone(),
        old_key: old.peer_id(),
        new_key: key.peer_id(),
        seq,
    }
    .sign(old);
    let encoded =
        proto::frame::encode(&statement, MAX_PENDING).map_err(|e| RekeyError::Corrupt {
            path: state_dir.join(PENDING_FILE),
            detail: e.to_string(),
        })?;
    write_private(state_dir, OLD_KEY_FILE, &old.seed())?;
    write_private(state_dir, PENDING_FILE, &encoded)?;
    if let Err(e) = write_private(state_dir, KEY_FILE, &key.seed()) {
        // The old key stays in place: its statement must not block the next attempt.
        let _ = fs::remove_file(state_dir.join(PENDING_FILE));
        return Err(e);
    }
    Ok(Rotated { key, statement })
}

/// The `rekey` service: rotates the key on disk, then has the daemon restart with it once the
/// answer is sent.
pub struct Rekeyer {
    /// The state directory.
    pub state_dir: PathBuf,
    /// The identity key the daemon runs with.
    pub key: SecretKey,
    /// Cancelled to ask `main` for a restart with the same configuration.
    pub restart: CancellationToken,
    /// One rotation at a time.
    busy: Mutex<()>,
}

impl Rekeyer {
    /// The service for a daemon running as `key` in `state_dir`.
    pub fn new(state_dir: PathBuf, key: SecretKey, restart: CancellationToken) -> Rekeyer {
        Rekeyer {
            state_dir,
            key,
            restart,
            busy: Mutex::new(()),
        }
    }

    /// Makes the new key and the statement (seq above every one our key signed). The caller
    /// answers, then calls [`restart`](Self::restart).
    pub fn rekey(&self, node: &Node) -> Result<Rekeyed, RekeyError> {
        let _one = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        let seq = node.last_seq().saturating_add(1).max(svc::unix_millis());
        let rotated = rotate(&self.state_dir, &self.key, &node.identity.name, seq)?;
        node.note_seq(seq);
        let (old_key, new_key) = (self.key.peer_id(), rotated.key.peer_id());
        info!(target: svc::logging::ACTIVITY, op = "rekey", name = %node.identity.name, old = %old_key, new = %new_key, outcome = "rotated", "identity key rotated; restarting with the new key");
        Ok(Rekeyed { old_key, new_key })
    }

    /// Asks the daemon to restart with the key now on disk.
    pub fn restart(&self) {
        self.restart.cancel();
    }
}

/// The pending statement for identity `me`, if any. A statement that hands the name to
/// another key (a rotation interrupted before the new key was in place) is removed with a
/// warning.
pub fn load_pending(state_dir: &Path, me: PeerId) -> Result<Option<SignedHandover>, RekeyError> {
    let Some(st) = read_pending(state_dir)? else {
        return Ok(None);
    };
    if st.handover.new_key == me {
        return Ok(Some(st));
    }
    warn!(
        to = %st.handover.new_key,
        "discarding a handover statement for another key: the rotation did not finish"
    );
    clear_pending(state_dir)?;
    Ok(None)
}

/// Removes the pending statement (the tracker accepted it).
pub fn clear_pending(state_dir: &Path) -> Result<(), RekeyError> {
    let path = state_dir.join(PENDING_FILE);
    match fs::remove_file(&path) {
        Ok(()) => sync_dir(state_dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(RekeyError::Io { path, source }),
    }
}

fn read_pending(state_dir: &Path) -> Result<Option<SignedHandover>, RekeyError> {
    let path = state_dir.join(PENDING_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(RekeyError::Io { path, source }),
    };
    let corrupt = |detail: String| RekeyError::Corrupt {
        path: path.clone(),
        detail,
    };
    let mut buf = bytes::BytesMut::from(&bytes[..]);
    let st: SignedHandover = proto::frame::decode(&mut buf, MAX_PENDING)
        .map_err(|e| corrupt(e.to_string()))?
        .ok_or_else(|| corrupt("truncated".into()))?;
    if !buf.is_empty() || !st.verify() {
        return Err(corrupt("not one validly signed statement".into()));
    }
    Ok(Some(st))
}

/// Writes `bytes` to `dir/name` whole: a 0600 temp file, fsync, rename, directory fsync.
fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), RekeyError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let io_err = |source| RekeyError::Io {
        path: path.clone(),
        source,
    };
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .owner_only()
        .open(&tmp)
        .map_err(io_err)?;
    file.write_all(bytes).map_err(io_err)?;
    file.sync_all().map_err(io_err)?;
    drop(file);
    fs::rename(&tmp, &path).map_err(io_err)?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), RekeyError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| RekeyError::Io {
            path: dir.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_rotation_writes_the_keys_and_the_statement_and_refuses_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (old, _) = svc::keyfile::load_or_create(&d.join(KEY_FILE)).unwrap();
        let name = PeerName::new("bob").unwrap();
        let r = rotate(d, &old, &name, 7).unwrap();
        let (now, created) = svc::keyfile::load_or_create(&d.join(KEY_FILE)).unwrap();
        assert!(!created);
        assert_eq!(now.peer_id(), r.key.peer_id());
        let (kept, _) = svc::keyfile::load_or_create(&d.join(OLD_KEY_FILE)).unwrap();
        assert_eq!(kept.peer_id(), old.peer_id());
        for f in [KEY_FILE, OLD_KEY_FILE, PENDING_FILE] {
            assert_eq!(mode(&d.join(f)), 0o600, "{f}");
        }
        let st = load_pending(d, r.key.peer_id()).unwrap().unwrap();
        assert_eq!(st, r.statement);
        assert_eq!((st.handover.old_key, st.handover.seq), (old.peer_id(), 7));
        assert!(matches!(
            rotate(d, &r.key, &name, 8),
            Err(RekeyError::Pending { new_key }) if new_key == r.key.peer_id()
        ));
        clear_pending(d).unwrap();
        assert!(load_pending(d, r.key.peer_id()).unwrap().is_none());
        clear_pending(d).unwrap();
    }

    #[test]
    fn a_statement_for_another_key_is_discarded_and_a_corrupt_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let old = SecretKey::from_seed([1; 32]);
        let r = rotate(d, &old, &PeerName::new("bob").unwrap(), 1).unwrap();
        // As if the daemon crashed before the new key replaced the old one.
        assert!(load_pending(d, old.peer_id()).unwrap().is_none());
        assert!(!d.join(PENDING_FILE).exists());
        assert!(load_pending(d, r.key.peer_id()).unwrap().is_none());
        fs::write(d.join(PENDING_FILE), b"\0\0\0\x03abc").unwrap();
        assert!(matches!(
            load_pending(d, r.key.peer_id()),
            Err(RekeyError::Corrupt { .. })
        ));
    }
}
