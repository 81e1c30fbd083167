//! The signed address record: where a key accepts peer links, signed by that key, shared by
//! every discovery source (trackers, the LAN, the DHT).
//!
//! A record says "key K accepts peer links at these addresses", with a `seq` that only grows
//! (a newer record replaces an older one, whoever carries it) and an expiry. It carries no
//! name: names are bound by trackers and pins, never by a record. Its encoding is postcard,
//! at most [`MAX_ENCODED`] bytes (the DHT's cap on a value), and the signature covers
//! [`ADDR_RECORD_DOMAIN`] followed by the record's encoding.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::identity::{PeerId, SecretKey, Signature};

/// Domain-separation prefix of the bytes an address record signature covers.
pub const ADDR_RECORD_DOMAIN: &[u8] = b"p2p addr record v1\0";
/// Most addresses one record may carry.
pub const MAX_ADDRS: usize = 16;
/// Largest encoded record: the DHT's cap on a stored value.
pub const MAX_ENCODED: usize = 1000;
/// Furthest in the future an expiry may be, from the checker's clock: 7 days.
pub const MAX_AHEAD_SECS: u64 = 7 * 24 * 3600;

/// Why an address record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrRecordError {
    /// More bytes than [`MAX_ENCODED`].
    #[error("address record of {len} bytes is over the {MAX_ENCODED}-byte cap")]
    TooLong {
        /// Bytes given.
        len: usize,
    },
    /// The bytes are not a record (or leave bytes over).
    #[error("malformed address record: {0}")]
    Malformed(String),
    /// More than [`MAX_ADDRS`] addresses.
    #[error("address record carries {count} addresses, over the cap of {MAX_ADDRS}")]
    TooManyAddrs {
        /// Addresses found.
        count: usize,
    },
    /// The signature does not verify for the record's key.
    #[error("address record signature is invalid")]
    BadSignature,
    /// The record is another key's.
    #[error("address record is for key {got}, expected {expected}")]
    WrongKey {
        /// The key asked for.
        expected: PeerId,
        /// The key in the record.
        got: PeerId,
    },
    /// The expiry has passed.
    #[error("address record expired at {expiry} (now {now})")]
    Expired {
        /// The record's expiry, Unix seconds.
        expiry: u64,
        /// The checker's clock.
        now: u64,
    },
    /// The expiry is further ahead than [`MAX_AHEAD_SECS`].
    #[error("address record expiry {expiry} is too far ahead (now {now})")]
    TooFarAhead {
        /// The record's expiry, Unix seconds.
        expiry: u64,
        /// The checker's clock.
        now: u64,
    },
}

/// Where a key accepts peer links, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrRecord {
    /// The key whose addresses these are (and which signs the record).
    pub key: PeerId,
    /// Strictly increasing per key: of two records, the higher seq wins.
    pub seq: u64,
    /// Where it accepts peer links. An unspecified IP (`0.0.0.0`, `::`) means "the address
    /// this record came from", for sources that know one. Only IP and port cross the wire.
    #[serde(deserialize_with = "crate::share::wire::seq::<_, _, MAX_ADDRS>")]
    pub addrs: Vec<SocketAddr>,
    /// Unix seconds after which the record is void.
    pub expiry: u64,
}

impl AddrRecord {
    /// The exact bytes the signature covers: the domain prefix, then the record's encoding.
    pub fn signing_bytes(&self) -> Vec<u8> {
        postcard::to_extend(self, ADDR_RECORD_DOMAIN.to_vec())
            .expect("a record holds only types postcard encodes into a Vec")
    }

    /// Signs the record with `key` (which should be the secret of `self.key`). IPv6 flow
    /// labels and scope ids are dropped first, as the wire drops them, so the signed record
    /// equals its decoding.
    pub fn sign(mut self, key: &SecretKey) -> SignedAddrRecord {
        for a in &mut self.addrs {
            *a = SocketAddr::new(a.ip(), a.port());
        }
        let sig = key.sign(&self.signing_bytes());
        SignedAddrRecord { record: self, sig }
    }

    /// The addresses to dial: each unspecified IP replaced by `from` (the IP the record came
    /// from) or, with none, dropped; duplicates dropped.
    pub fn dial_addrs(&self, from: Option<IpAddr>) -> Vec<SocketAddr> {
        let mut out: Vec<SocketAddr> = Vec::with_capacity(self.addrs.len());
        for a in &self.addrs {
            let addr = match (a.ip().is_unspecified(), from) {
                (false, _) => *a,
                (true, Some(ip)) if !ip.is_unspecified() => SocketAddr::new(ip, a.port()),
                (true, _) => continue,
            };
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
        out
    }
}

/// An address record with its key's signature; every source carries it unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedAddrRecord {
    /// The record.
    pub record: AddrRecord,
    /// Signature by `record.key` over [`AddrRecord::signing_bytes`].
    pub sig: Signature,
}

impl SignedAddrRecord {
    /// The record's bytes (postcard): at most [`MAX_ENCODED`] for a record of at most
    /// [`MAX_ADDRS`] addresses.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("a record holds only types postcard encodes")
    }

    /// Decodes bytes from outside: the length is capped before anything is read, the
    /// address list before it is allocated, and no byte may be left over. Never panics. The
    /// signature is not checked here: see [`SignedAddrRecord::check`].
    pub fn decode(bytes: &[u8]) -> Result<Self, AddrRecordError> {
        if bytes.len() > MAX_ENCODED {
            return Err(AddrRecordError::TooLong { len: bytes.len() });
        }
        let (rec, rest) = postcard::take_from_bytes::<SignedAddrRecord>(bytes)
            .map_err(|e| AddrRecordError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(AddrRecordError::Malformed(format!(
                "{} bytes after the record",
                rest.len()
            )));
        }
        Ok(rec)
    }

    /// True when the signature is valid for `record.key`.
    pub fn verify(&self) -> bool {
        self.record
            .key
            .verify(&self.record.signing_bytes(), &self.sig)
    }

    /// Checks the record is usable as `expected`'s addresses at `now_secs`: at most
    /// [`MAX_ADDRS`] addresses, `expected`'s key, a valid signature, not expired, and an
    /// expiry at most [`MAX_AHEAD_SECS`] ahead. Whether its seq is new is the caller's
    /// business (it knows the last one seen).
    pub fn check(&self, expected: &PeerId, now_secs: u64) -> Result<(), AddrRecordError> {
        let r = &self.record;
        if r.addrs.len() > MAX_ADDRS {
            return Err(AddrRecordError::TooManyAddrs {
                count: r.addrs.len(),
            });
        }
        if r.key != *expected {
            return Err(AddrRecordError::WrongKey {
                expected: *expected,
                got: r.key,
            });
        }
        if !self.verify() {
            return Err(AddrRecordError::BadSignature);
        }
        if r.expiry <= now_secs {
            return Err(AddrRecordError::Expired {
                expiry: r.expiry,
                now: now_secs,
            });
        }
        if r.expiry - now_secs > MAX_AHEAD_SECS {
            return Err(AddrRecordError::TooFarAhead {
                expiry: r.expiry,
                now: now_secs,
            });
        }
        Ok(())
    }
}
