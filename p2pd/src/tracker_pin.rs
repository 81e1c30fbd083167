//! The pinned tracker key (trust on first use), kept in `<state>/tracker.pin`.

use std::io;
use std::path::{Path, PathBuf};

use proto::PeerId;

/// File name of the pin inside the state directory.
pub const PIN_FILE: &str = "tracker.pin";

/// The pin file of a state directory.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(PIN_FILE)
}

/// Reads the pinned key, if any. A corrupt file is an error, never silently replaced.
pub fn load(state_dir: &Path) -> io::Result<Option<PeerId>> {
    match std::fs::read_to_string(path(state_dir)) {
        Ok(text) => text.trim().parse().map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path(state_dir).display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Pins `key`: written to a temporary file (mode 0600, like every file p2pd makes in its
/// state directory), synced, then renamed into place.
pub fn save(state_dir: &Path, key: PeerId) -> io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let tmp = state_dir.join(format!("{PIN_FILE}.tmp"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(format!("{key}\n").as_bytes())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path(state_dir))?;
    std::fs::File::open(state_dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        let k = proto::SecretKey::from_seed([1; 32]).peer_id();
        save(dir.path(), k).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(k));
        std::fs::write(path(dir.path()), "garbage").unwrap();
        assert!(load(dir.path()).is_err());
    }
}
