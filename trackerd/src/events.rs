//! Who hears of which change. A link either subscribes (every change: versions 1 and 2, and
//! any version that asks) or watches keys (version 3: changes of those keys only). Watches are
//! indexed by key, so a change costs O(subscribers + watchers of that key), not O(links).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use proto::{KeyBytes, PeerId};
use tracing::warn;

use crate::link::{Close, LinkCtl, PushError};
use crate::registry::ConnId;

/// One link that asked for events.
struct Queue {
    link: Arc<LinkCtl>,
    /// The protocol version of the link.
    version: u16,
    /// Subscribed: hears of every change.
    full: bool,
    /// The keys it watches, sorted: a few keys per link in the common case, so a vector
    /// sized to them (a set's table holds twice the room). Bytes as the link sent them: a
    /// change is always of a checked key, which bytes that are no key never equal.
    watching: Vec<KeyBytes>,
}

impl Queue {
    fn watches(&self, key: &KeyBytes) -> bool {
        self.watching.binary_search(key).is_ok()
    }
}

/// The event queues of the links that asked for events, and the watch index.
#[derive(Default)]
pub struct Events {
    queues: HashMap<ConnId, Queue>,
    /// The links that subscribed to every change.
    full: HashSet<ConnId>,
    /// The watch index: (the key's [`tag`], a link watching it). A tag shared by two keys
    /// only brings a link that is then skipped ([`Queue::watches`]); 16 bytes per watch,
    /// where a map from keys to lists of links took about 100.
    watchers: BTreeSet<(u64, ConnId)>,
    /// Event frames queued since start (each frame to each link counts once).
    sent: u64,
}

impl Events {
    /// The queue of `conn`, made on `link` if it has none.
    fn queue(&mut self, conn: ConnId, version: u16, link: &Arc<LinkCtl>) -> &mut Queue {
        self.queues.entry(conn).or_insert_with(|| Queue {
            link: link.clone(),
            version,
            full: false,
            watching: Vec::new(),
        })
    }

    /// `conn` (whose handle is `link`) hears of every change from now on; `frames` (the
    /// current list) go first. A link that already subscribed stays as it is.
    pub fn subscribe(
        &mut self,
        conn: ConnId,
        version: u16,
        link: &Arc<LinkCtl>,
        frames: impl IntoIterator<Item = Bytes>,
    ) {
        let q = self.queue(conn, version, link);
        if q.full {
            return;
        }
        q.full = true;
        // A list longer than the queue is cut; the link catches up by events.
        for f in frames {
            let _ = q.link.push(f);
        }
        self.full.insert(conn);
    }

    /// Adds `keys` to what `conn` (whose handle is `link`) watches, unless that takes it past
    /// `cap` keys (then `Err(the count it would reach)`, nothing changed). `frames` (the live
    /// ones' entries) are queued first.
    pub fn watch(
        &mut self,
        conn: ConnId,
        version: u16,
        link: &Arc<LinkCtl>,
        keys: &[KeyBytes],
        cap: usize,
        frames: impl IntoIterator<Item = Bytes>,
    ) -> Result<(), usize> {
        let made = !self.queues.contains_key(&conn);
        let q = self.queue(conn, version, link);
        let mut added: Vec<KeyBytes> = keys.iter().filter(|k| !q.watches(k)).copied().collect();
        added.sort_unstable();
        added.dedup();
        let would = q.watching.len() + added.len();
        if would > cap {
            if made {
                self.queues.remove(&conn);
            }
            return Err(would);
        }
        for f in frames {
            let _ = q.link.push(f);
        }
        q.watching.extend_from_slice(&added);
        q.watching.sort_unstable();
        for k in added {
            self.watchers.insert((tag(&k), conn));
        }
        Ok(())
    }

    /// Drops `keys` from what `conn` watches.
    pub fn unwatch(&mut self, conn: ConnId, keys: &[KeyBytes]) {
        let Some(q) = self.queues.get_mut(&conn) else {
            return;
        };
        let mut removed: Vec<KeyBytes> = keys.iter().filter(|k| q.watches(k)).copied().collect();
        removed.sort_unstable();
        removed.dedup();
        q.watching.retain(|k| removed.binary_search(k).is_err());
        if q.watching.capacity() > 2 * q.watching.len() {
            q.watching.shrink_to_fit();
        }
        for k in removed {
            self.unindex(conn, k);
        }
    }

    fn unindex(&mut self, conn: ConnId, key: KeyBytes) {
        self.watchers.remove(&(tag(&key), conn));
    }

    /// Forgets `conn` (closed, or too slow): its watches go.
    pub fn remove(&mut self, conn: ConnId) {
        self.full.remove(&conn);
        if let Some(q) = self.queues.remove(&conn) {
            for k in q.watching {
                self.unindex(conn, k);
            }
        }
    }

    /// Queues `frame`, a change of `key`, for the subscribers and the watchers of `key`, but
    /// not `from` nor links below `min_version`. A link whose queue is full is dropped (its
    /// connection ends once it has sent what waits).
    pub fn publish(&mut self, frame: &Bytes, key: &PeerId, from: ConnId, min_version: u16) {
        let key = &key.key_bytes();
        let t = tag(key);
        let watchers = self.watchers.range((t, ConnId::MIN)..=(t, ConnId::MAX));
        let mut dead = Vec::new();
        let targets = self
            .full
            .iter()
            .copied()
            .chain(watchers.map(|&(_, c)| c).filter(|c| !self.full.contains(c)));
        for conn in targets {
            let Some(q) = self.queues.get(&conn) else {
                continue;
            };
            if conn == from || q.version < min_version || !(q.full || q.watches(key)) {
                continue;
            }
            match q.link.push(frame.clone()) {
                Ok(()) => self.sent += 1,
                Err(PushError::Full) => {
                    warn!(
                        conn,
                        "event queue full: the link is too slow; disconnecting it"
                    );
                    q.link.close(Close::Slow);
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

    /// Links with a queue, and keys watched by at least one link (a walk over every watch:
    /// for the operator's statistics, not for a hot path).
    pub fn counts(&self) -> (usize, usize) {
        let keys: HashSet<&KeyBytes> = self.queues.values().flat_map(|q| &q.watching).collect();
        (self.queues.len(), keys.len())
    }
}

/// The watch index's tag of `key`: its first eight bytes.
fn tag(key: &KeyBytes) -> u64 {
    let b = key.as_bytes();
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::{QUEUE, Signal};
    use proto::SecretKey;
    use std::task::{Context, Poll, Waker};

    fn key(n: u8) -> PeerId {
        SecretKey::from_seed([n; 32]).peer_id()
    }

    fn kb(n: u8) -> KeyBytes {
        key(n).key_bytes()
    }

    fn link() -> Arc<LinkCtl> {
        Arc::new(LinkCtl::new(0))
    }

    /// The frames waiting on `link`, and its close if one follows them.
    fn drain(link: &LinkCtl) -> Vec<Bytes> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut got = Vec::new();
        while let Poll::Ready(Signal::Frame(f)) = link.poll_signal(&mut cx) {
            got.push(f);
        }
        got
    }

    #[test]
    fn a_change_reaches_subscribers_and_the_keys_watchers_only() {
        let mut ev = Events::default();
        let (sub, w2, w3) = (link(), link(), link());
        ev.subscribe(1, 2, &sub, [Bytes::from_static(b"list")]);
        ev.watch(2, 3, &w2, &[kb(7)], 10, []).unwrap();
        ev.watch(3, 3, &w3, &[kb(8)], 10, []).unwrap();
        // Watching and subscribing: one copy.
        ev.watch(1, 2, &sub, &[kb(7)], 10, []).unwrap();
        ev.publish(&Bytes::from_static(b"k7"), &key(7), 9, 1);
        assert_eq!(drain(&sub), vec![&b"list"[..], &b"k7"[..]]);
        assert_eq!(drain(&w2), vec![&b"k7"[..]]);
        assert!(drain(&w3).is_empty());
        assert_eq!(ev.sent(), 2);
        // Not to the link the change came from, nor below the version.
        ev.publish(&Bytes::from_static(b"x"), &key(7), 2, 1);
        assert!(drain(&w2).is_empty());
        assert_eq!(drain(&sub), vec![&b"x"[..]]);
        ev.publish(&Bytes::from_static(b"y"), &key(7), 9, 3);
        assert!(drain(&sub).is_empty());
        assert_eq!(drain(&w2), vec![&b"y"[..]]);
        // A key with the same tag reaches only the subscriber.
        let twin = (0..=255u8)
            .find_map(|last| {
                let mut b = *key(7).as_bytes();
                b[31] ^= last;
                PeerId::from_bytes(b).ok().filter(|k| *k != key(7))
            })
            .unwrap();
        assert_eq!(tag(&twin.key_bytes()), tag(&kb(7)));
        ev.publish(&Bytes::from_static(b"twin"), &twin, 9, 1);
        assert!(drain(&w2).is_empty());
        assert_eq!(drain(&sub), vec![&b"twin"[..]]);
        // Unwatched, then gone: nothing more, and the index empties.
        ev.unwatch(2, &[kb(7), kb(7)]);
        ev.publish(&Bytes::from_static(b"z"), &key(7), 9, 1);
        assert!(drain(&w2).is_empty());
        ev.remove(3);
        ev.remove(1);
        assert_eq!(ev.counts(), (1, 0));
        // Bytes that are no key (here with key 7's tag) are watched as they are and never
        // match a change.
        let bad = (0..=255u8)
            .map(|last| {
                let mut b = *key(7).as_bytes();
                b[31] ^= last;
                b
            })
            .find(|b| PeerId::from_bytes(*b).is_err())
            .unwrap();
        ev.watch(2, 3, &w2, &[KeyBytes(bad)], 10, []).unwrap();
        assert_eq!(ev.counts(), (1, 1));
        ev.publish(&Bytes::from_static(b"k7"), &key(7), 9, 1);
        assert!(drain(&w2).is_empty());
    }

    #[test]
    fn the_watch_cap_refuses_and_a_full_queue_drops_the_link() {
        let mut ev = Events::default();
        let l1 = link();
        ev.watch(1, 3, &l1, &[kb(1), kb(2)], 3, []).unwrap();
        assert_eq!(
            ev.watch(1, 3, &l1, &[kb(2), kb(3), kb(4)], 3, []).err(),
            Some(4)
        );
        // The same key twice counts once.
        assert!(ev.watch(1, 3, &l1, &[kb(2), kb(3), kb(3)], 3, []).is_ok());
        // A refused first watch leaves no queue behind.
        assert_eq!(
            ev.watch(2, 3, &link(), &[kb(1), kb(2)], 1, []).err(),
            Some(2)
        );
        assert_eq!(ev.counts(), (1, 3));
        let slow = link();
        ev.watch(5, 3, &slow, &[kb(9)], 3, []).unwrap();
        for _ in 0..=QUEUE {
            ev.publish(&Bytes::from_static(b"e"), &key(9), 0, 1);
        }
        assert_eq!(ev.counts(), (1, 3), "the slow link is gone");
        assert_eq!(drain(&slow).len(), QUEUE);
        assert_eq!(slow.closing(), Some(Close::Slow));
    }
}
