//! The tracker's shared state behind one lock: the registry, its store, the rate limiter and
//! the links' event queues ([`Events`]). Connections call in through [`Hub`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use proto::addr_record::{AddrRecordError, SignedAddrRecord};
use proto::tracker::{
    ADDR_RECORD_VERSION, LookupBy, MAX_PAGE, MAX_RESPONSE_FRAME, MAX_WATCHED, MIN_PROTOCOL_VERSION,
    PeerEntry, Refusal, SignedHandover, SignedRecord, TrackerMsg,
};
use proto::{KeyBytes, PeerId, PeerName};
use svc::logging::ACTIVITY;
use tracing::{info, warn};

use crate::events::Events;
use crate::group_sync::GroupSync;
use crate::limits::RateLimiter;
use crate::link::{Close, LinkCtl};
use crate::registry::{ConnId, Refused, Registry};
use crate::store::{Store, StoreError};

struct Inner {
    registry: Registry,
    store: Store,
    rate: RateLimiter,
    /// The event queues of subscribing and watching links.
    events: Events,
    /// The signed address record each live key handed over last, with its connection's IP.
    addr_records: HashMap<PeerId, (SignedAddrRecord, IpAddr)>,
    /// The handles of the connections past `Hello`: events, closing, the lease.
    links: HashMap<ConnId, Arc<LinkCtl>>,
    /// The tracker stops: no more links are attached.
    stopping: bool,
    /// Connections past `Hello` that have not registered, with when they said `Hello`.
    unregistered: HashMap<ConnId, Instant>,
    /// Registrations accepted and registered links ended since start ([`Hub::tally`]).
    tally: Tally,
}

/// Registrations accepted and registered links ended, since start: the tracker logs their
/// growth periodically rather than a line per registration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Registrations accepted (new names, reconnects and renewals).
    pub registered: u64,
    /// Registered links that ended.
    pub left: u64,
}

/// A cloneable handle on the shared state.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Mutex<Inner>>,
    /// Syncs new name bindings to disk, several at a time.
    sync: Arc<GroupSync>,
    /// The origin of the links' times ([`Hub::now_ms`]).
    epoch: Instant,
}

/// Result of a registration.
pub enum RegisterResult {
    /// Accepted: the entry as served, and the ticket to wait on ([`Hub::durable`]) before
    /// acknowledging it when it made a new binding or took a handover.
    Accepted(PeerEntry, Option<u64>),
    /// Refused with a reason.
    Refused(Refused),
}

impl Hub {
    /// Wraps a loaded store; a binding unused for `lapse` may be taken by another key.
    pub fn new(store: Store, rate: RateLimiter, lapse: Duration) -> Result<Hub, StoreError> {
        let (names, seqs) = store.load()?;
        info!(names = names.len(), "loaded name bindings");
        let sync = Arc::new(GroupSync::new(store.wal_path()));
        let inner = Arc::new(Mutex::new(Inner {
            registry: Registry::new(names, seqs, lapse),
            store,
            rate,
            events: Events::default(),
            addr_records: HashMap::new(),
            links: HashMap::new(),
            stopping: false,
            unregistered: HashMap::new(),
            tally: Tally::default(),
        }));
        Ok(Hub {
            inner,
            sync,
            epoch: Instant::now(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Returns once the registration that got `ticket` is on disk (one sync for every
    /// registration committed before it starts).
    pub async fn durable(&self, ticket: u64) -> std::io::Result<()> {
        self.sync.durable(ticket).await
    }

    /// Milliseconds since the hub was made: the links' clock.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Attaches connection `conn` (past `Hello`, not yet registered): the returned handle
    /// brings it event frames and tells it to close if another connection displaces it, it is
    /// evicted, its lease runs out ([`Hub::sweep`]) or the tracker stops (then it is closed
    /// from the start).
    pub fn attach(&self, conn: ConnId) -> Arc<LinkCtl> {
        let link = Arc::new(LinkCtl::new(self.now_ms()));
        let mut g = self.lock();
        if g.stopping {
            link.close(Close::Cancelled);
        }
        g.links.insert(conn, link.clone());
        g.unregistered.insert(conn, Instant::now());
        link
    }

    /// Closes the links not heard from for `lease`. Returns how many it closed.
    pub fn sweep(&self, lease: Duration) -> usize {
        let lease = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
        self.sweep_at(self.now_ms(), lease)
    }

    /// [`Hub::sweep`] at `now` (the hub's milliseconds), for a lease of `lease` of them.
    fn sweep_at(&self, now: u64, lease: u64) -> usize {
        let g = self.lock();
        let mut closed = 0;
        for link in g.links.values() {
            if now.saturating_sub(link.heard_at()) >= lease && link.closing().is_none() {
                link.close(Close::Lease);
                closed += 1;
            }
        }
        closed
    }

    /// The tracker stops: closes every link, and every link attached from now on.
    pub fn close_all(&self) {
        let mut g = self.lock();
        g.stopping = true;
        for link in g.links.values() {
            link.close(Close::Cancelled);
        }
    }

    /// Checks, persists and applies a registration (with the old key's handover `statement`
    /// if any), then tells subscribers.
    pub fn register(
        &self,
        conn: ConnId,
        tls_key: PeerId,
        ip: IpAddr,
        signed: SignedRecord,
        statement: Option<&SignedHandover>,
    ) -> RegisterResult {
        let mut g = self.lock();
        if !g.rate.allow(ip, Instant::now()) {
            return RegisterResult::Refused((
                Refusal::RateLimited,
                format!("too many registrations from {ip}; slow down"),
            ));
        }
        let now = svc::unix_now();
        let plan = match g.registry.check(conn, tls_key, ip, signed, statement, now) {
            Ok(plan) => plan,
            Err(refused) => return RegisterResult::Refused(refused),
        };
        let rec = &plan.entry.signed.record;
        let handover = statement.filter(|_| plan.handed_from.is_some());
        if let Err(e) = g
            .store
            .record(plan.new_binding.as_ref(), &rec.key, rec.seq, now, handover)
        {
            warn!("cannot persist registration: {e}");
            return RegisterResult::Refused((
                Refusal::BadRecord,
                "the tracker could not store the registration".into(),
            ));
        }
        let ticket =
            (plan.new_binding.is_some() || handover.is_some()).then(|| self.sync.committed());
        let entry = plan.entry.clone();
        let rec_key = rec.key;
        if let Some((name, key)) = &plan.new_binding {
            info!(target: ACTIVITY, op = "bind", name = %name, key = %key, "name bound");
        }
        if let Some(old) = &plan.released {
            info!(target: ACTIVITY, op = "unbind", name = %old, key = %rec.key, reason = "the key bound another name", "name released");
        }
        if let Some((old, _)) = &plan.handed_from {
            info!(target: ACTIVITY, op = "unbind", name = %rec.name, key = %old, reason = "handed over with a signed statement", to = %rec.key, "name handed over");
        }
        if let Some(old) = &plan.lapsed {
            info!(target: ACTIVITY, op = "unbind", name = %rec.name, key = %old, reason = "lapsed unused", "name lapsed");
        }
        let applied = g.registry.apply(plan, Instant::now());
        g.unregistered.remove(&conn);
        if let Some(old) = applied.displaced {
            g.close(old);
        }
        if let Some((old_key, old_conn)) = applied.handed_from_live {
            g.close(old_conn);
            g.publish(&TrackerMsg::Left { key: old_key }, &old_key, old_conn);
        }
        let event = if applied.joined {
            TrackerMsg::Joined(entry.clone())
        } else {
            TrackerMsg::Updated(entry.clone())
        };
        g.publish(&event, &rec_key, conn);
        g.tally.registered += 1;
        RegisterResult::Accepted(entry, ticket)
    }

    /// Adds `conn`, whose link speaks `version`, as a subscriber; the current list is queued
    /// first, answering `req`, then (from version 2) the address record of each listed peer
    /// that handed one over.
    pub fn subscribe(&self, conn: ConnId, req: u32, version: u16) {
        let mut g = self.lock();
        let Some(link) = g.links.get(&conn).cloned() else {
            return;
        };
        let peers = g.registry.entries();
        let frames = g.list_frames(TrackerMsg::Peers { req, peers }, version);
        g.events.subscribe(conn, version, &link, frames);
    }

    /// `conn` (version 3) watches `keys`: the live ones among them are queued first, in a
    /// `Peers` answering `req` (then their address records), and changes of those keys
    /// follow. Refused past [`MAX_WATCHED`] keys.
    pub fn watch(
        &self,
        conn: ConnId,
        req: u32,
        version: u16,
        keys: &[KeyBytes],
    ) -> Result<(), Refused> {
        let mut g = self.lock();
        let Some(link) = g.links.get(&conn).cloned() else {
            return Ok(());
        };
        let peers: Vec<PeerEntry> = keys
            .iter()
            .filter_map(|k| g.registry.lookup_key(k).cloned())
            .collect();
        let frames = g.list_frames(TrackerMsg::Peers { req, peers }, version);
        g.events
            .watch(conn, version, &link, keys, MAX_WATCHED, frames)
            .map_err(|would| {
                (
                    Refusal::TooManyWatches,
                    format!("{would} watched keys is more than {MAX_WATCHED} on one link"),
                )
            })
    }

    /// `conn` stops watching `keys`.
    pub fn unwatch(&self, conn: ConnId, keys: &[KeyBytes]) {
        self.lock().events.unwatch(conn, keys);
    }

    /// The live peer by name or key, answering `req`, then its address record if it handed
    /// one over.
    pub fn lookup(&self, req: u32, by: &LookupBy) -> Vec<TrackerMsg> {
        let g = self.lock();
        let entry = match by {
            LookupBy::Name(name) => g.registry.lookup_name(name),
            LookupBy::Key(key) => g.registry.lookup_key(key),
        }
        .cloned();
        let record = entry
            .as_ref()
            .and_then(|e| g.addr_record_msg(&e.signed.record.key));
        std::iter::once(TrackerMsg::Found { req, entry })
            .chain(record)
            .collect()
    }

    /// One page of the live peers in key order after `after`, answering `req`.
    pub fn page(&self, req: u32, after: Option<PeerId>, limit: u16) -> TrackerMsg {
        let (peers, next) = self
            .lock()
            .registry
            .page(after, usize::from(limit.min(MAX_PAGE)));
        TrackerMsg::Page { req, peers, next }
    }

    /// Event frames queued since start, links with an event queue, and keys watched.
    pub fn event_counts(&self) -> (u64, usize, usize) {
        let g = self.lock();
        let (queues, watched) = g.events.counts();
        (g.events.sent(), queues, watched)
    }

    /// Live key `key` (registered on `conn`, from `ip`) hands over its signed address
    /// record: checked (its own, validly signed, not expired, seq above the last one taken),
    /// kept while it is live, and served unchanged to version-2 subscribers.
    pub fn addr_record(
        &self,
        conn: ConnId,
        key: PeerId,
        ip: IpAddr,
        record: SignedAddrRecord,
    ) -> Result<(), Refused> {
        let refusal = |e: AddrRecordError| {
            let reason = match e {
                AddrRecordError::WrongKey { .. } => Refusal::KeyMismatch,
                AddrRecordError::BadSignature => Refusal::BadSignature,
                _ => Refusal::BadRecord,
            };
            (reason, e.to_string())
        };
        record.check(&key, svc::unix_now()).map_err(refusal)?;
        let mut g = self.lock();
        if let Some((last, _)) = g.addr_records.get(&key)
            && last.record.seq >= record.record.seq
        {
            return Err((
                Refusal::StaleSeq,
                format!(
                    "address record seq {} is not above {} already taken",
                    record.record.seq, last.record.seq
                ),
            ));
        }
        g.addr_records.insert(key, (record.clone(), ip));
        g.publish_from(
            &TrackerMsg::AddrRecord {
                record,
                observed: ip,
            },
            &key,
            conn,
            ADDR_RECORD_VERSION,
        );
        Ok(())
    }

    /// The current list, answering `req`.
    pub fn list(&self, req: u32) -> TrackerMsg {
        TrackerMsg::Peers {
            req,
            peers: self.lock().registry.entries(),
        }
    }

    /// Connection `conn` closed; `key` is its TLS key if it had registered. A live key's
    /// binding counts as used until now.
    pub fn disconnect(&self, conn: ConnId, key: Option<PeerId>) {
        let mut g = self.lock();
        g.events.remove(conn);
        g.links.remove(&conn);
        g.unregistered.remove(&conn);
        let now = svc::unix_now();
        g.tally.left += u64::from(key.is_some());
        if let Some(key) = key
            && let Some(left) = g.registry.disconnect(conn, key, now)
        {
            if let Err(e) = g.store.touch(&[left], now) {
                warn!("cannot record when a name was last used: {e}");
            }
            g.publish(&TrackerMsg::Left { key: left }, &left, conn);
        }
    }

    /// Connection `conn`, registered as `key`, made a request other than a keepalive.
    pub fn note_activity(&self, conn: ConnId, key: PeerId) {
        self.lock()
            .registry
            .note_activity(conn, key, Instant::now());
    }

    /// Closes one connection to make room at the connection cap: the oldest one that said
    /// `Hello` but never registered (it serves nobody), else the registered one idle the
    /// longest, whose entry is dropped at once (subscribers see it leave). Returns the
    /// connection id, or `None` when no connection is past its `Hello`.
    pub fn evict_idlest(&self) -> Option<ConnId> {
        let mut g = self.lock();
        if let Some(conn) = oldest(&g.unregistered) {
            g.unregistered.remove(&conn);
            info!(target: ACTIVITY, op = "evict", conn, "closing the oldest unregistered connection: the connection cap is reached");
            g.close(conn);
            return Some(conn);
        }
        let (conn, key) = g.registry.idlest()?;
        let now = svc::unix_now();
        g.registry.evict(conn, key, now);
        if let Err(e) = g.store.touch(&[key], now) {
            warn!("cannot record when a name was last used: {e}");
        }
        info!(target: ACTIVITY, op = "evict", key = %key, "closing the longest-idle connection: the connection cap is reached");
        g.close(conn);
        g.publish(&TrackerMsg::Left { key }, &key, conn);
        Some(conn)
    }

    /// Marks the bindings of every connected key used now, in memory and on disk.
    pub fn touch_live(&self) {
        let mut g = self.lock();
        let now = svc::unix_now();
        let keys = g.registry.touch_live(now);
        if let Err(e) = g.store.touch(&keys, now) {
            warn!("cannot record when names were last used: {e}");
        }
    }

    /// Frees `name` (persisted first). A connected holder's registration is dropped: its
    /// connection is closed and subscribers see it leave. Returns the key that held it.
    pub fn release(&self, name: &PeerName) -> Result<Option<PeerId>, StoreError> {
        let mut g = self.lock();
        if g.registry.binding(name).is_none() {
            return Ok(None);
        }
        g.store.release(name)?;
        let Some((key, conn)) = g.registry.release(name) else {
            return Ok(None);
        };
        info!(target: ACTIVITY, op = "unbind", name = %name, key = %key, reason = "released by the operator", "name released");
        if let Some(conn) = conn {
            g.close(conn);
            g.publish(&TrackerMsg::Left { key }, &key, conn);
        }
        Ok(Some(key))
    }

    /// The handover statements accepted for `name`, oldest first (empty if the store fails:
    /// the asker then keeps its conflict, as without a chain).
    pub fn handovers(&self, name: &PeerName) -> Vec<SignedHandover> {
        self.lock().store.handovers(name).unwrap_or_else(|e| {
            warn!("cannot read the handovers of {name}: {e}");
            Vec::new()
        })
    }

    /// Live peers now.
    pub fn live_count(&self) -> usize {
        self.lock().registry.live_count()
    }

    /// Registrations accepted and registered links ended since start.
    pub fn tally(&self) -> Tally {
        self.lock().tally
    }
}

impl Inner {
    /// Tells connection `conn` to close, if it is attached.
    fn close(&self, conn: ConnId) {
        if let Some(link) = self.links.get(&conn) {
            link.close(Close::Cancelled);
        }
    }

    /// `list` encoded, then (from version 2) the address record of each peer it lists that
    /// handed one over.
    fn list_frames(&self, list: TrackerMsg, version: u16) -> Vec<Bytes> {
        let mut records = Vec::new();
        if version >= ADDR_RECORD_VERSION
            && let TrackerMsg::Peers { peers, .. } = &list
        {
            records.extend(
                peers
                    .iter()
                    .filter_map(|e| self.addr_record_msg(&e.signed.record.key)),
            );
        }
        std::iter::once(list)
            .chain(records)
            .filter_map(|m| encode(&m))
            .collect()
    }

    /// The `AddrRecord` frame of live key `key`, if it handed one over.
    fn addr_record_msg(&self, key: &PeerId) -> Option<TrackerMsg> {
        let (record, observed) = self.addr_records.get(key)?;
        Some(TrackerMsg::AddrRecord {
            record: record.clone(),
            observed: *observed,
        })
    }

    /// Queues `msg`, a change of `key`, for the links that hear of it but `from`. A peer
    /// that leaves takes its address record with it.
    fn publish(&mut self, msg: &TrackerMsg, key: &PeerId, from: ConnId) {
        if let TrackerMsg::Left { key } = msg {
            self.addr_records.remove(key);
        }
        self.publish_from(msg, key, from, MIN_PROTOCOL_VERSION);
    }

    /// Queues `msg`, a change of `key`, for the links that hear of it but `from`, whose
    /// version is `min_version` or more.
    fn publish_from(&mut self, msg: &TrackerMsg, key: &PeerId, from: ConnId, min_version: u16) {
        let Some(frame) = encode(msg) else { return };
        self.events.publish(&frame, key, from, min_version);
    }
}

/// The connection with the earliest time (ties: the lowest id).
fn oldest(since: &HashMap<ConnId, Instant>) -> Option<ConnId> {
    since
        .iter()
        .min_by_key(|&(&conn, &at)| (at, conn))
        .map(|(&conn, _)| conn)
}

fn encode(msg: &TrackerMsg) -> Option<Bytes> {
    match proto::frame::encode(msg, MAX_RESPONSE_FRAME) {
        Ok(v) => Some(Bytes::from(v)),
        Err(e) => {
            warn!("cannot encode an event: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_sweep_closes_silent_links_and_a_stopping_hub_closes_every_link() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let hub = Hub::new(store, RateLimiter::new(1.0, 1), Duration::from_secs(60)).unwrap();
        let (one, two) = (hub.attach(1), hub.attach(2));
        assert_eq!(hub.sweep(Duration::from_secs(3600)), 0);
        assert_eq!(one.closing(), None);
        let later = hub.now_ms() + 10_000;
        two.heard(later - 4_000);
        assert_eq!(hub.sweep_at(later, 5_000), 1);
        assert_eq!((one.closing(), two.closing()), (Some(Close::Lease), None));
        assert_eq!(
            hub.sweep_at(later, 5_000),
            0,
            "a closing link is closed once"
        );
        hub.close_all();
        assert_eq!(two.closing(), Some(Close::Cancelled));
        assert_eq!(hub.attach(3).closing(), Some(Close::Cancelled));
        hub.disconnect(1, None);
        hub.disconnect(2, None);
        hub.disconnect(3, None);
        assert!(hub.lock().links.is_empty());
    }

    #[test]
    fn registrations_and_departures_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let hub = Hub::new(store, RateLimiter::new(100.0, 100), Duration::from_secs(60)).unwrap();
        let sk = proto::SecretKey::from_seed([4; 32]);
        let record = |seq| {
            proto::tracker::Record {
                name: PeerName::new("tally").unwrap(),
                key: sk.peer_id(),
                addrs: vec!["127.0.0.1:9".parse().unwrap()],
                seq,
            }
            .sign(&sk)
        };
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        hub.attach(1);
        for seq in [1, 2] {
            let r = hub.register(1, sk.peer_id(), ip, record(seq), None);
            assert!(matches!(r, RegisterResult::Accepted(..)));
        }
        // A stale record is refused and not counted.
        let r = hub.register(1, sk.peer_id(), ip, record(1), None);
        assert!(matches!(r, RegisterResult::Refused(..)));
        assert_eq!(
            hub.tally(),
            Tally {
                registered: 2,
                left: 0
            }
        );
        hub.attach(2);
        hub.disconnect(2, None);
        hub.disconnect(1, Some(sk.peer_id()));
        assert_eq!(
            hub.tally(),
            Tally {
                registered: 2,
                left: 1
            }
        );
    }

    #[test]
    fn the_oldest_unregistered_connection_goes_first() {
        let t = Instant::now();
        let s = |n| t + Duration::from_secs(n);
        assert_eq!(oldest(&HashMap::new()), None);
        assert_eq!(
            oldest(&HashMap::from([(5, s(2)), (7, s(1)), (9, s(3))])),
            Some(7)
        );
        assert_eq!(oldest(&HashMap::from([(5, s(1)), (4, s(1))])), Some(4));
    }
}
