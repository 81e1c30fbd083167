//! No message is lost or doubled by a peer being away or a daemon dying: messages to an
//! offline peer wait in the sender's outbox across its restart (SIGTERM) and its death
//! (SIGKILL right after `msg` returned) and arrive once each, in order, when the peer is back;
//! and a message the receiver acknowledged survives the receiver's SIGKILL, even when killed
//! in the middle of a stream.

use std::collections::HashSet;
use std::time::Duration;

use p2p_tests::chat::{self, assert_unique_ids, history, texts, wait_delivered};
use p2p_tests::{DEADLINE, TestNet};
use serde_json::Value;

/// Ids of the messages in `h` that went `direction`, in order.
fn ids(h: &[Value], direction: &str) -> Vec<String> {
    h.iter()
        .filter(|m| m["direction"] == direction)
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Checks the receiver got exactly what the sender sent, once each, in the sender's order,
/// with the sender's ids and seqs.
#[track_caller]
fn assert_same_conversation(sent: &[Value], got: &[Value]) {
    assert_unique_ids(got);
    assert_eq!(
        ids(got, "in"),
        ids(sent, "out"),
        "ids received (left) vs sent (right)"
    );
    assert_eq!(texts(got, "in"), texts(sent, "out"));
    let seqs: Vec<&Value> = got
        .iter()
        .filter(|m| m["direction"] == "in")
        .map(|m| &m["seq"])
        .collect();
    let want: Vec<&Value> = sent
        .iter()
        .filter(|m| m["direction"] == "out")
        .map(|m| &m["seq"])
        .collect();
    assert_eq!(seqs, want, "seqs received vs sent");
}

#[test]
fn the_outbox_survives_a_sender_restart_and_delivers_once_in_order() {
    let net = TestNet::new();
    let mut p = chat::pair(&net);
    p.bob.stop();
    p.alice.wait_peer("bob", false, DEADLINE);

    for text in ["one", "two", "three"] {
        let out = net.ctl(&p.alice, &["msg", "bob", text]);
        out.assert_success();
        assert!(
            out.stdout.starts_with("queued for bob (offline)"),
            "msg says it is queued: {out}"
        );
    }
    let queued = history(&p.alice, "bob");
    assert_eq!(texts(&queued, "out"), ["one", "two", "three"]);
    assert!(queued.iter().all(|m| m["state"] == "queued"), "{queued:#?}");

    // Alice restarts (SIGTERM, same state directory): the outbox is still there.
    assert!(p.alice.stop().success());
    p.alice.restart();
    assert_eq!(
        history(&p.alice, "bob"),
        queued,
        "the outbox survived the restart"
    );

    // Bob comes back: everything arrives, once, in order; alice sees it delivered.
    p.bob.restart();
    let sent = wait_delivered(&p.alice, "bob", 3, DEADLINE);
    let got = history(&p.bob, "alice");
    assert_same_conversation(&sent, &got);
    assert_eq!(texts(&got, "in"), ["one", "two", "three"]);
    assert!(got.iter().all(|m| m["state"] == "received"), "{got:#?}");
    let out = net.ctl(&p.alice, &["history", "bob"]);
    assert_eq!(out.stdout.matches("[delivered]").count(), 3, "{out}");

    // Bob restarts too: still exactly three, and alice does not send them again.
    p.bob.restart();
    p.alice.wait_peer("bob", true, DEADLINE);
    net.ctl(&p.alice, &["msg", "bob", "four"]).assert_success();
    let got = history(&p.bob, "alice");
    assert_eq!(texts(&got, "in"), ["one", "two", "three", "four"]);
    assert_unique_ids(&got);
}

#[test]
fn a_sender_killed_right_after_msg_still_delivers_exactly_once() {
    let net = TestNet::new();
    let mut p = chat::pair(&net);
    p.bob.stop();
    p.alice.wait_peer("bob", false, DEADLINE);
    net.ctl(&p.alice, &["msg", "bob", "first"]).assert_success();
    let out = net.ctl(&p.alice, &["msg", "bob", "last words"]);
    out.assert_success();
    assert!(out.stdout.starts_with("queued for bob"), "{out}");
    // SIGKILL at once: whatever `msg` answered must already be on disk.
    p.alice.kill();

    p.alice.restart();
    p.bob.restart();
    let sent = wait_delivered(&p.alice, "bob", 2, DEADLINE);
    let got = history(&p.bob, "alice");
    assert_same_conversation(&sent, &got);
    assert_eq!(texts(&got, "in"), ["first", "last words"]);
}

#[test]
fn acknowledged_messages_survive_the_receivers_sigkill() {
    const N: usize = 20;
    let net = TestNet::new();
    let mut p = chat::pair(&net);
    let lines: String = (1..=N).map(|i| format!("acked {i}\n")).collect();
    let out = net.ctl_with_input(&p.alice, &["chat", "bob"], lines.as_bytes(), DEADLINE);
    out.assert_success();
    assert!(
        out.stderr.contains(&format!("{N} delivered, 0 queued")),
        "{out}"
    );
    // Delivered = acknowledged = stored by bob. Kill him without warning.
    let sent = wait_delivered(&p.alice, "bob", N, DEADLINE);
    p.bob.kill();
    p.bob.restart();
    let got = history(&p.bob, "alice");
    assert_same_conversation(&sent, &got);
}

#[test]
fn a_receiver_killed_mid_stream_loses_nothing_acknowledged_and_gets_the_rest_once() {
    const N: usize = 600;
    const KILL_AFTER: usize = 50;
    let net = TestNet::new();
    let mut p = chat::pair(&net);
    // Alice queues N messages as fast as the control socket takes them, on another thread;
    // bob stores them as they come, and is killed once he has some, while more are queued
    // and in flight.
    let mut rpc = p.alice.rpc();
    let sender = std::thread::spawn(move || {
        for i in 1..=N {
            let m = rpc.call(
                "send_message",
                serde_json::json!({"peer": "bob", "text": format!("stream {i}")}),
            );
            assert_eq!(m["seq"], i, "{m}");
        }
    });
    chat::wait_history(&p.bob, "alice", "some messages stored", DEADLINE, |h| {
        (h.len() >= KILL_AFTER).then_some(())
    });
    p.bob.kill();
    // Everything alice holds as delivered now was acknowledged by bob before he died.
    let acked: HashSet<String> = history(&p.alice, "bob")
        .iter()
        .filter(|m| m["state"] == "delivered")
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect();
    assert!(
        !acked.is_empty(),
        "nothing was acknowledged before the kill"
    );

    p.bob.restart();
    let stored: HashSet<String> = ids(&history(&p.bob, "alice"), "in").into_iter().collect();
    let lost: Vec<&String> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged messages lost by bob's SIGKILL: {lost:?}",
        lost.len()
    );
    sender.join().expect("alice queued every message");

    // The rest follows, once each, in order.
    let sent = wait_delivered(&p.alice, "bob", N, Duration::from_secs(30));
    let got = history(&p.bob, "alice");
    assert_same_conversation(&sent, &got);
}
