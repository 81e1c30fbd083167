//! The version store: what the daemon replaced or removed in a share, kept so it can be put
//! back. Bytes live in `<state>/versions/`, one blob per content id (its 64 hex digits), so
//! identical content is stored once; rows (`rows.rs`) say which path of which share had that
//! content, under which number (counted per path, never given twice), when it was replaced
//! and by whom. Retention (keep N per path, a maximum age, a byte cap over the share's kept
//! versions; oldest first) runs at every archive, and a blob goes with its last row.
//!
//! A blob is made before its row and removed after its last row, under one lock, so a row
//! always has its blob.

mod rows;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use cap_std::fs::{Dir, OpenOptions};
use proto::PeerId;
use proto::share::{ContentId, MAX_VERSIONS, VersionInfo};

pub use rows::Key;
use rows::NewVersion;

use super::SharesError;
use super::dirs::{self, Found};
use super::store::ShareRow;
use crate::store::{Db, StoreError};

/// The directory of the state directory that holds the blobs.
pub const VERSIONS_DIR: &str = "versions";

/// Which versions a share keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Versions kept per path.
    pub keep: u32,
    /// Cap on the bytes of the share's kept versions.
    pub max_bytes: Option<u64>,
    /// Versions replaced longer ago than this many milliseconds are dropped.
    pub max_age_ms: Option<u64>,
}

impl Retention {
    /// The retention `row` asks for.
    pub fn of(row: &ShareRow) -> Retention {
        Retention {
            keep: row.keep_versions,
            max_bytes: row.max_version_bytes,
            max_age_ms: row.max_version_age.map(|s| s.saturating_mul(1000)),
        }
    }
}

/// The version store (one per daemon).
pub struct VersionStore {
    /// `<state>/versions`.
    path: PathBuf,
    blobs: Dir,
    db: Db,
    /// Held from a blob's making to its row's commit, and from a prune's commit to the
    /// removal of the blobs it left unreferenced.
    gc: Mutex<()>,
}

/// Names the temporary files of one process apart.
static TEMP: AtomicU64 = AtomicU64::new(0);

impl VersionStore {
    /// Opens (making it, 0700, if needed) `<state_dir>/versions`, dropping temporary files an
    /// interrupted archive left.
    pub fn open(state_dir: &Path, db: Db) -> io::Result<VersionStore> {
        let path = state_dir.join(VERSIONS_DIR);
        svc::create_private_dir(&path)?;
        let blobs = dirs::open_root(&path)?;
        for entry in blobs.entries()? {
            let name = entry?.file_name();
            if name.to_string_lossy().starts_with(".tmp") {
                let _ = blobs.remove_file(&name);
            }
        }
        Ok(VersionStore {
            path,
            blobs,
            db,
            gc: Mutex::new(()),
        })
    }

    /// The directory of the blobs.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.gc.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the current bytes of the regular file `name` of `dir` (an entry of a share's
    /// tree, reached with [`dirs::parent_of`]) as the next version of `key`, then applies
    /// `keep` to the share. Blocking: run it off the runtime's workers. The caller is about
    /// to replace or remove the file, so the blob is a hard link to it where the filesystem
    /// allows (a copy otherwise); its content id is computed from the blob's bytes, which are
    /// on disk before the row is written. `Ok(None)` if `name` is absent or is not a regular
    /// file (a directory is never archived). The version returned may already be dropped by
    /// retention if it alone is over the share's byte cap.
    pub fn archive(
        &self,
        dir: &Dir,
        name: &str,
        key: &Key,
        by: Option<PeerId>,
        keep: &Retention,
    ) -> Result<Option<VersionInfo>, SharesError> {
        let shown = || format!("{}/{}", key.share, key.path);
        let io_err = |what: &'static str| {
            move |source| SharesError::Io {
                what,
                path: shown(),
                source,
            }
        };
        if !matches!(
            dirs::found(dir, name).map_err(io_err("cannot look at"))?,
            Some(Found::File(_))
        ) {
            return Ok(None);
        }
        let temp = format!(
            ".tmp.{}.{}",
            std::process::id(),
            TEMP.fetch_add(1, Ordering::Relaxed)
        );
        let kept = match self.take(dir, name, &temp) {
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                let _ = self.blobs.remove_file(&temp);
                return Err(io_err("cannot keep a version of")(e));
            }
        };
        let (id, size) = kept;
        let blob = id.to_string();
        let guard = self.lock();
        let stored = match self.blobs.symlink_metadata(&blob) {
            Ok(_) => self.blobs.remove_file(&temp),
            Err(_) => self
                .blobs
                .rename(&temp, &self.blobs, &blob)
                .and_then(|()| dirs::sync_dir(&self.blobs)),
        };
        if let Err(e) = stored {
            let _ = self.blobs.remove_file(&temp);
            return Err(io_err("cannot keep a version of")(e));
        }
        let v = NewVersion {
            id,
            size,
            replaced_at: now_ms(),
            by,
        };
        let (key2, keep) = (key.clone(), *keep);
        let (info, orphans) = self
            .db
            .call_blocking(move |c| rows::record(c, &key2, &v, &keep))?;
        self.drop_blobs(&orphans);
        drop(guard);
        Ok(Some(info))
    }

    /// Makes `temp` in the blob directory hold the bytes of `name` of `dir`: a hard link,
    /// else a copy; returns their content id and size, once synced.
    fn take(&self, dir: &Dir, name: &str, temp: &str) -> io::Result<(ContentId, u64)> {
        if dir.hard_link(name, &self.blobs, temp).is_ok() {
            // Linked without following: check it is the regular file it was.
            let mut file = dirs::open_file(&self.blobs, temp)?;
            let (id, size) = hash(&mut file, None)?;
            file.sync_all()?;
            return Ok((id, size));
        }
        let mut from = dirs::open_file(dir, name)?;
        let mut to = self
            .blobs
            .open_with(temp, OpenOptions::new().write(true).create_new(true))?
            .into_std();
        let (id, size) = hash(&mut from, Some(&mut to))?;
        to.sync_all()?;
        Ok((id, size))
    }

    fn drop_blobs(&self, ids: &[ContentId]) {
        for id in ids {
            match self.blobs.remove_file(id.to_string()) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("cannot remove version blob {id}: {e}"),
            }
        }
    }

    /// The kept versions of `key`, oldest first (the newest [`MAX_VERSIONS`] if more).
    pub async fn list(&self, key: &Key) -> Result<Vec<VersionInfo>, StoreError> {
        let key = key.clone();
        self.db
            .call(move |c| rows::list(c, &key, MAX_VERSIONS))
            .await
    }

    /// Version `number` of `key`, if kept.
    pub async fn get(&self, key: &Key, number: u64) -> Result<Option<VersionInfo>, StoreError> {
        let key = key.clone();
        self.db.call(move |c| rows::get(c, &key, number)).await
    }

    /// Opens the blob of `id` for reading.
    pub fn open_blob(&self, id: &ContentId) -> io::Result<File> {
        dirs::open_file(&self.blobs, &id.to_string())
    }

    /// Drops every version of `share` and the blobs only they used (the share is gone).
    /// Blocking.
    pub fn forget_share(&self, share: &str) -> Result<(), SharesError> {
        let guard = self.lock();
        let share = share.to_owned();
        let orphans = self
            .db
            .call_blocking(move |c| rows::forget_share(c, &share))?;
        self.drop_blobs(&orphans);
        drop(guard);
        Ok(())
    }
}

/// Reads `from` to its end, copying into `to` if given; the BLAKE3 hash and length.
pub(super) fn hash(from: &mut File, mut to: Option<&mut File>) -> io::Result<(ContentId, u64)> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        if let Some(to) = to.as_deref_mut() {
            to.write_all(&buf[..n])?;
        }
        size += n as u64;
    }
    Ok((ContentId(*hasher.finalize().as_bytes()), size))
}

/// Now, Unix milliseconds.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
