//! p2pd's durable state in SQLite (WAL, `synchronous = FULL`), one database for the whole
//! daemon, reached through the worker thread of [`db`]. Each service owns its tables and
//! their queries behind a typed handle: this module holds the peer table's, [`PeerStore`]
//! (pinned names and keys with their flags, the address book in [`book`], the move of a pin
//! to a rotated key in [`rekey`]); chat's messages are `chat::store`, transfers
//! `transfer::records`. [`migrations`] is the schema's whole history, for every table.

use std::path::{Path, PathBuf};

use proto::{PeerId, PeerName};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

mod book;
pub mod db;
pub mod migrations;
mod rekey;

pub use db::Db;

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("database {}: {source}", path.display())]
    Sql {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// No randomness for a message id.
    #[error("no randomness for a message id: {0}")]
    Random(String),
    /// The schema could not be brought up to date.
    #[error("database {}: {source}", path.display())]
    Migrate {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: svc::schema::SchemaError,
    },
    /// The database worker thread could not be started.
    #[error("database {}: cannot start its thread: {source}", path.display())]
    Thread {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The database worker has stopped (the daemon is stopping).
    #[error("the database is closed")]
    Stopped,
    /// The database file's permissions could not be set.
    #[error("database {}: cannot make it private (0600): {source}", path.display())]
    Mode {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A peer the daemon has pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownPeer {
    /// Its key.
    pub id: PeerId,
    /// The name pinned to that key.
    pub name: PeerName,
    /// Marked trusted.
    pub trusted: bool,
    /// Offers accepted without asking.
    pub auto_accept: bool,
    /// Blocked.
    pub blocked: bool,
}

/// Outcome of pinning a name to a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// First sight: pinned now.
    New,
    /// Already pinned to this key.
    Same,
    /// The name is pinned to another key: refuse until the user forgets the pin.
    Conflict {
        /// The key pinned for the name.
        pinned: PeerId,
    },
}

/// Creates the database file 0600 if it is missing and makes it and its WAL companions 0600
/// if they exist. SQLite creates `-wal` and `-shm` with the database file's mode.
pub(crate) fn private_files(db: &Path) -> Result<(), StoreError> {
    use svc::private::OwnerOnly as _;
    let mode = |path: &Path, source| StoreError::Mode {
        path: path.to_owned(),
        source,
    };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .owner_only()
        .open(db)
        .map_err(|e| mode(db, e))?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let file = PathBuf::from(name);
        match svc::private::restrict(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(mode(&file, e)),
            _ => {}
        }
    }
    Ok(())
}

pub(crate) fn peer_id(bytes: Vec<u8>) -> rusqlite::Result<PeerId> {
    let arr: [u8; 32] = bytes.try_into().map_err(|_| {
        rusqlite::Error::InvalidColumnType(0, "id".into(), rusqlite::types::Type::Blob)
    })?;
    PeerId::from_bytes(arr).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(e))
    })
}

pub(crate) fn peer_name(text: String) -> rusqlite::Result<PeerName> {
    PeerName::new(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// The peer table's rows: pinned names and keys with the user's flags, and the address book.
/// Owned by [`Node`](crate::node::Node); nothing else writes these tables.
#[derive(Clone, Debug)]
pub struct PeerStore {
    db: Db,
}

impl PeerStore {
    /// The peer table's handle on `db`.
    pub fn new(db: Db) -> PeerStore {
        PeerStore { db }
    }

    /// Every pinned peer.
    pub async fn known_peers(&self) -> Result<Vec<KnownPeer>, StoreError> {
        self.db
            .call(|c| {
                let mut stmt =
                    c.prepare("SELECT id, name, trusted, auto_accept, blocked FROM peers")?;
                let rows = stmt.query_map([], |r| {
                    Ok(KnownPeer {
                        id: peer_id(r.get(0)?)?,
                        name: peer_name(r.get(1)?)?,
                        trusted: r.get(2)?,
                        auto_accept: r.get(3)?,
                        blocked: r.get(4)?,
                    })
                })?;
                rows.collect()
            })
            .await
    }

    /// What pinning `name` to `key` would give, without writing anything.
    pub async fn check_pin(&self, name: &PeerName, key: PeerId) -> Result<Pin, StoreError> {
        let name = name.clone();
        self.db
            .call(move |c| {
                let by_name: Option<Vec<u8>> = c
                    .prepare_cached("SELECT id FROM peers WHERE name = ?1")?
                    .query_row([name.as_str()], |r| r.get(0))
                    .optional()?;
                Ok(match by_name {
                    None => Pin::New,
                    Some(id) if id == key.as_bytes() => Pin::Same,
                    Some(id) => Pin::Conflict {
                        pinned: peer_id(id)?,
                    },
                })
            })
            .await
    }

    /// Pins `name` to `key` unless the name is pinned to another key. A key seen under a new
    /// name keeps its flags and takes the new name.
    pub async fn pin(&self, name: &PeerName, key: PeerId, now: u64) -> Result<Pin, StoreError> {
        let name = name.clone();
        self.db
            .call(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let pin = pin(&tx, &name, key, now)?;
                tx.commit()?;
                Ok(pin)
            })
            .await
    }

    /// Sets a pinned peer's flags.
    pub async fn set_flags(
        &self,
        id: PeerId,
        trusted: bool,
        auto_accept: bool,
        blocked: bool,
    ) -> Result<(), StoreError> {
        self.db
            .call(move |c| {
                set_flags(c, id, trusted, auto_accept, blocked)?;
                Ok(())
            })
            .await
    }

    /// Forgets the pin of `id` (its flags go too; its messages stay).
    pub async fn forget(&self, id: PeerId) -> Result<(), StoreError> {
        self.db
            .call(move |c| {
                forget(c, id)?;
                Ok(())
            })
            .await
    }

    /// In one transaction: forgets the pin of `old` and pins `name` to `new`, neither trusted
    /// nor auto-accepting, blocked if `blocked`.
    pub async fn replace_key(
        &self,
        old: PeerId,
        name: &PeerName,
        new: PeerId,
        blocked: bool,
        now: u64,
    ) -> Result<(), StoreError> {
        let name = name.clone();
        self.db
            .call(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                forget(&tx, old)?;
                pin(&tx, &name, new, now)?;
                set_flags(&tx, new, false, false, blocked)?;
                tx.commit()
            })
            .await
    }
}

fn pin(c: &Connection, name: &PeerName, key: PeerId, now: u64) -> rusqlite::Result<Pin> {
    let by_name: Option<Vec<u8>> = c
        .query_row(
            "SELECT id FROM peers WHERE name = ?1",
            [name.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(match by_name {
        Some(id) if id == key.as_bytes() => Pin::Same,
        Some(id) => Pin::Conflict {
            pinned: peer_id(id)?,
        },
        None => {
            let renamed = c.execute(
                "UPDATE peers SET name = ?1 WHERE id = ?2",
                params![name.as_str(), key.as_bytes().as_slice()],
            )?;
            if renamed == 0 {
                c.execute(
                    "INSERT INTO peers (id, name, pinned_at) VALUES (?1, ?2, ?3)",
                    params![key.as_bytes().as_slice(), name.as_str(), now.cast_signed()],
                )?;
            }
            Pin::New
        }
    })
}

fn set_flags(
    c: &Connection,
    id: PeerId,
    trusted: bool,
    auto_accept: bool,
    blocked: bool,
) -> rusqlite::Result<usize> {
    c.execute(
        "UPDATE peers SET trusted = ?2, auto_accept = ?3, blocked = ?4 WHERE id = ?1",
        params![id.as_bytes().as_slice(), trusted, auto_accept, blocked],
    )
}

fn forget(c: &Connection, id: PeerId) -> rusqlite::Result<usize> {
    c.execute(
        "DELETE FROM peers WHERE id = ?1",
        [id.as_bytes().as_slice()],
    )
}

/// Peers for tests.
#[cfg(test)]
pub(crate) mod testing {
    use proto::{PeerId, PeerName, SecretKey};

    /// Test peer `n`'s key.
    pub(crate) fn id(n: u8) -> PeerId {
        SecretKey::from_seed([n; 32]).peer_id()
    }

    /// A peer name.
    pub(crate) fn name(s: &str) -> PeerName {
        PeerName::new(s).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{id, name};
    use super::*;

    #[tokio::test]
    async fn pins_names_on_first_sight_and_refuses_changes() {
        let dir = tempfile::tempdir().unwrap();
        let s = PeerStore::new(Db::open(dir.path()).await.unwrap());
        assert_eq!(s.check_pin(&name("bob"), id(1)).await.unwrap(), Pin::New);
        assert!(
            s.known_peers().await.unwrap().is_empty(),
            "checking writes nothing"
        );
        assert_eq!(s.pin(&name("bob"), id(1), 1).await.unwrap(), Pin::New);
        assert_eq!(s.check_pin(&name("bob"), id(1)).await.unwrap(), Pin::Same);
        assert_eq!(
            s.check_pin(&name("bob"), id(2)).await.unwrap(),
            Pin::Conflict { pinned: id(1) }
        );
        assert_eq!(s.pin(&name("bob"), id(1), 2).await.unwrap(), Pin::Same);
        assert_eq!(
            s.pin(&name("bob"), id(2), 3).await.unwrap(),
            Pin::Conflict { pinned: id(1) }
        );
        s.set_flags(id(1), true, true, false).await.unwrap();
        assert_eq!(s.pin(&name("robert"), id(1), 4).await.unwrap(), Pin::New);
        let known = s.known_peers().await.unwrap();
        assert_eq!(known.len(), 1);
        assert_eq!((known[0].name.as_str(), known[0].trusted), ("robert", true));
        s.forget(id(1)).await.unwrap();
        assert_eq!(s.pin(&name("robert"), id(2), 5).await.unwrap(), Pin::New);
    }

    #[tokio::test]
    async fn replacing_a_key_keeps_only_the_block() {
        let dir = tempfile::tempdir().unwrap();
        let s = PeerStore::new(Db::open(dir.path()).await.unwrap());
        s.pin(&name("bob"), id(1), 1).await.unwrap();
        s.set_flags(id(1), true, true, true).await.unwrap();
        s.replace_key(id(1), &name("bob"), id(2), true, 2)
            .await
            .unwrap();
        let known = s.known_peers().await.unwrap();
        assert_eq!(known.len(), 1);
        let k = &known[0];
        assert_eq!(
            (k.id, k.name.as_str(), k.trusted, k.auto_accept, k.blocked),
            (id(2), "bob", false, false, true)
        );
    }
}
