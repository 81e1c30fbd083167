//! Peer identities from outside: the raw public key a peer shows in the TLS handshake
//! (an Ed25519 SubjectPublicKeyInfo) and the base32 text form other peers and users type.
//!
//! Checks: an accepted SPKI is exactly the canonical 44-byte encoding of the key it yields;
//! an accepted id text is that id's display, ignoring case; every id prints as 52 lowercase
//! base32 characters that parse back, and its prefixes match it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::PeerId;
use proto::identity::{MIN_PREFIX_CHARS, PEER_ID_CHARS};

fuzz_target!(|data: &[u8]| {
    if let Ok(id) = PeerId::from_spki_der(data) {
        assert_eq!(id.to_spki_der(), data, "a non-canonical SPKI was accepted");
        check_id(id);
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(id) = text.parse::<PeerId>() {
        assert_eq!(id.to_string(), text.to_ascii_lowercase());
        check_id(id);
    }
});

fn check_id(id: PeerId) {
    let text = id.to_string();
    assert_eq!(text.len(), PEER_ID_CHARS);
    assert!(
        text.bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
    );
    assert_eq!(text.parse::<PeerId>(), Ok(id));
    assert_eq!(PeerId::from_bytes(*id.as_bytes()), Ok(id));
    assert!(id.matches_prefix(&text[..MIN_PREFIX_CHARS]));
    assert!(text.starts_with(&id.short()));
}
