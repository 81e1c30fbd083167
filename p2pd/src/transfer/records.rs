//! The transfer service's tables: one row per transfer (manifest, state, paths) and one per
//! file (chunks verified so far, done), so a transfer resumes after a restart. Only the
//! transfer service holds a [`TransferStore`].

use proto::api::{Direction, TransferState};
use proto::transfer::{FileEntry, Manifest, RelPath, TransferId};
use proto::{PeerId, PeerName};
use rusqlite::{OptionalExtension, params};

use super::scan::Scanned;
use crate::files::Landing;
use crate::store::{Db, StoreError};

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
    /// When it was stored, in milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// It carries a share entry the receiver asked for (`p2pctl get`).
    pub pull: bool,
    /// When it ended, in milliseconds since the Unix epoch; `None` until then (and for one
    /// that ended before end times were kept).
    pub ended_ms: Option<u64>,
    /// Receiver: the paths the first files (up to [`LANDED_KEPT`], in order) landed under,
    /// as far as they have.
    pub landed: Vec<String>,
}

/// How many landed names a [`Record`] carries (as many as `transfers` samples).
pub const LANDED_KEPT: usize = 5;

fn state_name(s: TransferState) -> &'static str {
    s.as_str()
}

pub(super) fn state_from(s: &str) -> TransferState {
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

pub(super) fn bad(e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
}

/// The transfer service's handle on the database: its tables (`transfers`,
/// `transfer_files`, `expected_pulls`; `swarm_pulls` in `swarms.rs`) and their queries,
/// nothing else.
#[derive(Clone, Debug)]
pub struct TransferStore {
    pub(super) db: Db,
}

const SELECT: &str = "SELECT peer, peer_name, direction, state, manifest, local_path, error, created_at, pull, ended_at,
    (SELECT json_group_array(landed) FROM (SELECT landed FROM transfer_files
        WHERE transfer_files.id = transfers.id AND landed IS NOT NULL ORDER BY file LIMIT 5))
    FROM transfers";

impl TransferStore {
    /// The transfer service's handle on `db`.
    pub fn new(db: Db) -> TransferStore {
        TransferStore { db }
    }

    fn encode(&self, manifest: &Manifest) -> Result<String, StoreError> {
        serde_json::to_string(manifest).map_err(|e| StoreError::Sql {
            path: self.db.path().to_owned(),
            source: bad(e),
        })
    }

    /// Stores a new transfer.
    pub async fn insert(&self, rec: &Record) -> Result<(), StoreError> {
        let manifest = self.encode(&rec.manifest)?;
        let rec = rec.clone();
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT INTO transfers (id, peer, peer_name, direction, state, manifest, local_path, error, created_at, pull, ended_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    params![
                        rec.manifest.id.0.as_slice(),
                        rec.peer.as_bytes().as_slice(),
                        rec.peer_name.as_str(),
                        i64::from(rec.direction == Direction::In),
                        state_name(rec.state),
                        manifest,
                        rec.local_path,
                        rec.error,
                        rec.created_ms.cast_signed(),
                        rec.pull,
                        rec.ended_ms.map(u64::cast_signed),
                    ],
                )?;
                Ok(())
            })
            .await
    }

    /// Stores a pull asked for whose offer has not come yet: its id, owner and destination.
    pub async fn expect_pull(
        &self,
        id: TransferId,
        peer: PeerId,
        dest: String,
    ) -> Result<(), StoreError> {
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT OR REPLACE INTO expected_pulls (id, peer, dest) VALUES (?1, ?2, ?3)",
                    params![id.0.as_slice(), peer.as_bytes().as_slice(), dest],
                )?;
                Ok(())
            })
            .await
    }

    /// Replaces the manifest of an incoming transfer still offered (a pull that names its
    /// result); false if it is no longer offered.
    pub async fn set_offered_manifest(&self, manifest: &Manifest) -> Result<bool, StoreError> {
        let text = self.encode(manifest)?;
        let id = manifest.id;
        self.db
            .call(move |c| {
                let n = c.execute(
                    "UPDATE transfers SET manifest = ?2 WHERE id = ?1 AND direction = 1 AND state = 'offered'",
                    params![id.0.as_slice(), text],
                )?;
                Ok(n == 1)
            })
            .await
    }

    /// Forgets an expected pull (its offer came).
    pub async fn forget_pull(&self, id: TransferId) -> Result<(), StoreError> {
        self.run_on(id, "DELETE FROM expected_pulls WHERE id = ?1")
            .await
    }

    /// Runs `sql`, whose one parameter is the transfer id `id`.
    async fn run_on(&self, id: TransferId, sql: &'static str) -> Result<(), StoreError> {
        self.db
            .call(move |c| {
                c.execute(sql, params![id.0.as_slice()])?;
                Ok(())
            })
            .await
    }

    /// The pulls asked for whose offer has not come: id, owner, destination. Unreadable rows
    /// are skipped.
    pub async fn expected_pulls(&self) -> Result<Vec<(TransferId, PeerId, String)>, StoreError> {
        self.db
            .call(|c| {
                let mut st = c.prepare("SELECT id, peer, dest FROM expected_pulls")?;
                let rows = st.query_map([], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?;
                let mut out = Vec::new();
                for row in rows {
                    let (id, peer, dest) = row?;
                    let id = <[u8; 16]>::try_from(id.as_slice()).ok().map(TransferId);
                    let peer = <[u8; 32]>::try_from(peer.as_slice())
                        .ok()
                        .and_then(|b| PeerId::from_bytes(b).ok());
                    if let (Some(id), Some(peer)) = (id, peer) {
                        out.push((id, peer, dest));
                    }
                }
                Ok(out)
            })
            .await
    }

    /// Marks a stored transfer a pull this side asked for.
    pub async fn set_pull(&self, id: TransferId) -> Result<(), StoreError> {
        self.run_on(id, "UPDATE transfers SET pull = 1 WHERE id = ?1")
            .await
    }

    /// Sets a transfer's state (and local path, error or end time in ms when given; an end
    /// time already stored stays).
    pub async fn set_state(
        &self,
        id: TransferId,
        state: TransferState,
        (local_path, error): (Option<&str>, Option<&str>),
        ended_at: Option<u64>,
    ) -> Result<(), StoreError> {
        let local_path = local_path.map(str::to_owned);
        let error = error.map(str::to_owned);
        self.db
            .call(move |c| set_state(c, id, state, (local_path, error), ended_at))
            .await
    }

    /// Forgets the transfers of `ids` that have ended (their rows and chunk records), in one
    /// transaction; an unfinished one is left. Returns how many were forgotten.
    pub async fn forget_ended(&self, ids: Vec<TransferId>) -> Result<u64, StoreError> {
        self.db
            .call(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let mut forgotten = 0;
                {
                    let mut rows = tx.prepare(
                        "DELETE FROM transfers WHERE id = ?1
                         AND state IN ('done', 'declined', 'cancelled', 'failed', 'expired')",
                    )?;
                    let mut files = tx.prepare("DELETE FROM transfer_files WHERE id = ?1")?;
                    for id in &ids {
                        if rows.execute([id.0.as_slice()])? == 1 {
                            files.execute([id.0.as_slice()])?;
                            forgotten += 1;
                        }
                    }
                }
                tx.commit()?;
                Ok(forgotten)
            })
            .await
    }

    /// Gives a transfer still `scanning` its manifest, with what the sender keeps of each
    /// file (`scanned`, in the manifest's order), and makes it `queued`; false when it is no
    /// longer scanning (cancelled meanwhile): nothing changes then.
    pub async fn set_scanned_manifest(
        &self,
        manifest: &Manifest,
        scanned: &[Scanned],
    ) -> Result<bool, StoreError> {
        let stored = Outgoing {
            id: manifest.id,
            files: &manifest.files,
            dirs: &manifest.dirs,
            scanned,
        };
        let text = serde_json::to_string(&stored).map_err(|e| StoreError::Sql {
            path: self.db.path().to_owned(),
            source: bad(e),
        })?;
        let id = manifest.id;
        self.db
            .call(move |c| {
                let n = c.execute(
                    "UPDATE transfers SET manifest = ?2, state = 'queued' WHERE id = ?1 AND state = 'scanning'",
                    params![id.0.as_slice(), text],
                )?;
                Ok(n == 1)
            })
            .await
    }

    /// What the sender keeps of each file of an outgoing transfer, in the manifest's order;
    /// `None` when the stored manifest has none (made by an older p2pd).
    pub async fn scanned(&self, id: TransferId) -> Result<Option<Vec<Scanned>>, StoreError> {
        let path = self.db.path().to_owned();
        let text: Option<String> = self
            .db
            .call(move |c| {
                c.query_row(
                    "SELECT manifest FROM transfers WHERE id = ?1",
                    [id.0.as_slice()],
                    |r| r.get(0),
                )
                .optional()
            })
            .await?;
        let Some(text) = text else { return Ok(None) };
        let kept: Kept = serde_json::from_str(&text).map_err(|e| StoreError::Sql {
            path,
            source: bad(e),
        })?;
        Ok(kept.scanned)
    }

    /// One transfer.
    pub async fn get(&self, id: TransferId) -> Result<Option<Record>, StoreError> {
        self.db.call(move |c| get(c, id)).await
    }

    /// Every transfer, newest first, each mapped by `f` as it is read (on the database
    /// thread), so only what `f` keeps of each stays in memory. An unreadable record is
    /// skipped with a warning.
    pub async fn load<T, F>(&self, mut f: F) -> Result<Vec<T>, StoreError>
    where
        T: Send + 'static,
        F: FnMut(Record) -> T + Send + 'static,
    {
        self.db
            .call(move |c| {
                let mut stmt =
                    c.prepare(&format!("{SELECT} ORDER BY created_at DESC, rowid DESC"))?;
                let mut rows = stmt.query([])?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    match row(r) {
                        Ok(rec) => out.push(f(rec)),
                        Err(e) => tracing::warn!("skipping an unreadable transfer record: {e}"),
                    }
                }
                Ok(out)
            })
            .await
    }

    /// Records that the first `verified` chunks of `file` are verified and synced, and once
    /// it is done, the path it `landed` under (kept once given). Waits on this thread: for
    /// the sink's durability thread and the receiver's resume check (in `block_in_place`).
    pub fn set_verified_blocking(
        &self,
        id: TransferId,
        file: u32,
        verified: u64,
        landed: Option<String>,
    ) -> Result<(), StoreError> {
        self.db.call_blocking(move |c| {
            c.prepare_cached(
                "INSERT INTO transfer_files (id, file, verified_chunks, done, landed) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(id, file) DO UPDATE SET verified_chunks = excluded.verified_chunks,
                     done = excluded.done, landed = COALESCE(excluded.landed, landed)",
            )?
            .execute(params![
                id.0.as_slice(),
                file,
                verified.cast_signed(),
                landed.is_some(),
                landed
            ])?;
            Ok(())
        })
    }

    /// Stores where the top-level directories of an incoming transfer land (chosen when it
    /// was accepted), as a JSON object from offered name to landed name.
    pub async fn set_landing(&self, id: TransferId, landing: &Landing) -> Result<(), StoreError> {
        let landing = landing.clone();
        self.db
            .call(move |c| {
                let json = serde_json::to_string(&landing).map_err(bad)?;
                c.execute(
                    "UPDATE transfers SET landing = ?2 WHERE id = ?1",
                    params![id.0.as_slice(), json],
                )?;
                Ok(())
            })
            .await
    }

    /// Where the top-level directories of an incoming transfer land; empty when none was
    /// chosen (a transfer accepted before this was kept, a pull, files only).
    pub async fn landing(&self, id: TransferId) -> Result<Landing, StoreError> {
        self.db
            .call(move |c| {
                let json: Option<String> = c
                    .query_row(
                        "SELECT landing FROM transfers WHERE id = ?1",
                        [id.0.as_slice()],
                        |r| r.get(0),
                    )
                    .optional()?
                    .flatten();
                json.map_or(Ok(Landing::new()), |j| {
                    serde_json::from_str(&j).map_err(bad)
                })
            })
            .await
    }

    /// Per file: (verified chunks, done).
    pub async fn verified(&self, id: TransferId) -> Result<Vec<(u32, u64, bool)>, StoreError> {
        self.db
            .call(move |c| {
                let mut stmt = c.prepare(
                    "SELECT file, verified_chunks, done FROM transfer_files WHERE id = ?1",
                )?;
                let rows = stmt.query_map([id.0.as_slice()], |r| {
                    Ok((
                        r.get::<_, u32>(0)?,
                        r.get::<_, i64>(1)?.cast_unsigned(),
                        r.get::<_, bool>(2)?,
                    ))
                })?;
                rows.collect()
            })
            .await
    }
}

fn set_state(
    c: &rusqlite::Connection,
    id: TransferId,
    state: TransferState,
    (local_path, error): (Option<String>, Option<String>),
    ended_at: Option<u64>,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "UPDATE transfers SET state = ?2, local_path = COALESCE(?3, local_path), error = COALESCE(?4, error),
             ended_at = COALESCE(ended_at, ?5) WHERE id = ?1",
    )?
    .execute(params![
        id.0.as_slice(),
        state_name(state),
        local_path,
        error,
        ended_at.map(u64::cast_signed)
    ])?;
    Ok(())
}

fn get(c: &rusqlite::Connection, id: TransferId) -> rusqlite::Result<Option<Record>> {
    c.prepare_cached(&format!("{SELECT} WHERE id = ?1"))?
        .query_row([id.0.as_slice()], row)
        .optional()
}

/// The stored manifest of an outgoing transfer: the manifest's fields (so it reads back as
/// a [`Manifest`]) and, per file, what the sender keeps of it.
#[derive(serde::Serialize)]
struct Outgoing<'a> {
    id: TransferId,
    files: &'a [FileEntry],
    #[serde(skip_serializing_if = "<[RelPath]>::is_empty")]
    dirs: &'a [RelPath],
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
    #[serde(default)]
    dirs: Vec<serde::de::IgnoredAny>,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    let peer: Vec<u8> = r.get(0)?;
    let peer: [u8; 32] = peer.try_into().map_err(|_| {
        rusqlite::Error::InvalidColumnType(0, "peer".into(), rusqlite::types::Type::Blob)
    })?;
    let manifest: String = r.get(4)?;
    let state = state_from(&r.get::<_, String>(3)?);
    // A transfer still being hashed, or ended before its files were hashed, lists neither a
    // file nor a directory, which no valid manifest allows (one of directories alone does).
    let unscanned: Unscanned = serde_json::from_str(&manifest).map_err(bad)?;
    let manifest = if unscanned.files.is_empty() && unscanned.dirs.is_empty() {
        Manifest {
            id: unscanned.id,
            files: Vec::new(),
            dirs: Vec::new(),
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
        created_ms: r.get::<_, i64>(7)?.cast_unsigned(),
        pull: r.get(8)?,
        ended_ms: r.get::<_, Option<i64>>(9)?.map(i64::cast_unsigned),
        landed: serde_json::from_str(&r.get::<_, String>(10)?).map_err(bad)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::SecretKey;
    use proto::content::ChunkCv;

    /// A transfer with bob of id `[n; 16]`, its files of 1 byte at `paths`.
    fn record(n: u8, direction: Direction, state: TransferState, paths: &[&str]) -> Record {
        Record {
            peer: SecretKey::from_seed([1; 32]).peer_id(),
            peer_name: PeerName::new("bob").unwrap(),
            direction,
            state,
            manifest: Manifest {
                id: TransferId([n; 16]),
                files: paths
                    .iter()
                    .map(|path| FileEntry {
                        path: RelPath::new(path).unwrap(),
                        size: 1,
                        hash: [0; 32],
                    })
                    .collect(),
                dirs: Vec::new(),
            },
            local_path: None,
            error: None,
            created_ms: 1,
            pull: false,
            ended_ms: None,
            landed: Vec::new(),
        }
    }

    #[tokio::test]
    async fn an_expected_pull_is_kept_until_its_offer_comes() {
        let dir = tempfile::tempdir().unwrap();
        let store = TransferStore::new(Db::open(dir.path()).await.unwrap());
        let alice = SecretKey::from_seed([1; 32]).peer_id();
        let (a, b) = (TransferId([1; 16]), TransferId([2; 16]));
        store.expect_pull(a, alice, "/in".into()).await.unwrap();
        store.expect_pull(b, alice, "/other".into()).await.unwrap();
        store.forget_pull(b).await.unwrap();
        let kept = store.expected_pulls().await.unwrap();
        assert_eq!(kept, [(a, alice, "/in".to_owned())]);
    }

    #[tokio::test]
    async fn a_stored_name_the_rules_now_refuse_hides_only_its_own_transfer() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).await.unwrap();
        let store = TransferStore::new(db.clone());
        let rec = |n: u8, path: &str| record(n, Direction::In, TransferState::Offered, &[path]);
        store.insert(&rec(1, "fine.txt")).await.unwrap();
        store.insert(&rec(2, "old.txt")).await.unwrap();
        // As an earlier version could have stored it: a zero-width space in the name.
        db.call(|c| {
            c.execute(
                "UPDATE transfers SET manifest = replace(manifest, 'old.txt', ?1) WHERE id = ?2",
                params!["o\u{200b}ld.txt", [2u8; 16].as_slice()],
            )
        })
        .await
        .unwrap();
        let all = store.load(|r| r).await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].manifest.id, TransferId([1; 16]));
    }

    #[tokio::test]
    async fn a_transfer_stored_while_hashing_gets_its_manifest_once_unless_it_ended() {
        let dir = tempfile::tempdir().unwrap();
        let store = TransferStore::new(Db::open(dir.path()).await.unwrap());
        let rec = |n: u8| Record {
            local_path: Some("/data".into()),
            ..record(n, Direction::Out, TransferState::Scanning, &[])
        };
        let scanned = |n: u8| Manifest {
            id: TransferId([n; 16]),
            files: vec![FileEntry {
                path: RelPath::new("data").unwrap(),
                size: 3,
                hash: [7; 32],
            }],
            dirs: Vec::new(),
        };
        store.insert(&rec(1)).await.unwrap();
        store.insert(&rec(2)).await.unwrap();
        let back = store.get(TransferId([1; 16])).await.unwrap().unwrap();
        assert_eq!(back.state, TransferState::Scanning);
        assert!(back.manifest.files.is_empty());
        // Cancelled while hashing: it stays so, and readable.
        store
            .set_state(
                TransferId([2; 16]),
                TransferState::Cancelled,
                (None, None),
                Some(9),
            )
            .await
            .unwrap();
        let kept = vec![Scanned {
            mtime: (1_700_000_000, 5),
            cvs: vec![ChunkCv([7; 32])],
            base: Some("/data".into()),
        }];
        assert!(
            !store
                .set_scanned_manifest(&scanned(2), &kept)
                .await
                .unwrap()
        );
        assert_eq!(store.scanned(TransferId([1; 16])).await.unwrap(), None);
        assert!(
            store
                .set_scanned_manifest(&scanned(1), &kept)
                .await
                .unwrap()
        );
        assert!(!store.set_scanned_manifest(&scanned(1), &[]).await.unwrap());
        assert_eq!(
            store.scanned(TransferId([1; 16])).await.unwrap(),
            Some(kept)
        );
        let mut all = store.load(|r| r).await.unwrap();
        all.sort_by_key(|r| r.manifest.id.0);
        assert_eq!(all.len(), 2);
        assert_eq!(
            (all[0].state, &all[0].manifest),
            (TransferState::Queued, &scanned(1))
        );
        assert_eq!(all[1].state, TransferState::Cancelled);
        assert!(all[1].manifest.files.is_empty());
    }

    #[tokio::test]
    async fn a_queued_send_keeps_its_empty_directories_and_an_older_row_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).await.unwrap();
        let store = TransferStore::new(db.clone());
        for n in [1, 2, 3] {
            let rec = Record {
                local_path: Some("/data".into()),
                ..record(n, Direction::Out, TransferState::Scanning, &[])
            };
            store.insert(&rec).await.unwrap();
        }
        let mut manifest = record(1, Direction::Out, TransferState::Queued, &["d/f"]).manifest;
        manifest.dirs = vec![RelPath::new("d/empty").unwrap(), RelPath::new("e").unwrap()];
        assert!(store.set_scanned_manifest(&manifest, &[]).await.unwrap());
        let back = store.get(TransferId([1; 16])).await.unwrap().unwrap();
        assert_eq!(back.manifest, manifest);
        // Directories alone, no file: not taken for a transfer still being hashed.
        let mut bare = record(3, Direction::Out, TransferState::Queued, &[]).manifest;
        bare.dirs = vec![RelPath::new("a/b/c").unwrap()];
        assert!(store.set_scanned_manifest(&bare, &[]).await.unwrap());
        let back = store.get(TransferId([3; 16])).await.unwrap().unwrap();
        assert_eq!((back.state, &back.manifest), (TransferState::Queued, &bare));
        assert_eq!(
            store.scanned(TransferId([3; 16])).await.unwrap(),
            Some(Vec::new())
        );
        // As a version before empty directories stored it: no `dirs` field at all.
        let old = record(2, Direction::Out, TransferState::Queued, &["f"]).manifest;
        assert!(store.set_scanned_manifest(&old, &[]).await.unwrap());
        let text: String = db
            .call(|c| {
                c.query_row(
                    "SELECT manifest FROM transfers WHERE id = ?1",
                    [[2u8; 16].as_slice()],
                    |r| r.get(0),
                )
            })
            .await
            .unwrap();
        assert!(!text.contains("dirs"), "{text}");
        let back = store.get(TransferId([2; 16])).await.unwrap().unwrap();
        assert_eq!(back.manifest, old);
    }

    #[tokio::test]
    async fn landed_names_and_end_times_are_kept_and_ended_transfers_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let store = TransferStore::new(Db::open(dir.path()).await.unwrap());
        let (a, b) = (TransferId([1; 16]), TransferId([2; 16]));
        let seven = |n| {
            let paths: Vec<String> = (0..7).map(|i| format!("f{i}.bin")).collect();
            let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
            record(n, Direction::In, TransferState::Running, &paths)
        };
        store.insert(&seven(1)).await.unwrap();
        store.insert(&seven(2)).await.unwrap();
        for file in 0..7 {
            let name = format!("f{file} (1).bin");
            store.set_verified_blocking(a, file, 1, Some(name)).unwrap();
        }
        // A later record without a name keeps the one given.
        store.set_verified_blocking(a, 0, 1, None).unwrap();
        store.set_verified_blocking(b, 0, 1, None).unwrap();
        let got = store.get(a).await.unwrap().unwrap();
        assert_eq!(
            got.landed,
            [
                "f0 (1).bin",
                "f1 (1).bin",
                "f2 (1).bin",
                "f3 (1).bin",
                "f4 (1).bin"
            ]
        );
        assert!(store.get(b).await.unwrap().unwrap().landed.is_empty());
        store
            .set_state(a, TransferState::Done, (None, None), Some(50))
            .await
            .unwrap();
        // The first end time stays.
        store
            .set_state(a, TransferState::Done, (None, None), Some(60))
            .await
            .unwrap();
        assert_eq!(store.get(a).await.unwrap().unwrap().ended_ms, Some(50));
        // Only the ended one is forgotten, its chunk records with it.
        assert_eq!(store.forget_ended(vec![a, b]).await.unwrap(), 1);
        assert!(store.get(a).await.unwrap().is_none());
        assert!(store.verified(a).await.unwrap().is_empty());
        assert_eq!(store.verified(b).await.unwrap().len(), 1);
        assert_eq!(store.load(|r| r.manifest.id).await.unwrap(), [b]);
    }

    #[tokio::test]
    async fn where_directories_land_is_kept_per_transfer() {
        let dir = tempfile::tempdir().unwrap();
        let store = TransferStore::new(Db::open(dir.path()).await.unwrap());
        let (a, b) = (TransferId([1; 16]), TransferId([2; 16]));
        store
            .insert(&record(1, Direction::In, TransferState::Running, &["d/x"]))
            .await
            .unwrap();
        store
            .insert(&record(2, Direction::In, TransferState::Running, &["d/x"]))
            .await
            .unwrap();
        let landing = Landing::from([("d".to_owned(), "d (1)".to_owned())]);
        store.set_landing(a, &landing).await.unwrap();
        assert_eq!(store.landing(a).await.unwrap(), landing);
        assert!(store.landing(b).await.unwrap().is_empty());
        // An unknown transfer lands nowhere special either.
        assert!(store.landing(TransferId([3; 16])).await.unwrap().is_empty());
    }
}
