//! Following a name from a pinned key to the key the tracker now shows, through the handover
//! statements the tracker kept. Pure: no I/O, no clock.

use proto::tracker::SignedHandover;
use proto::{PeerId, PeerName};

/// Why a chain does not lead from the pinned key to the key shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// No statement is signed away from the pinned key.
    #[error("no statement hands {name:?} away from the pinned key {pinned}")]
    NoStart {
        /// The name.
        name: String,
        /// The key pinned for it.
        pinned: PeerId,
    },
    /// A statement names another name.
    #[error("statement {index} is for {found:?}, not {name:?}")]
    OtherName {
        /// Position in the chain.
        index: usize,
        /// The name it names.
        found: String,
        /// The name followed.
        name: String,
    },
    /// A statement's signature is not its old key's.
    #[error("statement {index} is not signed by its old key {key}")]
    BadSignature {
        /// Position in the chain.
        index: usize,
        /// The key it claims to come from.
        key: PeerId,
    },
    /// A statement does not start from the key the one before handed the name to.
    #[error("statement {index} starts from {found}, not from {want}")]
    Broken {
        /// Position in the chain.
        index: usize,
        /// Its old key.
        found: PeerId,
        /// The key the chain had reached.
        want: PeerId,
    },
    /// A statement's seq is not above the one before it.
    #[error("statement {index} has seq {seq}, not above {previous}")]
    SeqNotIncreasing {
        /// Position in the chain.
        index: usize,
        /// Its seq.
        seq: u64,
        /// The seq of the statement before it.
        previous: u64,
    },
    /// The chain ends before the key shown.
    #[error("the chain ends at {reached}, not at the key shown {shown}")]
    WrongEnd {
        /// The last key reached.
        reached: PeerId,
        /// The key the tracker shows.
        shown: PeerId,
    },
}

/// Checks that `chain` (oldest first) hands `name` from `pinned` to `shown`, link by link:
/// starting at the first statement whose old key is `pinned`, each statement names `name`, is
/// signed by its old key, starts from the key the statement before handed the name to, and
/// carries a higher seq; the walk ends as soon as it reaches `shown`. Statements before the
/// start (older rotations) are not looked at.
pub fn follow(
    chain: &[SignedHandover],
    name: &PeerName,
    pinned: PeerId,
    shown: PeerId,
) -> Result<(), ChainError> {
    let start = chain
        .iter()
        .position(|st| st.handover.old_key == pinned)
        .ok_or_else(|| ChainError::NoStart {
            name: name.as_str().to_owned(),
            pinned,
        })?;
    let mut reached = pinned;
    let mut previous: Option<u64> = None;
    for (index, st) in chain.iter().enumerate().skip(start) {
        let h = &st.handover;
        if h.name != *name {
            return Err(ChainError::OtherName {
                index,
                found: h.name.as_str().to_owned(),
                name: name.as_str().to_owned(),
            });
        }
        if h.old_key != reached {
            return Err(ChainError::Broken {
                index,
                found: h.old_key,
                want: reached,
            });
        }
        if !st.verify() {
            return Err(ChainError::BadSignature {
                index,
                key: h.old_key,
            });
        }
        if let Some(previous) = previous
            && h.seq <= previous
        {
            return Err(ChainError::SeqNotIncreasing {
                index,
                seq: h.seq,
                previous,
            });
        }
        previous = Some(h.seq);
        reached = h.new_key;
        if reached == shown {
            return Ok(());
        }
    }
    Err(ChainError::WrongEnd { reached, shown })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::SecretKey;
    use proto::tracker::Handover;

    fn key(n: u8) -> SecretKey {
        SecretKey::from_seed([n; 32])
    }

    fn bob() -> PeerName {
        PeerName::new("bob").unwrap()
    }

    fn hand(from: u8, to: u8, seq: u64) -> SignedHandover {
        Handover {
            name: bob(),
            old_key: key(from).peer_id(),
            new_key: key(to).peer_id(),
            seq,
        }
        .sign(&key(from))
    }

    fn check(chain: &[SignedHandover], pinned: u8, shown: u8) -> Result<(), ChainError> {
        follow(chain, &bob(), key(pinned).peer_id(), key(shown).peer_id())
    }

    #[test]
    fn one_and_several_rotations_are_followed() {
        assert_eq!(check(&[hand(1, 2, 10)], 1, 2), Ok(()));
        let chain = [hand(1, 2, 10), hand(2, 3, 11), hand(3, 4, 12)];
        assert_eq!(check(&chain, 1, 4), Ok(()));
        // From a key pinned later in the chain, and to a key reached before its end.
        assert_eq!(check(&chain, 2, 4), Ok(()));
        assert_eq!(check(&chain, 1, 3), Ok(()));
        // Older rotations before the pinned key are not looked at, even if broken.
        let mut old = hand(7, 8, 1);
        old.handover.seq = 2;
        assert_eq!(check(&[old, hand(1, 2, 10)], 1, 2), Ok(()));
    }

    #[test]
    fn a_statement_signed_by_another_key_is_refused() {
        let forged = Handover {
            name: bob(),
            old_key: key(1).peer_id(),
            new_key: key(2).peer_id(),
            seq: 10,
        }
        .sign(&key(2));
        assert!(matches!(
            check(&[forged], 1, 2),
            Err(ChainError::BadSignature { index: 0, .. })
        ));
        let mut tampered = hand(1, 2, 10);
        tampered.handover.new_key = key(3).peer_id();
        assert!(matches!(
            check(&[tampered], 1, 3),
            Err(ChainError::BadSignature { .. })
        ));
    }

    #[test]
    fn gaps_other_names_old_seqs_and_wrong_ends_are_refused() {
        assert!(matches!(
            check(&[hand(1, 2, 10), hand(3, 4, 11)], 1, 4),
            Err(ChainError::Broken { index: 1, .. })
        ));
        assert!(matches!(
            check(&[hand(2, 3, 10)], 1, 3),
            Err(ChainError::NoStart { .. })
        ));
        assert!(matches!(check(&[], 1, 2), Err(ChainError::NoStart { .. })));
        let other = Handover {
            name: PeerName::new("bobby").unwrap(),
            old_key: key(1).peer_id(),
            new_key: key(2).peer_id(),
            seq: 10,
        }
        .sign(&key(1));
        assert!(matches!(
            check(&[other], 1, 2),
            Err(ChainError::OtherName { .. })
        ));
        assert!(matches!(
            check(&[hand(1, 2, 10), hand(2, 3, 10)], 1, 3),
            Err(ChainError::SeqNotIncreasing { index: 1, .. })
        ));
        assert!(matches!(
            check(&[hand(1, 2, 10)], 1, 3),
            Err(ChainError::WrongEnd { .. })
        ));
    }
}
