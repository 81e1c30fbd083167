//! The mapping between a peer's address record and a BEP 44 mutable item: pure, no I/O.
//!
//! The item is signed by the peer's own Ed25519 identity key, so its DHT key is the peer's
//! `PeerId`; its salt is [`SALT`]; its value is the encoded record and its `seq` the
//! record's. DHT nodes check the item's signature; the record inside carries its own, which
//! is checked again here with the record's rules (key, expiry), so a value stored under a
//! key by anyone but that key's owner is never taken.

use mainline::{Id, MutableItem, SigningKey};
use proto::{PeerId, SecretKey};

/// The BEP 44 salt every p2pd address record is stored under.
pub const SALT: &[u8] = b"p2pd/addr/v1";
/// The largest value a BEP 44 item may carry.
pub const MAX_VALUE: usize = 1000;

/// Why an item was not taken, or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    /// The item is stored under another key than the one looked up.
    #[error("the item is under key {got}, not {want}")]
    WrongItemKey {
        /// The key looked up.
        want: PeerId,
        /// The item's key.
        got: String,
    },
    /// The item's salt is not [`SALT`].
    #[error("the item has another salt")]
    WrongSalt,
    /// The value is over [`MAX_VALUE`] bytes.
    #[error("the value is {0} bytes, over the DHT's {MAX_VALUE}")]
    TooLarge(usize),
    /// A seq outside what BEP 44 carries (a non-negative `i64`).
    #[error("seq {0} does not fit a BEP 44 item")]
    BadSeq(i128),
    /// The value is not a valid record for the key (see the detail).
    #[error("the record in the item is not valid: {0}")]
    BadRecord(String),
    /// The record's seq differs from the item's.
    #[error("the record's seq {record} differs from the item's {item}")]
    SeqMismatch {
        /// The record's.
        record: u64,
        /// The item's.
        item: i64,
    },
}

/// The DHT target (SHA-1 of key and salt) of `peer`'s address record.
pub fn target(peer: PeerId) -> Id {
    MutableItem::target_from_key(peer.as_bytes(), Some(SALT))
}

/// The item that publishes `value` at `seq`, signed by `key`.
pub fn make(key: &SecretKey, value: &[u8], seq: u64) -> Result<MutableItem, ItemError> {
    if value.len() > MAX_VALUE {
        return Err(ItemError::TooLarge(value.len()));
    }
    let seq = i64::try_from(seq).map_err(|_| ItemError::BadSeq(i128::from(seq)))?;
    let signer = SigningKey::from_bytes(&key.seed());
    Ok(MutableItem::new(signer, value, seq, Some(SALT)))
}

/// The value of an item found when looking `want` up, once the item is seen to be
/// `want`'s, under [`SALT`], with a usable seq. (Its signature was checked by mainline on
/// arrival; the record inside is checked by the caller.)
pub fn value_of(item: &MutableItem, want: PeerId) -> Result<&[u8], ItemError> {
    if item.key() != want.as_bytes() {
        return Err(ItemError::WrongItemKey {
            want,
            got: PeerId::from_bytes(*item.key())
                .map_or_else(|_| "(not a valid key)".to_owned(), |k| k.to_string()),
        });
    }
    if item.salt() != Some(SALT) {
        return Err(ItemError::WrongSalt);
    }
    if item.seq() < 0 {
        return Err(ItemError::BadSeq(i128::from(item.seq())));
    }
    if item.value().len() > MAX_VALUE {
        return Err(ItemError::TooLarge(item.value().len()));
    }
    Ok(item.value())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SecretKey {
        SecretKey::from_seed([n; 32])
    }

    #[test]
    fn an_item_is_under_the_peers_key_with_the_salt_and_the_seq() {
        let k = key(1);
        let item = make(&k, b"record bytes", 7).unwrap();
        assert_eq!(item.key(), k.peer_id().as_bytes());
        assert_eq!(item.salt(), Some(SALT));
        assert_eq!(item.seq(), 7);
        assert_eq!(item.target(), &target(k.peer_id()));
        assert_eq!(value_of(&item, k.peer_id()).unwrap(), b"record bytes");
    }

    #[test]
    fn the_target_depends_on_key_and_salt() {
        assert_ne!(target(key(1).peer_id()), target(key(2).peer_id()));
        assert_ne!(
            target(key(1).peer_id()),
            MutableItem::target_from_key(key(1).peer_id().as_bytes(), None)
        );
    }

    #[test]
    fn another_keys_item_is_refused() {
        let item = make(&key(2), b"x", 1).unwrap();
        let e = value_of(&item, key(1).peer_id()).unwrap_err();
        assert!(matches!(e, ItemError::WrongItemKey { .. }), "{e}");
    }

    #[test]
    fn another_salt_is_refused() {
        let k = key(1);
        let signer = SigningKey::from_bytes(&k.seed());
        let item = MutableItem::new(signer, b"x", 1, Some(b"other/salt"));
        assert_eq!(value_of(&item, k.peer_id()), Err(ItemError::WrongSalt));
        let signer = SigningKey::from_bytes(&k.seed());
        let item = MutableItem::new(signer, b"x", 1, None);
        assert_eq!(value_of(&item, k.peer_id()), Err(ItemError::WrongSalt));
    }

    #[test]
    fn values_and_seqs_the_dht_cannot_carry_are_refused() {
        let k = key(1);
        assert_eq!(
            make(&k, &[0; MAX_VALUE + 1], 1).unwrap_err(),
            ItemError::TooLarge(MAX_VALUE + 1)
        );
        assert!(make(&k, &[0; MAX_VALUE], 1).is_ok());
        assert!(matches!(
            make(&k, b"x", u64::MAX),
            Err(ItemError::BadSeq(_))
        ));
        let signer = SigningKey::from_bytes(&k.seed());
        let item = MutableItem::new(signer, b"x", -1, Some(SALT));
        assert_eq!(value_of(&item, k.peer_id()), Err(ItemError::BadSeq(-1)));
    }
}
