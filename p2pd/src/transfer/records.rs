//! Transfers in the store: one row per transfer (manifest, state, paths) and one per file
//! (chunks verified so far, done), so a transfer resumes after a restart.

use proto::api::{Direction, TransferState};
use proto::transfer::{FileEntry, Manifest, TransferId};
use proto::{PeerId, PeerName};
use rusqlite::{OptionalExtension, params};

use super::scan::Scanned;
use crate::store::{Store, StoreError};

/// A transfer as stored.
#[derive(Debug, Clone)]
pub struct Record {
    /// The other side.
    pub peer: PeerId,
    /// Its name.
    pub peer_name: PeerName,
    /// Which way.
    pub direction: Direction,
    /// Where it stands.
    pub state: TransferState,
    /// What is transferred.
    pub manifest: Manifest,
    /// Sender: the offered path. Receiver: the destination, once accepted.
    pub local_path: Option<String>,
    /// Why it ended badly.
    pub error: Option<String>,
    /// When it was stored, in seconds since the Unix epoch.
    pub created_at: u64,
}

fn state_name(s: TransferState) -> &'static str {
    s.as_str()
}

fn state_from(s: &str) -> TransferState {
    match s {
        "scanning" => TransferState::Scanning,
        "queued" => TransferState::Queued,
        "offered" => TransferState::Offered,
        "running" => TransferState::Running,
        "done" => TransferState::Done,
        "declined" => TransferState::Declined,
        "cancelled" => TransferState::Cancelled,
        "expired" => TransferState::Expired,
        _ => TransferState::Failed,
    }
}

fn bad(e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
}

impl Store {
    /// Stores a new transfer.
    pub fn insert_transfer(&self, rec: &Record) -> Result<(), StoreError> {
        let manifest = serde_json::to_string(&rec.manifest).map_err(|e| StoreError::Sql {
            path: self.path.clone(),
            source: bad(e),
        })?;
        self.db
            .execute(
                "INSERT INTO transfers (id, peer, peer_name, direction, state, manifest, local_path, error, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    rec.manifest.id.0.as_slice(),
                    rec.peer.as_bytes().as_slice(),
                    rec.peer_name.as_str(),
                    i64::from(rec.direction == Direction::In),
                    state_name(rec.state),
                    manifest,
                    rec.local_path,
                    rec.error,
                    rec.created_at.cast_signed(),
                ],
            )
            .map_err(|source| StoreError::Sql { path: self.path.clone(), source })?;
        Ok(())
    }

    /// Sets a transfer's state (and local path or error when given).
    pub fn set_transfer_state(
        &self,
        id: TransferId,
        state: TransferState,
        local_path: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.db
            .execute(
                "UPDATE transfers SET state = ?2, local_path = COALESCE(?3, local_path), error = COALESCE(?4, error) WHERE id = ?1",
                params![id.0.as_slice(), state_name(state), local_path, error],
            )
            .map_err(|source| StoreError::Sql { path: self.path.clone(), source })?;
        Ok(())
    }

    /// Gives a transfer still `scanning` its manifest, with what the sender keeps of each
    /// file (`scanned`, in the manifest's order), and makes it `queued`; false when it is no
    /// longer scanning (cancelled meanwhile): nothing changes then.
    pub fn set_scanned_manifest(
        &self,
        manifest: &Manifest,
        scanned: &[Scanned],
    ) -> Result<bool, StoreError> {
        let stored = Outgoing {
            id: manifest.id,
            files: &manifest.files,
            scanned,
        };
        let text = serde_json::to_string(&stored).map_err(|e| StoreError::Sql {
            path: self.path.clone(),
            source: bad(e),
        })?;
        let n = self
            .db
            .execute(
                "UPDATE transfers SET manifest = ?2, state = 'queued' WHERE id = ?1 AND state = 'scanning'",
                params![manifest.id.0.as_slice(), text],
            )
            .map_err(|source| StoreError::Sql { path: self.path.clone(), source })?;
        Ok(n == 1)
    }

    /// What the sender keeps of each file of an outgoing transfer, in the manifest's order;
    /// `None` when the stored manifest has none (made by an older p2pd).
    pub fn scanned(&self, id: TransferId) -> Result<Option<Vec<Scanned>>, StoreError> {
        let err = |source| StoreError::Sql {
            path: self.path.clone(),
            source,
        };
        let text: Option<String> = self
            .db
            .query_row(
                "SELECT manifest FROM transfers WHERE id = ?1",
                [id.0.as_slice()],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        let Some(text) = text else { return Ok(None) };
        let kept: Kept = serde_json::from_str(&text).map_err(|e| err(bad(e)))?;
        Ok(kept.scanned)
    }

    /// One transfer.
    pub fn transfer(&self, id: TransferId) -> Result<Option<Record>, StoreError> {
        self.db
            .query_row(
                "SELECT peer, peer_name, direction, state, manifest, local_path, error, created_at FROM transfers WHERE id = ?1",
                [id.0.as_slice()],
                row,
            )
            .optional()
            .map_err(|source| StoreError::Sql { path: self.path.clone(), source })
    }

    /// Calls `f` with every transfer, newest first, one at a time.
    pub fn each_transfer(&self, mut f: impl FnMut(Record)) -> Result<(), StoreError> {
        let err = |source| StoreError::Sql {
            path: self.path.clone(),
            source,
        };
        let mut stmt = self
            .db
            .prepare("SELECT peer, peer_name, direction, state, manifest, local_path, error, created_at FROM transfers ORDER BY created_at DESC, rowid DESC")
            .map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            match row(r) {
                Ok(rec) => f(rec),
                Err(e) => tracing::warn!("skipping an unreadable transfer record: {e}"),
            }
        }
        Ok(())
    }

    /// Records that the first `verified` chunks of `file` are verified and synced.
    pub fn set_verified(
        &self,
        id: TransferId,
        file: u32,
        verified: u64,
        done: bool,
    ) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO transfer_files (id, file, verified_chunks, done) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(id, file) DO UPDATE SET verified_chunks = excluded.verified_chunks, done = excluded.done",
                params![id.0.as_slice(), file, verified.cast_signed(), done],
            )
            .map_err(|source| StoreError::Sql { path: self.path.clone(), source })?;
        Ok(())
    }

    /// Per file: (verified chunks, done).
    pub fn verified(&self, id: TransferId) -> Result<Vec<(u32, u64, bool)>, StoreError> {
        let err = |source| StoreError::Sql {
            path: self.path.clone(),
            source,
        };
        let mut stmt = self
            .db
            .prepare("SELECT file, verified_chunks, done FROM transfer_files WHERE id = ?1")
            .map_err(err)?;
        let rows = stmt
            .query_map([id.0.as_slice()], |r| {
                Ok((
                    r.get::<_, u32>(0)?,
                    r.get::<_, i64>(1)?.cast_unsigned(),
                    r.get::<_, bool>(2)?,
                ))
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }
}

/// The stored manifest of an outgoing transfer: the manifest's fields (so it reads back as
/// a [`Manifest`]) and, per file, what the sender keeps of it.
#[derive(serde::Serialize)]
struct Outgoing<'a> {
    id: TransferId,
    files: &'a [FileEntry],
    scanned: &'a [Scanned],
}

/// A stored manifest, read only for what the sender keeps of each file.
#[derive(serde::Deserialize)]
struct Kept {
    #[serde(default)]
    scanned: Option<Vec<Scanned>>,
}

/// A stored manifest, read only far enough to tell one stored before its files were known.
#[derive(serde::Deserialize)]
struct Unscanned {
    id: TransferId,
    files: Vec<serde::de::IgnoredAny>,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    let peer: Vec<u8> = r.get(0)?;
    let peer: [u8; 32] = peer.try_into().map_err(|_| {
        rusqlite::Error::InvalidColumnType(0, "peer".into(), rusqlite::types::Type::Blob)
    })?;
    let manifest: String = r.get(4)?;
    let state = state_from(&r.get::<_, String>(3)?);
    // A transfer still being hashed, or ended before its files were hashed, lists no file,
    // which no valid manifest allows.
    let unscanned: Unscanned = serde_json::from_str(&manifest).map_err(bad)?;
    let manifest = if unscanned.files.is_empty() {
        Manifest {
            id: unscanned.id,
            files: Vec::new(),
        }
    } else {
        serde_json::from_str(&manifest).map_err(bad)?
    };
    Ok(Record {
        peer: PeerId::from_bytes(peer).map_err(bad)?,
        peer_name: PeerName::new(&r.get::<_, String>(1)?).map_err(bad)?,
        direction: if r.get::<_, i64>(2)? == 0 {
            Direction::Out
        } else {
            Direction::In
        },
        state,
        manifest,
        local_path: r.get(5)?,
        error: r.get(6)?,
        created_at: r.get::<_, i64>(7)?.cast_unsigned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::SecretKey;
    use proto::content::ChunkCv;
    use proto::transfer::RelPath;

    #[test]
    fn a_stored_name_the_rules_now_refuse_hides_only_its_own_transfer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let rec = |n: u8, path: &str| Record {
            peer: SecretKey::from_seed([1; 32]).peer_id(),
            peer_name: PeerName::new("bob").unwrap(),
            direction: Direction::In,
            state: TransferState::Offered,
            manifest: Manifest {
                id: TransferId([n; 16]),
                files: vec![FileEntry {
                    path: RelPath::new(path).unwrap(),
                    size: 1,
                    hash: [0; 32],
                }],
            },
            local_path: None,
            error: None,
            created_at: 1,
        };
        store.insert_transfer(&rec(1, "fine.txt")).unwrap();
        store.insert_transfer(&rec(2, "old.txt")).unwrap();
        // As an earlier version could have stored it: a zero-width space in the name.
        store
            .db
            .execute(
                "UPDATE transfers SET manifest = replace(manifest, 'old.txt', ?1) WHERE id = ?2",
                params!["o\u{200b}ld.txt", [2u8; 16].as_slice()],
            )
            .unwrap();
        let mut all = Vec::new();
        store.each_transfer(|r| all.push(r)).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].manifest.id, TransferId([1; 16]));
    }

    #[test]
    fn a_transfer_stored_while_hashing_gets_its_manifest_once_unless_it_ended() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let rec = |n: u8| Record {
            peer: SecretKey::from_seed([1; 32]).peer_id(),
            peer_name: PeerName::new("bob").unwrap(),
            direction: Direction::Out,
            state: TransferState::Scanning,
            manifest: Manifest {
                id: TransferId([n; 16]),
                files: Vec::new(),
            },
            local_path: Some("/data".into()),
            error: None,
            created_at: 1,
        };
        let scanned = |n: u8| Manifest {
            id: TransferId([n; 16]),
            files: vec![FileEntry {
                path: RelPath::new("data").unwrap(),
                size: 3,
                hash: [7; 32],
            }],
        };
        store.insert_transfer(&rec(1)).unwrap();
        store.insert_transfer(&rec(2)).unwrap();
        let back = store.transfer(TransferId([1; 16])).unwrap().unwrap();
        assert_eq!(back.state, TransferState::Scanning);
        assert!(back.manifest.files.is_empty());
        // Cancelled while hashing: it stays so, and readable.
        store
            .set_transfer_state(TransferId([2; 16]), TransferState::Cancelled, None, None)
            .unwrap();
        let kept = vec![Scanned {
            mtime: (1_700_000_000, 5),
            cvs: vec![ChunkCv([7; 32])],
        }];
        assert!(!store.set_scanned_manifest(&scanned(2), &kept).unwrap());
        assert_eq!(store.scanned(TransferId([1; 16])).unwrap(), None);
        assert!(store.set_scanned_manifest(&scanned(1), &kept).unwrap());
        assert!(!store.set_scanned_manifest(&scanned(1), &[]).unwrap());
        assert_eq!(store.scanned(TransferId([1; 16])).unwrap(), Some(kept));
        let mut all = Vec::new();
        store.each_transfer(|r| all.push(r)).unwrap();
        all.sort_by_key(|r| r.manifest.id.0);
        assert_eq!(all.len(), 2);
        assert_eq!(
            (all[0].state, &all[0].manifest),
            (TransferState::Queued, &scanned(1))
        );
        assert_eq!(all[1].state, TransferState::Cancelled);
        assert!(all[1].manifest.files.is_empty());
    }
}
