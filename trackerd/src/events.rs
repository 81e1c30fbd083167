//! Who hears of which change. A link either subscribes (every change: versions 1 and 2, and
//! any version that asks) or watches keys (version 3: changes of those keys only). Watches are
//! indexed by key, so a change costs O(subscribers + watchers of that key), not O(links).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use proto::PeerId;
use tokio::sync::Notify;
use tracing::warn;

use crate::registry::ConnId;

/// Frames queued per link before it counts as too slow and is disconnected.
pub const QUEUE: usize = 4096;

/// One link's queue of event frames: the hub pushes, the link's task takes. Unlike a bounded
/// channel (which allocates a block of slots up front, ~1 KiB), an idle queue holds no
/// buffer: it is allocated while frames wait and freed once they are taken.
#[derive(Default)]
pub struct LinkQueue {
    frames: Mutex<VecDeque<Bytes>>,
    ready: Notify,
    closed: AtomicBool,
}

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
enum PushError {
    /// [`QUEUE`] frames wait already.
    Full,
    /// The queue was closed.
    Closed,
}

impl LinkQueue {
    fn push(&self, frame: Bytes) -> Result<(), PushError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(PushError::Closed);
        }
        {
            let mut q = self.frames.lock().unwrap_or_else(PoisonError::into_inner);
            if q.len() >= QUEUE {
                return Err(PushError::Full);
            }
            q.push_back(frame);
        }
        self.ready.notify_one();
        Ok(())
    }

    /// No more frames: the reader gets what waits, then `None`.
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.ready.notify_one();
    }

    /// The next frame without waiting, if one waits.
    pub fn try_recv(&self) -> Option<Bytes> {
        let mut q = self.frames.lock().unwrap_or_else(PoisonError::into_inner);
        let frame = q.pop_front();
        if q.is_empty() && q.capacity() > 0 {
            // An idle link keeps no buffer.
            *q = VecDeque::new();
        }
        frame
    }

    /// The next frame; `None` once the queue is closed and drained (the link was too slow).
    pub async fn recv(&self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.try_recv() {
                return Some(frame);
            }
            if self.closed.load(Ordering::Acquire) {
                return self.try_recv();
            }
            // A push between the check and here left a permit: no wake-up is lost.
            self.ready.notified().await;
        }
    }
}

/// One link's event queue.
struct Queue {
    link: Arc<LinkQueue>,
    /// The protocol version of the link.
    version: u16,
    /// Subscribed: hears of every change.
    full: bool,
    /// The keys it watches.
    watching: HashSet<PeerId>,
}

/// The event queues of the links that asked for events, and the watch index.
#[derive(Default)]
pub struct Events {
    queues: HashMap<ConnId, Queue>,
    /// The links that subscribed to every change.
    full: HashSet<ConnId>,
    /// Key to the links watching it.
    watchers: HashMap<PeerId, Vec<ConnId>>,
    /// Event frames queued since start (each frame to each link counts once).
    sent: u64,
}

impl Events {
    /// The queue of `conn`, made if it has none: the receiver is returned only when made (the
    /// link then starts reading it).
    fn queue(&mut self, conn: ConnId, version: u16) -> (&mut Queue, Option<Arc<LinkQueue>>) {
        let mut made = None;
        let q = self.queues.entry(conn).or_insert_with(|| {
            let link = Arc::new(LinkQueue::default());
            made = Some(link.clone());
            Queue {
                link,
                version,
                full: false,
                watching: HashSet::new(),
            }
        });
        (q, made)
    }

    /// `conn` hears of every change from now on; `frames` (the current list) go first. A link
    /// that already subscribed keeps its queue as it is.
    pub fn subscribe(
        &mut self,
        conn: ConnId,
        version: u16,
        frames: impl IntoIterator<Item = Bytes>,
    ) -> Option<Arc<LinkQueue>> {
        let (q, made) = self.queue(conn, version);
        if q.full {
            return made;
        }
        q.full = true;
        // A list longer than the queue is cut; the link catches up by events.
        for f in frames {
            let _ = q.link.push(f);
        }
        self.full.insert(conn);
        made
    }

    /// Adds `keys` to what `conn` watches, unless that takes it past `cap` keys (then
    /// `Err(the count it would reach)`, nothing changed). `frames` (the live ones' entries)
    /// are queued first.
    pub fn watch(
        &mut self,
        conn: ConnId,
        version: u16,
        keys: &[PeerId],
        cap: usize,
        frames: impl IntoIterator<Item = Bytes>,
    ) -> Result<Option<Arc<LinkQueue>>, usize> {
        let (q, made) = self.queue(conn, version);
        let adding = keys.iter().filter(|k| !q.watching.contains(k)).count();
        if q.watching.len() + adding > cap {
            let would = q.watching.len() + adding;
            if made.is_some() {
                self.queues.remove(&conn);
            }
            return Err(would);
        }
        for f in frames {
            let _ = q.link.push(f);
        }
        let mut added = Vec::new();
        for &k in keys {
            if q.watching.insert(k) {
                added.push(k);
            }
        }
        for k in added {
            self.watchers.entry(k).or_default().push(conn);
        }
        Ok(made)
    }

    /// Drops `keys` from what `conn` watches.
    pub fn unwatch(&mut self, conn: ConnId, keys: &[PeerId]) {
        let Some(q) = self.queues.get_mut(&conn) else {
            return;
        };
        let removed: Vec<PeerId> = keys
            .iter()
            .filter(|k| q.watching.remove(k))
            .copied()
            .collect();
        for k in removed {
            self.unindex(conn, k);
        }
    }

    fn unindex(&mut self, conn: ConnId, key: PeerId) {
        if let Some(list) = self.watchers.get_mut(&key) {
            list.retain(|&c| c != conn);
            if list.is_empty() {
                self.watchers.remove(&key);
            }
        }
    }

    /// Forgets `conn` (closed, or too slow): its queue closes and its watches go.
    pub fn remove(&mut self, conn: ConnId) {
        self.full.remove(&conn);
        if let Some(q) = self.queues.remove(&conn) {
            q.link.close();
            for k in q.watching {
                self.unindex(conn, k);
            }
        }
    }

    /// Queues `frame`, a change of `key`, for the subscribers and the watchers of `key`, but
    /// not `from` nor links below `min_version`. A link whose queue is full is dropped (its
    /// connection ends once it has drained what it has).
    pub fn publish(&mut self, frame: &Bytes, key: &PeerId, from: ConnId, min_version: u16) {
        let watchers = self.watchers.get(key).map(Vec::as_slice).unwrap_or(&[]);
        let mut dead = Vec::new();
        let targets = self
            .full
            .iter()
            .chain(watchers.iter().filter(|c| !self.full.contains(c)));
        for &conn in targets {
            let Some(q) = self.queues.get(&conn) else {
                continue;
            };
            if conn == from || q.version < min_version {
                continue;
            }
            match q.link.push(frame.clone()) {
                Ok(()) => self.sent += 1,
                Err(PushError::Full) => {
                    warn!(
                        conn,
                        "event queue full: the link is too slow; disconnecting it"
                    );
                    dead.push(conn);
                }
                Err(PushError::Closed) => dead.push(conn),
            }
        }
        for conn in dead {
            self.remove(conn);
        }
    }

    /// Event frames queued since start.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Links with a queue, and keys watched by at least one link.
    pub fn counts(&self) -> (usize, usize) {
        (self.queues.len(), self.watchers.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::SecretKey;

    fn key(n: u8) -> PeerId {
        SecretKey::from_seed([n; 32]).peer_id()
    }

    fn drain(rx: &mut Arc<LinkQueue>) -> Vec<Bytes> {
        std::iter::from_fn(|| rx.try_recv()).collect()
    }

    #[test]
    fn a_change_reaches_subscribers_and_the_keys_watchers_only() {
        let mut ev = Events::default();
        let mut sub = ev.subscribe(1, 2, [Bytes::from_static(b"list")]).unwrap();
        let mut w2 = ev.watch(2, 3, &[key(7)], 10, []).unwrap().unwrap();
        let mut w3 = ev.watch(3, 3, &[key(8)], 10, []).unwrap().unwrap();
        // Watching and subscribing: one copy.
        assert!(ev.watch(1, 2, &[key(7)], 10, []).unwrap().is_none());
        ev.publish(&Bytes::from_static(b"k7"), &key(7), 9, 1);
        assert_eq!(drain(&mut sub), vec![&b"list"[..], &b"k7"[..]]);
        assert_eq!(drain(&mut w2), vec![&b"k7"[..]]);
        assert!(drain(&mut w3).is_empty());
        assert_eq!(ev.sent(), 2);
        // Not to the link the change came from, nor below the version.
        ev.publish(&Bytes::from_static(b"x"), &key(7), 2, 1);
        assert!(drain(&mut w2).is_empty());
        assert_eq!(drain(&mut sub), vec![&b"x"[..]]);
        ev.publish(&Bytes::from_static(b"y"), &key(7), 9, 3);
        assert!(drain(&mut sub).is_empty());
        assert_eq!(drain(&mut w2), vec![&b"y"[..]]);
        // Unwatched, then gone: nothing more, and the index empties.
        ev.unwatch(2, &[key(7)]);
        ev.publish(&Bytes::from_static(b"z"), &key(7), 9, 1);
        assert!(drain(&mut w2).is_empty());
        ev.remove(3);
        ev.remove(1);
        assert_eq!(ev.counts(), (1, 0));
    }

    #[test]
    fn the_watch_cap_refuses_and_a_full_queue_drops_the_link() {
        let mut ev = Events::default();
        let _rx = ev.watch(1, 3, &[key(1), key(2)], 3, []).unwrap().unwrap();
        assert_eq!(
            ev.watch(1, 3, &[key(2), key(3), key(4)], 3, []).err(),
            Some(4)
        );
        assert!(ev.watch(1, 3, &[key(2), key(3)], 3, []).is_ok());
        // A refused first watch leaves no queue behind.
        assert_eq!(ev.watch(2, 3, &[key(1), key(2)], 1, []).err(), Some(2));
        assert_eq!(ev.counts(), (1, 3));
        let mut slow = ev.watch(5, 3, &[key(9)], 3, []).unwrap().unwrap();
        for _ in 0..=QUEUE {
            ev.publish(&Bytes::from_static(b"e"), &key(9), 0, 1);
        }
        assert_eq!(ev.counts(), (1, 3), "the slow link is gone");
        assert_eq!(drain(&mut slow).len(), QUEUE);
        assert!(slow.try_recv().is_none());
    }

    #[tokio::test]
    async fn a_reader_wakes_for_each_frame_and_ends_after_the_close() {
        let q = Arc::new(LinkQueue::default());
        let reader = tokio::spawn({
            let q = q.clone();
            async move {
                let mut got = Vec::new();
                while let Some(f) = q.recv().await {
                    got.push(f);
                }
                got
            }
        });
        for i in 0..100u8 {
            q.push(Bytes::from(vec![i])).unwrap();
            tokio::task::yield_now().await;
        }
        q.close();
        assert_eq!(q.push(Bytes::new()), Err(PushError::Closed));
        let got = reader.await.unwrap();
        assert_eq!(
            got,
            (0..100u8).map(|i| Bytes::from(vec![i])).collect::<Vec<_>>()
        );
        assert_eq!(
            q.frames.lock().unwrap().capacity(),
            0,
            "an idle queue keeps no buffer"
        );
    }
}
