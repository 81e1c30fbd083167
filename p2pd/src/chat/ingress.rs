//! What a peer may make this daemon store: a message rate per peer (a token bucket counted in
//! messages and in bytes) and a quota of stored bytes for peers the user does not trust.
//! Pure: time and the stored byte counts are passed in.
//!
//! Over the rate, a message is deferred, not refused: the sender keeps it queued and sends it
//! again after the wait it is told, so nothing is lost between honest peers. Once a message of
//! a peer is deferred, every later one (higher seq) is deferred too until that one comes back,
//! so a conversation keeps its order. Over a quota, a message is refused for good: each
//! untrusted peer has its own quota, and strangers (untrusted peers the user never wrote to)
//! share one more, so a crowd of fresh keys cannot fill the disk, nor crowd out a peer the
//! user talks with. Trusted peers are exempt from all of it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use proto::PeerId;

pub use crate::config::MessageLimits;

/// The shortest and longest wait a deferred sender is told.
const MIN_WAIT: Duration = Duration::from_millis(200);
const MAX_WAIT: Duration = Duration::from_secs(60);
/// A deferral whose message never came back is forgotten after this long.
const DEFERRAL_LIFE: Duration = Duration::from_secs(300);
/// Buckets idle this long are full again and are dropped.
const IDLE: Duration = Duration::from_secs(600);

/// What to do with one incoming message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Store it.
    Accept,
    /// Tell the sender to send it again after `wait`.
    Defer {
        /// How long the sender should wait.
        wait: Duration,
    },
    /// Refuse it for good: the peer's stored bytes would pass a quota.
    OverQuota {
        /// What the peer (or all untrusted peers) would hold with it.
        would_hold: u64,
        /// The quota passed.
        quota: u64,
        /// True when it is the quota of all untrusted peers together.
        total: bool,
    },
}

#[derive(Debug)]
struct Bucket {
    messages: f64,
    bytes: f64,
    last: Instant,
    /// The seq of the first message deferred, and when: later ones wait behind it.
    deferred: Option<(u64, Instant)>,
}

/// The state of the ingress limits for every peer.
#[derive(Debug)]
pub struct Ingress {
    limits: MessageLimits,
    buckets: HashMap<PeerId, Bucket>,
    last_prune: Option<Instant>,
}

/// What is stored already, as the caller knows it.
#[derive(Debug, Clone, Copy)]
pub struct Held {
    /// Text bytes stored from this peer.
    pub peer: u64,
    /// Text bytes stored from all strangers, when this peer is one (`None`: the user wrote
    /// to it, so the strangers' quota does not apply).
    pub strangers: Option<u64>,
}

impl Ingress {
    /// No peer seen yet.
    pub fn new(limits: MessageLimits) -> Self {
        Ingress {
            limits,
            buckets: HashMap::new(),
            last_prune: None,
        }
    }

    /// Decides on message `seq` of `len` text bytes from `peer`. A trusted peer is always
    /// accepted; `held` is only read for others.
    pub fn check(
        &mut self,
        peer: PeerId,
        seq: u64,
        len: u64,
        trusted: bool,
        held: Held,
        now: Instant,
    ) -> Verdict {
        self.prune(now);
        if trusted {
            return Verdict::Accept;
        }
        let l = self.limits;
        let b = self.buckets.entry(peer).or_insert(Bucket {
            messages: f64::from(l.burst),
            bytes: l.bytes_burst as f64,
            last: now,
            deferred: None,
        });
        let dt = now.saturating_duration_since(b.last).as_secs_f64();
        b.last = now;
        b.messages = (b.messages + dt * f64::from(l.rate)).min(f64::from(l.burst));
        b.bytes = (b.bytes + dt * l.bytes_rate as f64).min(l.bytes_burst as f64);
        if let Some((first, at)) = b.deferred
            && (seq < first || now.saturating_duration_since(at) > DEFERRAL_LIFE)
        {
            // An older message, or a deferral the sender never came back for.
            b.deferred = None;
        }
        let cost = (len as f64).min(l.bytes_burst as f64);
        let behind = b.deferred.is_some_and(|(first, _)| seq > first);
        if behind || b.messages < 1.0 || b.bytes < cost {
            let need_m = (1.0 - b.messages).max(0.0) / f64::from(l.rate.max(1));
            let need_b = (cost - b.bytes).max(0.0) / (l.bytes_rate.max(1) as f64);
            let wait = Duration::from_secs_f64(need_m.max(need_b)).clamp(MIN_WAIT, MAX_WAIT);
            if b.deferred.is_none_or(|(first, _)| first == seq) {
                b.deferred = Some((seq, now));
            }
            return Verdict::Defer { wait };
        }
        if b.deferred.is_some_and(|(first, _)| first == seq) {
            b.deferred = None;
        }
        let peer_after = held.peer.saturating_add(len);
        if peer_after > l.quota_per_peer {
            return Verdict::OverQuota {
                would_hold: peer_after,
                quota: l.quota_per_peer,
                total: false,
            };
        }
        if let Some(strangers) = held.strangers
            && strangers.saturating_add(len) > l.quota_total
        {
            let total_after = strangers.saturating_add(len);
            return Verdict::OverQuota {
                would_hold: total_after,
                quota: l.quota_total,
                total: true,
            };
        }
        b.messages -= 1.0;
        b.bytes -= cost;
        Verdict::Accept
    }

    /// Drops buckets that have been idle long enough to be full again.
    fn prune(&mut self, now: Instant) {
        if self
            .last_prune
            .is_some_and(|t| now.saturating_duration_since(t) < IDLE)
        {
            return;
        }
        self.last_prune = Some(now);
        self.buckets
            .retain(|_, b| now.saturating_duration_since(b.last) < IDLE || b.deferred.is_some());
    }
}

/// The wait a deferral carries on the wire, in the refusal's detail.
pub fn wait_detail(wait: Duration) -> String {
    format!("retry after {} ms", wait.as_millis())
}

/// Reads the wait back from a deferral's detail; a missing or odd one gets a sane default.
pub fn wait_from_detail(detail: &str) -> Duration {
    detail
        .strip_prefix("retry after ")
        .and_then(|s| s.strip_suffix(" ms"))
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_millis)
        .clamp(MIN_WAIT, MAX_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::SecretKey;

    fn peer(n: u8) -> PeerId {
        SecretKey::from_seed([n; 32]).peer_id()
    }
    const NONE: Held = Held {
        peer: 0,
        strangers: Some(0),
    };
    fn small() -> MessageLimits {
        MessageLimits {
            rate: 10,
            burst: 3,
            bytes_rate: 1000,
            bytes_burst: 2000,
            quota_per_peer: 10_000,
            quota_total: 15_000,
        }
    }

    #[test]
    fn a_burst_passes_then_the_rest_is_deferred_in_order() {
        let mut g = Ingress::new(small());
        let t0 = Instant::now();
        for seq in 1..=3 {
            assert_eq!(g.check(peer(1), seq, 10, false, NONE, t0), Verdict::Accept);
        }
        let Verdict::Defer { wait } = g.check(peer(1), 4, 10, false, NONE, t0) else {
            panic!("the fourth message at once is deferred")
        };
        assert!(wait >= MIN_WAIT && wait <= MAX_WAIT);
        // Tokens come back, but 5 still waits behind 4 ...
        let later = t0 + Duration::from_secs(1);
        assert!(matches!(
            g.check(peer(1), 5, 10, false, NONE, later),
            Verdict::Defer { .. }
        ));
        // ... until 4 is sent again.
        assert_eq!(g.check(peer(1), 4, 10, false, NONE, later), Verdict::Accept);
        assert_eq!(g.check(peer(1), 5, 10, false, NONE, later), Verdict::Accept);
        // Another peer has its own bucket.
        assert_eq!(g.check(peer(2), 1, 10, false, NONE, t0), Verdict::Accept);
    }

    #[test]
    fn bytes_are_limited_too_and_the_wait_says_how_long() {
        let mut g = Ingress::new(small());
        let t0 = Instant::now();
        assert_eq!(g.check(peer(1), 1, 1500, false, NONE, t0), Verdict::Accept);
        let Verdict::Defer { wait } = g.check(peer(1), 2, 1500, false, NONE, t0) else {
            panic!()
        };
        // 1000 bytes missing at 1000 bytes/s.
        assert_eq!(wait, Duration::from_secs(1));
        assert_eq!(
            g.check(peer(1), 2, 1500, false, NONE, t0 + wait),
            Verdict::Accept
        );
    }

    #[test]
    fn quotas_refuse_for_good_and_trust_exempts() {
        let mut g = Ingress::new(small());
        let t0 = Instant::now();
        let full = Held {
            peer: 9_995,
            strangers: Some(0),
        };
        assert!(matches!(
            g.check(peer(1), 1, 10, false, full, t0),
            Verdict::OverQuota {
                total: false,
                quota: 10_000,
                ..
            }
        ));
        let all = Held {
            peer: 0,
            strangers: Some(14_995),
        };
        assert!(matches!(
            g.check(peer(1), 1, 10, false, all, t0),
            Verdict::OverQuota { total: true, .. }
        ));
        // A peer the user wrote to is not held to the strangers' quota.
        let talked = Held {
            peer: 0,
            strangers: None,
        };
        assert_eq!(g.check(peer(2), 1, 10, false, talked, t0), Verdict::Accept);
        for seq in 1..100 {
            assert_eq!(g.check(peer(3), seq, 1500, true, full, t0), Verdict::Accept);
        }
    }

    #[test]
    fn an_abandoned_deferral_expires_and_idle_buckets_go() {
        let mut g = Ingress::new(small());
        let t0 = Instant::now();
        for seq in 1..=4 {
            g.check(peer(1), seq, 10, false, NONE, t0);
        }
        let much_later = t0 + DEFERRAL_LIFE + Duration::from_secs(1);
        assert_eq!(
            g.check(peer(1), 9, 10, false, NONE, much_later),
            Verdict::Accept
        );
        g.check(peer(2), 1, 10, false, NONE, much_later);
        g.prune(much_later + IDLE + Duration::from_secs(1));
        assert!(g.buckets.is_empty());
    }

    #[test]
    fn the_wait_crosses_the_wire_as_text() {
        let w = Duration::from_millis(1500);
        assert_eq!(wait_from_detail(&wait_detail(w)), w);
        assert_eq!(wait_from_detail("garbage"), Duration::from_secs(1));
        assert_eq!(wait_from_detail("retry after 999999999 ms"), MAX_WAIT);
    }
}
