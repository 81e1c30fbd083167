//! A small memo of decompressed Ed25519 keys.
//!
//! Checking that 32 bytes are an Ed25519 key means decompressing the point (a field square
//! root), and verifying a signature needs the decompressed point again. One registration at
//! the tracker meets the same key four times (the TLS verifier, the key read back from the
//! handshake, the record's decoding, the signature check), so the last keys decompressed are
//! kept here, one per slot, and the next use of the same bytes is a copy.
//!
//! The memo is a pure function's: a slot holds a key only for the bytes it was made from, a
//! miss decompresses as before, and invalid points are never kept. Slots are taken with
//! `try_lock`, so a busy or poisoned lock is a miss, never a wait or a panic.

use std::sync::Mutex;

use ed25519_dalek::VerifyingKey;

/// Number of slots (each ~200 bytes): enough for the registrations in flight at once.
const SLOTS: usize = 256;

static SLOTS_MEMO: Mutex<[Option<VerifyingKey>; SLOTS]> = Mutex::new([None; SLOTS]);

/// The slot of `bytes`: a mix of their first eight (keys are uniform enough; a collision is
/// a miss, not an error).
fn slot(bytes: &[u8; 32]) -> usize {
    let mut head = [0u8; 8];
    head.copy_from_slice(&bytes[..8]);
    let h = u64::from_le_bytes(head).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // The top bits of the product; SLOTS is a power of two.
    (h >> (64 - SLOTS.trailing_zeros())) as usize
}

/// The decompressed key for `bytes`, or `None` when they are not a valid Ed25519 point.
pub(crate) fn verifying_key(bytes: &[u8; 32]) -> Option<VerifyingKey> {
    let i = slot(bytes);
    if let Ok(memo) = SLOTS_MEMO.try_lock()
        && let Some(key) = memo[i]
        && key.as_bytes() == bytes
    {
        return Some(key);
    }
    let key = VerifyingKey::from_bytes(bytes).ok()?;
    if let Ok(mut memo) = SLOTS_MEMO.try_lock() {
        memo[i] = Some(key);
    }
    Some(key)
}

/// Whether `bytes` are memoised now (tests only).
#[cfg(test)]
pub(crate) fn is_memoised(bytes: &[u8; 32]) -> bool {
    SLOTS_MEMO
        .lock()
        .is_ok_and(|memo| memo[slot(bytes)].is_some_and(|k| k.as_bytes() == bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_kept_after_its_first_use_and_the_same_key_comes_back() {
        let bytes = crate::SecretKey::from_seed([41; 32])
            .peer_id()
            .as_bytes()
            .to_owned();
        let first = verifying_key(&bytes).expect("valid key");
        // Tests run in parallel: another key may take the slot, or hold the lock, meanwhile.
        assert!((0..100).any(|_| verifying_key(&bytes).is_some() && is_memoised(&bytes)));
        let again = verifying_key(&bytes).expect("valid key");
        assert_eq!(first, again);
        assert_eq!(again, VerifyingKey::from_bytes(&bytes).expect("valid key"));
    }

    #[test]
    fn an_invalid_point_is_refused_every_time_and_never_kept() {
        // y = 2 is not on the curve (no x satisfies the equation).
        let mut bad = [0u8; 32];
        bad[0] = 2;
        assert!(VerifyingKey::from_bytes(&bad).is_err());
        assert!(verifying_key(&bad).is_none());
        assert!(!is_memoised(&bad));
        assert!(verifying_key(&bad).is_none());
    }

    #[test]
    fn slots_stay_in_range() {
        assert!(slot(&[0xff; 32]) < SLOTS);
        assert!(slot(&[0; 32]) < SLOTS);
    }
}
