//! Tracker protocol version 3 against a real trackerd: watches (a link hears of the keys it
//! watches only), lookups by name and key, paged lists, and version-2 links keeping the old
//! every-change subscription.

use p2p_tests::TestNet;
use p2p_tests::raw::{Client, random_key, signed};
use proto::tracker::{
    LookupBy, MAX_WATCH_KEYS, MAX_WATCHED, PROTOCOL_VERSION, PeerMsg, Refusal, TrackerMsg,
};
use proto::{KeyBytes, PeerId};
use proto::{PeerName, SecretKey};

/// A version-`version` client registered as `name` (seq `seq`) with key `key`.
async fn registered(
    addr: std::net::SocketAddr,
    key: &SecretKey,
    name: &str,
    seq: u64,
    version: u16,
) -> Client {
    let mut c = Client::connect_version(addr, key, version)
        .await
        .expect("connect to the tracker");
    match c.register(signed(key, name, seq)).await {
        TrackerMsg::Registered { .. } => c,
        other => panic!("{name} not registered: {other:?}"),
    }
}

fn keys_of(peers: &[proto::tracker::PeerEntry]) -> Vec<PeerId> {
    peers.iter().map(|e| e.signed.record.key).collect()
}

#[tokio::test]
async fn a_watcher_hears_of_its_keys_only_and_a_subscriber_of_every_change() {
    let net = TestNet::new();
    let tracker = net.spawn_tracker(None);
    let (w, s, b, c) = (random_key(), random_key(), random_key(), random_key());
    let mut watcher = registered(tracker.addr, &w, "watcher", 1, PROTOCOL_VERSION).await;
    let mut sub = registered(tracker.addr, &s, "old-sub", 1, 2).await;

    // Watching a key that is not live: an empty answer, then its changes.
    watcher
        .send(&PeerMsg::Watch {
            req: 7,
            keys: vec![b.peer_id().key_bytes()],
        })
        .await;
    match watcher.recv().await {
        TrackerMsg::Peers { req: 7, peers } => assert!(peers.is_empty(), "{peers:?}"),
        other => panic!("expected Peers 7, got {other:?}"),
    }
    sub.send(&PeerMsg::Subscribe { req: 1 }).await;
    match sub.recv().await {
        TrackerMsg::Peers { req: 1, peers } => {
            let mut got = keys_of(&peers);
            got.sort();
            let mut want = vec![w.peer_id(), s.peer_id()];
            want.sort();
            assert_eq!(got, want);
        }
        other => panic!("expected Peers 1, got {other:?}"),
    }

    let mut bc = registered(tracker.addr, &b, "bee", 1, PROTOCOL_VERSION).await;
    let mut cc = registered(tracker.addr, &c, "sea", 1, PROTOCOL_VERSION).await;
    // The version-2 subscriber hears of both, in order.
    for want in [b.peer_id(), c.peer_id()] {
        match sub.recv().await {
            TrackerMsg::Joined(e) => assert_eq!(e.signed.record.key, want),
            other => panic!("expected Joined, got {other:?}"),
        }
    }
    // The watcher hears of "bee"; had it been sent "sea"'s join (queued before "bee"'s
    // update), that would come next instead.
    match watcher.recv().await {
        TrackerMsg::Joined(e) => assert_eq!(e.signed.record.key, b.peer_id()),
        other => panic!("expected Joined(bee), got {other:?}"),
    }
    assert!(matches!(
        bc.register(signed(&b, "bee", 2)).await,
        TrackerMsg::Registered { .. }
    ));
    match watcher.recv().await {
        TrackerMsg::Updated(e) => assert_eq!(e.signed.record.seq, 2),
        other => panic!("expected Updated(bee), got {other:?}, not sea's changes"),
    }
    // Unwatched, "bee" is no longer heard of: "sea" leaving is not either, and a new watch
    // of "sea" answers with it live, then only its changes.
    watcher
        .send(&PeerMsg::Unwatch {
            keys: vec![b.peer_id().key_bytes()],
        })
        .await;
    watcher
        .send(&PeerMsg::Watch {
            req: 8,
            keys: vec![c.peer_id().key_bytes()],
        })
        .await;
    match watcher.recv().await {
        TrackerMsg::Peers { req: 8, peers } => assert_eq!(keys_of(&peers), vec![c.peer_id()]),
        other => panic!("expected Peers 8, got {other:?}"),
    }
    drop(bc);
    cc.ping(1).await;
    drop(cc);
    match watcher.recv().await {
        TrackerMsg::Left { key } => assert_eq!(key, c.peer_id(), "bee was unwatched"),
        other => panic!("expected Left(sea), got {other:?}"),
    }
    watcher.ping(2).await;
}

#[tokio::test]
async fn lookups_find_live_peers_by_name_or_key_and_pages_walk_every_peer_once() {
    let net = TestNet::new();
    let tracker = net.spawn_tracker(None);
    let keys: Vec<SecretKey> = (0..5).map(|_| random_key()).collect();
    let mut clients = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        clients.push(registered(tracker.addr, k, &format!("p{i}"), 1, PROTOCOL_VERSION).await);
    }
    let me = &mut clients[0];
    let lookup = |req, by| PeerMsg::Lookup { req, by };
    me.send(&lookup(1, LookupBy::Name(PeerName::new("p3").unwrap())))
        .await;
    match me.recv().await {
        TrackerMsg::Found {
            req: 1,
            entry: Some(e),
        } => assert_eq!(e.signed, signed(&keys[3], "p3", 1)),
        other => panic!("expected Found p3, got {other:?}"),
    }
    me.send(&lookup(2, LookupBy::Key(keys[4].peer_id()))).await;
    match me.recv().await {
        TrackerMsg::Found {
            req: 2,
            entry: Some(e),
        } => assert_eq!(e.signed.record.name.as_str(), "p4"),
        other => panic!("expected Found p4, got {other:?}"),
    }
    for (req, by) in [
        (3, LookupBy::Name(PeerName::new("nobody").unwrap())),
        (4, LookupBy::Key(random_key().peer_id())),
    ] {
        me.send(&lookup(req, by)).await;
        match me.recv().await {
            TrackerMsg::Found {
                req: r,
                entry: None,
            } if r == req => {}
            other => panic!("expected an empty Found {req}, got {other:?}"),
        }
    }

    let mut want: Vec<PeerId> = keys.iter().map(SecretKey::peer_id).collect();
    want.sort();
    let mut seen = Vec::new();
    let mut after = None;
    for req in 10.. {
        me.send(&PeerMsg::ListPage {
            req,
            after,
            limit: 2,
        })
        .await;
        match me.recv().await {
            TrackerMsg::Page {
                req: r,
                peers,
                next,
            } if r == req => {
                assert!(peers.len() <= 2);
                seen.extend(keys_of(&peers));
                match next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            other => panic!("expected Page {req}, got {other:?}"),
        }
        assert!(req < 20, "paging does not end");
    }
    assert_eq!(seen, want);
    me.send(&PeerMsg::ListPage {
        req: 30,
        after: None,
        limit: u16::MAX,
    })
    .await;
    match me.recv().await {
        TrackerMsg::Page {
            req: 30,
            peers,
            next: None,
        } => assert_eq!(keys_of(&peers), want),
        other => panic!("expected the whole list in one page, got {other:?}"),
    }
}

#[tokio::test]
async fn version_3_requests_need_version_3_a_registration_and_a_bounded_watch_set() {
    let net = TestNet::new();
    let tracker = net.spawn_tracker(None);
    let refusal = async |c: &mut Client, msg: PeerMsg| {
        c.send(&msg).await;
        match c.recv().await {
            TrackerMsg::Refused { reason, .. } => reason,
            other => panic!("expected a refusal of {msg:?}, got {other:?}"),
        }
    };
    let page = PeerMsg::ListPage {
        req: 1,
        after: None,
        limit: 10,
    };
    // A version-2 link is refused and kept.
    let k = random_key();
    let mut old = registered(tracker.addr, &k, "old", 1, 2).await;
    assert_eq!(refusal(&mut old, page.clone()).await, Refusal::BadVersion);
    old.ping(1).await;
    // Unregistered: refused and kept.
    let mut anon = Client::connect_version(tracker.addr, &random_key(), PROTOCOL_VERSION)
        .await
        .expect("connect");
    assert_eq!(refusal(&mut anon, page).await, Refusal::NotRegistered);
    anon.ping(2).await;
    // Up to MAX_WATCHED keys, then refused, nothing added; the link still served. Watched
    // keys are bytes, not checked points: many of these are no Ed25519 key at all.
    let mut w = registered(tracker.addr, &random_key(), "w", 1, PROTOCOL_VERSION).await;
    let many: Vec<KeyBytes> = (0..MAX_WATCHED + 1)
        .map(|i| {
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&(i as u64).to_le_bytes());
            KeyBytes(bytes)
        })
        .collect();
    assert!(many.iter().any(|k| PeerId::from_bytes(k.0).is_err()));
    for (req, chunk) in many[..MAX_WATCHED].chunks(MAX_WATCH_KEYS).enumerate() {
        w.send(&PeerMsg::Watch {
            req: req as u32,
            keys: chunk.to_vec(),
        })
        .await;
        assert!(matches!(w.recv().await, TrackerMsg::Peers { .. }));
    }
    let over = PeerMsg::Watch {
        req: 99,
        keys: many[MAX_WATCHED - 1..].to_vec(),
    };
    assert_eq!(refusal(&mut w, over).await, Refusal::TooManyWatches);
    w.ping(3).await;
}
