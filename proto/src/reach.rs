//! Whether p2pd sends messages and offers to a peer now, read from the peer as `peers` shows
//! it: the one rule behind the daemon's dials and p2pctl's choice to wait for a delivery or
//! to say that something is queued.

use crate::api::{PeerInfo, PeerSource};

/// Where a peer stands for what we send it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Some source sees it now: p2pd sends at once.
    Online,
    /// No source sees it, but the address book holds its last verified address: p2pd dials
    /// it there, and it may well be gone.
    Book,
    /// No source sees it and there is nowhere to dial: things wait until one does.
    Offline,
    /// Blocked by the user: nothing is sent.
    Blocked,
    /// Another key is shown for its name: nothing is sent until the user settles it
    /// (`forget-key`).
    KeyChanged,
}

impl Reach {
    /// Where `p` stands.
    pub fn of(p: &PeerInfo) -> Reach {
        if p.blocked {
            Reach::Blocked
        } else if p.key_conflict.is_some() {
            Reach::KeyChanged
        } else if p.online {
            Reach::Online
        } else if dialable(p) {
            Reach::Book
        } else {
            Reach::Offline
        }
    }

    /// Where a peer stands that may be missing from the list (unknown is offline).
    pub fn of_known(p: Option<&PeerInfo>) -> Reach {
        p.map_or(Reach::Offline, Reach::of)
    }

    /// p2pd sends to the peer now (it may still fail to reach a peer dialled from the book).
    pub fn deliverable(self) -> bool {
        matches!(self, Reach::Online | Reach::Book)
    }
}

/// A link to `p` may be dialled now: some source sees it, or the address book holds its
/// record, and it has an address. Whether to send it anything is [`Reach`]'s question.
pub fn dialable(p: &PeerInfo) -> bool {
    (p.online || p.sources.contains(&PeerSource::Book)) && !p.addrs.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PeerName, SecretKey};

    fn peer() -> PeerInfo {
        PeerInfo {
            name: PeerName::new("bob").expect("name"),
            id: SecretKey::from_seed([1; 32]).peer_id(),
            addrs: vec!["127.0.0.1:4000".parse().expect("addr")],
            online: false,
            since: 0,
            trusted: false,
            auto_accept: false,
            blocked: false,
            key_conflict: None,
            same_name: Vec::new(),
            trackers: Vec::new(),
            sources: Vec::new(),
            verified: true,
        }
    }

    #[test]
    fn online_or_booked_peers_are_sent_to() {
        let mut p = peer();
        assert_eq!(Reach::of(&p), Reach::Offline);
        assert!(!dialable(&p));
        p.sources = vec![PeerSource::Book];
        assert_eq!(Reach::of(&p), Reach::Book);
        assert!(dialable(&p) && Reach::of(&p).deliverable());
        p.online = true;
        p.sources = vec![PeerSource::Tracker, PeerSource::Book];
        assert_eq!(Reach::of(&p), Reach::Online);
        assert_eq!(Reach::of_known(None), Reach::Offline);
        assert!(!Reach::Offline.deliverable());
    }

    #[test]
    fn a_booked_peer_without_an_address_is_not_dialable() {
        let mut p = peer();
        p.sources = vec![PeerSource::Book];
        p.addrs.clear();
        assert!(!dialable(&p));
        assert_eq!(Reach::of(&p), Reach::Offline);
        // Online through a link alone: sent to over that link, not dialled.
        p.online = true;
        p.sources = vec![PeerSource::Link];
        assert!(!dialable(&p));
        assert_eq!(Reach::of(&p), Reach::Online);
    }

    #[test]
    fn blocks_and_key_conflicts_hold_everything() {
        let mut p = peer();
        p.online = true;
        p.key_conflict = Some(SecretKey::from_seed([2; 32]).peer_id());
        assert_eq!(Reach::of(&p), Reach::KeyChanged);
        assert!(dialable(&p) && !Reach::of(&p).deliverable());
        p.blocked = true;
        assert_eq!(Reach::of(&p), Reach::Blocked);
        assert!(!Reach::of(&p).deliverable());
    }
}
