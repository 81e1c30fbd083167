//! The Mainline DHT as a discovery source, against a local `dht-testnet` (never the public
//! DHT): a peer that moved while the tracker is down is found there and reached; a forged or
//! expired record is ignored; a DHT that answers nothing leaves p2pd running and says so.

use std::net::{TcpListener, UdpSocket};

use p2p_tests::chat::{self, texts, wait_delivered, wait_history};
use p2p_tests::dht::{DhtTestnet, identity_key};
use p2p_tests::{DEADLINE, P2pd, TestNet, Tracker};
use proto::SecretKey;
use proto::addr_record::AddrRecord;
use serde_json::{Value, json};

/// A testnet, a tracker, and alice and bob on both, bob pinned at alice (her message to him
/// delivered: his record is in her address book).
struct World {
    dht: DhtTestnet,
    tracker: Tracker,
    alice: P2pd,
    bob: P2pd,
}

fn pinned_pair_on_a_dht(net: &TestNet) -> World {
    let dht = DhtTestnet::start(net, 12);
    let tracker = net.spawn_tracker(None);
    let args = dht.p2pd_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let alice = net.spawn_p2pd("alice", &tracker.addr_string(), &args);
    let bob = net.spawn_p2pd("bob", &tracker.addr_string(), &args);
    alice.wait_peer("bob", true, DEADLINE);
    chat::send(&alice, "bob", "hello");
    wait_delivered(&alice, "bob", 1, DEADLINE);
    World {
        dht,
        tracker,
        alice,
        bob,
    }
}

/// The `dht` entry of `status`'s sources.
fn dht_source(status: &Value) -> Value {
    status["sources"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["kind"] == "dht"))
        .cloned()
        .unwrap_or_else(|| panic!("no dht source in the status: {status:#}"))
}

#[test]
fn the_dht_is_off_by_default_and_says_so() {
    let net = TestNet::new();
    let tracker = net.spawn_tracker(None);
    let alice = net.spawn_p2pd("alice", &tracker.addr_string(), &[]);
    assert_eq!(dht_source(&alice.status())["state"], "off");
}

#[test]
fn a_dht_with_no_bootstrap_node_reachable_leaves_p2pd_running_and_status_says_so() {
    let net = TestNet::new();
    let tracker = net.spawn_tracker(None);
    // A port nothing listens on: bound, read, then closed.
    let closed = {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
        s.local_addr().expect("its address").to_string()
    };
    let mut alice = net.spawn_p2pd(
        "alice",
        &tracker.addr_string(),
        &["--dht", "--dht-bootstrap", &closed],
    );
    alice
        .proc
        .wait_stderr_line("DHT: no bootstrap node answered", 3 * DEADLINE);
    let status = alice.status();
    let dht = dht_source(&status);
    assert_eq!(dht["state"], "down", "{dht:#}");
    assert_eq!(dht["addr"], closed.as_str(), "{dht:#}");
    let detail = dht["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("no bootstrap node reachable"), "{dht:#}");
    // Everything else runs on: the tracker registers it, the control socket answers.
    alice.wait_tracker_state("registered", DEADLINE);
    let out = net.ctl(&alice, &["status"]);
    out.assert_success();
    assert!(out.stdout.contains("dht"), "{}", out.stdout);
}

#[test]
fn with_a_reachable_dht_the_source_is_ready() {
    let net = TestNet::new();
    let dht = DhtTestnet::start(&net, 8);
    let tracker = net.spawn_tracker(None);
    let args = dht.p2pd_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut alice = net.spawn_p2pd("alice", &tracker.addr_string(), &args);
    alice
        .proc
        .wait_stderr_line("DHT: bootstrapped", 3 * DEADLINE);
    let dht_entry = dht_source(&alice.status());
    assert_eq!(dht_entry["state"], "up", "{dht_entry:#}");
    let detail = dht_entry["detail"].as_str().unwrap_or_default();
    assert!(detail.starts_with("ready, "), "{dht_entry:#}");
}

#[test]
fn a_peer_that_moved_while_the_tracker_is_down_is_found_in_the_dht_and_gets_its_message() {
    let net = TestNet::new();
    let World {
        dht: _dht,
        mut tracker,
        alice,
        mut bob,
    } = pinned_pair_on_a_dht(&net);

    // The tracker goes; bob comes back on another port, and publishes where he is now.
    tracker.stop();
    let old_addr = bob.listen;
    bob.restart();
    assert_ne!(bob.listen, old_addr);
    bob.proc
        .wait_stderr_line("DHT: record published", 3 * DEADLINE);
    let gone = alice.wait_peer("bob", false, DEADLINE);
    assert_eq!(gone["sources"], json!(["book"]), "{gone:#}");

    // Alice's message is queued: the book's address fails, the DHT gives the new one.
    let m = chat::send(&alice, "bob", "found you");
    assert_eq!(m["state"], "queued");
    wait_delivered(&alice, "bob", 2, 3 * DEADLINE);
    wait_history(&bob, "alice", "the message received", DEADLINE, |h| {
        texts(h, "in")
            .iter()
            .any(|t| t == "found you")
            .then_some(())
    });
    let entry = alice.wait_peer("bob", true, DEADLINE);
    let sources = entry["sources"].as_array().expect("sources");
    assert!(sources.contains(&json!("dht")), "{entry:#}");
    let addrs = entry["addrs"].as_array().expect("addrs");
    assert!(
        addrs.contains(&json!(bob.listen.to_string())),
        "alice dials bob where he is now: {entry:#}"
    );
}

#[test]
fn a_pinned_peer_with_no_address_anywhere_is_looked_up_in_the_dht_for_a_queued_message() {
    let net = TestNet::new();
    let World {
        dht: _dht,
        mut tracker,
        mut alice,
        mut bob,
    } = pinned_pair_on_a_dht(&net);

    // Alice stops; her pin of bob stays, but her address book is empty, as in a database
    // from before the book, and the tracker is gone when she comes back.
    alice.stop();
    tracker.stop();
    let db = rusqlite::Connection::open(alice.state_dir.join("p2pd.db")).expect("open the db");
    let dropped = db
        .execute("DELETE FROM address_book", [])
        .expect("empty the address book");
    assert_eq!(dropped, 1, "bob's record was in the book");
    drop(db);
    let old_addr = bob.listen;
    bob.restart();
    assert_ne!(bob.listen, old_addr);
    bob.proc
        .wait_stderr_line("DHT: record published", 3 * DEADLINE);
    alice.restart();
    let entry = alice
        .peers()
        .into_iter()
        .find(|p| p["name"] == "bob")
        .expect("bob is listed: he is pinned");
    assert_eq!(entry["online"], false, "{entry:#}");
    assert_eq!(
        entry["addrs"],
        json!([]),
        "no source gives an address: {entry:#}"
    );

    // The message is queued with nowhere to dial; the DHT lookup finds bob.
    let m = chat::send(&alice, "bob", "where are you");
    assert_eq!(m["state"], "queued");
    wait_delivered(&alice, "bob", 2, 3 * DEADLINE);
    wait_history(&bob, "alice", "the message received", DEADLINE, |h| {
        texts(h, "in")
            .iter()
            .any(|t| t == "where are you")
            .then_some(())
    });
    let entry = alice.wait_peer("bob", true, DEADLINE);
    let sources = entry["sources"].as_array().expect("sources");
    assert!(sources.contains(&json!("dht")), "{entry:#}");
}

#[test]
fn forged_and_expired_records_under_a_peers_key_are_ignored_and_nothing_is_dialled() {
    let net = TestNet::new();
    let World {
        dht,
        mut tracker,
        mut alice,
        mut bob,
    } = pinned_pair_on_a_dht(&net);
    bob.proc
        .wait_stderr_line("DHT: record published", 3 * DEADLINE);
    tracker.stop();
    bob.stop();
    alice.wait_peer("bob", false, DEADLINE);

    // Where the forged records point: a listener that must never see a connection.
    let trap = TcpListener::bind("127.0.0.1:0").expect("bind the trap");
    trap.set_nonblocking(true).expect("nonblocking");
    let trap_addr = trap.local_addr().expect("trap address");
    let bob_key = identity_key(&bob.state_dir);
    let carol = SecretKey::from_seed([0xca; 32]);
    let later = i64::try_from(svc::unix_millis()).expect("ms fit") + 1_000_000;
    let expiry = svc::unix_now() + 3600;
    let record = |key: &SecretKey, expiry: u64, seq: i64| {
        AddrRecord {
            key: key.peer_id(),
            seq: u64::try_from(seq).expect("positive"),
            addrs: vec![trap_addr],
            expiry,
        }
        .sign(key)
    };

    // 1. Carol's valid record, stored under bob's key (the item signed with bob's key).
    dht.put_raw(&bob_key, &record(&carol, expiry, later), later);
    let m = chat::send(&alice, "bob", "are you there");
    assert_eq!(m["state"], "queued");
    alice
        .proc
        .wait_stderr_line("DHT: an item was ignored", 3 * DEADLINE);
    alice.proc.wait_stderr_line("found=false", DEADLINE);
    assert_no_connection(&trap);

    // 2. Bob's own record, signed by him, but expired. Alice starts again (her dials of bob
    // start over rather than wait out their backoff) and looks bob up for her queued message.
    dht.put_raw(
        &bob_key,
        &record(&bob_key, svc::unix_now() - 1, later + 1),
        later + 1,
    );
    alice.restart();
    let line = alice.proc.wait_stderr_line("expired", 3 * DEADLINE);
    assert!(line.contains("DHT: an item was ignored"), "{line}");
    alice.proc.wait_stderr_line("found=false", DEADLINE);
    assert_no_connection(&trap);

    // Bob was never taken as online, through the DHT or otherwise.
    let entry = alice
        .peers()
        .into_iter()
        .find(|p| p["name"] == "bob")
        .expect("bob is listed");
    assert_eq!(entry["online"], false, "{entry:#}");
    assert_eq!(entry["sources"], json!(["book"]), "{entry:#}");
    let h = chat::history(&alice, "bob");
    assert_eq!(h.last().expect("a message")["state"], "queued", "{h:#?}");
}

/// Nothing has connected to `trap` (it is non-blocking: nothing waits).
#[track_caller]
fn assert_no_connection(trap: &TcpListener) {
    match trap.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok((_, from)) => panic!("a forged record was dialled: a connection from {from}"),
        Err(e) => panic!("accept on the trap failed: {e}"),
    }
}
