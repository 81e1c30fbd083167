//! Strangers cost little: peers alice only sees at the tracker stay in her memory, never in
//! her database, and a crowd of keys claiming a contact's name is reported once (one
//! `link_error` event, hence one activity-log line), not once per key.

use p2p_tests::chat::{self, history, texts};
use p2p_tests::raw;
use p2p_tests::raw_peer::RawPeer;
use p2p_tests::transfer::register_raw;
use p2p_tests::{DEADLINE, TestNet, events};
use proto::peer::{PeerFrame, Refusal};

#[tokio::test]
async fn peers_seen_only_at_the_tracker_are_not_pinned() {
    let net = TestNet::new();
    let mut p = chat::pair(&net);
    let mut strangers = Vec::new();
    for n in 0..20 {
        let key = raw::random_key();
        strangers.push(register_raw(&p.tracker, &key, &format!("stranger{n}")).await);
    }
    p.alice.wait_peer("stranger19", true, DEADLINE);
    // Alice writes to one of them: that one she has dealt with.
    chat::send(&p.alice, "stranger3", "hello");
    drop(strangers);
    p.alice.wait_peer("stranger19", false, DEADLINE);

    // After a restart, alice knows bob (online at the tracker) and stranger3 (pinned, with
    // its queued message), and none of the others.
    p.alice.restart();
    p.alice.wait_peer("bob", true, DEADLINE);
    let peers = p.alice.peers();
    let mut names: Vec<&str> = peers.iter().filter_map(|p| p["name"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["bob", "stranger3"], "{peers:#?}");
    assert_eq!(texts(&history(&p.alice, "stranger3"), "out"), ["hello"]);
}

#[tokio::test]
async fn many_keys_claiming_a_contacts_name_are_reported_once() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    net.ctl(&p.bob, &["msg", "alice", "hi"]).assert_success();
    let mut watch = net.watch(&p.alice);
    for _ in 0..10 {
        let (mut link, _) = RawPeer::hello(p.alice.listen, &raw::random_key(), "bob")
            .await
            .expect("TLS and Hello");
        match link.recv().await.expect("alice's answer") {
            Some(PeerFrame::Refused {
                reason: Refusal::KeyMismatch,
                ..
            }) => {}
            other => panic!("expected Refused(KeyMismatch), got {other:?}"),
        }
    }
    // Every refusal came before this message, and events keep their order.
    net.ctl(&p.bob, &["msg", "alice", "marker"])
        .assert_success();
    watch.wait_for("the marker", events::message_received("marker"), DEADLINE);
    let reports = watch
        .events()
        .iter()
        .filter(|e| e["type"] == "link_error" && e["peer"] == p.bob.id().as_str())
        .count();
    assert_eq!(reports, 1, "{:#?}", watch.events());
}
