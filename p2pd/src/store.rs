//! p2pd's durable state in SQLite (WAL): known peers with their pinned name → key binding and
//! flags, and every chat message. Synchronous and short: callers hold it behind one lock.

use std::path::{Path, PathBuf};

use proto::api::{Direction, MessageInfo, MessageState};
use proto::peer::{ChatMessage, MessageId};
use proto::{PeerId, PeerName};
use rusqlite::{Connection, OptionalExtension, params};

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

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
CREATE TABLE IF NOT EXISTS peers (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    pinned_at INTEGER NOT NULL,
    trusted INTEGER NOT NULL DEFAULT 0,
    auto_accept INTEGER NOT NULL DEFAULT 0,
    blocked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS messages (
    n INTEGER PRIMARY KEY,
    id BLOB NOT NULL,
    peer BLOB NOT NULL,
    peer_name TEXT NOT NULL,
    direction INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    state INTEGER NOT NULL,
    sent_at INTEGER NOT NULL,
    detail TEXT,
    UNIQUE (peer, direction, id)
);
CREATE INDEX IF NOT EXISTS messages_by_peer ON messages (peer, n);
-- The next seq of a conversation is one index lookup, however long it is.
CREATE INDEX IF NOT EXISTS messages_seq ON messages (peer, direction, seq);
CREATE TABLE IF NOT EXISTS transfers (
    id BLOB PRIMARY KEY,
    peer BLOB NOT NULL,
    peer_name TEXT NOT NULL,
    direction INTEGER NOT NULL,
    state TEXT NOT NULL,
    manifest TEXT NOT NULL,
    local_path TEXT,
    error TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS transfer_files (
    id BLOB NOT NULL,
    file INTEGER NOT NULL,
    verified_chunks INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (id, file)
);
CREATE INDEX IF NOT EXISTS outbox ON messages (peer, seq) WHERE direction = 0 AND state = 0;
";

fn state_code(s: MessageState) -> i64 {
    match s {
        MessageState::Queued => 0,
        MessageState::Delivered => 1,
        MessageState::Refused => 2,
        MessageState::Received => 3,
    }
}

fn state_from(code: i64) -> MessageState {
    match code {
        1 => MessageState::Delivered,
        2 => MessageState::Refused,
        3 => MessageState::Received,
        _ => MessageState::Queued,
    }
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
        state: state_from(r.get("state")?),
        sent_at: r.get::<_, i64>("sent_at")?.cast_unsigned(),
        detail: r.get("detail")?,
    })
}

impl Store {
    /// Opens (creating if needed) `<state_dir>/p2pd.db`.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        let path = state_dir.join("p2pd.db");
        let db = Connection::open(&path).map_err(|source| StoreError::Sql {
            path: path.clone(),
            source,
        })?;
        db.execute_batch(SCHEMA).map_err(|source| StoreError::Sql {
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

    /// Stores a received message. Returns it, or `None` for a duplicate (already stored).
    pub fn insert_incoming(
        &self,
        peer: PeerId,
        peer_name: &PeerName,
        m: &ChatMessage,
    ) -> Result<Option<MessageInfo>, StoreError> {
        let n = self
            .db
            .execute(
                "INSERT OR IGNORE INTO messages (id, peer, peer_name, direction, seq, text, state, sent_at) VALUES (?1, ?2, ?3, 1, ?4, ?5, 3, ?6)",
                params![m.id.0.as_slice(), peer.as_bytes().as_slice(), peer_name.as_str(), m.seq.cast_signed(), m.text, m.sent_at.cast_signed()],
            )
            .map_err(self.err())?;
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
                "UPDATE messages SET state = ?3, detail = ?4 WHERE peer = ?1 AND id = ?2 AND direction = 0 AND state = 0",
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
            .prepare_cached("SELECT id, seq, sent_at, text FROM messages WHERE peer = ?1 AND direction = 0 AND state = 0 ORDER BY seq")
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
            .prepare("SELECT DISTINCT peer FROM messages WHERE direction = 0 AND state = 0")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| peer_id(r.get(0)?))
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// The last `limit` messages with `peer`, oldest first.
    pub fn history(&self, peer: PeerId, limit: u32) -> Result<Vec<MessageInfo>, StoreError> {
        let mut stmt = self
            .db
            .prepare("SELECT * FROM (SELECT * FROM messages WHERE peer = ?1 ORDER BY n DESC LIMIT ?2) ORDER BY n")
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![peer.as_bytes().as_slice(), limit], message_row)
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
        assert_eq!(s.pin(&name("bob"), id(1), 1).unwrap(), Pin::New);
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
        let h = s.history(bob, 2).unwrap();
        assert_eq!(
            h.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
            vec!["two", "hi"]
        );
        assert_eq!(s.history(bob, 10).unwrap().len(), 3);
    }
}
