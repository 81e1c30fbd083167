//! The live peer table, fed by the tracker link. Pure: each change returns the events it
//! causes, and the caller publishes them.

use std::collections::HashMap;

use proto::api::{Event, PeerInfo};
use proto::tracker::PeerEntry;
use proto::{PeerId, PeerName};
use tracing::warn;

#[derive(Debug, Clone)]
struct Row {
    name: PeerName,
    addrs: Vec<std::net::SocketAddr>,
    online: bool,
    since: u64,
}

/// Every peer seen since the daemon started, online or not. Our own entry is left out.
#[derive(Debug)]
pub struct PeerTable {
    me: PeerId,
    rows: HashMap<PeerId, Row>,
}

impl PeerTable {
    /// An empty table for the daemon whose identity is `me`.
    pub fn new(me: PeerId) -> Self {
        Self {
            me,
            rows: HashMap::new(),
        }
    }

    fn info(id: PeerId, row: &Row) -> PeerInfo {
        PeerInfo {
            name: row.name.clone(),
            id,
            addrs: row.addrs.clone(),
            online: row.online,
            since: row.since,
        }
    }

    /// A peer registered or re-registered. Entries with a bad signature are ignored.
    pub fn upsert(&mut self, entry: &PeerEntry, now: u64) -> Option<Event> {
        if !entry.signed.verify() {
            warn!(key = %entry.signed.record.key, "ignoring a peer record with a bad signature");
            return None;
        }
        let id = entry.signed.record.key;
        if id == self.me {
            return None;
        }
        let name = entry.signed.record.name.clone();
        let addrs = entry.addrs();
        match self.rows.get_mut(&id) {
            Some(row) if row.online => {
                if row.name == name && row.addrs == addrs {
                    return None;
                }
                row.name = name;
                row.addrs = addrs;
                Some(Event::PeerUpdated {
                    peer: Self::info(id, row),
                })
            }
            _ => {
                let row = Row {
                    name,
                    addrs,
                    online: true,
                    since: now,
                };
                let ev = Event::PeerJoined {
                    peer: Self::info(id, &row),
                };
                self.rows.insert(id, row);
                Some(ev)
            }
        }
    }

    /// A peer left.
    pub fn left(&mut self, id: PeerId, now: u64) -> Option<Event> {
        let row = self.rows.get_mut(&id)?;
        if !row.online {
            return None;
        }
        row.online = false;
        row.since = now;
        Some(Event::PeerLeft {
            peer: Self::info(id, row),
        })
    }

    /// The full list from the tracker: peers in it are online, all others offline.
    pub fn snapshot(&mut self, entries: &[PeerEntry], now: u64) -> Vec<Event> {
        let present: std::collections::HashSet<PeerId> =
            entries.iter().map(|e| e.signed.record.key).collect();
        let gone: Vec<PeerId> = self
            .rows
            .iter()
            .filter(|(id, r)| r.online && !present.contains(id))
            .map(|(id, _)| *id)
            .collect();
        let mut events: Vec<Event> = gone
            .into_iter()
            .filter_map(|id| self.left(id, now))
            .collect();
        events.extend(entries.iter().filter_map(|e| self.upsert(e, now)));
        events
    }

    /// The tracker link is gone: nobody can be seen as online.
    pub fn all_offline(&mut self, now: u64) -> Vec<Event> {
        let online: Vec<PeerId> = self
            .rows
            .iter()
            .filter(|(_, r)| r.online)
            .map(|(id, _)| *id)
            .collect();
        online
            .into_iter()
            .filter_map(|id| self.left(id, now))
            .collect()
    }

    /// Every known peer, online first, then by name.
    pub fn list(&self) -> Vec<PeerInfo> {
        let mut v: Vec<PeerInfo> = self.rows.iter().map(|(id, r)| Self::info(*id, r)).collect();
        v.sort_by(|a, b| b.online.cmp(&a.online).then_with(|| a.name.cmp(&b.name)));
        v
    }

    /// (online, known) counts.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.rows.values().filter(|r| r.online).count(),
            self.rows.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::SecretKey;
    use proto::tracker::Record;

    fn entry(n: u8, name: &str, port: u16) -> PeerEntry {
        let k = SecretKey::from_seed([n; 32]);
        let rec = Record {
            name: PeerName::new(name).unwrap(),
            key: k.peer_id(),
            addrs: vec![format!("0.0.0.0:{port}").parse().unwrap()],
            seq: 1,
        };
        PeerEntry {
            signed: rec.sign(&k),
            observed: "127.0.0.1".parse().unwrap(),
        }
    }

    #[test]
    fn join_update_leave() {
        let me = SecretKey::from_seed([9; 32]).peer_id();
        let mut t = PeerTable::new(me);
        let e = entry(1, "bob", 1);
        assert!(matches!(t.upsert(&e, 10), Some(Event::PeerJoined { .. })));
        assert_eq!(t.upsert(&e, 11), None);
        assert!(matches!(
            t.upsert(&entry(1, "bob", 2), 12),
            Some(Event::PeerUpdated { .. })
        ));
        let Some(Event::PeerLeft { peer }) = t.left(e.signed.record.key, 13) else {
            panic!()
        };
        assert!(!peer.online);
        assert_eq!(peer.since, 13);
        assert_eq!(t.left(e.signed.record.key, 14), None);
        assert_eq!(t.counts(), (0, 1));
    }

    #[test]
    fn snapshot_marks_missing_peers_offline_and_skips_self_and_forgeries() {
        let me_key = SecretKey::from_seed([9; 32]);
        let mut t = PeerTable::new(me_key.peer_id());
        t.upsert(&entry(1, "bob", 1), 1);
        let mut forged = entry(2, "eve", 1);
        forged.signed.record.seq = 99;
        let evs = t.snapshot(&[entry(3, "carol", 1), entry(9, "me", 1), forged], 2);
        assert_eq!(evs.len(), 2); // bob left, carol joined
        let names: Vec<_> = t
            .list()
            .into_iter()
            .map(|p| (p.name.to_string(), p.online))
            .collect();
        assert_eq!(names, vec![("carol".into(), true), ("bob".into(), false)]);
        assert_eq!(t.all_offline(3).len(), 1);
    }
}
