//! Losing the tracker is survivable: when it stops, peers report the link as connecting and
//! each other as offline; when it comes back on the same address with the same state, they
//! re-register by themselves and see each other again.

use p2p_tests::{DEADLINE, TestNet, events};

#[test]
fn peers_reregister_after_the_tracker_restarts() {
    let net = TestNet::new();
    let mut tracker = net.spawn_tracker(None);
    let alice = net.spawn_p2pd("alice", &tracker.addr_string(), &[]);
    let bob = net.spawn_p2pd("bob", &tracker.addr_string(), &[]);
    let bob_id = bob.id();
    alice.wait_peer("bob", true, DEADLINE);
    let mut watch = net.watch(&alice);

    // The tracker stops gracefully.
    watch.mark();
    let status = tracker.stop();
    assert!(
        status.success(),
        "trackerd exits 0 on SIGTERM, got {status}"
    );
    watch.wait_for(
        "tracker connecting",
        events::tracker_state("connecting"),
        DEADLINE,
    );
    watch.wait_for("bob offline", events::peer_left("bob"), DEADLINE);
    let s = alice.status();
    assert_eq!(s["tracker"]["state"], "connecting", "{s:#}");
    assert!(
        s["tracker"]["detail"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "the status says why: {s:#}"
    );
    assert_eq!(s["peers_online"], 0, "{s:#}");
    let peers = net
        .ctl(&alice, &["--json", "peers"])
        .assert_success()
        .json();
    assert_eq!(peers[0]["name"], "bob", "{peers:#}");
    assert_eq!(peers[0]["online"], false, "{peers:#}");

    // Same port, same state directory (same key, same name bindings).
    watch.mark();
    tracker.restart();
    let ev = watch.wait_for(
        "tracker registered again",
        events::tracker_state("registered"),
        DEADLINE,
    );
    assert_eq!(ev["tracker"]["key"], tracker.key.as_str(), "{ev}");
    let ev = watch.wait_for("bob back", events::peer_joined("bob"), DEADLINE);
    assert_eq!(ev["peer"]["id"], bob_id.as_str(), "{ev}");
    bob.wait_tracker_state("registered", DEADLINE);
    bob.wait_peer("alice", true, DEADLINE);
    let s = alice.status();
    assert_eq!(s["tracker"]["state"], "registered", "{s:#}");
    assert_eq!(s["tracker"]["detail"], serde_json::Value::Null, "{s:#}");
    assert_eq!(s["peers_online"], 1, "{s:#}");
}
