//! Following a peer's planned key rotation in the store: the pin moves to the new key with the
//! user's flags, and the messages still queued for the old key go to the new one.

use proto::{PeerId, PeerName};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{PeerStore, StoreError};

impl PeerStore {
    /// In one transaction: pins `name` to `new` in place of `old`, keeping `old`'s flags
    /// (trusted, auto-accept, blocked), and moves `old`'s queued and deferred outgoing
    /// messages to `new`, after any `new` already has (their order kept). Returns how many
    /// messages moved. The one write to chat's `messages` outside `chat::store`: the pin and
    /// the queue it guards move together or not at all.
    pub async fn rekey_peer(
        &self,
        old: PeerId,
        new: PeerId,
        name: &PeerName,
        now: u64,
    ) -> Result<usize, StoreError> {
        let name = name.clone();
        self.db
            .call(move |c| {
                let (old_b, new_b) = (old.as_bytes().as_slice(), new.as_bytes().as_slice());
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let flags: (bool, bool, bool) = tx
                    .query_row(
                        "SELECT trusted, auto_accept, blocked FROM peers WHERE id = ?1",
                        [old_b],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?
                    .unwrap_or_default();
                tx.execute(
                    "DELETE FROM peers WHERE id = ?1 OR id = ?2 OR name = ?3",
                    params![old_b, new_b, name.as_str()],
                )?;
                tx.execute(
                    "INSERT INTO peers (id, name, pinned_at, trusted, auto_accept, blocked)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        new_b,
                        name.as_str(),
                        now.cast_signed(),
                        flags.0,
                        flags.1,
                        flags.2
                    ],
                )?;
                let offset: i64 = tx.query_row(
                    "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE peer = ?1 AND direction = 0",
                    [new_b],
                    |r| r.get(0),
                )?;
                let moved = tx.execute(
                    "UPDATE messages SET peer = ?2, seq = seq + ?3
                     WHERE peer = ?1 AND direction = 0 AND state IN (0, 4)",
                    params![old_b, new_b, offset],
                )?;
                tx.commit()?;
                Ok(moved)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use proto::api::MessageState;

    use super::*;
    use crate::chat::store::ChatStore;
    use crate::store::Db;
    use crate::store::testing::id;

    #[tokio::test]
    async fn the_pin_flags_and_queued_messages_move_to_the_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).await.unwrap();
        let (s, m) = (PeerStore::new(db.clone()), ChatStore::new(db));
        let bob = PeerName::new("bob").unwrap();
        s.pin(&bob, id(1), 1).await.unwrap();
        s.set_flags(id(1), true, true, false).await.unwrap();
        let sent = m
            .insert_outgoing(id(1), &bob, "delivered", 2)
            .await
            .unwrap();
        m.settle(id(1), sent.id, MessageState::Delivered, None)
            .await
            .unwrap();
        let a = m.insert_outgoing(id(1), &bob, "one", 3).await.unwrap();
        let b = m.insert_outgoing(id(1), &bob, "two", 4).await.unwrap();
        assert_eq!(s.rekey_peer(id(1), id(2), &bob, 5).await.unwrap(), 2);
        let known = s.known_peers().await.unwrap();
        assert_eq!(known.len(), 1);
        let k = &known[0];
        assert_eq!(
            (k.id, k.name.as_str(), k.trusted, k.auto_accept, k.blocked),
            (id(2), "bob", true, true, false)
        );
        let outbox = m.outbox(id(2)).await.unwrap();
        let ids: Vec<_> = outbox.iter().map(|m| m.id).collect();
        assert_eq!(ids, [a.id, b.id]);
        assert!(m.outbox(id(1)).await.unwrap().is_empty());
        // The delivered one stays in the old key's history.
        let other = PeerName::new("nobody").unwrap();
        let kept = m.history(Some(id(1)), &other, 10).await.unwrap();
        assert_eq!(kept.iter().map(|m| m.id).collect::<Vec<_>>(), [sent.id]);
    }
}
