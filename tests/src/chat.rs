//! Chat helpers: a tracker with two daemons that see each other, conversations read back
//! through the control socket, and waits on message states (re-checked on every event).

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::{DEADLINE, P2pd, TestNet, Tracker};

/// A tracker and two daemons, `alice` and `bob`, registered, each listing the other online.
/// Fields drop in order: the daemons first, then the tracker.
#[derive(Debug)]
pub struct Pair {
    /// alice.
    pub alice: P2pd,
    /// bob.
    pub bob: P2pd,
    /// Their tracker.
    pub tracker: Tracker,
}

/// Starts a [`Pair`] in `net`; returns once each daemon lists the other online.
pub fn pair(net: &TestNet) -> Pair {
    pair_with(net, &[])
}

/// [`pair`], with `alice_args` added to alice's command line (such as `--config FILE`).
pub fn pair_with(net: &TestNet, alice_args: &[&str]) -> Pair {
    let tracker = net.spawn_tracker(None);
    let alice = net.spawn_p2pd("alice", &tracker.addr_string(), alice_args);
    let bob = net.spawn_p2pd("bob", &tracker.addr_string(), &[]);
    alice.wait_peer("bob", true, DEADLINE);
    bob.wait_peer("alice", true, DEADLINE);
    Pair {
        alice,
        bob,
        tracker,
    }
}

/// The whole conversation of `p` with `peer`, oldest first, through the `history` method.
#[track_caller]
pub fn history(p: &P2pd, peer: &str) -> Vec<Value> {
    as_list(
        p.rpc()
            .call("history", json!({"peer": peer, "limit": 100_000})),
    )
}

fn as_list(v: Value) -> Vec<Value> {
    match v {
        Value::Array(list) => list,
        other => panic!("history is not an array: {other}"),
    }
}

/// The texts of the messages in `h` that went `direction` (`in` or `out`), in order.
pub fn texts(h: &[Value], direction: &str) -> Vec<String> {
    h.iter()
        .filter(|m| m["direction"] == direction)
        .map(|m| m["text"].as_str().expect("a message has a text").to_owned())
        .collect()
}

/// Sends `text` to `peer` through the `send_message` method; returns the stored message.
#[track_caller]
pub fn send(p: &P2pd, peer: &str, text: &str) -> Value {
    let m = p
        .rpc()
        .call("send_message", json!({"peer": peer, "text": text}));
    assert_eq!(m["state"], "queued", "a new message is queued first: {m}");
    m
}

/// Waits until `check` accepts `p`'s conversation with `peer`, re-reading it on every event.
#[track_caller]
pub fn wait_history<T>(
    p: &P2pd,
    peer: &str,
    what: &str,
    timeout: Duration,
    mut check: impl FnMut(&[Value]) -> Option<T>,
) -> T {
    let params = json!({"peer": peer, "limit": 100_000});
    p.wait_until(what, timeout, |rpc| {
        check(&as_list(rpc.call("history", params.clone())))
    })
}

/// Waits until `p` has exactly `n` messages to `peer`, all delivered; returns the history.
#[track_caller]
pub fn wait_delivered(p: &P2pd, peer: &str, n: usize, timeout: Duration) -> Vec<Value> {
    let what = format!("{n} messages delivered to {peer}");
    wait_history(p, peer, &what, timeout, |h| {
        let out: Vec<&Value> = h.iter().filter(|m| m["direction"] == "out").collect();
        (out.len() == n && out.iter().all(|m| m["state"] == "delivered")).then(|| h.to_vec())
    })
}

/// Panics if two messages in `h` share an id.
#[track_caller]
pub fn assert_unique_ids(h: &[Value]) {
    let mut seen = HashSet::new();
    for m in h {
        let id = m["id"].as_str().expect("a message has an id");
        assert!(seen.insert(id.to_owned()), "message {id} listed twice: {m}");
    }
}
