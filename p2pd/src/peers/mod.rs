//! The peer table: every pinned peer (loaded from the store) and every peer the tracker
//! shows, with online state and the user's flags. Pure: each change returns the events it
//! causes, and the caller publishes them.
//!
//! Presence is by source: each row holds the [`Source`]s that see the peer now (each
//! tracker, the LAN, the DHT, an open link), and a peer is online while any of them does. A
//! source that goes away (a tracker link drops) removes only its own reports, so a peer
//! another source sees stays online; `peer_joined` and `peer_left` fire only when the whole
//! set turns non-empty or empty. Sources that carry signed address records hand them to
//! [`PeerTable::heard`] (in `heard.rs`), which keeps the highest seq per key.
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

mod heard;
pub use heard::UNVERIFIED_MAX;

/// Which of the configured trackers: its place in the configuration's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrackerIdx(pub u16);

/// Something that sees a peer now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// That tracker lists it.
    Tracker(TrackerIdx),
    /// It announces itself on the local network.
    Lan,
    /// Its address record was found in the DHT.
    Dht,
    /// An open peer link to it.
    Link,
}

impl Source {
    /// The same source as the API names it (every tracker is `tracker`).
    pub fn api(self) -> PeerSource {
        match self {
            Source::Tracker(_) => PeerSource::Tracker,
            Source::Lan => PeerSource::Lan,
            Source::Dht => PeerSource::Dht,
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
    /// A key a tracker shows for this row's name, other than the pinned one.
    key_conflict: Option<PeerEntry>,
    /// The tracker that shows `key_conflict`.
    conflict_source: Option<Source>,
    /// Pinned in the store (the user dealt with it); else held in memory only.
    pinned: bool,
    /// The last verified address record seen for it (from the tracker, or the address book).
    record: Option<PeerEntry>,
    /// `record` is the one in the address book.
    booked: bool,
    /// The highest seq of an address record (or tracker registration) seen for this key; a
    /// record below it is a replay. 0 before any.
    seq: u64,
    /// Another key whose record claims this row's name (bound by a pin or a tracker); never
    /// adopted.
    claim_conflict: Option<PeerId>,
}

impl Row {
    fn online(&self) -> bool {
        !self.sources.is_empty()
    }

    /// The sources as `peers` shows them: the address book after those that see the peer.
    fn api_sources(&self) -> Vec<PeerSource> {
        let mut v: Vec<PeerSource> = self.sources.iter().map(|s| s.api()).collect();
        v.dedup();
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
            conflict_source: None,
            pinned: false,
            record: None,
            booked: false,
            seq: 0,
            claim_conflict: None,
        }
    }

    /// Its name is bound: pinned, or a tracker's verified record gave it.
    fn bound(&self) -> bool {
        self.pinned || self.record.is_some()
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
    /// The configured trackers' addresses, by [`TrackerIdx`].
    tracker_addrs: Vec<String>,
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
            tracker_addrs: Vec::new(),
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
                row.seq = entry.signed.record.seq;
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

    /// `id` if a link to it may be dialled now, or, when `look_up` (the DHT is on), if it is
    /// pinned, neither blocked nor shadowed by another key, but has no address from any
    /// source: the dial then finds it through the DHT's lookup.
    pub fn dial_target(&self, id: PeerId, look_up: bool) -> Option<PeerInfo> {
        let info = self.get(id)?;
        if proto::reach::dialable(&info) {
            return Some(info);
        }
        let pinned = self.rows.get(&id).is_some_and(|r| r.pinned);
        (look_up && pinned && !info.blocked && info.key_conflict.is_none()).then_some(info)
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
            // A claim of the name by another key (the LAN, the DHT) is reported, never held
            // against the peer: anyone on a LAN could claim any name, and a conflict here
            // stops every message and offer to the peer.
            key_conflict: row.key_conflict.as_ref().map(|e| e.signed.record.key),
            same_name: Vec::new(),
            trackers: Vec::new(),
            sources: row.api_sources(),
            verified: row.bound(),
        }
    }

    /// One peer, with the other keys trackers bind its name to and the trackers that list
    /// it.
    pub fn get(&self, id: PeerId) -> Option<PeerInfo> {
        self.rows.get(&id).map(|r| self.full_info(id, r))
    }

    /// [`Self::info`] with what needs the whole table: the other keys a pin or a tracker
    /// binds the same name to (none for a pinned peer: the pin wins), and the trackers that
    /// list it.
    fn full_info(&self, id: PeerId, row: &Row) -> PeerInfo {
        let mut info = Self::info(id, row);
        if !row.pinned && row.record.is_some() {
            info.same_name = self
                .rows
                .iter()
                .filter(|(k, r)| **k != id && r.bound())
                .filter(|(_, r)| r.name == row.name)
                .map(|(k, _)| *k)
                .collect();
            info.same_name.sort();
        }
        info.trackers = self.trackers_of(row);
        info
    }

    /// Whether another row holds `row`'s name with a better claim to it: a pin over a
    /// tracker's binding, either over a peer's own claim. Such a row is not named by its name.
    fn outranked(&self, id: PeerId, row: &Row) -> bool {
        let rank = |r: &Row| u8::from(r.bound()) + u8::from(r.pinned);
        let mine = rank(row);
        self.rows
            .iter()
            .any(|(k, r)| *k != id && r.name == row.name && rank(r) > mine)
    }

    /// The configured addresses of the trackers that list `row` now.
    fn trackers_of(&self, row: &Row) -> Vec<String> {
        row.sources
            .iter()
            .filter_map(|s| match s {
                Source::Tracker(TrackerIdx(i)) => self.tracker_addrs.get(usize::from(*i)).cloned(),
                _ => None,
            })
            .collect()
    }

    /// The same table naming its trackers (their configured addresses, by [`TrackerIdx`]).
    pub fn with_trackers(mut self, addrs: Vec<String>) -> Self {
        self.tracker_addrs = addrs;
        self
    }

    /// A verified tracker entry whose name pin matched (or was just made): `source` (that
    /// tracker) sees the peer and binds its name. Its addresses replace the row's unless a
    /// record of a higher seq was seen (from any source). Returns the event.
    pub fn upsert(&mut self, source: Source, entry: &PeerEntry, now: u64) -> Option<Event> {
        let id = entry.signed.record.key;
        if id == self.me {
            return None;
        }
        let name = entry.signed.record.name.clone();
        let row = self
            .rows
            .entry(id)
            .or_insert_with(|| Row::offline(name.clone(), now));
        let addrs = if entry.signed.record.seq >= row.seq {
            row.seq = entry.signed.record.seq;
            entry.addrs()
        } else {
            row.addrs.clone()
        };
        let was_online = row.online();
        row.sources.insert(source);
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

    /// The tracker that shows the conflicting entry of `id`, if any.
    pub fn key_conflict_source(&self, id: PeerId) -> Option<Source> {
        self.rows.get(&id)?.conflict_source
    }

    /// Tracker `source` shows `entry` for a name pinned to `pinned`: remember it, refuse it.
    pub fn conflict(
        &mut self,
        source: Source,
        entry: &PeerEntry,
        pinned: PeerId,
        now: u64,
    ) -> Option<Event> {
        let row = self.rows.entry(pinned).or_insert_with(|| {
            let mut row = Row::offline(entry.signed.record.name.clone(), now);
            row.pinned = true;
            row
        });
        let fresh =
            row.key_conflict.as_ref().map(|e| e.signed.record.key) != Some(entry.signed.record.key);
        row.key_conflict = Some(entry.clone());
        row.conflict_source = Some(source);
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
    pub fn rekeyed(
        &mut self,
        source: Source,
        old: PeerId,
        entry: &PeerEntry,
        now: u64,
    ) -> Option<Event> {
        let new = entry.signed.record.key;
        if new == self.me {
            return None;
        }
        let before = self.rows.remove(&old)?;
        let row = Row {
            name: entry.signed.record.name.clone(),
            addrs: entry.addrs(),
            seq: entry.signed.record.seq,
            claim_conflict: None,
            sources: BTreeSet::from([source]),
            since: now,
            key_conflict: None,
            conflict_source: None,
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

    /// Ids of peers `source` (a tracker) sees that are absent from `present` (its fresh full
    /// list).
    pub fn missing_from(&self, source: Source, present: &[PeerEntry]) -> Vec<PeerId> {
        let keys: std::collections::HashSet<PeerId> =
            present.iter().map(|e| e.signed.record.key).collect();
        self.rows
            .iter()
            .filter(|(id, r)| r.sources.contains(&source) && !keys.contains(*id))
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
        row.claim_conflict = None;
        row.conflict_source = None;
        let conflict = row.key_conflict.take();
        if !row.online() {
            self.rows.remove(&id);
        }
        conflict
    }

    /// Finds the peer `text` names ([`proto::peer_ref::resolve`]): its name, else an id
    /// prefix of at least 8 characters. `my_name` (with our key) is there to tell the user
    /// that they named themselves. A name bound by a pin or a tracker is not the name of an
    /// unverified peer claiming it; a name trackers bind to several keys names none of them
    /// (the error says which tracker binds which key).
    pub fn resolve(&self, text: &str, my_name: &PeerName) -> Result<PeerId, ResolveError> {
        let known: Vec<Known<'_>> = self
            .rows
            .iter()
            .filter(|(id, r)| !self.outranked(**id, r))
            .map(|(id, r)| Known {
                name: &r.name,
                id: *id,
            })
            .collect();
        let me = Known {
            name: my_name,
            id: self.me,
        };
        proto::peer_ref::resolve(text, &known, Some(me)).map_err(|e| match e {
            ResolveError::NameClash(c) => ResolveError::NameClash(c.with_trackers(|id| {
                self.rows
                    .get(&id)
                    .map(|r| self.trackers_of(r))
                    .unwrap_or_default()
            })),
            other => other,
        })
    }

    /// Every known peer, online first, then by name.
    pub fn list(&self) -> Vec<PeerInfo> {
        let mut v: Vec<PeerInfo> = self
            .rows
            .iter()
            .map(|(id, r)| self.full_info(*id, r))
            .collect();
        v.sort_by(|a, b| b.online.cmp(&a.online).then_with(|| a.name.cmp(&b.name)));
        v
    }

    /// Pinned peers and those with an open peer link.
    pub fn contacts(&self) -> Vec<PeerId> {
        self.rows
            .iter()
            .filter(|(_, r)| r.pinned || r.sources.contains(&Source::Link))
            .map(|(id, _)| *id)
            .collect()
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
mod tests;
