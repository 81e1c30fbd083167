//! The identity key file: 32 secret seed bytes, created once with mode 0600, never logged.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use proto::SecretKey;

use crate::private::{self, OwnerOnly as _};

/// Errors loading or creating a key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or writing the file failed.
    #[error("key file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file exists but does not hold a key.
    #[error("key file {} is corrupt: {detail}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Group or others can read the file.
    #[error("key file {} is readable by others (mode {mode:o}); run: chmod 600 {}", path.display(), path.display())]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The OS random source failed.
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

/// Loads the key at `path`, or makes a new one there (mode 0600) when the file is absent.
/// Returns the key and whether it was just created.
pub fn load_or_create(path: &Path) -> Result<(SecretKey, bool), KeyFileError> {
    let io_err = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    match fs::read(path) {
        Ok(bytes) => {
            let mode = private::mode_bits(&fs::metadata(path).map_err(io_err)?);
            if mode & 0o077 != 0 {
                return Err(KeyFileError::Permissions {
                    path: path.to_owned(),
                    mode,
                });
            }
            let key = SecretKey::from_seed_slice(&bytes).map_err(|e| KeyFileError::Corrupt {
                path: path.to_owned(),
                detail: e.to_string(),
            })?;
            Ok((key, false))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| KeyFileError::Random(e.to_string()))?;
            let key = SecretKey::from_seed(seed);
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .owner_only()
                .open(path)
                .map_err(io_err)?;
            file.write_all(&key.seed()).map_err(io_err)?;
            file.sync_all().map_err(io_err)?;
            if let Some(dir) = path.parent() {
                fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io_err)?;
            }
            Ok((key, true))
        }
        Err(e) => Err(io_err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn creates_once_then_loads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.key");
        let (a, created) = load_or_create(&path).unwrap();
        assert!(created);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (b, created) = load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(a.peer_id(), b.peer_id());
    }

    #[test]
    fn refuses_open_permissions_and_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.key");
        load_or_create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load_or_create(&path),
            Err(KeyFileError::Permissions { .. })
        ));
        fs::write(&path, b"short").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            load_or_create(&path),
            Err(KeyFileError::Corrupt { .. })
        ));
    }
}
