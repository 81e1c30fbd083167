//! Several trackers: each is its own source with its own state, one going down changes
//! nothing for the peers another still sees, two binding one name to different keys make
//! the name ambiguous (nothing is sent by it), and p2pd runs with no tracker at all.

use p2p_tests::chat::{self, wait_delivered};
use p2p_tests::{DEADLINE, P2pd, TestNet};
use serde_json::{Value, json};

/// The tracker entries of `p`'s `status` sources.
fn trackers(p: &P2pd) -> Vec<Value> {
    let s = p.status();
    s["sources"]
        .as_array()
        .expect("status has sources")
        .iter()
        .filter(|s| s["kind"] == "tracker")
        .cloned()
        .collect()
}

/// `p`'s tracker entry for address `addr`.
fn tracker_at(p: &P2pd, addr: &str) -> Value {
    trackers(p)
        .into_iter()
        .find(|t| t["addr"] == addr)
        .unwrap_or_else(|| panic!("no tracker {addr} in {:#}", p.status()))
}

#[test]
fn with_two_trackers_one_down_changes_nothing_for_the_peers_the_other_sees() {
    let net = TestNet::new();
    let mut t1 = net.spawn_tracker(None);
    let t2 = net.spawn_tracker(None);
    let (a1, a2) = (t1.addr_string(), t2.addr_string());
    let alice = net.spawn_p2pd("alice", &a1, &["--tracker", &a2]);
    let bob = net.spawn_p2pd("bob", &a1, &["--tracker", &a2]);
    bob.wait_peer("alice", true, DEADLINE);
    // Both trackers registered, each seeing bob, each with its own pinned key.
    alice.wait_until("both trackers see bob", DEADLINE, |_| {
        let ts = trackers(&alice);
        (ts.len() == 2
            && ts
                .iter()
                .all(|t| t["state"] == "registered" && t["peers"] == 1))
        .then_some(())
    });
    assert_eq!(tracker_at(&alice, &a1)["key"], json!(t1.key));
    assert_eq!(tracker_at(&alice, &a2)["key"], json!(t2.key));
    assert_eq!(
        alice.status()["tracker"]["addr"],
        json!(a1),
        "the first one"
    );
    let pins = std::fs::read_to_string(alice.state_dir.join("tracker-pins")).expect("pins");
    assert!(pins.contains(&format!("{a1} {}", t1.key)), "{pins}");
    assert!(pins.contains(&format!("{a2} {}", t2.key)), "{pins}");
    let peer = alice.wait_peer("bob", true, DEADLINE);
    assert_eq!(peer["sources"], json!(["tracker"]), "{peer}");
    assert_eq!(peer["trackers"], json!([a1, a2]), "{peer}");

    t1.proc.kill();
    alice.wait_until("tracker 1 down", DEADLINE, |_| {
        (tracker_at(&alice, &a1)["state"] == "down").then_some(())
    });
    let down = tracker_at(&alice, &a1);
    assert_eq!(down["peers"], 0, "{down}");
    let up = tracker_at(&alice, &a2);
    assert_eq!(
        (up["state"].as_str(), up["peers"].as_u64()),
        (Some("registered"), Some(1))
    );
    let peer = alice.wait_peer("bob", true, DEADLINE);
    assert_eq!(
        peer["trackers"],
        json!([a2]),
        "only tracker 2 sees bob now: {peer}"
    );
    // Chat goes on.
    chat::send(&alice, "bob", "still here");
    wait_delivered(&alice, "bob", 1, DEADLINE);
    let out = net.ctl(&alice, &["status"]);
    out.assert_success();
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.split_whitespace().next() == Some("tracker"))
        .filter(|l| !l.starts_with("tracker key") && !l.starts_with("tracker detail"))
        .collect();
    assert_eq!(lines.len(), 2, "one line per tracker:\n{out}");
    assert!(
        lines.iter().any(|l| l.contains(&a1) && l.contains("down")),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&a2) && l.contains("registered")),
        "{out}"
    );
}

#[test]
fn a_name_two_trackers_bind_to_different_keys_is_ambiguous_until_named_by_key() {
    let net = TestNet::new();
    let t1 = net.spawn_tracker(None);
    let t2 = net.spawn_tracker(None);
    let (a1, a2) = (t1.addr_string(), t2.addr_string());
    let alice = net.spawn_p2pd("alice", &a1, &["--tracker", &a2]);
    let bob = net.spawn_p2pd("bob", &a1, &[]);
    let other_bob = net.spawn_p2pd("bob", &a2, &[]);
    let (b1, b2) = (bob.id(), other_bob.id());
    alice.wait_until("both bobs listed", DEADLINE, |rpc| {
        let peers = rpc.call("peers", json!({}));
        let bobs = peers
            .as_array()?
            .iter()
            .filter(|p| p["name"] == "bob")
            .count();
        (bobs == 2).then_some(())
    });
    let peers = alice.peers();
    for (me, other, by) in [(&b1, &b2, &a1), (&b2, &b1, &a2)] {
        let p = peers.iter().find(|p| p["id"] == json!(me)).expect("listed");
        assert_eq!(p["same_name"], json!([other]), "{p}");
        assert_eq!(p["trackers"], json!([by]), "{p}");
    }
    let out = net.ctl(&alice, &["peers"]);
    out.assert_success();
    assert!(out.stdout.contains("AMBIGUOUS"), "{out}");

    // By name: refused, naming both keys and which tracker binds each.
    let out = net.ctl(&alice, &["msg", "bob", "hi"]);
    assert!(!out.status.success(), "{out}");
    for want in [&b1, &b2, &a1, &a2] {
        assert!(out.stderr.contains(want.as_str()), "{want} in:\n{out}");
    }
    let resp = alice
        .rpc()
        .request("send_message", json!({"peer": "bob", "text": "hi"}));
    let msg = resp["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("ambiguous") && msg.contains(&a2), "{resp}");
    // By key prefix: sent to that key only.
    let prefix = &b2[..12];
    net.ctl(&alice, &["msg", prefix, "hello other bob"])
        .assert_success();
    wait_delivered(&alice, prefix, 1, DEADLINE);
    chat::wait_history(&other_bob, "alice", "the message in", DEADLINE, |h| {
        (chat::texts(h, "in") == ["hello other bob"]).then_some(())
    });
    assert!(chat::history(&bob, "alice").is_empty());
}

#[test]
fn p2pd_runs_with_no_tracker_and_says_so() {
    let net = TestNet::new();
    let alice = net.p2pd("alice").no_tracker().spawn();
    let s = alice.status();
    assert!(s.get("tracker").is_none(), "{s:#}");
    let kinds: Vec<&Value> = s["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|s| &s["kind"])
        .collect();
    assert!(!kinds.contains(&&json!("tracker")), "{s:#}");
    let out = net.ctl(&alice, &["status"]);
    out.assert_success();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("tracker ") && l.contains("none configured")),
        "{out}"
    );
}
