//! Following a peer's planned key rotation in the store: the pin moves to the new key with the
//! user's flags, and the messages still queued for the old key go to the new one.

use proto::{PeerId, PeerName};
use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};

impl Store {
    /// In one transaction: pins `name` to `new` in place of `old`, keeping `old`'s flags
    /// (trusted, auto-accept, blocked), and moves `old`'s queued and deferred outgoing
    /// messages to `new`, after any `new` already has (their order kept). Returns how many
    /// messages moved.
    pub fn rekey_peer(
        &mut self,
        old: PeerId,
        new: PeerId,
        name: &PeerName,
        now: u64,
    ) -> Result<usize, StoreError> {
        let path = self.path.clone();
        let err = |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        let (old_b, new_b) = (old.as_bytes().as_slice(), new.as_bytes().as_slice());
        let tx = self.db.transaction().map_err(err)?;
        let flags: (bool, bool, bool) = tx
            .query_row(
                "SELECT trusted, auto_accept, blocked FROM peers WHERE id = ?1",
                [old_b],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(err)?
            .unwrap_or_default();
        tx.execute(
            "DELETE FROM peers WHERE id = ?1 OR id = ?2 OR name = ?3",
            params![old_b, new_b, name.as_str()],
        )
        .map_err(err)?;
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
        )
        .map_err(err)?;
        let offset: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE peer = ?1 AND direction = 0",
                [new_b],
                |r| r.get(0),
            )
            .map_err(err)?;
        let moved = tx
            .execute(
                "UPDATE messages SET peer = ?2, seq = seq + ?3
                 WHERE peer = ?1 AND direction = 0 AND state IN (0, 4)",
                params![old_b, new_b, offset],
            )
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use proto::SecretKey;
    use proto::api::MessageState;

    use super::*;

    fn id(n: u8) -> PeerId {
        SecretKey::from_seed([n; 32]).peer_id()
    }

    #[test]
    fn the_pin_flags_and_queued_messages_move_to_the_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let bob = PeerName::new("bob").unwrap();
        s.pin(&bob, id(1), 1).unwrap();
        s.set_flags(id(1), true, true, false).unwrap();
        let sent = s.insert_outgoing(id(1), &bob, "delivered", 2).unwrap();
        s.settle(id(1), sent.id, MessageState::Delivered, None)
            .unwrap();
        let a = s.insert_outgoing(id(1), &bob, "one", 3).unwrap();
        let b = s.insert_outgoing(id(1), &bob, "two", 4).unwrap();
        assert_eq!(s.rekey_peer(id(1), id(2), &bob, 5).unwrap(), 2);
        let known = s.known_peers().unwrap();
        assert_eq!(known.len(), 1);
        let k = &known[0];
        assert_eq!(
            (k.id, k.name.as_str(), k.trusted, k.auto_accept, k.blocked),
            (id(2), "bob", true, true, false)
        );
        let outbox = s.outbox(id(2)).unwrap();
        let ids: Vec<_> = outbox.iter().map(|m| m.id).collect();
        assert_eq!(ids, [a.id, b.id]);
        assert!(s.outbox(id(1)).unwrap().is_empty());
        // The delivered one stays in the old key's history.
        let other = PeerName::new("nobody").unwrap();
        let kept = s.history(Some(id(1)), &other, 10).unwrap();
        assert_eq!(kept.iter().map(|m| m.id).collect::<Vec<_>>(), [sent.id]);
    }
}
