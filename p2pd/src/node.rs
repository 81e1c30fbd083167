//! The daemon's shared state, owned in one place with a cloneable handle: identity, the
//! peer table, the tracker link state and the event bus.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use proto::api::{Event, TrackerLinkState, TrackerStatus};
use proto::{PeerId, PeerName};
use tokio::sync::broadcast;

use crate::peers::PeerTable;

/// Events buffered per subscriber before it is told it lagged.
const EVENT_BUFFER: usize = 1024;

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
    events: broadcast::Sender<Event>,
}

impl Node {
    /// New state with an empty peer table and the tracker link connecting.
    pub fn new(identity: Identity) -> Arc<Node> {
        let tracker = TrackerStatus {
            addr: identity.tracker_addr.clone(),
            key: None,
            state: TrackerLinkState::Connecting,
            detail: None,
            since: svc::unix_now(),
        };
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Arc::new(Node {
            state: Mutex::new(Mutable {
                peers: PeerTable::new(identity.id),
                tracker,
            }),
            identity,
            started: Instant::now(),
            events,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Mutable> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A receiver of every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    fn publish(&self, events: impl IntoIterator<Item = Event>) {
        for ev in events {
            log_activity(&ev);
            // No subscribers is fine.
            let _ = self.events.send(ev);
        }
    }

    /// Applies a change to the peer table and publishes the events it caused.
    pub fn update_peers<I>(&self, f: impl FnOnce(&mut PeerTable, u64) -> I)
    where
        I: IntoIterator<Item = Event>,
    {
        let events: Vec<Event> = {
            let mut g = self.lock();
            f(&mut g.peers, svc::unix_now()).into_iter().collect()
        };
        self.publish(events);
    }

    /// Sets the tracker link state, publishing an event when it changed.
    pub fn set_tracker(
        &self,
        state: TrackerLinkState,
        key: Option<PeerId>,
        detail: Option<String>,
    ) {
        let ev = {
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
            Event::Tracker { tracker: t.clone() }
        };
        self.publish([ev]);
    }

    /// The tracker link now.
    pub fn tracker(&self) -> TrackerStatus {
        self.lock().tracker.clone()
    }

    /// Known peers.
    pub fn peers(&self) -> Vec<proto::api::PeerInfo> {
        self.lock().peers.list()
    }

    /// (online, known) peer counts.
    pub fn peer_counts(&self) -> (usize, usize) {
        self.lock().peers.counts()
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
        Event::Lagged { .. } => {}
    }
}
