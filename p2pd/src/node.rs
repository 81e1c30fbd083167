//! The daemon's shared state, owned in one place with a cloneable handle: identity, the
//! peer table, the tracker link state, the store and the event bus.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use proto::api::{Event, PeerInfo, TrackerLinkState, TrackerStatus};
use proto::tracker::PeerEntry;
use proto::{PeerId, PeerName};
use tokio::sync::broadcast;
use tracing::warn;

use crate::peers::{PeerTable, ResolveError};
use crate::store::{Pin, Store, StoreError};

/// Events buffered per subscriber before it is told it lagged.
const EVENT_BUFFER: usize = 4096;

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
    /// Configured tracker address.
    pub tracker_addr: String,
}

struct Mutable {
    peers: PeerTable,
    tracker: TrackerStatus,
}

/// Shared daemon state.
pub struct Node {
    /// Fixed facts.
    pub identity: Identity,
    /// When the daemon started.
    pub started: Instant,
    state: Mutex<Mutable>,
    store: Mutex<Store>,
    events: broadcast::Sender<Event>,
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
}

impl Node {
    /// New state: the pinned peers (offline) and the tracker link connecting.
    pub fn new(identity: Identity, store: Store) -> Result<Arc<Node>, StoreError> {
        let now = svc::unix_now();
        let peers = PeerTable::new(identity.id, store.known_peers()?, now);
        let tracker = TrackerStatus {
            addr: identity.tracker_addr.clone(),
            key: None,
            state: TrackerLinkState::Connecting,
            detail: None,
            since: now,
        };
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Ok(Arc::new(Node {
            state: Mutex::new(Mutable { peers, tracker }),
            store: Mutex::new(store),
            identity,
            started: Instant::now(),
            events,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Mutable> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The store. Hold the guard briefly: every call is a short synchronous transaction.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
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
        let events = f(&mut g.peers, svc::unix_now());
        self.publish(events);
    }

    /// A peer registered or changed at the tracker: verify, check the name pin, update.
    pub fn tracker_entry(&self, entry: &PeerEntry) {
        self.apply_entry(entry);
    }

    fn apply_entry(&self, entry: &PeerEntry) {
        let rec = &entry.signed.record;
        if rec.key == self.identity.id {
            return;
        }
        if !entry.signed.verify() {
            warn!(key = %rec.key, "ignoring a peer record with a bad signature");
            return;
        }
        let pin = self.store().pin(&rec.name, rec.key, svc::unix_now());
        match pin {
            Ok(Pin::New | Pin::Same) => self.change(|t, now| t.upsert(entry, now)),
            Ok(Pin::Conflict { pinned }) => self.change(|t, now| t.conflict(entry, pinned, now)),
            Err(e) => warn!("cannot pin {}: {e}", rec.name),
        }
    }

    /// The full list from the tracker: peers absent from it are offline.
    pub fn tracker_snapshot(&self, entries: &[PeerEntry]) {
        self.change(|t, now| {
            let gone = t.missing_from(entries);
            gone.into_iter()
                .filter_map(|id| t.left(id, now))
                .collect::<Vec<_>>()
        });
        for e in entries {
            self.apply_entry(e);
        }
    }

    /// A peer left the tracker.
    pub fn tracker_left(&self, id: PeerId) {
        self.change(|t, now| t.left(id, now));
    }

    /// The tracker link is gone: every peer is offline until it is back.
    pub fn tracker_lost(&self) {
        self.change(|t, now| t.all_offline(now));
    }

    /// Sets the tracker link state, publishing an event when it changed.
    pub fn set_tracker(
        &self,
        state: TrackerLinkState,
        key: Option<PeerId>,
        detail: Option<String>,
    ) {
        let mut g = self.lock();
        let t = &mut g.tracker;
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

    /// The tracker link now.
    pub fn tracker(&self) -> TrackerStatus {
        self.lock().tracker.clone()
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
        let id = g.peers.resolve(text)?;
        g.peers
            .get(id)
            .ok_or_else(|| ResolveError::Unknown(text.to_owned()))
    }

    /// (online, known) peer counts.
    pub fn peer_counts(&self) -> (usize, usize) {
        self.lock().peers.counts()
    }

    /// Changes a peer's flags: stored first, then applied.
    pub fn set_flags(
        &self,
        peer: &str,
        f: impl FnOnce(&mut PeerInfo),
    ) -> Result<PeerInfo, PeerOpError> {
        let mut info = self.resolve(peer)?;
        f(&mut info);
        self.store().pin(&info.name, info.id, svc::unix_now())?;
        self.store()
            .set_flags(info.id, info.trusted, info.auto_accept, info.blocked)?;
        let updated =
            self.lock()
                .peers
                .set_flags(info.id, info.trusted, info.auto_accept, info.blocked);
        Ok(updated.unwrap_or(info))
    }

    /// Forgets the key pinned for a peer; a conflicting key the tracker showed is pinned next.
    pub fn forget_key(&self, peer: &str) -> Result<PeerInfo, PeerOpError> {
        let info = self.resolve(peer)?;
        self.store().forget(info.id)?;
        let conflict = self.lock().peers.forget(info.id);
        if let Some(entry) = conflict {
            let id = entry.signed.record.key;
            self.tracker_entry(&entry);
            return Ok(self.peer(id).unwrap_or(info));
        }
        Ok(PeerInfo {
            trusted: false,
            auto_accept: false,
            blocked: false,
            key_conflict: None,
            ..info
        })
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
        | Event::Lagged { .. } => {}
    }
}
