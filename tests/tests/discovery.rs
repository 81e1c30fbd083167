//! Peers find each other through the tracker: a peer that registers shows up in the others'
//! events, `p2pctl peers` and `status`; one that stops (SIGTERM) or dies (SIGKILL) is seen
//! leaving, the latter within the tracker's lease.

use std::time::{Duration, Instant};

use p2p_tests::{DEADLINE, TestNet, events};
use serde_json::Value;

/// Lease configured on the tracker: short, so a dead peer must be noticed quickly.
const LEASE_SECS: u64 = 3;

fn listed<'a>(peers: &'a Value, name: &str) -> &'a Value {
    peers
        .as_array()
        .expect("peers --json prints an array")
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} not listed in {peers:#}"))
}

#[test]
fn peers_see_each_other_join_and_leave() {
    let net = TestNet::new();
    let tracker = net.spawn_tracker(Some(&format!("lease-secs = {LEASE_SECS}\n")));
    let mut alice = net.spawn_p2pd("alice", &tracker.addr_string(), &[]);
    alice.wait_tracker_state("registered", DEADLINE);
    let mut watch = net.watch(&alice);

    // Bob joins: alice's watch shows him with his id and address.
    let mut bob = net.spawn_p2pd("bob", &tracker.addr_string(), &[]);
    let bob_id = bob.id();
    let joined = watch.wait_for("bob joined", events::peer_joined("bob"), DEADLINE);
    assert_eq!(joined["peer"]["id"], bob_id.as_str(), "{joined}");
    assert_eq!(joined["peer"]["online"], true, "{joined}");
    assert_eq!(
        joined["peer"]["addrs"],
        serde_json::json!([bob.listen.to_string()]),
        "bob's announced address: {joined}"
    );
    // And bob learns about alice from the list he gets on subscribing.
    bob.wait_peer("alice", true, DEADLINE);

    // `p2pctl --json peers` on alice lists bob, online, with his id.
    let peers = net
        .ctl(&alice, &["--json", "peers"])
        .assert_success()
        .json();
    let b = listed(&peers, "bob");
    assert_eq!(b["id"], bob_id.as_str(), "{peers:#}");
    assert_eq!(b["online"], true, "{peers:#}");
    assert!(b["since"].as_u64().is_some_and(|s| s > 0), "{peers:#}");

    // `p2pctl --json status` on alice.
    let status = net
        .ctl(&alice, &["--json", "status"])
        .assert_success()
        .json();
    assert_eq!(status["name"], "alice", "{status:#}");
    assert_eq!(status["id"], alice.id().as_str(), "{status:#}");
    assert_ne!(status["id"], bob_id.as_str(), "{status:#}");
    assert_eq!(status["listen"], alice.listen.to_string(), "{status:#}");
    assert_eq!(status["tracker"]["state"], "registered", "{status:#}");
    assert_eq!(
        status["tracker"]["addr"],
        tracker.addr_string(),
        "{status:#}"
    );
    assert_eq!(
        status["tracker"]["key"],
        tracker.key.as_str(),
        "the tracker key is pinned: {status:#}"
    );
    assert_eq!(status["peers_online"], 1, "{status:#}");
    assert_eq!(status["peers_known"], 1, "{status:#}");
    assert!(
        status["resources"]["rss_bytes"]
            .as_u64()
            .is_some_and(|r| r > 0),
        "{status:#}"
    );
    assert_eq!(
        status["resources"]["pid"],
        alice.proc.pid(),
        "status reports the daemon's own pid: {status:#}"
    );

    // Bob stops cleanly: alice sees him leave, and lists him offline.
    watch.mark();
    assert!(bob.stop().success(), "p2pd exits 0 on SIGTERM");
    let left = watch.wait_for("bob left", events::peer_left("bob"), DEADLINE);
    assert_eq!(left["peer"]["id"], bob_id.as_str(), "{left}");
    assert_eq!(left["peer"]["online"], false, "{left}");
    let peers = net
        .ctl(&alice, &["--json", "peers"])
        .assert_success()
        .json();
    assert_eq!(listed(&peers, "bob")["online"], false, "{peers:#}");

    // Bob comes back with the same identity.
    watch.mark();
    bob.restart();
    let joined = watch.wait_for("bob joined again", events::peer_joined("bob"), DEADLINE);
    assert_eq!(
        joined["peer"]["id"],
        bob_id.as_str(),
        "same key after restart"
    );

    // Bob is killed: alice sees him leave within the lease (the kernel closes his
    // connection, so it is usually at once).
    watch.mark();
    let killed = Instant::now();
    bob.kill();
    watch.wait_for(
        "bob left after SIGKILL",
        events::peer_left("bob"),
        Duration::from_secs(LEASE_SECS) + Duration::from_secs(2),
    );
    assert!(
        killed.elapsed() < Duration::from_secs(LEASE_SECS + 2),
        "took {:?}",
        killed.elapsed()
    );
    assert_eq!(alice.status()["peers_online"], 0);
    assert!(alice.proc.is_running());
}
