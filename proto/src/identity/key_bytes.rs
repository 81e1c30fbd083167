//! A key's 32 bytes, not checked to be an Ed25519 point.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{IdentityError, PEER_ID_CHARS, lower_base32};

/// A key's 32 bytes as received, not checked to be a valid Ed25519 point: for keys that are
/// only compared with keys checked elsewhere (the keys of a tracker `Watch`), where the
/// check (a point decompression) would be wasted. Same wire and text forms as
/// [`PeerId`](super::PeerId); bytes that are no key simply never equal a `PeerId`'s.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyBytes(pub [u8; 32]);

impl KeyBytes {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for KeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&lower_base32().encode(&self.0))
    }
}

impl fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.to_string();
        s.truncate(super::SHORT_ID_CHARS);
        write!(f, "KeyBytes({s})")
    }
}

/// Parses the 52 base32 characters of a key (any case); the point is not checked.
impl FromStr for KeyBytes {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || IdentityError::BadPeerId {
            input: s.chars().take(80).collect(),
        };
        if s.len() != PEER_ID_CHARS {
            return Err(bad());
        }
        let bytes = lower_base32()
            .decode(s.to_ascii_lowercase().as_bytes())
            .map_err(|_| bad())?;
        Ok(Self(bytes.try_into().map_err(|_| bad())?))
    }
}

impl Serialize for KeyBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for KeyBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            Ok(Self(<[u8; 32]>::deserialize(d)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{PeerId, SecretKey};
    use super::*;

    #[test]
    fn same_forms_as_a_peer_id_and_no_point_check() {
        let id = SecretKey::from_seed([3; 32]).peer_id();
        let kb = id.key_bytes();
        assert_eq!(kb.to_string(), id.to_string());
        assert_eq!(id.to_string().parse::<KeyBytes>().unwrap(), kb);
        assert_eq!(KeyBytes::from(id), kb);
        assert_eq!(std::borrow::Borrow::<KeyBytes>::borrow(&id), &kb);
        // Bytes that are no Ed25519 point: a PeerId refuses them, KeyBytes keeps them.
        let bad = (0..=255u8)
            .map(|b| [b; 32])
            .find(|b| PeerId::from_bytes(*b).is_err())
            .unwrap();
        let text = KeyBytes(bad).to_string();
        assert!(text.parse::<PeerId>().is_err());
        assert_eq!(text.parse::<KeyBytes>().unwrap(), KeyBytes(bad));
        assert!("abc".parse::<KeyBytes>().is_err());
    }
}
