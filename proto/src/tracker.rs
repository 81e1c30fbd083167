//! The tracker protocol: signed registration records and the messages on a tracker link.
//!
//! Each side's first frame is a `Hello` carrying a version: the peer's highest, answered by
//! the tracker's choice (the lower of the two; a tracker refuses a version below
//! [`MIN_PROTOCOL_VERSION`]). A peer then registers with a [`SignedRecord`], may subscribe to
//! join/leave/update events, asks for the list, and pings to keep its lease. From version 2
//! the peer also hands over its signed address record ([`PeerMsg::AddrRecord`]), which the
//! tracker checks and serves unchanged to version-2 subscribers
//! ([`TrackerMsg::AddrRecord`]); version-1 links never see those frames. From version 3 a
//! peer need not take every change: it looks peers up by name or key ([`PeerMsg::Lookup`]),
//! lists them a page at a time ([`PeerMsg::ListPage`]), and watches the keys it cares about
//! ([`PeerMsg::Watch`]), so that it hears of those keys only; `Subscribe` keeps its
//! every-change meaning for older peers. The enum variant index is the frame tag: append new
//! variants at the end and never reorder.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::addr_record::SignedAddrRecord;
use crate::identity::{KeyBytes, PeerId, SecretKey, Signature};
use crate::name::PeerName;

/// The highest version this code speaks, carried in the peer's `Hello`.
pub const PROTOCOL_VERSION: u16 = 3;
/// The same as [`PROTOCOL_VERSION`]: the highest version a tracker answers with.
pub const MAX_PROTOCOL: u16 = PROTOCOL_VERSION;
/// The lowest version this code speaks (version 1: no address records).
pub const MIN_PROTOCOL_VERSION: u16 = 1;
/// The first version whose links carry signed address records.
pub const ADDR_RECORD_VERSION: u16 = 2;
/// The first version with lookups, paged lists and watches.
pub const WATCH_VERSION: u16 = 3;
/// Most keys one `Watch` or `Unwatch` frame may carry.
pub const MAX_WATCH_KEYS: usize = 256;
/// Most keys one link may watch at once; a `Watch` beyond it is refused.
pub const MAX_WATCHED: usize = 4096;
/// Most entries one `Page` carries; a larger `limit` is lowered to it.
pub const MAX_PAGE: u16 = 1000;
/// Cap on a frame sent to the tracker (peer to tracker): registrations are small.
pub const MAX_REQUEST_FRAME: usize = 16 * 1024;
/// Cap on a frame sent by the tracker: a full peer list can be large.
pub const MAX_RESPONSE_FRAME: usize = 16 * 1024 * 1024;
/// Most addresses one record may announce.
pub const MAX_ADDRS: usize = 8;
/// Domain-separation prefix of the bytes a registration signature covers.
pub const RECORD_DOMAIN: &[u8] = b"p2p tracker record v1\0";
/// Domain-separation prefix of the bytes a name handover signature covers.
pub const HANDOVER_DOMAIN: &[u8] = b"p2p tracker handover v1\0";
/// Most handover statements the tracker keeps (and serves) per name: the latest ones.
pub const MAX_HANDOVER_CHAIN: usize = 16;

/// What a peer announces about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The name it claims.
    pub name: PeerName,
    /// Its identity; must equal the key it showed in the TLS handshake.
    pub key: PeerId,
    /// Where it accepts peer links. Unspecified IPs are filled in by the tracker. Only IP and
    /// port cross the wire: IPv6 flow labels and scope ids are local and dropped.
    pub addrs: Vec<SocketAddr>,
    /// Strictly increasing per key, so an old record cannot be replayed.
    pub seq: u64,
}

impl Record {
    /// The exact bytes the signature covers: the domain prefix, then the record's encoding.
    pub fn signing_bytes(&self) -> Vec<u8> {
        postcard::to_extend(self, RECORD_DOMAIN.to_vec())
            .expect("a record holds only types postcard encodes into a Vec")
    }

    /// Signs the record with `key`.
    pub fn sign(self, key: &SecretKey) -> SignedRecord {
        let sig = key.sign(&self.signing_bytes());
        SignedRecord { record: self, sig }
    }
}

/// A record with its owner's signature; the tracker serves it unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRecord {
    /// The record.
    pub record: Record,
    /// Signature by `record.key` over [`Record::signing_bytes`].
    pub sig: Signature,
}

impl SignedRecord {
    /// True when the signature is valid for `record.key`.
    pub fn verify(&self) -> bool {
        self.record
            .key
            .verify(&self.record.signing_bytes(), &self.sig)
    }
}

/// A statement by the key that holds `name`: "hand `name` to `new_key`". Planned key
/// rotation: the new key registers the name carrying the statement signed by the old one, and
/// the tracker moves the binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handover {
    /// The name handed over.
    pub name: PeerName,
    /// The key that holds it and signs the statement.
    pub old_key: PeerId,
    /// The key that takes it.
    pub new_key: PeerId,
    /// In the old key's seq space (like its records' seq): must be above every seq the
    /// tracker has seen from the old key, so a statement is used at most once.
    pub seq: u64,
}

impl Handover {
    /// The exact bytes the signature covers: the domain prefix, then the statement's encoding.
    pub fn signing_bytes(&self) -> Vec<u8> {
        postcard::to_extend(self, HANDOVER_DOMAIN.to_vec())
            .expect("a handover holds only types postcard encodes into a Vec")
    }

    /// Signs the statement with `old`, which should be the secret of `old_key`.
    pub fn sign(self, old: &SecretKey) -> SignedHandover {
        let sig = old.sign(&self.signing_bytes());
        SignedHandover {
            handover: self,
            sig,
        }
    }
}

/// A handover with the old key's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedHandover {
    /// The statement.
    pub handover: Handover,
    /// Signature by `handover.old_key` over [`Handover::signing_bytes`].
    pub sig: Signature,
}

impl SignedHandover {
    /// True when the signature is valid for `handover.old_key`.
    pub fn verify(&self) -> bool {
        self.handover
            .old_key
            .verify(&self.handover.signing_bytes(), &self.sig)
    }
}

/// One live peer as the tracker serves it: the signed record, unchanged, and the IP the
/// tracker saw the registration come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerEntry {
    /// The peer's own signed record.
    pub signed: SignedRecord,
    /// The source IP of its tracker connection.
    pub observed: IpAddr,
}

impl PeerEntry {
    /// The addresses to dial: announced ones, with an unspecified IP replaced by the
    /// observed one.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        resolve_addrs(&self.signed.record.addrs, self.observed)
    }
}

/// Replaces an unspecified IP (`0.0.0.0`, `::`) in `announced` by `observed`, keeping ports.
pub fn resolve_addrs(announced: &[SocketAddr], observed: IpAddr) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::with_capacity(announced.len());
    for a in announced {
        let addr = if a.ip().is_unspecified() {
            SocketAddr::new(observed, a.port())
        } else {
            *a
        };
        if !out.contains(&addr) {
            out.push(addr);
        }
    }
    out
}

/// Why the tracker refused a request. Sent in [`TrackerMsg::Refused`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// The `Hello` carried a version the tracker does not speak.
    BadVersion,
    /// The record's signature does not verify.
    BadSignature,
    /// The record's key differs from the TLS handshake key.
    KeyMismatch,
    /// The name belongs to another key.
    NameTaken,
    /// The seq is not above the last one seen for this key (a replay).
    StaleSeq,
    /// Too many registrations from this address; try later.
    RateLimited,
    /// The request needs a registration first.
    NotRegistered,
    /// The record is malformed (for example too many addresses).
    BadRecord,
    /// Version 3: the link would watch more than [`MAX_WATCHED`] keys.
    TooManyWatches,
}

impl Refusal {
    /// A short human explanation.
    pub fn describe(self) -> &'static str {
        match self {
            Refusal::BadVersion => "unsupported protocol version",
            Refusal::BadSignature => "record signature is invalid",
            Refusal::KeyMismatch => "record key differs from the TLS key",
            Refusal::NameTaken => "name is taken by another key",
            Refusal::StaleSeq => "registration is older than one already seen (replay)",
            Refusal::RateLimited => "too many registrations from this address",
            Refusal::NotRegistered => "register first",
            Refusal::BadRecord => "record is malformed",
            Refusal::TooManyWatches => "too many watched keys on one link",
        }
    }
}

/// Frames a peer sends to the tracker. Variant index = tag byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMsg {
    /// Tag 0: first frame, carries the protocol version.
    Hello {
        /// Must be [`PROTOCOL_VERSION`].
        version: u16,
    },
    /// Tag 1: register or update this peer.
    Register(SignedRecord),
    /// Tag 2: ask for the current list, then joined/left/updated events as they happen.
    Subscribe {
        /// Echoed in the `Peers` answer.
        req: u32,
    },
    /// Tag 3: ask for the current list once.
    List {
        /// Echoed in the `Peers` answer.
        req: u32,
    },
    /// Tag 4: keepalive; the tracker answers `Pong`.
    Ping {
        /// Echoed.
        nonce: u64,
    },
    /// Tag 5: answer to a tracker `Ping`.
    Pong {
        /// Echoed.
        nonce: u64,
    },
    /// Tag 6: register with a name the old key hands to this one. Answered like `Register`.
    RegisterHandover {
        /// This peer's record (the new key's), naming the handed-over name.
        record: SignedRecord,
        /// The old key's statement.
        statement: SignedHandover,
    },
    /// Tag 7: ask for the handover statements the tracker accepted for `name`. Answered by
    /// `Handovers`.
    GetHandovers {
        /// The name asked about.
        name: PeerName,
    },
    /// Tag 8 (version 2): this peer's signed address record, after `Register` and whenever
    /// it is renewed. The tracker checks it (the registered key's, validly signed, not
    /// expired, a seq above the last one it took from that key) and serves it unchanged;
    /// refused (`Refused`, the link kept) otherwise.
    AddrRecord(SignedAddrRecord),
    /// Tag 9 (version 3): tell me about these keys. Answered by `Peers` with those of them
    /// that are live (then their address records); from then on the link gets `Joined`,
    /// `Updated`, `Left` and `AddrRecord` for watched keys only (unless it also subscribed).
    Watch {
        /// Echoed in the `Peers` answer.
        req: u32,
        /// The keys to add to this link's watch set; at most [`MAX_WATCH_KEYS`]. Not
        /// checked to be points: the tracker only compares them with registered keys, so
        /// bytes that are no key are watched and never match.
        #[serde(deserialize_with = "capped_keys")]
        keys: Vec<KeyBytes>,
    },
    /// Tag 10 (version 3): stop telling me about these keys. Not answered.
    Unwatch {
        /// The keys to drop from this link's watch set; at most [`MAX_WATCH_KEYS`].
        #[serde(deserialize_with = "capped_keys")]
        keys: Vec<KeyBytes>,
    },
    /// Tag 11 (version 3): one live peer, by name or key. Answered by `Found` (then its
    /// address record, if it handed one over).
    Lookup {
        /// Echoed in the `Found` answer.
        req: u32,
        /// What to look up.
        by: LookupBy,
    },
    /// Tag 12 (version 3): live peers in key order, after `after`, at most `limit` (lowered
    /// to [`MAX_PAGE`]). Answered by `Page`.
    ListPage {
        /// Echoed in the `Page` answer.
        req: u32,
        /// The cursor: the `next` of the previous page, or `None` for the first.
        after: Option<PeerId>,
        /// Most entries wanted.
        limit: u16,
    },
}

/// What a [`PeerMsg::Lookup`] asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LookupBy {
    /// The live peer holding this name.
    Name(PeerName),
    /// The live peer with this key.
    Key(PeerId),
}

/// Frames the tracker sends. Variant index = tag byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrackerMsg {
    /// Tag 0: first frame, carries the protocol version.
    Hello {
        /// The tracker's version.
        version: u16,
        /// Seconds of silence after which the tracker drops a peer.
        lease_secs: u32,
    },
    /// Tag 1: the registration was accepted.
    Registered {
        /// The peer's entry as others will see it.
        entry: PeerEntry,
    },
    /// Tag 2: a request was refused.
    Refused {
        /// Why.
        reason: Refusal,
        /// Human detail.
        detail: String,
    },
    /// Tag 3: the list of live peers, answering `Subscribe` or `List`.
    Peers {
        /// The request this answers.
        req: u32,
        /// Every live registered peer.
        peers: Vec<PeerEntry>,
    },
    /// Tag 4: a peer registered.
    Joined(PeerEntry),
    /// Tag 5: a live peer re-registered with a new record.
    Updated(PeerEntry),
    /// Tag 6: a peer disconnected or its lease ran out.
    Left {
        /// Who left.
        key: PeerId,
    },
    /// Tag 7: keepalive; answer with `Pong`.
    Ping {
        /// Echoed.
        nonce: u64,
    },
    /// Tag 8: answer to a peer `Ping`.
    Pong {
        /// Echoed.
        nonce: u64,
    },
    /// Tag 9: the handover statements accepted for `name`, oldest first, at most
    /// [`MAX_HANDOVER_CHAIN`] (the latest ones); empty when there are none. Answers
    /// `GetHandovers`.
    Handovers {
        /// The name asked about.
        name: PeerName,
        /// Each statement hands the name from its old key to its new key.
        #[serde(deserialize_with = "capped_chain")]
        chain: Vec<SignedHandover>,
    },
    /// Tag 10 (version 2): a live peer's signed address record, as it handed it over, with
    /// the IP its tracker connection comes from (for an unspecified address in the record).
    /// Sent after `Peers` for each listed peer holding one, and when a peer hands over a new
    /// one.
    AddrRecord {
        /// The record, unchanged.
        record: SignedAddrRecord,
        /// The source IP of the peer's tracker connection.
        observed: IpAddr,
    },
    /// Tag 11 (version 3): the answer to `Lookup`: the live peer, or `None`.
    Found {
        /// The request this answers.
        req: u32,
        /// The peer, if one is live under that name or key.
        entry: Option<PeerEntry>,
    },
    /// Tag 12 (version 3): one page of live peers in key order, answering `ListPage`.
    Page {
        /// The request this answers.
        req: u32,
        /// At most the asked limit (and [`MAX_PAGE`]) entries, keys ascending.
        peers: Vec<PeerEntry>,
        /// The cursor for the next page (the last key here), or `None` when this page ends
        /// the list.
        next: Option<PeerId>,
    },
}

/// Decodes a key list, refusing more than [`MAX_WATCH_KEYS`] keys before anything is
/// allocated for them.
fn capped_keys<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<KeyBytes>, D::Error> {
    d.deserialize_seq(Capped::<KeyBytes, MAX_WATCH_KEYS>(std::marker::PhantomData))
}

/// Decodes a handover chain, refusing more than [`MAX_HANDOVER_CHAIN`] statements before
/// anything is allocated for them.
fn capped_chain<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<SignedHandover>, D::Error> {
    d.deserialize_seq(Capped::<SignedHandover, MAX_HANDOVER_CHAIN>(
        std::marker::PhantomData,
    ))
}

/// A sequence visitor that refuses more than `N` elements.
struct Capped<T, const N: usize>(std::marker::PhantomData<T>);

impl<'de, T: Deserialize<'de>, const N: usize> serde::de::Visitor<'de> for Capped<T, N> {
    type Value = Vec<T>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at most {N} elements")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let hint = seq.size_hint().unwrap_or(0);
        if hint > N {
            return Err(serde::de::Error::invalid_length(hint, &self));
        }
        let mut out = Vec::with_capacity(hint);
        while let Some(x) = seq.next_element()? {
            if out.len() == N {
                return Err(serde::de::Error::invalid_length(out.len() + 1, &self));
            }
            out.push(x);
        }
        Ok(out)
    }
}
