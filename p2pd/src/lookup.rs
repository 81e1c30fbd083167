//! Asking the trackers about a peer the user names but the peer table does not know: with
//! tracker protocol version 3 a large network is not listed in full, so a name is looked up
//! (`Lookup` by name) on each tracker link that watches its contacts only, and the answer
//! lands in the peer table like any tracker entry.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use proto::api::PeerInfo;
use proto::{PeerId, PeerName};
use tokio::sync::{Notify, broadcast};

use crate::node::Node;
use crate::peers::ResolveError;

/// How long a command waits for the trackers' answers to a lookup.
const LOOKUP_WAIT: Duration = Duration::from_secs(5);
/// Lookups waiting to be sent, per tracker link.
const ASKS_BUFFER: usize = 64;

/// What a tracker link that watches its contacts only is asked to do.
#[derive(Debug, Clone)]
pub enum Ask {
    /// Look this name up (the user named it).
    Name(PeerName),
    /// Watch this key (a peer link to it opened: it is a contact now).
    Watch(PeerId),
}

/// The lookups in flight between the control API and the tracker links.
pub struct Lookups {
    /// Names to look up and keys to watch, for every tracker link.
    asks: broadcast::Sender<Ask>,
    /// Woken after each answer has been applied to the peer table.
    answered: Notify,
    /// Tracker links that watch their contacts only (and so answer lookups).
    watching: AtomicUsize,
}

impl Default for Lookups {
    fn default() -> Self {
        Lookups {
            asks: broadcast::channel(ASKS_BUFFER).0,
            answered: Notify::new(),
            watching: AtomicUsize::new(0),
        }
    }
}

/// Held by a tracker link while it watches its contacts only; counted in
/// [`Lookups::watching`] until dropped.
pub struct Watching<'a>(&'a Lookups);

impl Drop for Watching<'_> {
    fn drop(&mut self) {
        self.0.watching.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Lookups {
    /// The names to look up and keys to watch from now on, for one tracker link.
    pub fn asks(&self) -> broadcast::Receiver<Ask> {
        self.asks.subscribe()
    }

    /// A new contact: the links that watch their contacts only watch `key` too.
    pub fn contact(&self, key: PeerId) {
        if self.watching.load(Ordering::Relaxed) > 0 {
            let _ = self.asks.send(Ask::Watch(key));
        }
    }

    /// A tracker link now watches its contacts only, until the guard drops.
    pub fn watching(&self) -> Watching<'_> {
        self.watching.fetch_add(1, Ordering::Relaxed);
        Watching(self)
    }

    /// A tracker link applied a lookup's answer (found or not).
    pub fn answered(&self) {
        self.answered.notify_waiters();
    }
}

impl Node {
    /// Resolves what the user typed; a name no known peer holds is first looked up on the
    /// tracker links that do not list every peer, waiting up to [`LOOKUP_WAIT`] for their
    /// answers.
    pub async fn resolve_or_look_up(&self, text: &str) -> Result<PeerInfo, ResolveError> {
        let first = self.resolve(text);
        let lookups = &self.lookups;
        let links = lookups.watching.load(Ordering::Relaxed);
        let (Err(ResolveError::Unknown(_)), Ok(name), 1..) = (&first, PeerName::new(text), links)
        else {
            return first;
        };
        let deadline = tokio::time::Instant::now() + LOOKUP_WAIT;
        let mut answered = std::pin::pin!(lookups.answered.notified());
        answered.as_mut().enable();
        if lookups.asks.send(Ask::Name(name)).is_err() {
            return first;
        }
        for _ in 0..links {
            if tokio::time::timeout_at(deadline, answered.as_mut())
                .await
                .is_err()
            {
                break;
            }
            let again = self.resolve(text);
            if !matches!(again, Err(ResolveError::Unknown(_))) {
                return again;
            }
            answered.set(lookups.answered.notified());
            answered.as_mut().enable();
        }
        self.resolve(text)
    }
}
