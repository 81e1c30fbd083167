//! p2pd on tracker protocol version 3 in a network larger than `tracker-subscribe-max`: it
//! watches its contacts instead of taking every change, and looks a name up on the tracker
//! when the user names a peer it does not know.

use p2p_tests::{DEADLINE, TestNet};

fn listed(peers: &[serde_json::Value], name: &str) -> bool {
    peers.iter().any(|p| p["name"] == name)
}

#[test]
fn past_the_subscribe_size_p2pd_watches_its_contacts_and_looks_names_up() {
    let net = TestNet::new();
    let tracker = net.spawn_tracker(None);
    let alice = net.spawn_p2pd("alice", &tracker.addr_string(), &[]);
    let mut bob = net.spawn_p2pd("bob", &tracker.addr_string(), &[]);
    alice.wait_peer("bob", true, DEADLINE);

    // Three live peers (alice, bob, carol) against a size of 2: carol takes no full list.
    let config = net.write_file("carol.toml", "[limits]\ntracker-subscribe-max = 2\n");
    let mut carol = net
        .p2pd("carol")
        .tracker(&tracker.addr_string())
        .args(["--config".as_ref(), config.as_os_str()])
        .spawn();
    carol
        .proc
        .wait_stderr_line("watching the contacts only", DEADLINE);
    let peers = carol.peers();
    assert!(
        !listed(&peers, "alice") && !listed(&peers, "bob"),
        "carol lists peers she never asked about: {peers:?}"
    );

    // Naming bob looks him up; he is then listed, and watched.
    net.ctl(&carol, &["trust", "bob"]).assert_success();
    carol.wait_peer("bob", true, DEADLINE);
    // A name no live peer holds is still unknown once the tracker has answered.
    net.ctl(&carol, &["trust", "nobody"]).assert_code(1);

    // Bob's leaving reaches carol through her watch; alice, never named, stays unlisted.
    bob.stop();
    carol.wait_peer("bob", false, DEADLINE);
    let peers = carol.peers();
    assert!(!listed(&peers, "alice"), "alice listed: {peers:?}");
}
