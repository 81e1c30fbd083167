//! p2pd's durable state in SQLite (WAL): known peers with their pinned name → key binding and
//! flags, and every chat message. Synchronous and short: callers hold it behind one lock.

use std::path::{Path, PathBuf};

use proto::api::{Direction, MessageInfo, MessageState};
use proto::peer::{ChatMessage, MessageId};
use proto::{PeerId, PeerName};
use rusqlite::{Connection, OptionalExtension, params};

mod book;
pub mod migrations;
mod rekey;

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

/// The open database.
pub struct Store {
    pub(crate) db: Connection,
    pub(crate) path: PathBuf,
}

fn state_code(s: MessageState) -> i64 {
    match s {
        MessageState::Queued => 0,
        MessageState::Delivered => 1,
        MessageState::Refused => 2,
        MessageState::Received => 3,
        MessageState::Deferred => 4,
    }
}

/// An unknown code is an error, never a guess: read as queued, a message would be resent.
fn state_from(code: i64) -> rusqlite::Result<MessageState> {
    Ok(match code {
        0 => MessageState::Queued,
        1 => MessageState::Delivered,
        2 => MessageState::Refused,
        3 => MessageState::Received,
        4 => MessageState::Deferred,
        _ => {
            return Err(rusqlite::Error::IntegralValueOutOfRange(0, code));
        }
    })
}

/// Creates the database file 0600 if it is missing and makes it and its WAL companions 0600
/// if they exist. SQLite creates `-wal` and `-shm` with the database file's mode.
fn private_files(db: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mode = |path: &Path, source| StoreError::Mode {
        path: path.to_owned(),
        source,
    };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(db)
        .map_err(|e| mode(db, e))?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let file = PathBuf::from(name);
        match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(mode(&file, e)),
            _ => {}
        }
    }
    Ok(())
}

fn peer_id(bytes: Vec<u8>) -> rusqlite::Result<PeerId> {
    let arr: [u8; 32] = bytes.try_into().map_err(|_| {
        rusqlite::Error::InvalidColumnType(0, "id".into(), rusqlite::types::Type::Blob)
    })?;
    PeerId::from_bytes(arr).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(e))
    })
}

fn peer_name(text: String) -> rusqlite::Result<PeerName> {
    PeerName::new(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn message_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageInfo> {
    let id: Vec<u8> = r.get("id")?;
    let id: [u8; 16] = id.try_into().map_err(|_| {
        rusqlite::Error::InvalidColumnType(0, "id".into(), rusqlite::types::Type::Blob)
    })?;
    Ok(MessageInfo {
        id: MessageId(id),
        peer: peer_id(r.get("peer")?)?,
        peer_name: peer_name(r.get("peer_name")?)?,
        direction: if r.get::<_, i64>("direction")? == 0 {
            Direction::Out
        } else {
            Direction::In
        },
        seq: r.get::<_, i64>("seq")?.cast_unsigned(),
        text: r.get("text")?,
        state: state_from(r.get("state")?)?,
        sent_at: r.get::<_, i64>("sent_at")?.cast_unsigned(),
        detail: r.get("detail")?,
    })
}

impl Store {
    /// Opens (creating if needed) `<state_dir>/p2pd.db`.
    /// The schema is brought up to date by [`migrations`]; a database written by a newer
    /// p2pd is refused. The file and its WAL companions are made 0600 whatever the umask.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        let path = state_dir.join("p2pd.db");
        private_files(&path)?;
        let sql = |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        let mut db = Connection::open(&path).map_err(sql)?;
        db.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
            .map_err(sql)?;
        migrations::migrate(&mut db).map_err(|source| StoreError::Migrate {
            path: path.clone(),
            source,
        })?;
        Ok(Store { db, path })
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    /// Every pinned peer.
    pub fn known_peers(&self) -> Result<Vec<KnownPeer>, StoreError> {
        let mut stmt = self
            .db
            .prepare("SELECT id, name, trusted, auto_accept, blocked FROM peers")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(KnownPeer {
                    id: peer_id(r.get(0)?)?,
                    name: peer_name(r.get(1)?)?,
                    trusted: r.get(2)?,
                    auto_accept: r.get(3)?,
                    blocked: r.get(4)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// What pinning `name` to `key` would give, without writing anything.
    pub fn check_pin(&self, name: &PeerName, key: PeerId) -> Result<Pin, StoreError> {
        let by_name: Option<Vec<u8>> = self
            .db
            .prepare_cached("SELECT id FROM peers WHERE name = ?1")
            .and_then(|mut s| s.query_row([name.as_str()], |r| r.get(0)).optional())
            .map_err(self.err())?;
        Ok(match by_name {
            None => Pin::New,
            Some(id) if id == key.as_bytes() => Pin::Same,
            Some(id) => Pin::Conflict {
                pinned: peer_id(id).map_err(self.err())?,
            },
        })
    }

    /// Pins `name` to `key` unless the name is pinned to another key. A key seen under a new
    /// name keeps its flags and takes the new name.
    pub fn pin(&mut self, name: &PeerName, key: PeerId, now: u64) -> Result<Pin, StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.db.transaction().map_err(err)?;
        let by_name: Option<Vec<u8>> = tx
            .query_row(
                "SELECT id FROM peers WHERE name = ?1",
                [name.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        let result = match by_name {
            Some(id) if id == key.as_bytes() => Pin::Same,
            Some(id) => Pin::Conflict {
                pinned: peer_id(id).map_err(err)?,
            },
            None => {
                let renamed = tx
                    .execute(
                        "UPDATE peers SET name = ?1 WHERE id = ?2",
                        params![name.as_str(), key.as_bytes().as_slice()],
                    )
                    .map_err(err)?;
                if renamed == 0 {
                    tx.execute(
                        "INSERT INTO peers (id, name, pinned_at) VALUES (?1, ?2, ?3)",
                        params![key.as_bytes().as_slice(), name.as_str(), now.cast_signed()],
                    )
                    .map_err(err)?;
                }
                Pin::New
            }
        };
        tx.commit().map_err(err)?;
        Ok(result)
    }

    /// Sets a pinned peer's flags.
    pub fn set_flags(
        &self,
        id: PeerId,
        trusted: bool,
        auto_accept: bool,
        blocked: bool,
    ) -> Result<(), StoreError> {
        self.db
            .execute(
                "UPDATE peers SET trusted = ?2, auto_accept = ?3, blocked = ?4 WHERE id = ?1",
                params![id.as_bytes().as_slice(), trusted, auto_accept, blocked],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Forgets the pin of `id` (its flags go too; its messages stay).
    pub fn forget(&self, id: PeerId) -> Result<(), StoreError> {
        self.db
            .execute(
                "DELETE FROM peers WHERE id = ?1",
                [id.as_bytes().as_slice()],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Stores a new outgoing message, queued, with the next seq of the conversation.
    pub fn insert_outgoing(
        &mut self,
        peer: PeerId,
        peer_name: &PeerName,
        text: &str,
        sent_at: u64,
    ) -> Result<MessageInfo, StoreError> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|e| StoreError::Random(e.to_string()))?;
        let path = self.path.clone();
        let err = |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.db.transaction().map_err(err)?;
        let last: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE peer = ?1 AND direction = 0",
                [peer.as_bytes().as_slice()],
                |r| r.get(0),
            )
            .map_err(err)?;
        let seq = last + 1;
        tx.execute(
            "INSERT INTO messages (id, peer, peer_name, direction, seq, text, state, sent_at) VALUES (?1, ?2, ?3, 0, ?4, ?5, 0, ?6)",
            params![id.as_slice(), peer.as_bytes().as_slice(), peer_name.as_str(), seq, text, sent_at.cast_signed()],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(MessageInfo {
            id: MessageId(id),
            peer,
            peer_name: peer_name.clone(),
            direction: Direction::Out,
            seq: seq.cast_unsigned(),
            text: text.to_owned(),
            state: MessageState::Queued,
            sent_at,
            detail: None,
        })
    }

    /// Stores a received message and counts its bytes against the peer. Returns it, or `None`
    /// for a duplicate (already stored).
    pub fn insert_incoming(
        &mut self,
        peer: PeerId,
        peer_name: &PeerName,
        m: &ChatMessage,
    ) -> Result<Option<MessageInfo>, StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.db.transaction().map_err(err)?;
        let n = tx
            .execute(
                "INSERT OR IGNORE INTO messages (id, peer, peer_name, direction, seq, text, state, sent_at) VALUES (?1, ?2, ?3, 1, ?4, ?5, 3, ?6)",
                params![m.id.0.as_slice(), peer.as_bytes().as_slice(), peer_name.as_str(), m.seq.cast_signed(), m.text, m.sent_at.cast_signed()],
            )
            .map_err(err)?;
        if n == 1 {
            tx.execute(
                "INSERT INTO received_bytes (peer, bytes) VALUES (?1, ?2)
                 ON CONFLICT (peer) DO UPDATE SET bytes = bytes + excluded.bytes",
                params![peer.as_bytes().as_slice(), m.text.len() as i64],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok((n == 1).then(|| MessageInfo {
            id: m.id,
            peer,
            peer_name: peer_name.clone(),
            direction: Direction::In,
            seq: m.seq,
            text: m.text.clone(),
            state: MessageState::Received,
            sent_at: m.sent_at,
            detail: None,
        }))
    }

    /// Text bytes stored from `peer`; and, if `peer` is a stranger (we never wrote to it),
    /// the text bytes stored from all strangers that are not marked trusted.
    pub fn received_bytes(&self, peer: PeerId) -> Result<(u64, Option<u64>), StoreError> {
        let key = peer.as_bytes().as_slice();
        let (one, wrote): (i64, bool) = self
            .db
            .prepare_cached(
                "SELECT COALESCE((SELECT bytes FROM received_bytes WHERE peer = ?1), 0),
                        EXISTS (SELECT 1 FROM messages WHERE peer = ?1 AND direction = 0)",
            )
            .and_then(|mut s| s.query_row([key], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(self.err())?;
        if wrote {
            return Ok((one.cast_unsigned(), None));
        }
        let strangers: i64 = self
            .db
            .prepare_cached(
                "SELECT COALESCE(SUM(r.bytes), 0) FROM received_bytes r
                 LEFT JOIN peers p ON p.id = r.peer
                 WHERE COALESCE(p.trusted, 0) = 0
                   AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.peer = r.peer AND m.direction = 0)",
            )
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(self.err())?;
        Ok((one.cast_unsigned(), Some(strangers.cast_unsigned())))
    }

    /// Moves one of our queued messages to `state`. Returns the message if it changed.
    pub fn settle(
        &self,
        peer: PeerId,
        id: MessageId,
        state: MessageState,
        detail: Option<&str>,
    ) -> Result<Option<MessageInfo>, StoreError> {
        let n = self
            .db
            .execute(
                "UPDATE messages SET state = ?3, detail = ?4 WHERE peer = ?1 AND id = ?2 AND direction = 0 AND state IN (0, 4)",
                params![peer.as_bytes().as_slice(), id.0.as_slice(), state_code(state), detail],
            )
            .map_err(self.err())?;
        if n == 0 {
            return Ok(None);
        }
        self.db
            .query_row(
                "SELECT * FROM messages WHERE peer = ?1 AND id = ?2 AND direction = 0",
                params![peer.as_bytes().as_slice(), id.0.as_slice()],
                message_row,
            )
            .optional()
            .map_err(self.err())
    }

    /// Our queued messages to `peer`, in seq order.
    pub fn outbox(&self, peer: PeerId) -> Result<Vec<ChatMessage>, StoreError> {
        let mut stmt = self
            .db
            .prepare_cached("SELECT id, seq, sent_at, text FROM messages WHERE peer = ?1 AND direction = 0 AND state IN (0, 4) ORDER BY seq")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([peer.as_bytes().as_slice()], |r| {
                let id: Vec<u8> = r.get(0)?;
                Ok(ChatMessage {
                    id: MessageId(id.try_into().unwrap_or([0; 16])),
                    seq: r.get::<_, i64>(1)?.cast_unsigned(),
                    sent_at: r.get::<_, i64>(2)?.cast_unsigned(),
                    text: r.get(3)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Peers with queued messages.
    pub fn peers_with_outbox(&self) -> Result<Vec<PeerId>, StoreError> {
        let mut stmt = self
            .db
            .prepare("SELECT DISTINCT peer FROM messages WHERE direction = 0 AND state IN (0, 4)")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| peer_id(r.get(0)?))
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// The last `limit` messages with `peer`, or under `name` with any key (a conversation
    /// stays reachable by its name after the peer's key was replaced), oldest first.
    pub fn history(
        &self,
        peer: Option<PeerId>,
        name: &PeerName,
        limit: u32,
    ) -> Result<Vec<MessageInfo>, StoreError> {
        let mut stmt = self
            .db
            .prepare_cached(
                "SELECT * FROM (SELECT * FROM messages WHERE peer = ?1 OR peer_name = ?2
                 ORDER BY n DESC LIMIT ?3) ORDER BY n",
            )
            .map_err(self.err())?;
        let key = peer.map(|p| p.as_bytes().to_vec());
        let rows = stmt
            .query_map(params![key, name.as_str(), limit], message_row)
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::SecretKey;

    fn id(n: u8) -> PeerId {
        SecretKey::from_seed([n; 32]).peer_id()
    }
    fn name(s: &str) -> PeerName {
        PeerName::new(s).unwrap()
    }

    #[test]
    fn pins_names_on_first_sight_and_refuses_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        assert_eq!(s.check_pin(&name("bob"), id(1)).unwrap(), Pin::New);
        assert!(
            s.known_peers().unwrap().is_empty(),
            "checking writes nothing"
        );
        assert_eq!(s.pin(&name("bob"), id(1), 1).unwrap(), Pin::New);
        assert_eq!(s.check_pin(&name("bob"), id(1)).unwrap(), Pin::Same);
        assert_eq!(
            s.check_pin(&name("bob"), id(2)).unwrap(),
            Pin::Conflict { pinned: id(1) }
        );
        assert_eq!(s.pin(&name("bob"), id(1), 2).unwrap(), Pin::Same);
        assert_eq!(
            s.pin(&name("bob"), id(2), 3).unwrap(),
            Pin::Conflict { pinned: id(1) }
        );
        s.set_flags(id(1), true, true, false).unwrap();
        assert_eq!(s.pin(&name("robert"), id(1), 4).unwrap(), Pin::New);
        let known = s.known_peers().unwrap();
        assert_eq!(known.len(), 1);
        assert_eq!((known[0].name.as_str(), known[0].trusted), ("robert", true));
        s.forget(id(1)).unwrap();
        assert_eq!(s.pin(&name("robert"), id(2), 5).unwrap(), Pin::New);
    }

    #[test]
    fn outbox_history_and_duplicates_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let bob = id(1);
        let (m1, m2);
        {
            let mut s = Store::open(dir.path()).unwrap();
            m1 = s.insert_outgoing(bob, &name("bob"), "one", 10).unwrap();
            m2 = s.insert_outgoing(bob, &name("bob"), "two", 11).unwrap();
            assert_eq!((m1.seq, m2.seq), (1, 2));
            let incoming = ChatMessage {
                id: MessageId([9; 16]),
                seq: 1,
                sent_at: 12,
                text: "hi".into(),
            };
            assert!(
                s.insert_incoming(bob, &name("bob"), &incoming)
                    .unwrap()
                    .is_some()
            );
            assert!(
                s.insert_incoming(bob, &name("bob"), &incoming)
                    .unwrap()
                    .is_none()
            );
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.peers_with_outbox().unwrap(), vec![bob]);
        let out = s.outbox(bob).unwrap();
        assert_eq!(
            out.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
            vec!["one", "two"]
        );
        let settled = s
            .settle(bob, m1.id, MessageState::Delivered, None)
            .unwrap()
            .unwrap();
        assert_eq!(settled.state, MessageState::Delivered);
        assert!(
            s.settle(bob, m1.id, MessageState::Delivered, None)
                .unwrap()
                .is_none()
        );
        assert_eq!(s.outbox(bob).unwrap().len(), 1);
        let h = s.history(Some(bob), &name("bob"), 2).unwrap();
        assert_eq!(
            h.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
            vec!["two", "hi"]
        );
        assert_eq!(s.history(Some(bob), &name("bob"), 10).unwrap().len(), 3);
        // By name alone, as after the key was forgotten.
        assert_eq!(s.history(None, &name("bob"), 10).unwrap().len(), 3);
        assert!(s.history(None, &name("carol"), 10).unwrap().is_empty());
    }
}
