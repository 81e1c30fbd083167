//! The daemon's shared state, owned in one place with a cloneable handle: identity, the
//! peer table, the tracker link state, the event bus, and the peer table's rows in the
//! database ([`PeerStore`]: pins, flags, the address book), which only `Node` writes.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use proto::addr_record::SignedAddrRecord;
use proto::api::{Event, PeerInfo, PeerSource, SourceStatus, TrackerLinkState, TrackerStatus};
use proto::tracker::{PeerEntry, SignedHandover};
use proto::{PeerId, PeerName, SecretKey};
use tokio::sync::broadcast;
use tracing::{info, warn};

use crate::lookup::Lookups;
use crate::own_record::OwnRecord;
use crate::peers::{PeerTable, ResolveError, Source, TrackerIdx};
use crate::rekey::chain;
use crate::store::{PeerStore, Pin, StoreError};

/// Events buffered per subscriber before it is told it lagged.
const EVENT_BUFFER: usize = 4096;
/// At most one `link_error` event (and log line) per key in this time.
const LINK_ERROR_EVERY: Duration = Duration::from_secs(60);
/// Keys remembered for that. When that many were named within the last minute, further
/// keys are not reported until some age out: a flood of keys cannot flood the log.
const LINK_ERROR_KEYS: usize = 4096;

/// Facts fixed at start-up.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Our name.
    pub name: PeerName,
    /// Our key.
    pub id: PeerId,
    /// Bound peer-link address.
    pub listen: SocketAddr,
    /// Control socket path.
    pub socket: PathBuf,
    /// Configured tracker addresses, in order ([`TrackerIdx`] is a place in this list).
    pub tracker_addrs: Vec<String>,
}

struct Mutable {
    peers: PeerTable,
    /// Each tracker link, in configuration order.
    trackers: Vec<TrackerStatus>,
    /// When a `link_error` last named each key.
    link_errors: HashMap<PeerId, Instant>,
    /// Keys shown in conflict with a pin whose handover chain was asked for on this tracker
    /// session (asked once each).
    chain_asked: HashSet<PeerId>,
    /// Names whose handover chain is to be asked for.
    chain_asks: Vec<PeerName>,
}

/// Shared daemon state.
pub struct Node {
    /// Fixed facts.
    pub identity: Identity,
    /// When the daemon started.
    pub started: Instant,
    state: Mutex<Mutable>,
    store: PeerStore,
    /// Held across every write to the pins and flags, from reading the table to applying the
    /// change: the database write is awaited, so the table lock cannot span it.
    writes: tokio::sync::Mutex<()>,
    events: broadcast::Sender<Event>,
    /// The highest seq our key signed (records and handover statements).
    last_seq: AtomicU64,
    /// Our own signed address record.
    own: OwnRecord,
    /// Names being looked up on the tracker links.
    pub lookups: Lookups,
}

/// A failed change to a peer's settings.
#[derive(Debug, thiserror::Error)]
pub enum PeerOpError {
    /// The reference did not resolve.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `forget-key` without a key conflict to resolve.
    #[error(
        "no other key is shown for {name}: {key} is the key the tracker shows and the one \
         pinned, so there is nothing to forget (to forget it anyway: forget-key --force)"
    )]
    NoConflict {
        /// The peer.
        name: PeerName,
        /// Its key.
        key: PeerId,
    },
    /// `forget-key --force` on a blocked peer would lift the block.
    #[error("{0} is blocked; unblock it before forgetting its key")]
    Blocked(PeerName),
}

impl Node {
    /// New state: the pinned peers (offline), the tracker link connecting, and our address
    /// record signed with `key` (identity's key).
    pub async fn new(
        identity: Identity,
        key: &SecretKey,
        store: PeerStore,
    ) -> Result<Arc<Node>, StoreError> {
        let now = svc::unix_now();
        let first_seq = svc::unix_millis();
        let own = OwnRecord::new(key.clone(), vec![identity.listen], first_seq, now);
        let peers = PeerTable::new(identity.id, store.known_peers().await?, now)
            .with_book(store.address_book().await?)
            .with_trackers(identity.tracker_addrs.clone());
        let trackers = identity
            .tracker_addrs
            .iter()
            .map(|addr| TrackerStatus {
                addr: addr.clone(),
                key: None,
                state: TrackerLinkState::Connecting,
                detail: None,
                since: now,
            })
            .collect();
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Ok(Arc::new(Node {
            state: Mutex::new(Mutable {
                peers,
                trackers,
                link_errors: HashMap::new(),
                chain_asked: HashSet::new(),
                chain_asks: Vec::new(),
            }),
            store,
            writes: tokio::sync::Mutex::new(()),
            identity,
            started: Instant::now(),
            events,
            last_seq: AtomicU64::new(first_seq),
            own,
            lookups: Lookups::default(),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Mutable> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A receiver of every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Logs and broadcasts events.
    pub fn publish(&self, events: impl IntoIterator<Item = Event>) {
        for ev in events {
            log_activity(&ev);
            // No subscribers is fine.
            let _ = self.events.send(ev);
        }
    }

    /// Applies `f` to the peer table and publishes its events before the lock is released,
    /// so anyone who reads the table and then subscribes sees each change exactly once.
    fn change<I: IntoIterator<Item = Event>>(&self, f: impl FnOnce(&mut PeerTable, u64) -> I) {
        let mut g = self.lock();
        let events: Vec<Event> = f(&mut g.peers, svc::unix_now()).into_iter().collect();
        // Each peer as `peers` shows it (with the other keys of its name and its trackers).
        let events = events.into_iter().map(|mut ev| {
            if let Event::PeerJoined { peer }
            | Event::PeerLeft { peer }
            | Event::PeerUpdated { peer } = &mut ev
                && let Some(full) = g.peers.get(peer.id)
            {
                *peer = full;
            }
            ev
        });
        self.publish(events.collect::<Vec<_>>());
    }

    /// A peer registered or changed at tracker `idx`: verify, check the name pin, update.
    pub async fn tracker_entry(&self, idx: TrackerIdx, entry: &PeerEntry) {
        self.apply_entry(Source::Tracker(idx), entry).await;
    }

    async fn apply_entry(&self, source: Source, entry: &PeerEntry) {
        let rec = &entry.signed.record;
        if rec.key == self.identity.id {
            return;
        }
        if !entry.signed.verify() {
            warn!(key = %rec.key, "ignoring a peer record with a bad signature");
            return;
        }
        // Only read: a peer is pinned in the store once the user deals with it.
        let pin = self.store.check_pin(&rec.name, rec.key).await;
        match pin {
            Ok(Pin::New | Pin::Same) => {
                self.change(|t, now| t.upsert(source, entry, now));
                self.book(rec.key).await;
            }
            Ok(Pin::Conflict { pinned }) => {
                let mut g = self.lock();
                if g.chain_asked.insert(rec.key) {
                    g.chain_asks.push(rec.name.clone());
                }
                let ev = g.peers.conflict(source, entry, pinned, svc::unix_now());
                self.publish(ev);
            }
            Err(e) => warn!("cannot pin {}: {e}", rec.name),
        }
    }

    /// Names shown with a key in conflict with their pin, whose handover chain the tracker
    /// link should ask for now (each conflicting key once per tracker session).
    pub fn take_chain_asks(&self) -> Vec<PeerName> {
        std::mem::take(&mut self.lock().chain_asks)
    }

    /// The tracker's handover chain for `name`: each pinned peer of that name shown under
    /// another key follows it to that key if the chain leads there link by link (see
    /// [`chain::follow`]); otherwise its conflict stands, with one warning.
    pub async fn handovers(&self, name: &PeerName, handovers: &[SignedHandover]) {
        let conflicts: Vec<(PeerId, PeerEntry)> = {
            let g = self.lock();
            g.peers
                .list()
                .into_iter()
                .filter(|p| p.name == *name)
                .filter_map(|p| Some((p.id, g.peers.key_conflict(p.id)?.clone())))
                .collect()
        };
        for (pinned, entry) in conflicts {
            let shown = entry.signed.record.key;
            match chain::follow(handovers, name, pinned, shown) {
                Ok(()) => self.follow_rotation(pinned, &entry).await,
                Err(e) => {
                    warn!(target: svc::logging::ACTIVITY, op = "key-rotation-refused", peer = %name, pinned = %pinned.short(), shown = %shown.short(), "the tracker's handover chain does not lead from the pinned key to the key shown; the key conflict stands: {e}")
                }
            }
        }
    }

    /// `pinned` handed its name to `entry`'s key: the pin, its flags and the queued messages
    /// move to the new key (stored first), then the table follows and `peer_updated` goes out.
    async fn follow_rotation(&self, pinned: PeerId, entry: &PeerEntry) {
        let (name, new) = (&entry.signed.record.name, entry.signed.record.key);
        let writes = self.writes.lock().await;
        if self
            .lock()
            .peers
            .key_conflict(pinned)
            .map(|e| e.signed.record.key)
            != Some(new)
        {
            return;
        }
        let source = self
            .lock()
            .peers
            .key_conflict_source(pinned)
            .unwrap_or(Source::Tracker(TrackerIdx(0)));
        let moved = match self
            .store
            .rekey_peer(pinned, new, name, svc::unix_now())
            .await
        {
            Ok(n) => n,
            Err(e) => return warn!("cannot follow the key rotation of {name}: {e}"),
        };
        {
            let mut g = self.lock();
            let ev = g.peers.rekeyed(source, pinned, entry, svc::unix_now());
            self.publish(ev);
        }
        drop(writes);
        if let Err(e) = self.store.drop_address(pinned).await {
            warn!("cannot forget the address record of {name}'s old key: {e}");
        }
        self.book(new).await;
        info!(target: svc::logging::ACTIVITY, op = "key-rotated", peer = %name, old = %pinned.short(), new = %new.short(), queued_moved = moved, "the peer rotated its key with a statement signed by the pinned key; following it");
    }

    /// Writes pinned peer `id`'s latest address record to the address book, if it is new.
    async fn book(&self, id: PeerId) {
        let Some(entry) = self.lock().peers.to_book(id) else {
            return;
        };
        if let Err(e) = self.store.save_address(&entry, svc::unix_now()).await {
            warn!(peer = %id.short(), "cannot keep the address record: {e}");
        }
    }

    /// A peer link to `id` may be dialled now, or looked up first when `look_up` (see
    /// [`PeerTable::dial_target`]): its info.
    pub fn dial_target(&self, id: PeerId, look_up: bool) -> Option<PeerInfo> {
        self.lock().peers.dial_target(id, look_up)
    }

    /// Records `seq` as signed by our key; returns the highest seq signed so far.
    pub fn note_seq(&self, seq: u64) -> u64 {
        self.last_seq.fetch_max(seq, Ordering::SeqCst).max(seq)
    }

    /// A seq for a new statement of our key: above every one signed so far, and at least the
    /// time in ms (so above those of earlier runs).
    pub fn next_seq(&self) -> u64 {
        let mut next = 0;
        let _ = self
            .last_seq
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                next = (last + 1).max(svc::unix_millis());
                Some(next)
            });
        next
    }

    /// Our signed address record now, valid for at least an hour (renewed with a new seq
    /// when due): what every source publishes for us.
    pub fn addr_record(&self) -> SignedAddrRecord {
        self.own.get(|| self.next_seq(), svc::unix_now())
    }

    /// Our address record signed again now with a new seq (see [`Node::next_seq`]).
    pub fn fresh_addr_record(&self) -> SignedAddrRecord {
        self.own.renew(self.next_seq(), svc::unix_now())
    }

    /// A receiver that sees each renewal of our address record.
    pub fn watch_addr_record(&self) -> tokio::sync::watch::Receiver<SignedAddrRecord> {
        self.own.subscribe()
    }

    /// The highest seq our key has signed in this process.
    pub fn last_seq(&self) -> u64 {
        self.last_seq.load(Ordering::SeqCst)
    }

    /// The full list from tracker `idx`: it no longer sees peers absent from it.
    pub async fn tracker_snapshot(&self, idx: TrackerIdx, entries: &[PeerEntry]) {
        let source = Source::Tracker(idx);
        self.change(|t, now| {
            let gone = t.missing_from(source, entries);
            gone.into_iter()
                .filter_map(|id| t.lost(id, source, now))
                .collect::<Vec<_>>()
        });
        for e in entries {
            self.apply_entry(source, e).await;
        }
    }

    /// The keys a tracker link watches when it does not take every change: pinned peers and
    /// those with an open peer link.
    pub fn contacts(&self) -> Vec<PeerId> {
        self.lock().peers.contacts()
    }

    /// A peer left tracker `idx`.
    pub fn tracker_left(&self, idx: TrackerIdx, id: PeerId) {
        self.change(|t, now| t.lost(id, Source::Tracker(idx), now));
    }

    /// The tracker link is gone: it sees nobody until it is back (peers another source sees
    /// stay online), and conflicting keys may be asked about once more on the next session.
    pub fn tracker_lost(&self, idx: TrackerIdx) {
        {
            let mut g = self.lock();
            g.chain_asked.clear();
            g.chain_asks.clear();
        }
        self.change(|t, now| t.source_gone(Source::Tracker(idx), now));
    }

    /// `source` hands over a peer's signed address record, from IP `from`, with the name the
    /// sender claims: checked and applied by [`PeerTable::heard`] (a forged, expired or
    /// replayed record changes nothing); the events go out.
    pub fn heard(
        &self,
        source: Source,
        record: &SignedAddrRecord,
        from: Option<IpAddr>,
        claimed_name: Option<&PeerName>,
    ) {
        self.change(|t, now| t.heard(source, record, from, claimed_name, now));
    }

    /// `source` no longer sees `id` (its announcement went, its record expired).
    pub fn lost(&self, id: PeerId, source: Source) {
        self.change(|t, now| t.lost(id, source, now));
    }

    /// `source` sees nobody now (it stopped or failed); peers another source sees stay
    /// online.
    pub fn source_gone(&self, source: Source) {
        self.change(|t, now| t.source_gone(source, now));
    }

    /// How many peers `source` sees now.
    pub fn seen_by(&self, source: Source) -> usize {
        self.lock().peers.seen_by(source)
    }

    /// A peer link to `id` is open: the peer is online while it stays open.
    pub fn link_up(&self, id: PeerId) {
        self.change(|t, now| t.link_up(id, now));
        self.lookups.contact(id);
    }

    /// The peer link to `id` closed.
    pub fn link_down(&self, id: PeerId) {
        self.change(|t, now| t.lost(id, Source::Link, now));
    }

    /// Sets tracker `idx`'s link state, publishing an event when it changed.
    pub fn set_tracker(
        &self,
        idx: TrackerIdx,
        state: TrackerLinkState,
        key: Option<PeerId>,
        detail: Option<String>,
    ) {
        let mut g = self.lock();
        let Some(t) = g.trackers.get_mut(usize::from(idx.0)) else {
            return;
        };
        if t.state == state && t.detail == detail && (key.is_none() || t.key == key) {
            return;
        }
        t.state = state;
        t.detail = detail;
        if key.is_some() {
            t.key = key;
        }
        t.since = svc::unix_now();
        let ev = Event::Tracker { tracker: t.clone() };
        // Published under the lock, like peer changes.
        self.publish([ev]);
    }

    /// The first tracker link now, if any tracker is configured (`status`'s `tracker`).
    pub fn tracker(&self) -> Option<TrackerStatus> {
        self.lock().trackers.first().cloned()
    }

    /// Known peers.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.lock().peers.list()
    }

    /// One peer.
    pub fn peer(&self, id: PeerId) -> Option<PeerInfo> {
        self.lock().peers.get(id)
    }

    /// Resolves a name or id prefix.
    pub fn resolve(&self, text: &str) -> Result<PeerInfo, ResolveError> {
        let g = self.lock();
        let id = g.peers.resolve(text, &self.identity.name)?;
        g.peers.get(id).ok_or_else(|| ResolveError::unknown(text))
    }

    /// (online, known) peer counts.
    pub fn peer_counts(&self) -> (usize, usize) {
        self.lock().peers.counts()
    }

    /// Each discovery source as `status` shows it: each tracker, the open links, the book.
    pub fn sources(&self) -> Vec<SourceStatus> {
        let g = self.lock();
        let mut v: Vec<SourceStatus> = g
            .trackers
            .iter()
            .zip(0u16..)
            .map(|(t, i)| SourceStatus::tracker(t, g.peers.seen_by(Source::Tracker(TrackerIdx(i)))))
            .collect();
        v.push(SourceStatus::up(
            PeerSource::Link,
            g.peers.seen_by(Source::Link),
        ));
        v.push(SourceStatus::up(PeerSource::Book, g.peers.booked()));
        v
    }

    /// The peer `id` as the table holds it now; unknown if it is gone.
    fn known(&self, id: PeerId) -> Result<PeerInfo, ResolveError> {
        self.peer(id)
            .ok_or_else(|| ResolveError::unknown(&id.to_string()))
    }

    /// Changes a peer's flags: stored first, then applied, and `peer_updated` goes out (under
    /// the table lock, like every other peer change) unless nothing changed.
    pub async fn set_flags(
        &self,
        id: PeerId,
        f: impl FnOnce(&mut PeerInfo),
    ) -> Result<PeerInfo, PeerOpError> {
        let _writes = self.writes.lock().await;
        let mut info = self.known(id)?;
        let before = (info.trusted, info.auto_accept, info.blocked);
        f(&mut info);
        self.pin_now(info.id).await?;
        self.store
            .set_flags(info.id, info.trusted, info.auto_accept, info.blocked)
            .await?;
        let mut g = self.lock();
        let updated = g
            .peers
            .set_flags(info.id, info.trusted, info.auto_accept, info.blocked);
        if let Some(peer) = &updated
            && (peer.trusted, peer.auto_accept, peer.blocked) != before
        {
            self.publish([Event::PeerUpdated { peer: peer.clone() }]);
        }
        drop(g);
        Ok(updated.unwrap_or(info))
    }

    /// The user deals with `id` (a message or a transfer either way, trust, block): pin its
    /// name to its key in the store, if not yet. A peer never dealt with stays in memory.
    pub async fn deal_with(&self, id: PeerId) -> Result<(), StoreError> {
        if self.lock().peers.is_pinned(id) {
            return Ok(());
        }
        let _writes = self.writes.lock().await;
        self.pin_now(id).await
    }

    /// [`deal_with`](Self::deal_with) for a caller holding `writes`, so a concurrent change
    /// cannot pin another key for the name meanwhile.
    async fn pin_now(&self, id: PeerId) -> Result<(), StoreError> {
        let info = {
            let g = self.lock();
            if g.peers.is_pinned(id) {
                return Ok(());
            }
            let Some(info) = g.peers.get(id) else {
                return Ok(());
            };
            info
        };
        if let Pin::New | Pin::Same = self.store.pin(&info.name, id, svc::unix_now()).await? {
            self.lock().peers.set_pinned(id);
        }
        self.book(id).await;
        Ok(())
    }

    /// Publishes a `link_error` naming `peer`, unless one named it within the last minute.
    /// True when published (the caller logs its line only then).
    pub fn link_error(&self, peer: PeerId, detail: String) -> bool {
        let now = Instant::now();
        {
            let mut g = self.lock();
            let seen = &mut g.link_errors;
            if seen
                .get(&peer)
                .is_some_and(|t| now.saturating_duration_since(*t) < LINK_ERROR_EVERY)
            {
                return false;
            }
            if seen.len() >= LINK_ERROR_KEYS {
                seen.retain(|_, t| now.saturating_duration_since(*t) < LINK_ERROR_EVERY);
                if seen.len() >= LINK_ERROR_KEYS {
                    return false;
                }
            }
            seen.insert(peer, now);
        }
        self.publish([Event::LinkError {
            peer: Some(peer),
            detail,
        }]);
        true
    }

    /// Resolves a key conflict: the key the tracker now shows for the peer's name replaces
    /// the pinned one. A block stays with the name; trust is not carried to a new key. Without
    /// a conflict this is refused unless `force`, which drops the pin (not on a blocked peer).
    pub async fn forget_key(&self, id: PeerId, force: bool) -> Result<PeerInfo, PeerOpError> {
        let _writes = self.writes.lock().await;
        let info = self.known(id)?;
        let conflict = self.lock().peers.key_conflict(info.id).cloned();
        let Some(entry) = conflict else {
            if !force {
                return Err(PeerOpError::NoConflict {
                    name: info.name,
                    key: info.id,
                });
            }
            if info.blocked {
                return Err(PeerOpError::Blocked(info.name));
            }
            self.store.forget(info.id).await?;
            return Ok(self.forget_row(info).await);
        };
        let new = entry.signed.record.key;
        self.store
            .replace_key(
                info.id,
                &entry.signed.record.name,
                new,
                info.blocked,
                svc::unix_now(),
            )
            .await?;
        let source = self
            .lock()
            .peers
            .key_conflict_source(info.id)
            .unwrap_or(Source::Tracker(TrackerIdx(0)));
        self.forget_row(info.clone()).await;
        self.apply_entry(source, &entry).await;
        let updated = {
            let mut g = self.lock();
            g.peers.set_pinned(new);
            let updated = g.peers.set_flags(new, false, false, info.blocked);
            if let Some(peer) = &updated {
                self.publish([Event::PeerUpdated { peer: peer.clone() }]);
            }
            updated
        };
        self.book(new).await;
        info!(target: svc::logging::ACTIVITY, op = "key-replaced", peer = %info.name, old = %info.id.short(), new = %new.short(), "pinned key replaced");
        Ok(updated.unwrap_or(info))
    }

    /// Unpins `info`'s key in the table (its flags go) and publishes `peer_updated` with what
    /// it became, under the table lock. Returns that.
    async fn forget_row(&self, info: PeerInfo) -> PeerInfo {
        if let Err(e) = self.store.drop_address(info.id).await {
            warn!(peer = %info.name, "cannot forget the address record: {e}");
        }
        let mut g = self.lock();
        g.peers.forget(info.id);
        let forgotten = PeerInfo {
            trusted: false,
            auto_accept: false,
            blocked: false,
            key_conflict: None,
            same_name: Vec::new(),
            trackers: Vec::new(),
            ..info
        };
        self.publish([Event::PeerUpdated {
            peer: forgotten.clone(),
        }]);
        forgotten
    }
}

fn log_activity(ev: &Event) {
    use svc::logging::ACTIVITY;
    match ev {
        Event::PeerJoined { peer } => {
            tracing::info!(target: ACTIVITY, op = "peer-online", peer = %peer.name, id = %peer.id.short(), "peer online")
        }
        Event::PeerLeft { peer } => {
            tracing::info!(target: ACTIVITY, op = "peer-offline", peer = %peer.name, id = %peer.id.short(), "peer offline")
        }
        Event::PeerUpdated { peer } => {
            tracing::info!(target: ACTIVITY, op = "peer-updated", peer = %peer.name, id = %peer.id.short(), "peer updated")
        }
        Event::Tracker { tracker } => {
            tracing::info!(target: ACTIVITY, op = "tracker", state = ?tracker.state, detail = tracker.detail.as_deref().unwrap_or(""), "tracker link")
        }
        Event::MessageReceived { message } => {
            tracing::info!(target: ACTIVITY, op = "message-in", peer = %message.peer_name, id = %message.id, bytes = message.text.len(), "message received")
        }
        Event::MessageUpdated { message } => {
            tracing::info!(target: ACTIVITY, op = "message-out", peer = %message.peer_name, id = %message.id, state = ?message.state, detail = message.detail.as_deref().unwrap_or(""), "message settled")
        }
        Event::LinkError { peer, detail } => {
            tracing::warn!(target: ACTIVITY, op = "link-error", peer = ?peer.map(|p| p.short()), "{detail}")
        }
        // Transfers log their own activity lines.
        Event::TransferOffered { .. }
        | Event::TransferProgress { .. }
        | Event::TransferUpdated { .. }
        | Event::PutProgress { .. }
        | Event::Lagged { .. } => {}
    }
}
