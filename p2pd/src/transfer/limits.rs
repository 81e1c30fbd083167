//! What peers can make this daemon hold for transfers, as pure bookkeeping with the time
//! passed in: undecided offers (per peer and in total, by count and by manifest bytes, each
//! until it expires), bulk links per peer, and how often a refusal is logged.

use std::collections::HashMap;
use std::time::Duration;

use proto::PeerId;
use proto::transfer::{Manifest, TransferId};

/// The `[limits]` of transfers. A user never meets them in normal use; a stranger who floods
/// offers or bulk links does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferLimits {
    /// Undecided incoming offers from one peer.
    pub max_offers_per_peer: usize,
    /// Their manifests' bytes (see [`manifest_bytes`]).
    pub max_offer_bytes_per_peer: u64,
    /// Undecided incoming offers from every peer together.
    pub max_offers: usize,
    /// Their manifests' bytes.
    pub max_offer_bytes: u64,
    /// An offer left undecided this long expires.
    pub offer_expiry: Duration,
    /// A bulk link waiting for the user's decision is closed after this long (the sender
    /// offers again later; the offer stays).
    pub decision_timeout: Duration,
    /// Bulk links from one peer at once.
    pub max_bulk_links_per_peer: usize,
    /// A running transfer's link is ended when no chunk arrives (receiver) or none can be
    /// written (sender) for this long; the transfer resumes on the next link.
    pub progress_timeout: Duration,
}

impl Default for TransferLimits {
    fn default() -> Self {
        TransferLimits {
            max_offers_per_peer: 32,
            max_offer_bytes_per_peer: 8 << 20,
            max_offers: 256,
            max_offer_bytes: 32 << 20,
            offer_expiry: Duration::from_secs(7 * 24 * 3600),
            decision_timeout: Duration::from_secs(60),
            max_bulk_links_per_peer: 8,
            progress_timeout: Duration::from_secs(120),
        }
    }
}

/// The bytes an offer's manifest counts for: per file its path, size and hash, per empty
/// directory its path, plus the id. Close to its size on the wire and in memory, and cheap
/// to compute.
pub fn manifest_bytes(m: &Manifest) -> u64 {
    let files: u64 = m
        .files
        .iter()
        .map(|f| f.path.as_str().len() as u64 + 8 + 32)
        .sum();
    let dirs: u64 = m.dirs.iter().map(|d| d.as_str().len() as u64).sum();
    files + dirs + 16
}

/// Why a new offer is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferRefusal {
    /// The peer has too many undecided offers.
    #[error("too many undecided offers from you ({max} at most); wait for a decision")]
    PeerCount {
        /// The cap.
        max: usize,
    },
    /// The peer's undecided offers list too much.
    #[error(
        "your undecided offers would list {bytes} bytes of manifests ({max} at most); wait for a decision"
    )]
    PeerBytes {
        /// What they would add up to.
        bytes: u64,
        /// The cap.
        max: u64,
    },
    /// Too many undecided offers from everyone.
    #[error("the receiver holds too many undecided offers; try again later")]
    Total,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    peer: PeerId,
    bytes: u64,
    /// When it was first received, in milliseconds since the Unix epoch.
    since_ms: u64,
}

/// The undecided incoming offers: what each peer holds, and when each expires.
#[derive(Debug)]
pub struct OfferBook {
    limits: TransferLimits,
    offers: HashMap<TransferId, Pending>,
    per_peer: HashMap<PeerId, (usize, u64)>,
    total: (usize, u64),
}

impl OfferBook {
    /// An empty book under `limits`.
    pub fn new(limits: TransferLimits) -> OfferBook {
        OfferBook {
            limits,
            offers: HashMap::new(),
            per_peer: HashMap::new(),
            total: (0, 0),
        }
    }

    /// Takes a new offer if every cap allows it.
    pub fn admit(
        &mut self,
        id: TransferId,
        peer: PeerId,
        bytes: u64,
        now_ms: u64,
    ) -> Result<(), OfferRefusal> {
        if self.offers.contains_key(&id) {
            return Ok(());
        }
        let l = &self.limits;
        let (count, held) = self.per_peer.get(&peer).copied().unwrap_or_default();
        if count >= l.max_offers_per_peer {
            return Err(OfferRefusal::PeerCount {
                max: l.max_offers_per_peer,
            });
        }
        if held.saturating_add(bytes) > l.max_offer_bytes_per_peer {
            return Err(OfferRefusal::PeerBytes {
                bytes: held.saturating_add(bytes),
                max: l.max_offer_bytes_per_peer,
            });
        }
        if self.total.0 >= l.max_offers || self.total.1.saturating_add(bytes) > l.max_offer_bytes {
            return Err(OfferRefusal::Total);
        }
        self.insert(id, peer, bytes, now_ms);
        Ok(())
    }

    /// Takes an offer whatever the caps (one stored before a restart).
    pub fn insert(&mut self, id: TransferId, peer: PeerId, bytes: u64, since_ms: u64) {
        if self.offers.contains_key(&id) {
            return;
        }
        self.offers.insert(
            id,
            Pending {
                peer,
                bytes,
                since_ms,
            },
        );
        let e = self.per_peer.entry(peer).or_default();
        e.0 += 1;
        e.1 = e.1.saturating_add(bytes);
        self.total.0 += 1;
        self.total.1 = self.total.1.saturating_add(bytes);
    }

    /// Forgets an offer (decided, cancelled, expired); false if it was not held.
    pub fn remove(&mut self, id: TransferId) -> bool {
        let Some(p) = self.offers.remove(&id) else {
            return false;
        };
        if let Some(e) = self.per_peer.get_mut(&p.peer) {
            e.0 -= 1;
            e.1 = e.1.saturating_sub(p.bytes);
            if e.0 == 0 {
                self.per_peer.remove(&p.peer);
            }
        }
        self.total.0 -= 1;
        self.total.1 = self.total.1.saturating_sub(p.bytes);
        true
    }

    /// The offers undecided for at least the expiry at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> Vec<TransferId> {
        let expiry = u64::try_from(self.limits.offer_expiry.as_millis()).unwrap_or(u64::MAX);
        self.offers
            .iter()
            .filter(|(_, p)| now_ms.saturating_sub(p.since_ms) >= expiry)
            .map(|(id, _)| *id)
            .collect()
    }

    /// How many offers are held, and their manifests' bytes.
    pub fn totals(&self) -> (usize, u64) {
        self.total
    }
}

/// The bulk links open per peer, under a cap.
#[derive(Debug, Default)]
pub struct LinkCounts {
    per_peer: HashMap<PeerId, usize>,
}

impl LinkCounts {
    /// Counts one more link from `peer`, unless it already has `max`.
    pub fn acquire(&mut self, peer: PeerId, max: usize) -> bool {
        let n = self.per_peer.entry(peer).or_default();
        if *n >= max {
            return false;
        }
        *n += 1;
        true
    }

    /// Counts one link from `peer` fewer.
    pub fn release(&mut self, peer: PeerId) {
        if let Some(n) = self.per_peer.get_mut(&peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_peer.remove(&peer);
            }
        }
    }
}

/// Logs a peer's refusals at most once per period; counts those left out meanwhile.
#[derive(Debug)]
pub struct RefusalLog {
    period_ms: u64,
    /// Per peer: when last logged, and how many refusals since.
    last: HashMap<PeerId, (u64, u64)>,
}

impl RefusalLog {
    /// A log that speaks once per `period` per peer.
    pub fn new(period: Duration) -> RefusalLog {
        RefusalLog {
            period_ms: u64::try_from(period.as_millis()).unwrap_or(u64::MAX),
            last: HashMap::new(),
        }
    }

    /// A refusal for `peer` at `now_ms`: `Some(n)` when it is to be logged, `n` being the
    /// refusals left unlogged before it; `None` to stay quiet.
    pub fn note(&mut self, peer: PeerId, now_ms: u64) -> Option<u64> {
        match self.last.get_mut(&peer) {
            Some((at, quiet)) if now_ms.saturating_sub(*at) < self.period_ms => {
                *quiet += 1;
                None
            }
            Some((at, quiet)) => {
                let n = *quiet;
                *at = now_ms;
                *quiet = 0;
                Some(n)
            }
            None => {
                // Bounded by the peers that can link at all (admitted by the tracker).
                self.last.insert(peer, (now_ms, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> PeerId {
        proto::SecretKey::from_seed([n; 32]).peer_id()
    }

    fn id(n: u8) -> TransferId {
        TransferId([n; 16])
    }

    fn limits() -> TransferLimits {
        TransferLimits {
            max_offers_per_peer: 2,
            max_offer_bytes_per_peer: 100,
            max_offers: 3,
            max_offer_bytes: 1000,
            offer_expiry: Duration::from_secs(10),
            ..TransferLimits::default()
        }
    }

    #[test]
    fn per_peer_caps_count_and_bytes() {
        let mut b = OfferBook::new(limits());
        let (a, c) = (peer(1), peer(2));
        b.admit(id(1), a, 40, 0).unwrap();
        // A re-offer of a held id is not counted again.
        b.admit(id(1), a, 40, 0).unwrap();
        assert_eq!(
            b.admit(id(2), a, 61, 0),
            Err(OfferRefusal::PeerBytes {
                bytes: 101,
                max: 100
            })
        );
        b.admit(id(2), a, 60, 0).unwrap();
        assert_eq!(
            b.admit(id(3), a, 1, 0),
            Err(OfferRefusal::PeerCount { max: 2 })
        );
        // Another peer still gets in, up to the total.
        b.admit(id(4), c, 1, 0).unwrap();
        assert_eq!(b.admit(id(5), c, 1, 0), Err(OfferRefusal::Total));
        assert_eq!(b.totals(), (3, 101));
        // A decision frees the room.
        assert!(b.remove(id(1)));
        assert!(!b.remove(id(1)));
        b.admit(id(3), a, 1, 0).unwrap();
        assert_eq!(b.totals(), (3, 62));
    }

    #[test]
    fn total_bytes_cap() {
        let mut b = OfferBook::new(TransferLimits {
            max_offer_bytes: 150,
            ..limits()
        });
        b.admit(id(1), peer(1), 100, 0).unwrap();
        assert_eq!(b.admit(id(2), peer(2), 51, 0), Err(OfferRefusal::Total));
        b.admit(id(2), peer(2), 50, 0).unwrap();
    }

    #[test]
    fn offers_expire_after_the_expiry_and_loaded_ones_count() {
        let mut b = OfferBook::new(limits());
        b.admit(id(1), peer(1), 10, 1_000).unwrap();
        // Stored before a restart: taken whatever the caps.
        b.insert(id(2), peer(1), 10, 5_000);
        b.insert(id(3), peer(1), 10, 5_000);
        assert_eq!(b.totals(), (3, 30));
        assert!(b.expired(10_999).is_empty());
        assert_eq!(b.expired(11_000), vec![id(1)]);
        let mut later = b.expired(15_000);
        later.sort();
        assert_eq!(later, vec![id(1), id(2), id(3)]);
        for i in later {
            b.remove(i);
        }
        assert_eq!(b.totals(), (0, 0));
    }

    #[test]
    fn bulk_links_per_peer() {
        let mut l = LinkCounts::default();
        assert!(l.acquire(peer(1), 2));
        assert!(l.acquire(peer(1), 2));
        assert!(!l.acquire(peer(1), 2));
        assert!(l.acquire(peer(2), 2));
        l.release(peer(1));
        assert!(l.acquire(peer(1), 2));
        l.release(peer(3));
    }

    #[test]
    fn refusals_are_logged_once_per_period() {
        let mut r = RefusalLog::new(Duration::from_secs(60));
        assert_eq!(r.note(peer(1), 0), Some(0));
        assert_eq!(r.note(peer(1), 1_000), None);
        assert_eq!(r.note(peer(1), 59_999), None);
        assert_eq!(r.note(peer(2), 59_999), Some(0));
        assert_eq!(r.note(peer(1), 60_000), Some(2));
        assert_eq!(r.note(peer(1), 60_001), None);
    }

    #[test]
    fn manifest_bytes_follow_the_paths() {
        let entry = |p: &str| proto::transfer::FileEntry {
            path: proto::transfer::RelPath::new(p).unwrap(),
            size: 1,
            hash: [0; 32],
        };
        let m = Manifest {
            id: id(1),
            files: vec![entry("a"), entry("bb/c")],
            dirs: Vec::new(),
        };
        assert_eq!(manifest_bytes(&m), 16 + (1 + 40) + (4 + 40));
    }
}
