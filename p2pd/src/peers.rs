//! The peer table: every pinned peer (loaded from the store) and every peer the tracker
//! shows, with online state and the user's flags. Pure: each change returns the events it
//! causes, and the caller publishes them.
//!
//! A peer the user has not dealt with (no message, transfer, trust or block) is held in
//! memory only: it is never written to the database, and of those offline only the
//! [`OFFLINE_UNPINNED`] most recently seen are kept. So a flood of fresh keys at the tracker
//! grows neither the database nor, beyond that, this table.

use std::collections::HashMap;
use std::net::SocketAddr;

use proto::api::{Event, PeerInfo};
use proto::tracker::PeerEntry;
use proto::{PeerId, PeerName};

use crate::store::KnownPeer;

#[derive(Debug, Clone)]
struct Row {
    name: PeerName,
    addrs: Vec<SocketAddr>,
    online: bool,
    since: u64,
    trusted: bool,
    auto_accept: bool,
    blocked: bool,
    /// A key the tracker shows for this row's name, other than the pinned one.
    key_conflict: Option<PeerEntry>,
    /// Pinned in the store (the user dealt with it); else held in memory only.
    pinned: bool,
}

impl Row {
    fn offline(name: PeerName, since: u64) -> Row {
        Row {
            name,
            addrs: Vec::new(),
            online: false,
            since,
            trusted: false,
            auto_accept: false,
            blocked: false,
            key_conflict: None,
            pinned: false,
        }
    }
}

/// Why a peer reference did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// Nothing matches.
    #[error("no known peer matches {0:?}")]
    Unknown(String),
    /// Several peers match an id prefix.
    #[error("{0:?} matches several peers; give more of the id")]
    Ambiguous(String),
}

/// Offline peers held in memory only (never dealt with) that the table keeps.
pub const OFFLINE_UNPINNED: usize = 1024;

/// Known peers. Our own entry is left out.
#[derive(Debug)]
pub struct PeerTable {
    me: PeerId,
    rows: HashMap<PeerId, Row>,
    offline_unpinned: usize,
}

impl PeerTable {
    /// A table for the daemon whose identity is `me`, holding the pinned peers, offline.
    pub fn new(me: PeerId, known: Vec<KnownPeer>, now: u64) -> Self {
        let rows = known
            .into_iter()
            .filter(|k| k.id != me)
            .map(|k| {
                let mut row = Row::offline(k.name, now);
                (row.trusted, row.auto_accept, row.blocked) = (k.trusted, k.auto_accept, k.blocked);
                row.pinned = true;
                (k.id, row)
            })
            .collect();
        Self {
            me,
            rows,
            offline_unpinned: OFFLINE_UNPINNED,
        }
    }

    /// The same table keeping at most `n` offline peers that are not pinned.
    pub fn with_offline_unpinned(mut self, n: usize) -> Self {
        self.offline_unpinned = n;
        self
    }

    fn info(id: PeerId, row: &Row) -> PeerInfo {
        PeerInfo {
            name: row.name.clone(),
            id,
            addrs: row.addrs.clone(),
            online: row.online,
            since: row.since,
            trusted: row.trusted,
            auto_accept: row.auto_accept,
            blocked: row.blocked,
            key_conflict: row.key_conflict.as_ref().map(|e| e.signed.record.key),
        }
    }

    /// One peer.
    pub fn get(&self, id: PeerId) -> Option<PeerInfo> {
        self.rows.get(&id).map(|r| Self::info(id, r))
    }

    /// A verified tracker entry whose name pin matched (or was just made). Returns the event.
    pub fn upsert(&mut self, entry: &PeerEntry, now: u64) -> Option<Event> {
        let id = entry.signed.record.key;
        if id == self.me {
            return None;
        }
        let name = entry.signed.record.name.clone();
        let addrs = entry.addrs();
        let row = self
            .rows
            .entry(id)
            .or_insert_with(|| Row::offline(name.clone(), now));
        if row.online {
            if row.name == name && row.addrs == addrs {
                return None;
            }
            row.name = name;
            row.addrs = addrs;
            return Some(Event::PeerUpdated {
                peer: Self::info(id, row),
            });
        }
        row.name = name;
        row.addrs = addrs;
        row.online = true;
        row.since = now;
        Some(Event::PeerJoined {
            peer: Self::info(id, row),
        })
    }

    /// Whether `id` is pinned in the store.
    pub fn is_pinned(&self, id: PeerId) -> bool {
        self.rows.get(&id).is_some_and(|r| r.pinned)
    }

    /// `id` is now pinned in the store.
    pub fn set_pinned(&mut self, id: PeerId) {
        if let Some(row) = self.rows.get_mut(&id) {
            row.pinned = true;
        }
    }

    /// The entry the tracker shows for `id`'s name under another key, if any.
    pub fn key_conflict(&self, id: PeerId) -> Option<&PeerEntry> {
        self.rows.get(&id)?.key_conflict.as_ref()
    }

    /// The tracker shows `entry` for a name pinned to `pinned`: remember it, refuse it.
    pub fn conflict(&mut self, entry: &PeerEntry, pinned: PeerId, now: u64) -> Option<Event> {
        let row = self.rows.entry(pinned).or_insert_with(|| {
            let mut row = Row::offline(entry.signed.record.name.clone(), now);
            row.pinned = true;
            row
        });
        let fresh =
            row.key_conflict.as_ref().map(|e| e.signed.record.key) != Some(entry.signed.record.key);
        row.key_conflict = Some(entry.clone());
        fresh.then(|| Event::LinkError {
            peer: Some(pinned),
            detail: format!(
                "the tracker shows key {} for {:?}, but {} is pinned for that name; refusing it. \
                 If the key changed on purpose: p2pctl forget-key {}",
                entry.signed.record.key,
                entry.signed.record.name.as_str(),
                pinned,
                entry.signed.record.name.as_str(),
            ),
        })
    }

    /// The peer pinned as `old` rotated its key to `entry`'s (a verified handover): its row
    /// moves to the new key with its flags, pinned, online, without a conflict. Returns the
    /// `PeerUpdated` event.
    pub fn rekeyed(&mut self, old: PeerId, entry: &PeerEntry, now: u64) -> Option<Event> {
        let new = entry.signed.record.key;
        if new == self.me {
            return None;
        }
        let before = self.rows.remove(&old)?;
        let row = Row {
            name: entry.signed.record.name.clone(),
            addrs: entry.addrs(),
            online: true,
            since: now,
            key_conflict: None,
            pinned: true,
            ..before
        };
        let info = Self::info(new, &row);
        self.rows.insert(new, row);
        Some(Event::PeerUpdated { peer: info })
    }

    /// A peer left. Past [`OFFLINE_UNPINNED`] offline peers held in memory only, the one
    /// offline longest goes from the table.
    pub fn left(&mut self, id: PeerId, now: u64) -> Option<Event> {
        let row = self.rows.get_mut(&id)?;
        if !row.online {
            return None;
        }
        row.online = false;
        row.since = now;
        let event = Event::PeerLeft {
            peer: Self::info(id, row),
        };
        if !row.pinned {
            let offline: Vec<(u64, PeerId)> = self
                .rows
                .iter()
                .filter(|(_, r)| !r.pinned && !r.online)
                .map(|(id, r)| (r.since, *id))
                .collect();
            if offline.len() > self.offline_unpinned
                && let Some((_, oldest)) = offline.iter().min()
            {
                self.rows.remove(oldest);
            }
        }
        Some(event)
    }

    /// Ids of online peers absent from `present` (a fresh full list).
    pub fn missing_from(&self, present: &[PeerEntry]) -> Vec<PeerId> {
        let keys: std::collections::HashSet<PeerId> =
            present.iter().map(|e| e.signed.record.key).collect();
        self.rows
            .iter()
            .filter(|(id, r)| r.online && !keys.contains(id))
            .map(|(id, _)| *id)
            .collect()
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

    /// Sets the user's flags on a peer.
    pub fn set_flags(
        &mut self,
        id: PeerId,
        trusted: bool,
        auto_accept: bool,
        blocked: bool,
    ) -> Option<PeerInfo> {
        let row = self.rows.get_mut(&id)?;
        (row.trusted, row.auto_accept, row.blocked) = (trusted, auto_accept, blocked);
        Some(Self::info(id, row))
    }

    /// Unpins `id`: its flags go, and so does its row unless it is online. Returns the
    /// conflicting entry it held.
    pub fn forget(&mut self, id: PeerId) -> Option<PeerEntry> {
        let row = self.rows.get_mut(&id)?;
        (row.trusted, row.auto_accept, row.blocked) = (false, false, false);
        row.pinned = false;
        let conflict = row.key_conflict.take();
        if !row.online {
            self.rows.remove(&id);
        }
        conflict
    }

    /// Finds a peer by exact name, else by an id prefix of at least 8 characters.
    pub fn resolve(&self, text: &str) -> Result<PeerId, ResolveError> {
        let folded = text.to_ascii_lowercase();
        if let Some((id, _)) = self.rows.iter().find(|(_, r)| r.name.as_str() == folded) {
            return Ok(*id);
        }
        if folded.len() >= proto::identity::MIN_PREFIX_CHARS {
            let matches: Vec<PeerId> = self
                .rows
                .keys()
                .filter(|id| id.matches_prefix(&folded))
                .copied()
                .collect();
            match matches.as_slice() {
                [one] => return Ok(*one),
                [] => {}
                _ => return Err(ResolveError::Ambiguous(text.to_owned())),
            }
        }
        Err(ResolveError::Unknown(text.to_owned()))
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
    fn me() -> PeerId {
        SecretKey::from_seed([9; 32]).peer_id()
    }

    #[test]
    fn join_update_leave() {
        let mut t = PeerTable::new(me(), vec![], 0);
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
        assert_eq!(t.upsert(&entry(9, "me", 1), 15), None);
    }

    #[test]
    fn offline_peers_never_dealt_with_are_capped_pinned_ones_stay() {
        let mut t = PeerTable::new(me(), vec![], 0).with_offline_unpinned(2);
        let pinned = entry(1, "bob", 1);
        t.upsert(&pinned, 1);
        t.set_pinned(pinned.signed.record.key);
        assert!(t.is_pinned(pinned.signed.record.key));
        t.left(pinned.signed.record.key, 2);
        for n in 2..6u8 {
            let e = entry(n, &format!("stranger{n}"), 1);
            t.upsert(&e, u64::from(n) * 10);
            t.left(e.signed.record.key, u64::from(n) * 10 + 1);
        }
        // bob, and the two strangers seen last.
        assert_eq!(t.counts(), (0, 3));
        assert!(t.get(pinned.signed.record.key).is_some());
        assert!(t.get(entry(5, "stranger5", 1).signed.record.key).is_some());
        assert!(t.get(entry(2, "stranger2", 1).signed.record.key).is_none());
    }

    #[test]
    fn known_peers_start_offline_and_resolve() {
        let bob = entry(1, "bob", 1).signed.record.key;
        let known = vec![KnownPeer {
            id: bob,
            name: PeerName::new("bob").unwrap(),
            trusted: true,
            auto_accept: false,
            blocked: false,
        }];
        let t = PeerTable::new(me(), known, 5);
        assert_eq!(t.counts(), (0, 1));
        assert!(t.get(bob).unwrap().trusted);
        assert_eq!(t.resolve("BOB"), Ok(bob));
        assert_eq!(t.resolve(&bob.to_string()[..8]), Ok(bob));
        assert!(matches!(
            t.resolve(&bob.to_string()[..7]),
            Err(ResolveError::Unknown(_))
        ));
        assert!(matches!(t.resolve("carol"), Err(ResolveError::Unknown(_))));
    }

    #[test]
    fn conflicts_are_reported_once_and_released_by_forget() {
        let mut t = PeerTable::new(me(), vec![], 0);
        let real = entry(1, "bob", 1);
        let imposter = entry(2, "bob", 1);
        t.upsert(&real, 1);
        t.set_pinned(real.signed.record.key);
        assert!(matches!(
            t.conflict(&imposter, real.signed.record.key, 2),
            Some(Event::LinkError { .. })
        ));
        assert_eq!(t.conflict(&imposter, real.signed.record.key, 3), None);
        assert_eq!(
            t.get(real.signed.record.key).unwrap().key_conflict,
            Some(imposter.signed.record.key)
        );
        t.left(real.signed.record.key, 4);
        assert_eq!(t.forget(real.signed.record.key), Some(imposter));
        assert_eq!(t.counts(), (0, 0));
    }

    #[test]
    fn a_rotated_key_takes_the_row_and_its_flags() {
        let mut t = PeerTable::new(me(), vec![], 0);
        let (old, new) = (entry(1, "bob", 1), entry(2, "bob", 2));
        let old_id = old.signed.record.key;
        t.upsert(&old, 1);
        t.set_pinned(old_id);
        t.set_flags(old_id, true, true, false);
        t.left(old_id, 2);
        t.conflict(&new, old_id, 3);
        let Some(Event::PeerUpdated { peer }) = t.rekeyed(old_id, &new, 4) else {
            panic!("expected PeerUpdated")
        };
        assert_eq!(peer.id, new.signed.record.key);
        assert!(peer.online && peer.trusted && peer.auto_accept && !peer.blocked);
        assert_eq!(peer.key_conflict, None);
        assert!(t.is_pinned(peer.id));
        assert_eq!(t.get(old_id), None);
        assert_eq!(t.counts(), (1, 1));
        assert_eq!(t.rekeyed(old_id, &new, 5), None);
    }
}
