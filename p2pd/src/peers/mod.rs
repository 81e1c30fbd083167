//! The peer table: every pinned peer (loaded from the store) and every peer the tracker
//! shows, with online state and the user's flags. Pure: each change returns the events it
//! causes, and the caller publishes them.
//!
//! Presence is by source: each row holds the [`Source`]s that see the peer now, and a peer
//! is online while any of them does. A source that goes away (the tracker link drops)
//! removes only its own reports, so a peer with an open link stays online; `peer_joined` and
//! `peer_left` fire only when the whole set turns non-empty or empty.
//!
//! A peer the user has not dealt with (no message, transfer, trust or block) is held in
//! memory only: it is never written to the database, and of those offline only the
//! [`OFFLINE_UNPINNED`] most recently seen are kept. So a flood of fresh keys at the tracker
//! grows neither the database nor, beyond that, this table.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;

use proto::api::{Event, PeerInfo, PeerSource};
use proto::peer_ref::Known;
use proto::tracker::PeerEntry;
use proto::{PeerId, PeerName};

use crate::store::KnownPeer;

/// Something that sees a peer now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// The tracker lists it.
    Tracker,
    /// An open peer link to it.
    Link,
}

impl Source {
    /// The same source as the API names it.
    pub fn api(self) -> PeerSource {
        match self {
            Source::Tracker => PeerSource::Tracker,
            Source::Link => PeerSource::Link,
        }
    }
}

#[derive(Debug, Clone)]
struct Row {
    name: PeerName,
    addrs: Vec<SocketAddr>,
    /// The sources that see it now; online while not empty.
    sources: BTreeSet<Source>,
    since: u64,
    trusted: bool,
    auto_accept: bool,
    blocked: bool,
    /// A key the tracker shows for this row's name, other than the pinned one.
    key_conflict: Option<PeerEntry>,
    /// Pinned in the store (the user dealt with it); else held in memory only.
    pinned: bool,
    /// The last verified address record seen for it (from the tracker, or the address book).
    record: Option<PeerEntry>,
    /// `record` is the one in the address book.
    booked: bool,
}

impl Row {
    fn online(&self) -> bool {
        !self.sources.is_empty()
    }

    /// The sources as `peers` shows them: the address book after those that see the peer.
    fn api_sources(&self) -> Vec<PeerSource> {
        let mut v: Vec<PeerSource> = self.sources.iter().map(|s| s.api()).collect();
        if self.pinned && self.record.is_some() {
            v.push(PeerSource::Book);
        }
        v
    }

    fn offline(name: PeerName, since: u64) -> Row {
        Row {
            name,
            addrs: Vec::new(),
            sources: BTreeSet::new(),
            since,
            trusted: false,
            auto_accept: false,
            blocked: false,
            key_conflict: None,
            pinned: false,
            record: None,
            booked: false,
        }
    }

    fn set_record(&mut self, entry: &PeerEntry) {
        if self.record.as_ref() != Some(entry) {
            self.record = Some(entry.clone());
            self.booked = false;
        }
    }
}

pub use proto::peer_ref::ResolveError;

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

    /// The same table with the address book's records (verified by the store) on the pinned
    /// peers they belong to; the peers stay offline, but can be dialled at those addresses.
    pub fn with_book(mut self, book: Vec<PeerEntry>) -> Self {
        for entry in book {
            if let Some(row) = self.rows.get_mut(&entry.signed.record.key)
                && row.pinned
                && row.name == entry.signed.record.name
            {
                row.addrs = entry.addrs();
                row.record = Some(entry);
                row.booked = true;
            }
        }
        self
    }

    /// The record of pinned peer `id` to write to the address book, if it is not there yet;
    /// the caller writes it. Marks it written.
    pub fn to_book(&mut self, id: PeerId) -> Option<PeerEntry> {
        let row = self.rows.get_mut(&id)?;
        if !row.pinned || row.booked {
            return None;
        }
        let record = row.record.clone()?;
        row.booked = true;
        Some(record)
    }

    /// `id` if a link to it may be dialled now ([`proto::reach::dialable`]): online, or
    /// pinned with an address record (the address book), and with addresses.
    pub fn dialable(&self, id: PeerId) -> Option<PeerInfo> {
        self.get(id).filter(proto::reach::dialable)
    }

    fn info(id: PeerId, row: &Row) -> PeerInfo {
        PeerInfo {
            name: row.name.clone(),
            id,
            addrs: row.addrs.clone(),
            online: row.online(),
            since: row.since,
            trusted: row.trusted,
            auto_accept: row.auto_accept,
            blocked: row.blocked,
            key_conflict: row.key_conflict.as_ref().map(|e| e.signed.record.key),
            sources: row.api_sources(),
            verified: row.pinned || row.record.is_some(),
        }
    }

    /// One peer.
    pub fn get(&self, id: PeerId) -> Option<PeerInfo> {
        self.rows.get(&id).map(|r| Self::info(id, r))
    }

    /// A verified tracker entry whose name pin matched (or was just made): the tracker sees
    /// the peer. Returns the event.
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
        let was_online = row.online();
        row.sources.insert(Source::Tracker);
        row.set_record(entry);
        if was_online {
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
        row.since = now;
        Some(Event::PeerJoined {
            peer: Self::info(id, row),
        })
    }

    /// An open link to `id`: the link sees it. Only a peer already in the table (pinned, or
    /// shown by the tracker) is marked; a link alone proves a key, not a name.
    pub fn link_up(&mut self, id: PeerId, now: u64) -> Option<Event> {
        let row = self.rows.get_mut(&id)?;
        let was_online = row.online();
        row.sources.insert(Source::Link);
        (!was_online).then(|| {
            row.since = now;
            Event::PeerJoined {
                peer: Self::info(id, row),
            }
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
            sources: BTreeSet::from([Source::Tracker]),
            since: now,
            key_conflict: None,
            pinned: true,
            record: Some(entry.clone()),
            booked: false,
            ..before
        };
        let info = Self::info(new, &row);
        self.rows.insert(new, row);
        Some(Event::PeerUpdated { peer: info })
    }

    /// `source` no longer sees `id`. If no source sees it now, it left: past
    /// [`OFFLINE_UNPINNED`] offline peers held in memory only, the one offline longest goes
    /// from the table.
    pub fn lost(&mut self, id: PeerId, source: Source, now: u64) -> Option<Event> {
        let row = self.rows.get_mut(&id)?;
        if !row.sources.remove(&source) || row.online() {
            return None;
        }
        row.since = now;
        let event = Event::PeerLeft {
            peer: Self::info(id, row),
        };
        if !row.pinned {
            let offline: Vec<(u64, PeerId)> = self
                .rows
                .iter()
                .filter(|(_, r)| !r.pinned && !r.online())
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

    /// Ids of peers the tracker sees that are absent from `present` (its fresh full list).
    pub fn missing_from(&self, present: &[PeerEntry]) -> Vec<PeerId> {
        let keys: std::collections::HashSet<PeerId> =
            present.iter().map(|e| e.signed.record.key).collect();
        self.rows
            .iter()
            .filter(|(id, r)| r.sources.contains(&Source::Tracker) && !keys.contains(id))
            .map(|(id, _)| *id)
            .collect()
    }

    /// `source` is gone (the tracker link dropped): it sees nobody now. Peers that another
    /// source sees stay online.
    pub fn source_gone(&mut self, source: Source, now: u64) -> Vec<Event> {
        let seen: Vec<PeerId> = self
            .rows
            .iter()
            .filter(|(_, r)| r.sources.contains(&source))
            .map(|(id, _)| *id)
            .collect();
        seen.into_iter()
            .filter_map(|id| self.lost(id, source, now))
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
        row.booked = false;
        let conflict = row.key_conflict.take();
        if !row.online() {
            self.rows.remove(&id);
        }
        conflict
    }

    /// Finds the peer `text` names ([`proto::peer_ref::resolve`]): its name, else an id
    /// prefix of at least 8 characters. `my_name` (with our key) is there to tell the user
    /// that they named themselves.
    pub fn resolve(&self, text: &str, my_name: &PeerName) -> Result<PeerId, ResolveError> {
        let known: Vec<Known<'_>> = self
            .rows
            .iter()
            .map(|(id, r)| Known {
                name: &r.name,
                id: *id,
            })
            .collect();
        let me = Known {
            name: my_name,
            id: self.me,
        };
        proto::peer_ref::resolve(text, &known, Some(me))
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
            self.rows.values().filter(|r| r.online()).count(),
            self.rows.len(),
        )
    }

    /// How many peers `source` sees now.
    pub fn seen_by(&self, source: Source) -> usize {
        self.rows
            .values()
            .filter(|r| r.sources.contains(&source))
            .count()
    }

    /// How many peers the address book holds a record for (shown with the `book` source).
    pub fn booked(&self) -> usize {
        self.rows
            .values()
            .filter(|r| r.pinned && r.record.is_some())
            .count()
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
        let Some(Event::PeerLeft { peer }) = t.lost(e.signed.record.key, Source::Tracker, 13)
        else {
            panic!()
        };
        assert!(!peer.online);
        assert_eq!(peer.since, 13);
        assert_eq!(t.lost(e.signed.record.key, Source::Tracker, 14), None);
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
        t.lost(pinned.signed.record.key, Source::Tracker, 2);
        for n in 2..6u8 {
            let e = entry(n, &format!("stranger{n}"), 1);
            t.upsert(&e, u64::from(n) * 10);
            t.lost(e.signed.record.key, Source::Tracker, u64::from(n) * 10 + 1);
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
        let my_name = PeerName::new("alice").unwrap();
        assert_eq!(t.resolve("BOB", &my_name), Ok(bob));
        assert_eq!(t.resolve(&bob.to_string()[..8], &my_name), Ok(bob));
        let short = t.resolve(&bob.to_string()[..7], &my_name).unwrap_err();
        assert!(
            short.to_string().contains("too short for a key prefix"),
            "{short}"
        );
        assert!(matches!(
            t.resolve("carol", &my_name),
            Err(ResolveError::Unknown(_))
        ));
        assert_eq!(
            t.resolve("bobby", &my_name).unwrap_err().to_string(),
            "unknown peer 'bobby': did you mean 'bob'?"
        );
        assert_eq!(
            t.resolve("Alice", &my_name).unwrap_err().to_string(),
            "'Alice' is you: name another peer"
        );
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
        t.lost(real.signed.record.key, Source::Tracker, 4);
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
        t.lost(old_id, Source::Tracker, 2);
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

    #[test]
    fn a_linked_peer_stays_online_when_the_tracker_goes() {
        let mut t = PeerTable::new(me(), vec![], 0);
        let (bob, carol) = (entry(1, "bob", 1), entry(2, "carol", 2));
        let (b, c) = (bob.signed.record.key, carol.signed.record.key);
        t.upsert(&bob, 1);
        t.upsert(&carol, 1);
        // Already online: the link adds a source, not an event.
        assert_eq!(t.link_up(b, 2), None);
        assert_eq!(
            t.get(b).unwrap().sources,
            vec![PeerSource::Tracker, PeerSource::Link]
        );
        assert_eq!(
            (t.seen_by(Source::Tracker), t.seen_by(Source::Link)),
            (2, 1)
        );
        let events = t.source_gone(Source::Tracker, 3);
        assert!(matches!(events.as_slice(), [Event::PeerLeft { peer }] if peer.id == c));
        let bob_now = t.get(b).unwrap();
        assert!(bob_now.online);
        assert_eq!(bob_now.sources, vec![PeerSource::Link]);
        assert!(!bob_now.addrs.is_empty(), "addresses outlive the tracker");
        assert_eq!(t.counts(), (1, 2));
        // The tracker back: bob is already online, carol joins again.
        assert_eq!(t.upsert(&bob, 4), None);
        assert!(matches!(
            t.upsert(&carol, 4),
            Some(Event::PeerJoined { .. })
        ));
        // The link closing leaves bob online through the tracker.
        assert_eq!(t.lost(b, Source::Link, 5), None);
        assert!(t.get(b).unwrap().online);
        assert!(matches!(
            t.lost(b, Source::Tracker, 6),
            Some(Event::PeerLeft { .. })
        ));
        // A second report of the same loss changes nothing.
        assert_eq!(t.lost(b, Source::Tracker, 7), None);
    }

    #[test]
    fn a_link_alone_brings_a_known_peer_online_and_its_close_takes_it_offline() {
        let mut t = PeerTable::new(me(), vec![], 0);
        let bob = entry(1, "bob", 1);
        let b = bob.signed.record.key;
        // Unknown to the table: a link proves a key, not a name.
        assert_eq!(t.link_up(b, 1), None);
        assert_eq!(t.get(b), None);
        t.upsert(&bob, 2);
        t.source_gone(Source::Tracker, 3);
        let Some(Event::PeerJoined { peer }) = t.link_up(b, 4) else {
            panic!("expected PeerJoined")
        };
        assert!(peer.online);
        assert_eq!(peer.since, 4);
        assert_eq!(t.link_up(b, 5), None);
        // A snapshot without bob removes only the tracker's report, which it no longer has.
        assert!(t.missing_from(&[]).is_empty());
        let Some(Event::PeerLeft { peer }) = t.lost(b, Source::Link, 6) else {
            panic!("expected PeerLeft")
        };
        assert!(!peer.online);
        assert_eq!(t.counts(), (0, 1));
    }

    #[test]
    fn a_snapshot_names_only_peers_the_tracker_sees() {
        let mut t = PeerTable::new(me(), vec![], 0);
        let (bob, carol) = (entry(1, "bob", 1), entry(2, "carol", 2));
        t.upsert(&bob, 1);
        t.upsert(&carol, 1);
        t.link_up(carol.signed.record.key, 2);
        let mut gone = t.missing_from(std::slice::from_ref(&bob));
        gone.sort();
        assert_eq!(gone, vec![carol.signed.record.key]);
        assert_eq!(
            t.lost(carol.signed.record.key, Source::Tracker, 3),
            None,
            "the link still sees carol"
        );
        assert!(t.get(carol.signed.record.key).unwrap().online);
    }

    #[test]
    fn the_book_gives_addresses_for_pinned_peers_not_presence() {
        let bob = entry(1, "bob", 7);
        let b = bob.signed.record.key;
        let stranger = entry(2, "carol", 8);
        let known = vec![KnownPeer {
            id: b,
            name: PeerName::new("bob").unwrap(),
            trusted: false,
            auto_accept: false,
            blocked: false,
        }];
        let mut t = PeerTable::new(me(), known, 0).with_book(vec![bob.clone(), stranger.clone()]);
        assert_eq!(
            t.counts(),
            (0, 1),
            "the book adds neither rows nor presence"
        );
        assert_eq!(t.booked(), 1, "only the pinned peer's record counts");
        let info = t.dialable(b).expect("bob is dialable from the book");
        assert!(!info.online);
        assert_eq!(info.sources, vec![PeerSource::Book]);
        assert!(info.verified);
        assert_eq!(info.addrs, bob.addrs());
        assert_eq!(t.to_book(b), None, "already in the book");
        // A newer record from the tracker goes to the book once.
        let moved = entry(1, "bob", 9);
        t.upsert(&moved, 1);
        assert_eq!(t.to_book(b), Some(moved.clone()));
        assert_eq!(t.to_book(b), None);
        t.source_gone(Source::Tracker, 2);
        assert_eq!(t.dialable(b).unwrap().addrs, moved.addrs());
        // A peer not pinned is dialable only while online.
        t.upsert(&stranger, 3);
        assert_eq!(t.to_book(stranger.signed.record.key), None);
        assert!(t.dialable(stranger.signed.record.key).is_some());
        t.source_gone(Source::Tracker, 4);
        assert!(t.dialable(stranger.signed.record.key).is_none());
    }
}
