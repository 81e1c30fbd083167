//! Chat's tables: every message (ours, with its delivery state; theirs, once each) and the
//! text bytes received per peer, behind [`ChatStore`]. Nothing outside chat writes them,
//! except a followed key rotation, which moves the queued messages with the pin in one
//! transaction (`store::rekey`).

use proto::api::{Direction, MessageInfo, MessageState};
use proto::peer::{ChatMessage, MessageId};
use proto::{PeerId, PeerName};
use rusqlite::{OptionalExtension, params};

use crate::store::{Db, StoreError, peer_id, peer_name};

// The queries of every message sent or received. Each finds its rows through an index, so its
// cost does not grow with the conversation; `tests::hot_queries_use_their_indexes` holds the
// plans to that.

/// The last seq we gave in a conversation (`messages_seq`).
const LAST_SEQ: &str =
    "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE peer = ?1 AND direction = 0";
/// A new outgoing message, queued.
const INSERT_OUTGOING: &str = "INSERT INTO messages (id, peer, peer_name, direction, seq, text, state, sent_at) VALUES (?1, ?2, ?3, 0, ?4, ?5, 0, ?6)";
/// A received message, unless already stored (the unique `(peer, direction, id)`).
const INSERT_INCOMING: &str = "INSERT OR IGNORE INTO messages (id, peer, peer_name, direction, seq, text, state, sent_at) VALUES (?1, ?2, ?3, 1, ?4, ?5, 3, ?6)";
/// Counts a received message's bytes against its sender.
const ADD_RECEIVED: &str = "INSERT INTO received_bytes (peer, bytes) VALUES (?1, ?2)
     ON CONFLICT (peer) DO UPDATE SET bytes = bytes + excluded.bytes";
/// One of our queued messages moves to its outcome.
const SETTLE: &str = "UPDATE messages SET state = ?3, detail = ?4 WHERE peer = ?1 AND id = ?2 AND direction = 0 AND state IN (0, 4)";
/// The message just settled.
const SETTLED: &str = "SELECT * FROM messages WHERE peer = ?1 AND id = ?2 AND direction = 0";
/// Our queued messages to a peer after a seq (the partial index `outbox`).
const OUTBOX: &str = "SELECT id, seq, sent_at, text FROM messages WHERE peer = ?1 AND direction = 0 AND state IN (0, 4) AND seq > ?2 ORDER BY seq";
/// Peers with queued messages (the partial index `outbox`).
const PEERS_WITH_OUTBOX: &str =
    "SELECT DISTINCT peer FROM messages WHERE direction = 0 AND state IN (0, 4)";
/// The last messages by key or by name, each arm through its own index, so only `?3` rows
/// per arm are read, not the whole conversation.
const HISTORY: &str = "SELECT * FROM messages WHERE n IN (
        SELECT n FROM (SELECT n FROM messages WHERE peer = ?1 ORDER BY n DESC LIMIT ?3)
        UNION
        SELECT n FROM (SELECT n FROM messages WHERE peer_name = ?2 ORDER BY n DESC LIMIT ?3))
     ORDER BY n DESC LIMIT ?3";
/// The bytes a peer holds here, and whether we ever wrote to it.
const HELD: &str = "SELECT COALESCE((SELECT bytes FROM received_bytes WHERE peer = ?1), 0),
        EXISTS (SELECT 1 FROM messages WHERE peer = ?1 AND direction = 0)";

/// Chat's handle on the database: its queries and nothing else.
#[derive(Clone, Debug)]
pub struct ChatStore {
    db: Db,
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

impl ChatStore {
    /// Chat's handle on `db`.
    pub fn new(db: Db) -> ChatStore {
        ChatStore { db }
    }

    /// Stores a new outgoing message, queued, with the next seq of the conversation.
    pub async fn insert_outgoing(
        &self,
        peer: PeerId,
        peer_name: &PeerName,
        text: &str,
        sent_at: u64,
    ) -> Result<MessageInfo, StoreError> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|e| StoreError::Random(e.to_string()))?;
        let (name, body) = (peer_name.clone(), text.to_owned());
        let seq = self
            .db
            .call_grouped(move |c| {
                let last: i64 = c
                    .prepare_cached(LAST_SEQ)?
                    .query_row([peer.as_bytes().as_slice()], |r| r.get(0))?;
                let seq = last + 1;
                c.prepare_cached(INSERT_OUTGOING)?.execute(params![
                    id.as_slice(),
                    peer.as_bytes().as_slice(),
                    name.as_str(),
                    seq,
                    body,
                    sent_at.cast_signed()
                ])?;
                Ok(seq)
            })
            .await?;
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

    /// Stores a received message and counts its bytes against the peer, if `admit` lets it
    /// in, in one trip to the database thread. `admit` runs there first; when `held` is set
    /// it gets the bytes already held (as [`received_bytes`](Self::received_bytes) reads
    /// them), and a refusal (`Err`) stores nothing. Returns the message, or `None` for a
    /// duplicate (already stored).
    pub async fn insert_incoming<R, F>(
        &self,
        peer: PeerId,
        peer_name: &PeerName,
        m: &ChatMessage,
        held: bool,
        admit: F,
    ) -> Result<Result<Option<MessageInfo>, R>, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(Option<(u64, Option<u64>)>) -> Result<(), R> + Send + 'static,
    {
        let (name, msg) = (peer_name.clone(), m.clone());
        let new = self
            .db
            .call_grouped(move |c| {
                let bytes = if held {
                    Some(received_bytes(c, peer)?)
                } else {
                    None
                };
                if let Err(refused) = admit(bytes) {
                    return Ok(Err(refused));
                }
                let n = c.prepare_cached(INSERT_INCOMING)?.execute(params![
                    msg.id.0.as_slice(),
                    peer.as_bytes().as_slice(),
                    name.as_str(),
                    msg.seq.cast_signed(),
                    msg.text,
                    msg.sent_at.cast_signed()
                ])?;
                if n == 1 {
                    c.prepare_cached(ADD_RECEIVED)?
                        .execute(params![peer.as_bytes().as_slice(), msg.text.len() as i64])?;
                }
                Ok(Ok(n == 1))
            })
            .await?;
        Ok(new.map(|new| {
            new.then(|| MessageInfo {
                id: m.id,
                peer,
                peer_name: peer_name.clone(),
                direction: Direction::In,
                seq: m.seq,
                text: m.text.clone(),
                state: MessageState::Received,
                sent_at: m.sent_at,
                detail: None,
            })
        }))
    }

    /// Text bytes stored from `peer`; and, if `peer` is a stranger (we never wrote to it),
    /// the text bytes stored from all strangers that are not marked trusted (read from the
    /// peer table's `trusted` flag, never written here).
    pub async fn received_bytes(&self, peer: PeerId) -> Result<(u64, Option<u64>), StoreError> {
        self.db.call(move |c| received_bytes(c, peer)).await
    }

    /// Moves one of our queued messages to `state`. Returns the message if it changed.
    pub async fn settle(
        &self,
        peer: PeerId,
        id: MessageId,
        state: MessageState,
        detail: Option<&str>,
    ) -> Result<Option<MessageInfo>, StoreError> {
        let detail = detail.map(str::to_owned);
        self.db
            .call_grouped(move |c| {
                let n = c.prepare_cached(SETTLE)?.execute(params![
                    peer.as_bytes().as_slice(),
                    id.0.as_slice(),
                    state_code(state),
                    detail
                ])?;
                if n == 0 {
                    return Ok(None);
                }
                c.prepare_cached(SETTLED)?
                    .query_row(
                        params![peer.as_bytes().as_slice(), id.0.as_slice()],
                        message_row,
                    )
                    .optional()
            })
            .await
    }

    /// Our queued messages to `peer`, in seq order.
    pub async fn outbox(&self, peer: PeerId) -> Result<Vec<ChatMessage>, StoreError> {
        self.outbox_after(peer, 0).await
    }

    /// Our queued messages to `peer` with a seq above `after`, in seq order.
    pub async fn outbox_after(
        &self,
        peer: PeerId,
        after: u64,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        self.db
            .call(move |c| {
                let mut stmt = c.prepare_cached(OUTBOX)?;
                let after = after.cast_signed();
                let rows = stmt.query_map(params![peer.as_bytes().as_slice(), after], |r| {
                    let id: Vec<u8> = r.get(0)?;
                    Ok(ChatMessage {
                        id: MessageId(id.try_into().unwrap_or([0; 16])),
                        seq: r.get::<_, i64>(1)?.cast_unsigned(),
                        sent_at: r.get::<_, i64>(2)?.cast_unsigned(),
                        text: r.get(3)?,
                    })
                })?;
                rows.collect()
            })
            .await
    }

    /// Peers with queued messages.
    pub async fn peers_with_outbox(&self) -> Result<Vec<PeerId>, StoreError> {
        self.db
            .call(|c| {
                let mut stmt = c.prepare_cached(PEERS_WITH_OUTBOX)?;
                let rows = stmt.query_map([], |r| peer_id(r.get(0)?))?;
                rows.collect()
            })
            .await
    }

    /// The last `limit` messages with `peer`, or under `name` with any key (a conversation
    /// stays reachable by its name after the peer's key was replaced), oldest first.
    pub async fn history(
        &self,
        peer: Option<PeerId>,
        name: &PeerName,
        limit: u32,
    ) -> Result<Vec<MessageInfo>, StoreError> {
        let name = name.clone();
        self.db
            .call(move |c| {
                let mut stmt = c.prepare_cached(HISTORY)?;
                let key = peer.map(|p| p.as_bytes().to_vec());
                let rows = stmt.query_map(params![key, name.as_str(), limit], message_row)?;
                let mut rows = rows.collect::<rusqlite::Result<Vec<_>>>()?;
                rows.reverse();
                Ok(rows)
            })
            .await
    }
}

fn received_bytes(c: &rusqlite::Connection, peer: PeerId) -> rusqlite::Result<(u64, Option<u64>)> {
    let key = peer.as_bytes().as_slice();
    let (one, wrote): (i64, bool) = c
        .prepare_cached(HELD)?
        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if wrote {
        return Ok((one.cast_unsigned(), None));
    }
    let strangers: i64 = c
        .prepare_cached(
            "SELECT COALESCE(SUM(r.bytes), 0) FROM received_bytes r
             LEFT JOIN peers p ON p.id = r.peer
             WHERE COALESCE(p.trusted, 0) = 0
               AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.peer = r.peer AND m.direction = 0)",
        )?
        .query_row([], |r| r.get(0))?;
    Ok((one.cast_unsigned(), Some(strangers.cast_unsigned())))
}

#[cfg(test)]
mod plans;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{id, name};

    #[tokio::test]
    async fn outbox_history_and_duplicates_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let bob = id(1);
        let (m1, m2);
        {
            let s = ChatStore::new(Db::open(dir.path()).await.unwrap());
            m1 = s
                .insert_outgoing(bob, &name("bob"), "one", 10)
                .await
                .unwrap();
            m2 = s
                .insert_outgoing(bob, &name("bob"), "two", 11)
                .await
                .unwrap();
            assert_eq!((m1.seq, m2.seq), (1, 2));
            let incoming = ChatMessage {
                id: MessageId([9; 16]),
                seq: 1,
                sent_at: 12,
                text: "hi".into(),
            };
            let (admit, bob_name) = (|_| Ok::<(), ()>(()), name("bob"));
            let first = s.insert_incoming(bob, &bob_name, &incoming, false, admit);
            assert!(first.await.unwrap().unwrap().is_some());
            let again = s.insert_incoming(bob, &bob_name, &incoming, false, admit);
            assert!(again.await.unwrap().unwrap().is_none());
            assert_eq!(s.received_bytes(bob).await.unwrap(), (2, None));
            // Refused: nothing is stored; the bytes held are those stored so far.
            let other = ChatMessage {
                id: MessageId([8; 16]),
                ..incoming
            };
            let refused = s.insert_incoming(bob, &bob_name, &other, true, Err);
            assert_eq!(refused.await.unwrap(), Err(Some((2, None))));
        }
        let s = ChatStore::new(Db::open(dir.path()).await.unwrap());
        assert_eq!(s.peers_with_outbox().await.unwrap(), vec![bob]);
        let out = s.outbox(bob).await.unwrap();
        assert_eq!(
            out.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
            vec!["one", "two"]
        );
        let settled = s
            .settle(bob, m1.id, MessageState::Delivered, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(settled.state, MessageState::Delivered);
        let again = s.settle(bob, m1.id, MessageState::Delivered, None).await;
        assert!(again.unwrap().is_none());
        assert_eq!(s.outbox(bob).await.unwrap().len(), 1);
        let h = s.history(Some(bob), &name("bob"), 2).await.unwrap();
        assert_eq!(
            h.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
            vec!["two", "hi"]
        );
        assert_eq!(
            s.history(Some(bob), &name("bob"), 10).await.unwrap().len(),
            3
        );
        // By name alone, as after the key was forgotten.
        assert_eq!(s.history(None, &name("bob"), 10).await.unwrap().len(), 3);
        assert!(
            s.history(None, &name("carol"), 10)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn an_unknown_stored_state_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).await.unwrap();
        let s = ChatStore::new(db.clone());
        s.insert_outgoing(id(1), &name("bob"), "one", 1)
            .await
            .unwrap();
        db.call(|c| c.execute("UPDATE messages SET state = 99", []))
            .await
            .unwrap();
        assert!(s.history(Some(id(1)), &name("bob"), 10).await.is_err());
    }
}
