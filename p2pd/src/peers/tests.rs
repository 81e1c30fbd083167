//! The peer table's unit tests.

use super::*;
use proto::SecretKey;
use proto::addr_record::{AddrRecord, SignedAddrRecord};
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
const T0: Source = Source::Tracker(TrackerIdx(0));

fn me() -> PeerId {
    SecretKey::from_seed([9; 32]).peer_id()
}

#[test]
fn join_update_leave() {
    let mut t = PeerTable::new(me(), vec![], 0);
    let e = entry(1, "bob", 1);
    assert!(matches!(
        t.upsert(T0, &e, 10),
        Some(Event::PeerJoined { .. })
    ));
    assert_eq!(t.upsert(T0, &e, 11), None);
    assert!(matches!(
        t.upsert(T0, &entry(1, "bob", 2), 12),
        Some(Event::PeerUpdated { .. })
    ));
    let Some(Event::PeerLeft { peer }) = t.lost(e.signed.record.key, T0, 13) else {
        panic!()
    };
    assert!(!peer.online);
    assert_eq!(peer.since, 13);
    assert_eq!(t.lost(e.signed.record.key, T0, 14), None);
    assert_eq!(t.counts(), (0, 1));
    assert_eq!(t.upsert(T0, &entry(9, "me", 1), 15), None);
}

#[test]
fn offline_peers_never_dealt_with_are_capped_pinned_ones_stay() {
    let mut t = PeerTable::new(me(), vec![], 0).with_offline_unpinned(2);
    let pinned = entry(1, "bob", 1);
    t.upsert(T0, &pinned, 1);
    t.set_pinned(pinned.signed.record.key);
    assert!(t.is_pinned(pinned.signed.record.key));
    t.lost(pinned.signed.record.key, T0, 2);
    for n in 2..6u8 {
        let e = entry(n, &format!("stranger{n}"), 1);
        t.upsert(T0, &e, u64::from(n) * 10);
        t.lost(e.signed.record.key, T0, u64::from(n) * 10 + 1);
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
    t.upsert(T0, &real, 1);
    t.set_pinned(real.signed.record.key);
    assert!(matches!(
        t.conflict(T0, &imposter, real.signed.record.key, 2),
        Some(Event::LinkError { .. })
    ));
    assert_eq!(t.conflict(T0, &imposter, real.signed.record.key, 3), None);
    assert_eq!(
        t.get(real.signed.record.key).unwrap().key_conflict,
        Some(imposter.signed.record.key)
    );
    t.lost(real.signed.record.key, T0, 4);
    assert_eq!(t.forget(real.signed.record.key), Some(imposter));
    assert_eq!(t.counts(), (0, 0));
}

#[test]
fn a_rotated_key_takes_the_row_and_its_flags() {
    let mut t = PeerTable::new(me(), vec![], 0);
    let (old, new) = (entry(1, "bob", 1), entry(2, "bob", 2));
    let old_id = old.signed.record.key;
    t.upsert(T0, &old, 1);
    t.set_pinned(old_id);
    t.set_flags(old_id, true, true, false);
    t.lost(old_id, T0, 2);
    t.conflict(T0, &new, old_id, 3);
    let Some(Event::PeerUpdated { peer }) = t.rekeyed(T0, old_id, &new, 4) else {
        panic!("expected PeerUpdated")
    };
    assert_eq!(peer.id, new.signed.record.key);
    assert!(peer.online && peer.trusted && peer.auto_accept && !peer.blocked);
    assert_eq!(peer.key_conflict, None);
    assert!(t.is_pinned(peer.id));
    assert_eq!(t.get(old_id), None);
    assert_eq!(t.counts(), (1, 1));
    assert_eq!(t.rekeyed(T0, old_id, &new, 5), None);
}

#[test]
fn a_linked_peer_stays_online_when_the_tracker_goes() {
    let mut t = PeerTable::new(me(), vec![], 0);
    let (bob, carol) = (entry(1, "bob", 1), entry(2, "carol", 2));
    let (b, c) = (bob.signed.record.key, carol.signed.record.key);
    t.upsert(T0, &bob, 1);
    t.upsert(T0, &carol, 1);
    // Already online: the link adds a source, not an event.
    assert_eq!(t.link_up(b, 2), None);
    assert_eq!(
        t.get(b).unwrap().sources,
        vec![PeerSource::Tracker, PeerSource::Link]
    );
    assert_eq!((t.seen_by(T0), t.seen_by(Source::Link)), (2, 1));
    let events = t.source_gone(T0, 3);
    assert!(matches!(events.as_slice(), [Event::PeerLeft { peer }] if peer.id == c));
    let bob_now = t.get(b).unwrap();
    assert!(bob_now.online);
    assert_eq!(bob_now.sources, vec![PeerSource::Link]);
    assert!(!bob_now.addrs.is_empty(), "addresses outlive the tracker");
    assert_eq!(t.counts(), (1, 2));
    // The tracker back: bob is already online, carol joins again.
    assert_eq!(t.upsert(T0, &bob, 4), None);
    assert!(matches!(
        t.upsert(T0, &carol, 4),
        Some(Event::PeerJoined { .. })
    ));
    // The link closing leaves bob online through the tracker.
    assert_eq!(t.lost(b, Source::Link, 5), None);
    assert!(t.get(b).unwrap().online);
    assert!(matches!(t.lost(b, T0, 6), Some(Event::PeerLeft { .. })));
    // A second report of the same loss changes nothing.
    assert_eq!(t.lost(b, T0, 7), None);
}

#[test]
fn a_link_alone_brings_a_known_peer_online_and_its_close_takes_it_offline() {
    let mut t = PeerTable::new(me(), vec![], 0);
    let bob = entry(1, "bob", 1);
    let b = bob.signed.record.key;
    // Unknown to the table: a link proves a key, not a name.
    assert_eq!(t.link_up(b, 1), None);
    assert_eq!(t.get(b), None);
    t.upsert(T0, &bob, 2);
    t.source_gone(T0, 3);
    let Some(Event::PeerJoined { peer }) = t.link_up(b, 4) else {
        panic!("expected PeerJoined")
    };
    assert!(peer.online);
    assert_eq!(peer.since, 4);
    assert_eq!(t.link_up(b, 5), None);
    // A snapshot without bob removes only the tracker's report, which it no longer has.
    assert!(t.missing_from(T0, &[]).is_empty());
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
    t.upsert(T0, &bob, 1);
    t.upsert(T0, &carol, 1);
    t.link_up(carol.signed.record.key, 2);
    let mut gone = t.missing_from(T0, std::slice::from_ref(&bob));
    gone.sort();
    assert_eq!(gone, vec![carol.signed.record.key]);
    assert_eq!(
        t.lost(carol.signed.record.key, T0, 3),
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
    t.upsert(T0, &moved, 1);
    assert_eq!(t.to_book(b), Some(moved.clone()));
    assert_eq!(t.to_book(b), None);
    t.source_gone(T0, 2);
    assert_eq!(t.dialable(b).unwrap().addrs, moved.addrs());
    // A peer not pinned is dialable only while online.
    t.upsert(T0, &stranger, 3);
    assert_eq!(t.to_book(stranger.signed.record.key), None);
    assert!(t.dialable(stranger.signed.record.key).is_some());
    t.source_gone(T0, 4);
    assert!(t.dialable(stranger.signed.record.key).is_none());
}

fn addr_record(n: u8, seq: u64, addr: &str, expiry: u64) -> SignedAddrRecord {
    let k = SecretKey::from_seed([n; 32]);
    AddrRecord {
        key: k.peer_id(),
        seq,
        addrs: vec![addr.parse().unwrap()],
        expiry,
    }
    .sign(&k)
}

fn name(s: &str) -> PeerName {
    PeerName::new(s).unwrap()
}

const NOW: u64 = 1_000;

#[test]
fn a_key_never_met_shows_with_its_claimed_name_unverified() {
    let mut t = PeerTable::new(me(), vec![], 0);
    let rec = addr_record(1, 5, "10.0.0.2:7000", NOW + 60);
    let id = rec.record.key;
    // With no name claimed there is nothing to show it as.
    assert_eq!(t.heard(Source::Dht, &rec, None, None, NOW), None);
    let Some(Event::PeerJoined { peer }) =
        t.heard(Source::Lan, &rec, None, Some(&name("bob")), NOW)
    else {
        panic!("expected PeerJoined")
    };
    assert_eq!((peer.id, peer.name.as_str()), (id, "bob"));
    assert!(peer.online && !peer.verified);
    assert_eq!(peer.sources, vec![PeerSource::Lan]);
    assert_eq!(peer.addrs, vec!["10.0.0.2:7000".parse().unwrap()]);
    // The same record again from the DHT: one more source, no event.
    assert_eq!(t.heard(Source::Dht, &rec, None, None, NOW), None);
    assert_eq!(
        t.get(id).unwrap().sources,
        vec![PeerSource::Lan, PeerSource::Dht]
    );
    // An unbound name follows the claim; the tracker then binds it and verifies the peer.
    let Some(Event::PeerUpdated { peer }) =
        t.heard(Source::Lan, &rec, None, Some(&name("bobby")), NOW)
    else {
        panic!("expected PeerUpdated")
    };
    assert_eq!(peer.name.as_str(), "bobby");
    t.upsert(T0, &entry(1, "bob", 7000), NOW);
    let peer = t.get(id).unwrap();
    assert!(peer.verified);
    assert_eq!(peer.name.as_str(), "bob");
    t.heard(Source::Lan, &rec, None, Some(&name("mallory")), NOW);
    assert_eq!(
        t.get(id).unwrap().name.as_str(),
        "bob",
        "a claim never renames a bound peer"
    );
    // Each source goes on its own.
    assert_eq!(t.lost(id, Source::Lan, NOW), None);
    assert_eq!(t.source_gone(T0, NOW), vec![]);
    assert!(matches!(
        t.lost(id, Source::Dht, NOW),
        Some(Event::PeerLeft { .. })
    ));
}

#[test]
fn forged_expired_and_replayed_records_are_ignored() {
    let mut t = PeerTable::new(me(), vec![], 0);
    let bob = name("bob");
    let mut forged = addr_record(1, 5, "10.0.0.2:7000", NOW + 60);
    forged.record.seq = 6;
    assert_eq!(t.heard(Source::Lan, &forged, None, Some(&bob), NOW), None);
    // Another key's signature on bob's record.
    let other = SecretKey::from_seed([2; 32]);
    let mut relabelled = addr_record(2, 5, "10.0.0.2:7000", NOW + 60);
    relabelled.record.key = SecretKey::from_seed([1; 32]).peer_id();
    relabelled.sig = other.sign(&relabelled.record.signing_bytes()[..1]);
    assert_eq!(
        t.heard(Source::Lan, &relabelled, None, Some(&bob), NOW),
        None
    );
    let expired = addr_record(1, 5, "10.0.0.2:7000", NOW);
    assert_eq!(t.heard(Source::Lan, &expired, None, Some(&bob), NOW), None);
    let far = addr_record(1, 5, "10.0.0.2:7000", NOW + 8 * 24 * 3600);
    assert_eq!(t.heard(Source::Dht, &far, None, Some(&bob), NOW), None);
    let mine = addr_record(9, 5, "10.0.0.2:7000", NOW + 60);
    assert_eq!(t.heard(Source::Lan, &mine, None, Some(&bob), NOW), None);
    assert_eq!(t.counts(), (0, 0), "nothing was added on their word");
    // Seq 7 seen; a replayed seq 6 changes nothing, not even its source's presence.
    let new = addr_record(1, 7, "10.0.0.3:7000", NOW + 60);
    let id = new.record.key;
    t.heard(Source::Lan, &new, None, Some(&bob), NOW);
    let old = addr_record(1, 6, "10.0.0.2:7000", NOW + 60);
    assert_eq!(t.heard(Source::Dht, &old, None, None, NOW), None);
    let peer = t.get(id).unwrap();
    assert_eq!(peer.addrs, vec!["10.0.0.3:7000".parse().unwrap()]);
    assert_eq!(peer.sources, vec![PeerSource::Lan]);
}

#[test]
fn the_highest_seq_gives_the_addresses_across_sources() {
    let mut t = PeerTable::new(me(), vec![], 0);
    // The tracker's registration carries seq 1 (see `entry`).
    let bob = entry(1, "bob", 7000);
    let id = bob.signed.record.key;
    t.upsert(T0, &bob, NOW);
    assert_eq!(t.get(id).unwrap().addrs, bob.addrs());
    // The DHT has bob at a new address under seq 9.
    let moved = addr_record(1, 9, "10.9.9.9:7100", NOW + 60);
    let Some(Event::PeerUpdated { peer }) = t.heard(Source::Dht, &moved, None, None, NOW) else {
        panic!("expected PeerUpdated")
    };
    assert_eq!(peer.addrs, vec!["10.9.9.9:7100".parse().unwrap()]);
    assert_eq!(peer.name.as_str(), "bob");
    // The tracker lists it again under its lower seq: the newer addresses stay.
    assert_eq!(t.upsert(T0, &bob, NOW), None);
    assert_eq!(
        t.get(id).unwrap().addrs,
        vec!["10.9.9.9:7100".parse().unwrap()]
    );
    // An unspecified IP takes the address the record came from; with none it is unusable and
    // the addresses known stay.
    let lan = addr_record(1, 10, "0.0.0.0:7200", NOW + 60);
    t.heard(Source::Dht, &lan, None, None, NOW);
    assert_eq!(
        t.get(id).unwrap().addrs,
        vec!["10.9.9.9:7100".parse().unwrap()]
    );
    let lan = addr_record(1, 11, "0.0.0.0:7200", NOW + 60);
    t.heard(
        Source::Lan,
        &lan,
        Some("192.168.1.5".parse().unwrap()),
        None,
        NOW,
    );
    assert_eq!(
        t.get(id).unwrap().addrs,
        vec!["192.168.1.5:7200".parse().unwrap()]
    );
}

#[test]
fn a_claim_of_a_bound_name_by_another_key_is_a_conflict_never_adopted() {
    let real = entry(1, "bob", 7000);
    let b = real.signed.record.key;
    let known = vec![KnownPeer {
        id: b,
        name: name("bob"),
        trusted: true,
        auto_accept: false,
        blocked: false,
    }];
    let mut t = PeerTable::new(me(), known, 0);
    let imposter = addr_record(2, 5, "10.6.6.6:7000", NOW + 60);
    let Some(Event::LinkError { peer, detail }) =
        t.heard(Source::Lan, &imposter, None, Some(&name("bob")), NOW)
    else {
        panic!("expected a conflict")
    };
    assert_eq!(peer, Some(b));
    assert!(
        detail.contains(&imposter.record.key.to_string()),
        "{detail}"
    );
    assert_eq!(
        t.heard(Source::Lan, &imposter, None, Some(&name("bob")), NOW),
        None,
        "reported once"
    );
    assert_eq!(t.get(imposter.record.key), None, "not adopted");
    assert_eq!(
        t.rows[&b].claim_conflict,
        Some(imposter.record.key),
        "the claim is recorded"
    );
    assert_eq!(
        t.get(b).unwrap().key_conflict,
        None,
        "but holds nothing sent to bob"
    );
    assert!(!t.get(b).unwrap().online);
    assert_eq!(t.resolve("bob", &name("alice")), Ok(b));
    // A name bound by a tracker (not pinned) is kept just the same.
    let carol = entry(3, "carol", 7000);
    t.upsert(T0, &carol, NOW);
    let fake = addr_record(4, 5, "10.6.6.7:7000", NOW + 60);
    assert!(matches!(
        t.heard(Source::Lan, &fake, None, Some(&name("carol")), NOW),
        Some(Event::LinkError { .. })
    ));
    assert_eq!(t.get(fake.record.key), None);
}

#[test]
fn keys_never_met_are_capped() {
    let mut t = PeerTable::new(me(), vec![], 0);
    for n in 0..=UNVERIFIED_MAX {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(n as u64 + 1000).to_le_bytes());
        let k = SecretKey::from_seed(seed);
        let rec = AddrRecord {
            key: k.peer_id(),
            seq: 1,
            addrs: vec!["10.0.0.1:1".parse().unwrap()],
            expiry: NOW + 60,
        }
        .sign(&k);
        let ev = t.heard(Source::Lan, &rec, None, Some(&name(&format!("p{n}"))), NOW);
        assert_eq!(ev.is_some(), n < UNVERIFIED_MAX, "key {n}");
    }
    assert_eq!(t.counts(), (UNVERIFIED_MAX, UNVERIFIED_MAX));
    // A peer a tracker vouches for still comes in.
    assert!(t.upsert(T0, &entry(1, "bob", 1), NOW).is_some());
    // Once the LAN no longer sees them, new keys come in again.
    t.source_gone(Source::Lan, NOW);
    let fresh = addr_record(3, 1, "10.0.0.3:1", NOW + 60);
    assert!(
        t.heard(Source::Lan, &fresh, None, Some(&name("fresh")), NOW)
            .is_some()
    );
}

#[test]
fn a_name_two_trackers_bind_to_different_keys_names_neither_until_pinned() {
    let mut t =
        PeerTable::new(me(), vec![], 0).with_trackers(vec!["t1:7070".into(), "t2:7070".into()]);
    let t1 = Source::Tracker(TrackerIdx(1));
    let (bob, bob2) = (entry(1, "bob", 1), entry(2, "bob", 2));
    let (b, b2) = (bob.signed.record.key, bob2.signed.record.key);
    t.upsert(T0, &bob, 1);
    t.upsert(t1, &bob2, 1);
    assert_eq!(t.get(b).unwrap().same_name, vec![b2]);
    assert_eq!(t.get(b).unwrap().trackers, vec!["t1:7070".to_owned()]);
    assert_eq!(t.get(b2).unwrap().same_name, vec![b]);
    let me_name = name("alice");
    let Err(ResolveError::NameClash(clash)) = t.resolve("bob", &me_name) else {
        panic!("expected a name clash")
    };
    let text = clash.to_string();
    for want in [
        b.to_string(),
        b2.to_string(),
        "t1:7070".into(),
        "t2:7070".into(),
    ] {
        assert!(text.contains(&want), "{want} in {text}");
    }
    assert_eq!(t.resolve(&b2.to_string()[..10], &me_name), Ok(b2));
    // A pin wins over any tracker.
    t.set_pinned(b2);
    assert_eq!(t.resolve("bob", &me_name), Ok(b2));
    assert!(t.get(b2).unwrap().same_name.is_empty());
}

#[test]
fn each_tracker_is_its_own_source() {
    let mut t = PeerTable::new(me(), vec![], 0);
    let t1 = Source::Tracker(TrackerIdx(1));
    let bob = entry(1, "bob", 1);
    let b = bob.signed.record.key;
    assert!(t.upsert(T0, &bob, 1).is_some());
    assert_eq!(t.upsert(t1, &bob, 1), None);
    assert_eq!(t.get(b).unwrap().sources, vec![PeerSource::Tracker]);
    assert_eq!(t.source_gone(T0, 2), vec![]);
    assert!(t.get(b).unwrap().online, "the other tracker still sees bob");
    assert_eq!((t.seen_by(T0), t.seen_by(t1)), (0, 1));
    assert!(t.missing_from(t1, &[]).contains(&b));
    assert!(matches!(
        t.source_gone(t1, 3).as_slice(),
        [Event::PeerLeft { .. }]
    ));
}

#[test]
fn a_pinned_peer_with_no_address_is_dialled_only_to_look_it_up() {
    let bob = entry(1, "bob", 7);
    let b = bob.signed.record.key;
    let pin = |blocked| KnownPeer {
        id: b,
        name: PeerName::new("bob").unwrap(),
        trusted: false,
        auto_accept: false,
        blocked,
    };
    // Pinned, with no record in the book and no source seeing it: nowhere to dial.
    let t = PeerTable::new(me(), vec![pin(false)], 0);
    assert!(t.dialable(b).is_none());
    assert!(t.dial_target(b, false).is_none(), "no DHT, no dial");
    let info = t.dial_target(b, true).expect("the DHT may find it");
    assert!(info.addrs.is_empty() && !info.online);
    // Blocked: never, DHT or not.
    let t = PeerTable::new(me(), vec![pin(true)], 0);
    assert!(t.dial_target(b, true).is_none());
    // A stranger that went offline is not looked up: only pinned peers are.
    let mut t = PeerTable::new(me(), vec![], 0);
    t.upsert(T0, &bob, 1);
    assert!(
        t.dial_target(b, true).is_some(),
        "online: dialled as before"
    );
    t.source_gone(T0, 2);
    assert!(t.dial_target(b, true).is_none());
}
