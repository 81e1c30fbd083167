//! Ed25519 identities: the secret key a daemon keeps, and the [`PeerId`] everyone else sees.

use std::fmt;
use std::str::FromStr;

use data_encoding::{BASE32_NOPAD, Encoding, Specification};
use ed25519_dalek::{Signer as _, SigningKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod key_bytes;
mod key_cache;

pub use key_bytes::KeyBytes;

/// Number of base32 characters in a full [`PeerId`].
pub const PEER_ID_CHARS: usize = 52;
/// Shortest prefix of a [`PeerId`] accepted on the command line.
pub const MIN_PREFIX_CHARS: usize = 8;
/// Length of the short form shown in tables.
pub const SHORT_ID_CHARS: usize = 12;

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the 32 key bytes follow.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// DER prefix of an Ed25519 PKCS#8 v1 private key (RFC 8410); the 32 seed bytes follow.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

fn lower_base32() -> Encoding {
    let mut spec = Specification::new();
    spec.symbols.push_str("abcdefghijklmnopqrstuvwxyz234567");
    // A fixed, valid specification: building it cannot fail.
    spec.encoding().unwrap_or_else(|_| BASE32_NOPAD.clone())
}

/// Errors from parsing keys and identities.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The text is not 52 characters of lowercase base32.
    #[error("not a peer id: {input:?} (expected {PEER_ID_CHARS} base32 characters)")]
    BadPeerId {
        /// What was given, cut to 80 characters.
        input: String,
    },
    /// The 32 bytes are not a valid Ed25519 public key.
    #[error("not a valid Ed25519 public key")]
    BadPoint,
    /// A secret key file or DER blob has the wrong length or prefix.
    #[error("secret key must be 32 bytes, got {len}")]
    BadSecretLen {
        /// Length found.
        len: usize,
    },
    /// A SubjectPublicKeyInfo is not an Ed25519 key.
    #[error("public key is not an Ed25519 SubjectPublicKeyInfo")]
    BadSpki,
}

/// A peer's identity: its Ed25519 public key. Displayed as lowercase unpadded base32.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(KeyBytes);

impl PeerId {
    /// Wraps raw key bytes, checking they are a valid Ed25519 point.
    /// The decompressed point is memoised, so the checks and signature verifications that
    /// follow for the same key skip the decompression.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, IdentityError> {
        key_cache::verifying_key(&bytes).ok_or(IdentityError::BadPoint)?;
        Ok(Self(KeyBytes(bytes)))
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0.0
    }

    /// The key as plain bytes, for comparing with keys that were not checked.
    pub fn key_bytes(&self) -> KeyBytes {
        self.0
    }

    /// The first [`SHORT_ID_CHARS`] characters, for tables and logs.
    pub fn short(&self) -> String {
        let mut s = self.to_string();
        s.truncate(SHORT_ID_CHARS);
        s
    }

    /// The key as an Ed25519 SubjectPublicKeyInfo DER (what TLS raw public keys carry).
    pub fn to_spki_der(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(SPKI_PREFIX.len() + 32);
        v.extend_from_slice(&SPKI_PREFIX);
        v.extend_from_slice(&self.0.0);
        v
    }

    /// Parses an Ed25519 SubjectPublicKeyInfo DER.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, IdentityError> {
        let key = der
            .strip_prefix(&SPKI_PREFIX[..])
            .ok_or(IdentityError::BadSpki)?;
        let bytes: [u8; 32] = key.try_into().map_err(|_| IdentityError::BadSpki)?;
        Self::from_bytes(bytes)
    }

    /// True when `text` (already lower-cased) is a prefix of this id.
    pub fn matches_prefix(&self, text: &str) -> bool {
        self.to_string().starts_with(text)
    }

    /// Verifies `sig` over `msg` with this key (strict verification).
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> bool {
        let Some(key) = key_cache::verifying_key(&self.0.0) else {
            return false;
        };
        let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
        key.verify_strict(msg, &sig).is_ok()
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.short())
    }
}

impl FromStr for PeerId {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_bytes(s.parse::<KeyBytes>()?.0)
    }
}

impl Serialize for PeerId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// A checked key is a key's bytes: maps keyed by [`PeerId`] can be searched with [`KeyBytes`].
impl std::borrow::Borrow<KeyBytes> for PeerId {
    fn borrow(&self) -> &KeyBytes {
        &self.0
    }
}

impl From<PeerId> for KeyBytes {
    fn from(id: PeerId) -> Self {
        id.0
    }
}

impl<'de> Deserialize<'de> for PeerId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let key = KeyBytes::deserialize(d)?;
        PeerId::from_bytes(key.0).map_err(serde::de::Error::custom)
    }
}

/// An Ed25519 signature (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Signature, E> {
                let arr: [u8; 64] = v
                    .try_into()
                    .map_err(|_| E::invalid_length(v.len(), &self))?;
                Ok(Signature(arr))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Signature, A::Error> {
                let mut arr = [0u8; 64];
                for (i, slot) in arr.iter_mut().enumerate() {
                    *slot = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                if seq.next_element::<u8>()?.is_some() {
                    return Err(serde::de::Error::invalid_length(65, &self));
                }
                Ok(Signature(arr))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// A daemon's secret Ed25519 key. Never printed: `Debug` shows only the public id.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// Makes a key from 32 secret seed bytes (use the OS random source to make them).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(SigningKey::from_bytes(&seed))
    }

    /// Parses the 32-byte seed as stored in a key file.
    pub fn from_seed_slice(bytes: &[u8]) -> Result<Self, IdentityError> {
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| IdentityError::BadSecretLen { len: bytes.len() })?;
        Ok(Self::from_seed(seed))
    }

    /// The 32 seed bytes, for the key file.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public identity.
    pub fn peer_id(&self) -> PeerId {
        PeerId(KeyBytes(self.0.verifying_key().to_bytes()))
    }

    /// Signs `msg`.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature(self.0.sign(msg).to_bytes())
    }

    /// The key as PKCS#8 v1 DER, the form TLS libraries load.
    pub fn to_pkcs8_der(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(PKCS8_PREFIX.len() + 32);
        v.extend_from_slice(&PKCS8_PREFIX);
        v.extend_from_slice(&self.0.to_bytes());
        v
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(for {})", self.peer_id().short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SecretKey {
        SecretKey::from_seed([n; 32])
    }

    #[test]
    fn display_is_52_lowercase_chars_and_parses_back() {
        let id = key(1).peer_id();
        let s = id.to_string();
        assert_eq!(s.len(), PEER_ID_CHARS);
        assert!(
            s.chars()
                .all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c))
        );
        assert_eq!(s.parse::<PeerId>().unwrap(), id);
        assert_eq!(s.to_uppercase().parse::<PeerId>().unwrap(), id);
    }

    #[test]
    fn bad_ids_are_rejected() {
        assert!("abc".parse::<PeerId>().is_err());
        assert!("1".repeat(52).parse::<PeerId>().is_err());
    }

    #[test]
    fn spki_round_trip_and_rejects_other_keys() {
        let id = key(2).peer_id();
        assert_eq!(PeerId::from_spki_der(&id.to_spki_der()).unwrap(), id);
        let mut der = id.to_spki_der();
        der[7] = 0x71; // OID of Ed448
        assert_eq!(PeerId::from_spki_der(&der), Err(IdentityError::BadSpki));
        assert!(PeerId::from_spki_der(&der[..20]).is_err());
    }

    #[test]
    fn sign_verify() {
        let k = key(3);
        let sig = k.sign(b"hello");
        assert!(k.peer_id().verify(b"hello", &sig));
        assert!(!k.peer_id().verify(b"hellp", &sig));
        assert!(!key(4).peer_id().verify(b"hello", &sig));
    }

    #[test]
    fn prefix_matching() {
        let id = key(5).peer_id();
        let s = id.to_string();
        assert!(id.matches_prefix(&s[..8]));
        assert!(!id.matches_prefix("zzzzzzzzz"));
    }

    #[test]
    fn secret_debug_hides_key() {
        let k = key(6);
        let dbg = format!("{k:?}");
        assert!(dbg.contains(&k.peer_id().short()));
        assert!(!dbg.contains("06"));
    }
}
