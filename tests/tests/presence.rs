//! Presence is by source: a peer with an open link stays online and reachable while the
//! tracker is down, and a pinned peer that no source sees is dialled at the address the
//! address book kept for it.

use p2p_tests::chat::{self, texts, wait_delivered, wait_history};
use p2p_tests::{DEADLINE, P2pd, TestNet, events};
use serde_json::json;

/// The entry of the peer named `name` in `p`'s peer list.
#[track_caller]
fn peer(p: &P2pd, name: &str) -> serde_json::Value {
    p.peers()
        .into_iter()
        .find(|x| x["name"] == name)
        .unwrap_or_else(|| panic!("{} does not list {name}", p.name))
}

/// Waits until `p` has received `text` from `peer`.
#[track_caller]
fn wait_received(p: &P2pd, peer: &str, text: &str) {
    wait_history(p, peer, &format!("{text:?} received"), DEADLINE, |h| {
        texts(h, "in").iter().any(|t| t == text).then_some(())
    });
}

#[test]
fn linked_peers_stay_online_and_chat_while_the_tracker_is_down() {
    let net = TestNet::new();
    let mut p = chat::pair(&net);
    // A message opens the link; both sides report it.
    chat::send(&p.alice, "bob", "before");
    wait_delivered(&p.alice, "bob", 1, DEADLINE);
    let mut alice_watch = net.watch(&p.alice);

    alice_watch.mark();
    let before = alice_watch.events().len();
    p.tracker.stop();
    // The table's changes on losing the tracker are published before the link state.
    alice_watch.wait_for(
        "tracker connecting",
        events::tracker_state("connecting"),
        DEADLINE,
    );
    p.alice.wait_tracker_state("connecting", DEADLINE);
    p.bob.wait_tracker_state("connecting", DEADLINE);
    for (who, other) in [(&p.alice, "bob"), (&p.bob, "alice")] {
        let entry = peer(who, other);
        assert_eq!(
            entry["online"], true,
            "the link still sees {other}: {entry:#}"
        );
        assert_eq!(entry["verified"], true, "{entry:#}");
        let sources = entry["sources"].as_array().expect("sources");
        assert!(sources.contains(&json!("link")), "{entry:#}");
        assert!(!sources.contains(&json!("tracker")), "{entry:#}");
    }
    let table = net
        .ctl(&p.alice, &["peers"])
        .assert_success()
        .stdout
        .clone();
    assert!(table.contains("SOURCES"), "{table}");
    let seen = &alice_watch.events()[before..];
    assert!(
        !seen.iter().any(events::peer_left("bob")),
        "no peer_left for a peer the link still sees: {seen:#?}"
    );
    assert_eq!(p.alice.status()["peers_online"], 1);

    chat::send(&p.alice, "bob", "tracker down, alice to bob");
    chat::send(&p.bob, "alice", "tracker down, bob to alice");
    wait_delivered(&p.alice, "bob", 2, DEADLINE);
    wait_delivered(&p.bob, "alice", 1, DEADLINE);
    wait_received(&p.bob, "alice", "tracker down, alice to bob");
    wait_received(&p.alice, "bob", "tracker down, bob to alice");
}

#[test]
fn a_pinned_peer_is_dialled_from_the_address_book_while_the_tracker_is_down() {
    let net = TestNet::new();
    let mut p = chat::pair(&net);
    // Sending pins bob at alice, and with the pin his address record goes to the book.
    chat::send(&p.alice, "bob", "hello");
    wait_delivered(&p.alice, "bob", 1, DEADLINE);

    p.tracker.stop();
    p.alice.wait_tracker_state("connecting", DEADLINE);
    // Bob goes away: his link closes and no source sees him.
    let (bob_addr, bob_state) = (p.bob.listen, p.bob.state_dir.clone());
    p.bob.stop();
    let gone = p.alice.wait_peer("bob", false, DEADLINE);
    assert_eq!(
        gone["sources"],
        json!(["book"]),
        "only the book knows bob: {gone:#}"
    );

    // Bob back on the same port and identity, with the tracker still down.
    let bob = net
        .p2pd("bob")
        .tracker(&p.tracker.addr_string())
        .listen(&bob_addr.to_string())
        .state_dir(&bob_state)
        .spawn();
    assert_eq!(bob.listen, bob_addr);
    let m = chat::send(&p.alice, "bob", "from the book");
    assert_eq!(m["state"], "queued");
    wait_delivered(&p.alice, "bob", 2, DEADLINE);
    wait_received(&bob, "alice", "from the book");
    // The link sees bob again.
    p.alice.wait_peer("bob", true, DEADLINE);
}
