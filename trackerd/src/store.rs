//! The tracker's durable state in SQLite: name bindings, the last seq seen per key, and the
//! handover statements accepted per name (the latest [`MAX_HANDOVER_CHAIN`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use proto::identity::Signature;
use proto::tracker::{Handover, MAX_HANDOVER_CHAIN, SignedHandover};
use proto::{PeerId, PeerName};
use rusqlite::{Connection, params};

use crate::migrations;
use crate::registry::Binding;
use svc::schema::SchemaError;

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("tracker database {}: {source}", path.display())]
    Sql {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The schema could not be brought up to date (or is newer than this binary).
    #[error("tracker database {}", path.display())]
    Schema {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: SchemaError,
    },
}

/// The open database.
#[derive(Debug)]
pub struct Store {
    db: Connection,
    path: PathBuf,
    /// The `synchronous` level set on `db`, so that it is set again only when it changes.
    synchronous: &'static str,
}

/// What the store remembers: name bindings and the last seq per key.
pub type Loaded = (HashMap<PeerName, Binding>, HashMap<PeerId, u64>);

impl Store {
    /// Opens (creating if needed) `<state_dir>/tracker.db`.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        let path = state_dir.join("tracker.db");
        let err = |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        let mut db = Connection::open(&path).map_err(err)?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;",
        )
        .map_err(err)?;
        migrations::migrate(&mut db).map_err(|source| StoreError::Schema {
            path: path.clone(),
            source,
        })?;
        db.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        Ok(Store {
            db,
            path,
            synchronous: "NORMAL",
        })
    }

    /// The write-ahead log, which a group sync makes durable.
    pub fn wal_path(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push("-wal");
        p.into()
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    /// Loads every binding and seq. Rows that no longer parse are skipped with a warning.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        let mut names = HashMap::new();
        let mut stmt = self
            .db
            .prepare("SELECT name, key, last_used FROM names")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(self.err())?;
        for row in rows {
            let (name, key, last_used) = row.map_err(self.err())?;
            match (PeerName::new(&name), key_from(&key)) {
                (Ok(n), Some(key)) => {
                    let last_used = last_used.cast_unsigned();
                    names.insert(n, Binding { key, last_used });
                }
                _ => tracing::warn!(name, "skipping unreadable name binding"),
            }
        }
        let mut seqs = HashMap::new();
        let mut stmt = self
            .db
            .prepare("SELECT key, seq FROM seqs")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))
            .map_err(self.err())?;
        for row in rows {
            let (key, seq) = row.map_err(self.err())?;
            if let Some(k) = key_from(&key) {
                seqs.insert(k, seq.cast_unsigned());
            }
        }
        Ok((names, seqs))
    }

    /// Records a registration in one transaction: the key's seq, its binding's `last_used`
    /// (`now`), and a new binding if given, which replaces the key's previous name and any
    /// lapsed binding of the name. Nothing is synced here: the commit is durable against a
    /// crash of the process (WAL); a new binding must then be synced through
    /// [`crate::group_sync::GroupSync`] (with others) before it is acknowledged.
    ///
    /// `handover` is the statement by which the old key handed the name over: its seq is
    /// stored as that key's last seq, and the statement joins the name's chain (the latest
    /// [`MAX_HANDOVER_CHAIN`] kept). A new binding made without a statement (a free or lapsed
    /// name) starts the name's chain afresh.
    pub fn record(
        &mut self,
        binding: Option<&(PeerName, PeerId)>,
        key: &PeerId,
        seq: u64,
        now: u64,
        handover: Option<&SignedHandover>,
    ) -> Result<(), StoreError> {
        let (db, err) = self.sync("NORMAL")?;
        let tx = db.transaction().map_err(err)?;
        if let Some((name, owner)) = binding {
            tx.prepare_cached("DELETE FROM names WHERE key = ?1 OR name = ?2")
                .and_then(|mut st| st.execute(params![owner.as_bytes().as_slice(), name.as_str()]))
                .map_err(err)?;
            tx.prepare_cached(
                "INSERT INTO names (name, key, bound_at, last_used) VALUES (?1, ?2, ?3, ?3)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    name.as_str(),
                    owner.as_bytes().as_slice(),
                    now.cast_signed()
                ])
            })
            .map_err(err)?;
        } else {
            tx.prepare_cached("UPDATE names SET last_used = MAX(last_used, ?2) WHERE key = ?1")
                .and_then(|mut st| {
                    st.execute(params![key.as_bytes().as_slice(), now.cast_signed()])
                })
                .map_err(err)?;
        }
        match (binding, handover) {
            (_, Some(st)) => append_handover(&tx, st, now).map_err(err)?,
            (Some((name, _)), None) => {
                tx.prepare_cached("DELETE FROM handovers WHERE name = ?1")
                    .and_then(|mut st| st.execute([name.as_str()]))
                    .map_err(err)?;
            }
            (None, None) => {}
        }
        let handed_from = handover.map(|st| (st.handover.old_key, st.handover.seq));
        for (k, seq) in std::iter::once((*key, seq)).chain(handed_from) {
            tx.prepare_cached("INSERT INTO seqs (key, seq) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET seq = excluded.seq")
                .and_then(|mut st| st.execute(
                params![k.as_bytes().as_slice(), seq.cast_signed()],
            ))
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }
}

impl Store {
    /// Sets how hard the next writes are synced (`FULL` or `NORMAL`) and returns the
    /// connection with the error mapper for this file.
    fn sync(
        &mut self,
        level: &'static str,
    ) -> Result<
        (
            &mut Connection,
            impl Fn(rusqlite::Error) -> StoreError + Copy + '_,
        ),
        StoreError,
    > {
        let path = &self.path;
        let err = move |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        if self.synchronous != level {
            self.db
                .pragma_update(None, "synchronous", level)
                .map_err(err)?;
            self.synchronous = level;
        }
        Ok((&mut self.db, err))
    }

    /// Marks the bindings of `keys` used at `now`, in one transaction (not synced: losing it
    /// in a power cut only makes a binding look older).
    pub fn touch(&mut self, keys: &[PeerId], now: u64) -> Result<(), StoreError> {
        let (db, err) = self.sync("NORMAL")?;
        let tx = db.transaction().map_err(err)?;
        {
            let mut stmt = tx
                .prepare_cached("UPDATE names SET last_used = MAX(last_used, ?2) WHERE key = ?1")
                .map_err(err)?;
            for k in keys {
                stmt.execute(params![k.as_bytes().as_slice(), now.cast_signed()])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Removes the binding of `name` and its handover chain, synced to disk before this
    /// returns.
    pub fn release(&mut self, name: &PeerName) -> Result<(), StoreError> {
        let (db, err) = self.sync("FULL")?;
        let tx = db.transaction().map_err(err)?;
        tx.execute("DELETE FROM names WHERE name = ?1", [name.as_str()])
            .map_err(err)?;
        tx.execute("DELETE FROM handovers WHERE name = ?1", [name.as_str()])
            .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// The handover statements accepted for `name`, oldest first. Rows that no longer parse
    /// are skipped with a warning.
    pub fn handovers(&self, name: &PeerName) -> Result<Vec<SignedHandover>, StoreError> {
        let mut stmt = self
            .db
            .prepare_cached(
                "SELECT old_key, new_key, seq, sig FROM handovers WHERE name = ?1 ORDER BY n",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([name.as_str()], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                ))
            })
            .map_err(self.err())?;
        let mut chain = Vec::new();
        for row in rows {
            let (old, new, seq, sig) = row.map_err(self.err())?;
            let sig: Option<[u8; 64]> = sig.as_slice().try_into().ok();
            match (key_from(&old), key_from(&new), sig) {
                (Some(old_key), Some(new_key), Some(sig)) => chain.push(SignedHandover {
                    handover: Handover {
                        name: name.clone(),
                        old_key,
                        new_key,
                        seq: seq.cast_unsigned(),
                    },
                    sig: Signature(sig),
                }),
                _ => tracing::warn!(name = %name, "skipping an unreadable handover statement"),
            }
        }
        Ok(chain)
    }
}

/// Adds `st` to its name's chain and drops what falls beyond [`MAX_HANDOVER_CHAIN`].
fn append_handover(
    tx: &rusqlite::Transaction<'_>,
    st: &SignedHandover,
    now: u64,
) -> rusqlite::Result<()> {
    let h = &st.handover;
    tx.execute(
        "INSERT INTO handovers (name, old_key, new_key, seq, sig, accepted_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            h.name.as_str(),
            h.old_key.as_bytes().as_slice(),
            h.new_key.as_bytes().as_slice(),
            h.seq.cast_signed(),
            st.sig.0.as_slice(),
            now.cast_signed()
        ],
    )?;
    tx.execute(
        "DELETE FROM handovers WHERE name = ?1 AND n NOT IN (
             SELECT n FROM handovers WHERE name = ?1 ORDER BY n DESC LIMIT ?2)",
        params![h.name.as_str(), MAX_HANDOVER_CHAIN as i64],
    )?;
    Ok(())
}

fn key_from(bytes: &[u8]) -> Option<PeerId> {
    PeerId::from_bytes(bytes.try_into().ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::SecretKey;

    #[test]
    fn bindings_and_seqs_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let k = SecretKey::from_seed([1; 32]).peer_id();
        let name = PeerName::new("alice").unwrap();
        {
            let mut s = Store::open(dir.path()).unwrap();
            s.record(Some(&(name.clone(), k)), &k, 5, 1, None).unwrap();
            s.record(None, &k, u64::MAX - 1, 2, None).unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        let (names, seqs) = s.load().unwrap();
        assert_eq!(names.get(&name).map(|b| b.key), Some(k));
        assert_eq!(names.get(&name).map(|b| b.last_used), Some(2));
        assert_eq!(seqs.get(&k), Some(&(u64::MAX - 1)));
    }

    #[test]
    fn a_new_binding_replaces_the_keys_old_name_and_release_and_touch_persist() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            SecretKey::from_seed([1; 32]).peer_id(),
            SecretKey::from_seed([2; 32]).peer_id(),
        );
        let n = |s: &str| PeerName::new(s).unwrap();
        {
            let mut s = Store::open(dir.path()).unwrap();
            s.record(Some(&(n("one"), a)), &a, 1, 10, None).unwrap();
            s.record(Some(&(n("two"), a)), &a, 2, 20, None).unwrap();
            s.record(Some(&(n("one"), b)), &b, 1, 30, None).unwrap();
            // A lapsed binding of "two" taken by b: b's "one" and a's "two" go.
            s.record(Some(&(n("two"), b)), &b, 2, 40, None).unwrap();
            s.record(Some(&(n("three"), a)), &a, 3, 50, None).unwrap();
            s.touch(&[a], 60).unwrap();
            s.release(&n("two")).unwrap();
        }
        let (names, _) = Store::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(names.len(), 1, "{names:?}");
        let three = names.get(&n("three")).unwrap();
        assert_eq!((three.key, three.last_used), (a, 60));
    }

    #[test]
    fn handover_chains_keep_the_latest_and_restart_with_a_fresh_binding() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<SecretKey> = (1..=20u8).map(|i| SecretKey::from_seed([i; 32])).collect();
        let name = PeerName::new("bob").unwrap();
        let statement = |i: usize| {
            Handover {
                name: name.clone(),
                old_key: keys[i].peer_id(),
                new_key: keys[i + 1].peer_id(),
                seq: 100 + i as u64,
            }
            .sign(&keys[i])
        };
        {
            let mut s = Store::open(dir.path()).unwrap();
            let k0 = keys[0].peer_id();
            s.record(Some(&(name.clone(), k0)), &k0, 1, 1, None)
                .unwrap();
            for i in 0..19 {
                let new = keys[i + 1].peer_id();
                s.record(Some(&(name.clone(), new)), &new, 1, 2, Some(&statement(i)))
                    .unwrap();
            }
        }
        let mut s = Store::open(dir.path()).unwrap();
        let chain = s.handovers(&name).unwrap();
        let want: Vec<SignedHandover> = (3..19).map(statement).collect();
        assert_eq!(chain, want);
        assert!(chain.iter().all(SignedHandover::verify));
        let (_, seqs) = s.load().unwrap();
        assert_eq!(seqs.get(&keys[18].peer_id()), Some(&118));
        // Released, then bound afresh: no chain.
        s.release(&name).unwrap();
        assert!(s.handovers(&name).unwrap().is_empty());
        s.record(
            Some(&(name.clone(), keys[18].peer_id())),
            &keys[18].peer_id(),
            2,
            3,
            Some(&statement(17)),
        )
        .unwrap();
        let k = keys[19].peer_id();
        s.record(Some(&(name.clone(), k)), &k, 5, 4, None).unwrap();
        assert!(s.handovers(&name).unwrap().is_empty());
    }

    /// The statements the first release ran at every start, before schema versions existed.
    const UNVERSIONED_SCHEMA: &str = "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         CREATE TABLE IF NOT EXISTS names (name TEXT PRIMARY KEY, key BLOB NOT NULL, bound_at INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS seqs (key BLOB PRIMARY KEY, seq INTEGER NOT NULL);";

    #[test]
    fn an_unversioned_database_upgrades_and_keeps_its_bindings() {
        let dir = tempfile::tempdir().unwrap();
        let k = SecretKey::from_seed([1; 32]).peer_id();
        {
            let db = Connection::open(dir.path().join("tracker.db")).unwrap();
            db.execute_batch(UNVERSIONED_SCHEMA).unwrap();
            db.execute(
                "INSERT INTO names (name, key, bound_at) VALUES ('alice', ?1, 10)",
                [k.as_bytes().as_slice()],
            )
            .unwrap();
            db.execute(
                "INSERT INTO seqs (key, seq) VALUES (?1, 7)",
                [k.as_bytes().as_slice()],
            )
            .unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        let v: u32 =
            s.db.pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap();
        assert_eq!(v, migrations::LATEST);
        let (names, seqs) = s.load().unwrap();
        let alice = names.get(&PeerName::new("alice").unwrap()).unwrap();
        assert_eq!(alice.key, k);
        assert!(
            alice.last_used + 5 >= svc::unix_now(),
            "used at the upgrade"
        );
        assert_eq!(seqs.get(&k), Some(&7));
    }

    #[test]
    fn a_newer_database_is_refused_naming_both_versions() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Connection::open(dir.path().join("tracker.db")).unwrap();
            db.pragma_update(None, "user_version", 99).unwrap();
        }
        let err = Store::open(dir.path()).unwrap_err();
        let err = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(err.contains("99"), "{err}");
        assert!(
            err.contains(&format!("up to {}", migrations::LATEST)),
            "{err}"
        );
    }
}
