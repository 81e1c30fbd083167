//! The registry's rules, as a pure state machine: who owns which name (one name per key at a
//! time, a binding lapsing after a time unused), the last seq seen per key, and which peers
//! are live on which connection. No I/O: the server persists what [`Registry::check`] says
//! must be persisted, then [`Registry::apply`]s it. Times are passed in: wall-clock seconds
//! for bindings (they outlive the process), monotonic instants for connection activity.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use proto::tracker::{MAX_ADDRS, PeerEntry, Refusal, SignedHandover, SignedRecord};
use proto::{KeyBytes, PeerId, PeerName};

/// Identifies one tracker connection.
pub type ConnId = u64;

/// A name's owner and when the owner last used it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// The key that holds the name.
    pub key: PeerId,
    /// Unix seconds of the owner's last registration, or of the last time it was seen
    /// connected (on disconnect, and periodically while connected).
    pub last_used: u64,
}

/// What a registration changes; produced by [`Registry::check`], consumed by
/// [`Registry::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The connection registering.
    pub conn: ConnId,
    /// The entry as served to others.
    pub entry: PeerEntry,
    /// A name bound to this key now (it was free, or its binding lapsed): persist before
    /// applying.
    pub new_binding: Option<(PeerName, PeerId)>,
    /// The name this key held until now, released by binding another one.
    pub released: Option<PeerName>,
    /// The key whose unused binding of the name lapsed and is replaced.
    pub lapsed: Option<PeerId>,
    /// The key that handed the name over with a signed statement, and the statement's seq
    /// (recorded as that key's last seq, so the statement cannot be used again).
    pub handed_from: Option<(PeerId, u64)>,
    /// Unix seconds of the registration: the binding's new `last_used`.
    pub now: u64,
}

/// The effect of an applied registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// True for a peer that was not live before (`Joined`), false for `Updated`.
    pub joined: bool,
    /// Another connection that held this key's live entry and must now be closed.
    pub displaced: Option<ConnId>,
    /// The key that handed the name over, if it was live: its entry is gone, its connection
    /// must be closed and others told it left.
    pub handed_from_live: Option<(PeerId, ConnId)>,
}

/// A refusal with its human detail.
pub type Refused = (Refusal, String);

#[derive(Debug, Clone)]
struct Live {
    conn: ConnId,
    entry: PeerEntry,
    /// The connection's last request other than a keepalive (or its registration).
    active_at: Instant,
}

/// Names, seqs and live peers.
#[derive(Debug)]
pub struct Registry {
    names: HashMap<PeerName, Binding>,
    /// The inverse of `names`: at most one name per key.
    by_key: HashMap<PeerId, PeerName>,
    seqs: HashMap<PeerId, u64>,
    /// Ordered by key, so that a list can be served a page at a time from a cursor.
    live: BTreeMap<PeerId, Live>,
    lapse: Duration,
}

impl Registry {
    /// A registry that remembers `names` and `seqs` (loaded from disk); a binding unused for
    /// `lapse` may be taken by another key. Should a key hold several names, it keeps the one
    /// used last.
    pub fn new(
        names: HashMap<PeerName, Binding>,
        seqs: HashMap<PeerId, u64>,
        lapse: Duration,
    ) -> Self {
        let mut by_key: HashMap<PeerId, PeerName> = HashMap::new();
        for (name, b) in &names {
            match by_key.get(&b.key) {
                Some(kept) if names[kept].last_used >= b.last_used => {}
                _ => {
                    by_key.insert(b.key, name.clone());
                }
            }
        }
        let names = names
            .into_iter()
            .filter(|(n, b)| by_key.get(&b.key) == Some(n))
            .collect();
        Self {
            names,
            by_key,
            seqs,
            live: BTreeMap::new(),
            lapse,
        }
    }

    /// Checks a registration from connection `conn`, whose TLS key is `tls_key` and whose
    /// source IP is `observed`, at unix time `now`, carrying the old key's handover
    /// `statement` if any. Changes nothing.
    pub fn check(
        &self,
        conn: ConnId,
        tls_key: PeerId,
        observed: IpAddr,
        signed: SignedRecord,
        statement: Option<&SignedHandover>,
        now: u64,
    ) -> Result<Plan, Refused> {
        let rec = &signed.record;
        if rec.addrs.len() > MAX_ADDRS {
            return Err((
                Refusal::BadRecord,
                format!(
                    "{} addresses announced, at most {MAX_ADDRS}",
                    rec.addrs.len()
                ),
            ));
        }
        if rec.key != tls_key {
            return Err((
                Refusal::KeyMismatch,
                format!(
                    "record key {} differs from the TLS key {}",
                    rec.key.short(),
                    tls_key.short()
                ),
            ));
        }
        if !signed.verify() {
            return Err((
                Refusal::BadSignature,
                "record signature does not verify".into(),
            ));
        }
        let (mut lapsed, mut handed_from) = (None, None);
        if let Some(owner) = self.names.get(&rec.name)
            && owner.key != rec.key
        {
            if let Some(st) = statement {
                handed_from = Some(self.check_handover(st, &signed, owner.key)?);
            } else if !self.lapsed(owner, now) {
                return Err((
                    Refusal::NameTaken,
                    format!(
                        "name {:?} is taken by another key ({})",
                        rec.name.as_str(),
                        owner.key.short()
                    ),
                ));
            } else {
                lapsed = Some(owner.key);
            }
        }
        if let Some(&last) = self.seqs.get(&rec.key)
            && rec.seq <= last
        {
            return Err((
                Refusal::StaleSeq,
                format!("seq {} is not above the last seen {last}", rec.seq),
            ));
        }
        let held = self.by_key.get(&rec.key);
        let new_binding = (held != Some(&rec.name)).then(|| (rec.name.clone(), rec.key));
        let released = held.filter(|&n| *n != rec.name).cloned();
        Ok(Plan {
            conn,
            entry: PeerEntry { signed, observed },
            new_binding,
            released,
            lapsed,
            handed_from,
            now,
        })
    }

    /// Checks that `st` hands the name of `signed` from `owner` to its key, signed by
    /// `owner`, with a seq above every seq seen from `owner`. Returns `(owner, seq)`.
    fn check_handover(
        &self,
        st: &SignedHandover,
        signed: &SignedRecord,
        owner: PeerId,
    ) -> Result<(PeerId, u64), Refused> {
        let (h, rec) = (&st.handover, &signed.record);
        if h.name != rec.name {
            return Err((
                Refusal::BadRecord,
                format!(
                    "the handover statement is for {:?}, not {:?}",
                    h.name.as_str(),
                    rec.name.as_str()
                ),
            ));
        }
        if h.new_key != rec.key {
            return Err((
                Refusal::KeyMismatch,
                format!(
                    "the handover statement hands the name to {}",
                    h.new_key.short()
                ),
            ));
        }
        if h.old_key != owner {
            return Err((
                Refusal::NameTaken,
                format!(
                    "name {:?} is held by {}, not by the key that signed the handover",
                    rec.name.as_str(),
                    owner.short()
                ),
            ));
        }
        if !st.verify() {
            return Err((
                Refusal::BadSignature,
                "handover signature does not verify".into(),
            ));
        }
        if let Some(&last) = self.seqs.get(&owner)
            && h.seq <= last
        {
            return Err((
                Refusal::StaleSeq,
                format!(
                    "handover seq {} is not above the old key's last seen {last}",
                    h.seq
                ),
            ));
        }
        Ok((owner, h.seq))
    }

    /// True when `b` may be taken by another key at `now`: its owner is not connected and
    /// has not used it for the lapse time.
    fn lapsed(&self, b: &Binding, now: u64) -> bool {
        !self.live.contains_key(&b.key) && now.saturating_sub(b.last_used) >= self.lapse.as_secs()
    }

    /// Applies a checked plan; `at` is the connection's activity time.
    pub fn apply(&mut self, plan: Plan, at: Instant) -> Applied {
        let key = plan.entry.signed.record.key;
        if let Some(old) = &plan.released {
            self.names.remove(old);
        }
        if let Some(old) = plan.lapsed {
            self.by_key.remove(&old);
        }
        let mut handed_from_live = None;
        if let Some((old, seq)) = plan.handed_from {
            self.by_key.remove(&old);
            self.seqs.insert(old, seq);
            handed_from_live = self.live.remove(&old).map(|l| (old, l.conn));
        }
        let name = plan.entry.signed.record.name.clone();
        self.names.insert(
            name.clone(),
            Binding {
                key,
                last_used: plan.now,
            },
        );
        self.by_key.insert(key, name);
        self.seqs.insert(key, plan.entry.signed.record.seq);
        let previous = self.live.insert(
            key,
            Live {
                conn: plan.conn,
                entry: plan.entry,
                active_at: at,
            },
        );
        Applied {
            joined: previous.is_none(),
            displaced: previous.map(|p| p.conn).filter(|&c| c != plan.conn),
            handed_from_live,
        }
    }

    /// Connection `conn` closed at unix time `now`. Returns the key that left, if it held a
    /// live entry; its binding's `last_used` is then `now` (persist it).
    pub fn disconnect(&mut self, conn: ConnId, key: PeerId, now: u64) -> Option<PeerId> {
        match self.live.get(&key) {
            Some(l) if l.conn == conn => {
                self.live.remove(&key);
                self.touch_key(key, now);
                Some(key)
            }
            _ => None,
        }
    }

    fn touch_key(&mut self, key: PeerId, now: u64) {
        if let Some(name) = self.by_key.get(&key)
            && let Some(b) = self.names.get_mut(name)
        {
            b.last_used = b.last_used.max(now);
        }
    }

    /// Marks every connected key's binding used at `now`; returns those keys (to persist).
    pub fn touch_live(&mut self, now: u64) -> Vec<PeerId> {
        let keys: Vec<PeerId> = self.live.keys().copied().collect();
        for &k in &keys {
            self.touch_key(k, now);
        }
        keys
    }

    /// Frees `name`. Returns its key, and the connection that holds it live (whose entry is
    /// removed: the caller closes it and announces that the key left).
    pub fn release(&mut self, name: &PeerName) -> Option<(PeerId, Option<ConnId>)> {
        let b = self.names.remove(name)?;
        self.by_key.remove(&b.key);
        let conn = self.live.remove(&b.key).map(|l| l.conn);
        Some((b.key, conn))
    }

    /// Connection `conn` of live key `key` made a request other than a keepalive at `at`.
    pub fn note_activity(&mut self, conn: ConnId, key: PeerId, at: Instant) {
        if let Some(l) = self.live.get_mut(&key)
            && l.conn == conn
        {
            l.active_at = l.active_at.max(at);
        }
    }

    /// Drops the live entry of `key` held by connection `conn` (evicted at unix time `now`):
    /// true if it was there. The binding stays, used until `now`.
    pub fn evict(&mut self, conn: ConnId, key: PeerId, now: u64) -> bool {
        self.disconnect(conn, key, now).is_some()
    }

    /// The registered connection idle the longest (the eviction candidate), with its key.
    pub fn idlest(&self) -> Option<(ConnId, PeerId)> {
        self.live
            .iter()
            .min_by_key(|(_, l)| (l.active_at, l.conn))
            .map(|(k, l)| (l.conn, *k))
    }

    /// The binding of `name`, if any.
    pub fn binding(&self, name: &PeerName) -> Option<Binding> {
        self.names.get(name).copied()
    }

    /// Every live entry.
    pub fn entries(&self) -> Vec<PeerEntry> {
        self.live.values().map(|l| l.entry.clone()).collect()
    }

    /// The live entry of `key` (a checked [`PeerId`] or plain [`KeyBytes`]), if any.
    pub fn lookup_key<K: Borrow<KeyBytes>>(&self, key: &K) -> Option<&PeerEntry> {
        self.live.get(key.borrow()).map(|l| &l.entry)
    }

    /// The live entry of the key holding `name`, if any.
    pub fn lookup_name(&self, name: &PeerName) -> Option<&PeerEntry> {
        self.lookup_key(&self.names.get(name)?.key)
    }

    /// At most `limit` live entries with keys above `after` (all when `None`), keys
    /// ascending, and the cursor for the next page: the last key returned, when more follow.
    pub fn page(&self, after: Option<PeerId>, limit: usize) -> (Vec<PeerEntry>, Option<PeerId>) {
        use std::ops::Bound::{Excluded, Unbounded};
        let from = after.map_or(Unbounded, Excluded);
        let mut iter = self.live.range((from, Unbounded));
        let peers: Vec<PeerEntry> = iter
            .by_ref()
            .take(limit)
            .map(|(_, l)| l.entry.clone())
            .collect();
        let next = match (peers.last(), iter.next()) {
            (Some(last), Some(_)) => Some(last.signed.record.key),
            _ => None,
        };
        (peers, next)
    }

    /// Number of live peers.
    pub fn live_count(&self) -> usize {
        self.live.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::SecretKey;
    use proto::tracker::{Handover, Record};

    fn key(n: u8) -> SecretKey {
        SecretKey::from_seed([n; 32])
    }
    fn rec(k: &SecretKey, name: &str, seq: u64) -> SignedRecord {
        Record {
            name: PeerName::new(name).unwrap(),
            key: k.peer_id(),
            addrs: vec!["0.0.0.0:4000".parse().unwrap()],
            seq,
        }
        .sign(k)
    }
    fn name(n: &str) -> PeerName {
        PeerName::new(n).unwrap()
    }
    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const LAPSE: u64 = 100;
    const T0: u64 = 1_000_000;

    fn registry() -> Registry {
        Registry::new(HashMap::new(), HashMap::new(), Duration::from_secs(LAPSE))
    }

    /// Checks and applies; panics on a refusal.
    fn reg(r: &mut Registry, conn: ConnId, k: &SecretKey, n: &str, seq: u64, now: u64) -> Plan {
        let plan = r
            .check(conn, k.peer_id(), IP, rec(k, n, seq), None, now)
            .unwrap();
        r.apply(plan.clone(), Instant::now());
        plan
    }

    #[test]
    fn first_key_owns_the_name() {
        let mut r = registry();
        let (a, b) = (key(1), key(2));
        let plan = r
            .check(1, a.peer_id(), IP, rec(&a, "alice", 1), None, T0)
            .unwrap();
        assert!(plan.new_binding.is_some());
        assert!(r.apply(plan, Instant::now()).joined);
        let err = r
            .check(2, b.peer_id(), IP, rec(&b, "alice", 1), None, T0)
            .unwrap_err();
        assert_eq!(err.0, Refusal::NameTaken);
        // The owner may come back after disconnecting.
        assert_eq!(r.disconnect(1, a.peer_id(), T0), Some(a.peer_id()));
        let plan = r
            .check(3, a.peer_id(), IP, rec(&a, "alice", 2), None, T0)
            .unwrap();
        assert!(plan.new_binding.is_none());
        assert!(r.apply(plan, Instant::now()).joined);
    }

    #[test]
    fn replays_and_forgeries_are_refused() {
        let mut r = registry();
        let a = key(1);
        reg(&mut r, 1, &a, "alice", 5, T0);
        let check = |r: &Registry, tls: PeerId, s| r.check(1, tls, IP, s, None, T0).unwrap_err().0;
        assert_eq!(
            check(&r, a.peer_id(), rec(&a, "alice", 5)),
            Refusal::StaleSeq
        );
        assert_eq!(
            check(&r, a.peer_id(), rec(&a, "alice", 4)),
            Refusal::StaleSeq
        );
        assert_eq!(
            check(&r, key(9).peer_id(), rec(&a, "alice", 6)),
            Refusal::KeyMismatch
        );
        let mut forged = rec(&a, "alice", 7);
        forged.record.seq = 8;
        assert_eq!(check(&r, a.peer_id(), forged), Refusal::BadSignature);
    }

    #[test]
    fn a_new_connection_displaces_the_old_one() {
        let mut r = registry();
        let a = key(1);
        reg(&mut r, 1, &a, "alice", 1, T0);
        let p = r
            .check(2, a.peer_id(), IP, rec(&a, "alice", 2), None, T0)
            .unwrap();
        let applied = r.apply(p, Instant::now());
        assert!(!applied.joined);
        assert_eq!(applied.displaced, Some(1));
        // The displaced connection closing does not remove the new entry.
        assert_eq!(r.disconnect(1, a.peer_id(), T0), None);
        assert_eq!(r.live_count(), 1);
    }

    #[test]
    fn entries_keep_the_signed_record_and_resolve_addresses() {
        let mut r = registry();
        let a = key(1);
        let signed = rec(&a, "alice", 1);
        let p = r
            .check(
                1,
                a.peer_id(),
                "192.0.2.7".parse().unwrap(),
                signed.clone(),
                None,
                T0,
            )
            .unwrap();
        r.apply(p, Instant::now());
        let e = &r.entries()[0];
        assert_eq!(e.signed, signed);
        assert!(e.signed.verify());
        assert_eq!(e.addrs(), vec!["192.0.2.7:4000".parse().unwrap()]);
    }

    #[test]
    fn a_key_binding_a_second_name_releases_the_first() {
        let mut r = registry();
        let (a, b) = (key(1), key(2));
        reg(&mut r, 1, &a, "alice", 1, T0);
        let plan = reg(&mut r, 1, &a, "alice2", 2, T0);
        assert_eq!(plan.released, Some(name("alice")));
        assert_eq!(plan.new_binding, Some((name("alice2"), a.peer_id())));
        assert_eq!(r.binding(&name("alice")), None);
        assert_eq!(r.live_count(), 1);
        // Another key takes the freed name at once.
        let plan = reg(&mut r, 2, &b, "alice", 1, T0);
        assert_eq!((plan.released, plan.lapsed), (None, None));
        assert_eq!(r.binding(&name("alice")).unwrap().key, b.peer_id());
        // Re-registering the name it holds releases nothing.
        assert_eq!(reg(&mut r, 1, &a, "alice2", 3, T0).released, None);
    }

    #[test]
    fn a_binding_lapses_only_unused_and_disconnected() {
        let mut r = registry();
        let (a, b) = (key(1), key(2));
        reg(&mut r, 1, &a, "alice", 1, T0);
        // Connected: never lapses, however long.
        let err = r.check(
            2,
            b.peer_id(),
            IP,
            rec(&b, "alice", 1),
            None,
            T0 + 10 * LAPSE,
        );
        assert_eq!(err.unwrap_err().0, Refusal::NameTaken);
        // Seen connected until T0 + 50: used then.
        r.touch_live(T0 + 30);
        r.disconnect(1, a.peer_id(), T0 + 50);
        let just_before = T0 + 50 + LAPSE - 1;
        let err = r.check(2, b.peer_id(), IP, rec(&b, "alice", 1), None, just_before);
        assert_eq!(err.unwrap_err().0, Refusal::NameTaken);
        let plan = reg(&mut r, 2, &b, "alice", 1, T0 + 50 + LAPSE);
        assert_eq!(plan.lapsed, Some(a.peer_id()));
        assert_eq!(r.binding(&name("alice")).unwrap().key, b.peer_id());
        // The old key holds nothing now, and may bind another name.
        let plan = reg(&mut r, 3, &a, "alice-again", 2, T0 + 50 + LAPSE);
        assert_eq!(plan.released, None);
    }

    #[test]
    fn loading_keeps_the_most_recently_used_name_of_a_key() {
        let a = key(1).peer_id();
        let names = HashMap::from([
            (
                name("old"),
                Binding {
                    key: a,
                    last_used: 5,
                },
            ),
            (
                name("new"),
                Binding {
                    key: a,
                    last_used: 9,
                },
            ),
        ]);
        let r = Registry::new(names, HashMap::new(), Duration::from_secs(LAPSE));
        assert_eq!(r.binding(&name("old")), None);
        assert_eq!(r.binding(&name("new")).unwrap().key, a);
    }

    #[test]
    fn release_frees_the_name_and_drops_the_live_holder() {
        let mut r = registry();
        let (a, b) = (key(1), key(2));
        reg(&mut r, 7, &a, "alice", 1, T0);
        assert_eq!(r.release(&name("alice")), Some((a.peer_id(), Some(7))));
        assert_eq!(r.live_count(), 0);
        assert_eq!(r.release(&name("alice")), None);
        // Its closing connection changes nothing more.
        assert_eq!(r.disconnect(7, a.peer_id(), T0), None);
        reg(&mut r, 8, &b, "alice", 1, T0);
        // A disconnected holder: no connection to close.
        r.disconnect(8, b.peer_id(), T0);
        assert_eq!(r.release(&name("alice")), Some((b.peer_id(), None)));
    }

    #[test]
    fn the_idlest_connection_is_the_one_with_the_oldest_request() {
        let mut r = registry();
        let (a, b, c) = (key(1), key(2), key(3));
        let t = Instant::now();
        for (conn, k, n, at) in [(1, &a, "a", 0), (2, &b, "b", 1), (3, &c, "c", 2)] {
            let plan = r
                .check(conn, k.peer_id(), IP, rec(k, n, 1), None, T0)
                .unwrap();
            r.apply(plan, t + Duration::from_secs(at));
        }
        assert_eq!(r.idlest(), Some((1, a.peer_id())));
        r.note_activity(1, a.peer_id(), t + Duration::from_secs(5));
        assert_eq!(r.idlest(), Some((2, b.peer_id())));
        // Activity reported by a stale connection of the key does not count.
        r.note_activity(9, b.peer_id(), t + Duration::from_secs(6));
        assert_eq!(r.idlest(), Some((2, b.peer_id())));
        // Evicting it drops its entry at once, so the next eviction picks another.
        assert!(r.evict(2, b.peer_id(), T0));
        assert_eq!(r.idlest(), Some((3, c.peer_id())));
        assert_eq!(r.disconnect(2, b.peer_id(), T0), None);
        assert_eq!(r.binding(&name("b")).unwrap().key, b.peer_id());
    }

    #[test]
    fn lookups_and_pages_walk_the_live_peers_in_key_order() {
        let mut r = registry();
        let keys: Vec<SecretKey> = (1..=5).map(key).collect();
        for (i, k) in keys.iter().enumerate() {
            reg(&mut r, i as ConnId, k, &format!("p{i}"), 1, T0);
        }
        assert_eq!(
            r.lookup_name(&name("p2")).map(|e| e.signed.record.key),
            Some(keys[2].peer_id())
        );
        assert_eq!(
            r.lookup_key(&keys[4].peer_id())
                .map(|e| e.signed.record.name.clone()),
            Some(name("p4"))
        );
        assert!(r.lookup_name(&name("nobody")).is_none());
        // A bound name whose key is not connected is not found.
        r.disconnect(3, keys[3].peer_id(), T0);
        assert!(r.lookup_name(&name("p3")).is_none());
        let mut sorted: Vec<PeerId> = keys.iter().map(SecretKey::peer_id).collect();
        sorted.retain(|k| *k != keys[3].peer_id());
        sorted.sort();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = r.page(after, 3);
            assert!(page.len() <= 3);
            seen.extend(page.iter().map(|e| e.signed.record.key));
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, sorted);
        assert_eq!(r.page(None, 4), (r.page(None, 4).0, None));
        assert_eq!(r.page(Some(sorted[3]), 10).0.len(), 0);
    }

    fn handover(old: &SecretKey, n: &str, new: &SecretKey, seq: u64) -> SignedHandover {
        Handover {
            name: name(n),
            old_key: old.peer_id(),
            new_key: new.peer_id(),
            seq,
        }
        .sign(old)
    }

    #[test]
    fn a_signed_handover_moves_the_name_once() {
        let mut r = registry();
        let (old, new, other) = (key(1), key(2), key(3));
        reg(&mut r, 1, &old, "alice", 5, T0);
        let try_with = |r: &Registry, st: &SignedHandover, by: &SecretKey| {
            r.check(2, by.peer_id(), IP, rec(by, "alice", 1), Some(st), T0)
        };
        let refused =
            |r: &Registry, st: SignedHandover, by: &SecretKey| try_with(r, &st, by).unwrap_err().0;
        // Wrong name, wrong new key, signed by a key that does not hold it, forged, stale.
        assert_eq!(
            refused(&r, handover(&old, "bob", &new, 6), &new),
            Refusal::BadRecord
        );
        assert_eq!(
            refused(&r, handover(&old, "alice", &other, 6), &new),
            Refusal::KeyMismatch
        );
        assert_eq!(
            refused(&r, handover(&other, "alice", &new, 6), &new),
            Refusal::NameTaken
        );
        let mut forged = handover(&old, "alice", &new, 6);
        forged.handover.seq = 7;
        assert_eq!(refused(&r, forged, &new), Refusal::BadSignature);
        assert_eq!(
            refused(&r, handover(&old, "alice", &new, 5), &new),
            Refusal::StaleSeq
        );

        let st = handover(&old, "alice", &new, 6);
        let plan = try_with(&r, &st, &new).unwrap();
        assert_eq!(plan.handed_from, Some((old.peer_id(), 6)));
        let applied = r.apply(plan, Instant::now());
        assert_eq!(applied.handed_from_live, Some((old.peer_id(), 1)));
        assert_eq!(r.binding(&name("alice")).unwrap().key, new.peer_id());
        assert_eq!(r.live_count(), 1);
        // The old key holds nothing, and the statement cannot move the name again.
        let err = r.check(3, old.peer_id(), IP, rec(&old, "alice", 7), None, T0);
        assert_eq!(err.unwrap_err().0, Refusal::NameTaken);
        reg(&mut r, 3, &old, "old-name", 7, T0);
        assert_eq!(r.binding(&name("alice")).unwrap().key, new.peer_id());
    }
}
