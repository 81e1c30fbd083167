//! Reach without the tracker, between real daemons each in its own host (a network namespace
//! of `p2p_tests::netns`) on one switch, LAN discovery off (`--no-lan`, the harness's
//! default), so what finds a peer is the tracker, the address book, a link or the DHT:
//!
//! - The tracker's host is cut off (its link down) while alice and bob chat: `status` shows
//!   the tracker down at both, and messages both ways are still delivered after the cut.
//! - bob moves to another host (a new address) while the tracker is gone: alice's message,
//!   queued while bob was away, reaches him through a local DHT testnet run on a host of
//!   the lab (`dht-testnet --bind HOSTADDR`); alice lists him with the `dht` source at his
//!   new address.
//!
//! Namespaces need root: elsewhere the tests print `skipped: REASON` and pass, except in CI
//! as root (`CI=true`), where a lab that cannot be made fails the test.

use std::time::Duration;

use p2p_tests::chat::{self, texts, wait_delivered, wait_history};
use p2p_tests::dht::DhtTestnet;
use p2p_tests::netns::{Host, Lab};
use p2p_tests::{DEADLINE, P2pd, TestNet, Tracker};
use serde_json::json;

/// A short lease, so a daemon notices a silent tracker within seconds.
const TRACKER_CONFIG: &str = "lease-secs = 3\n";
/// How long a daemon may take to call a silent tracker down on a loaded machine.
const TRACKER_DOWN: Duration = Duration::from_secs(60);

/// Starts `name` in `host`, listening on the host's address, registered at `tracker`.
fn spawn(net: &TestNet, name: &str, host: &Host, tracker: &Tracker, extra: &[String]) -> P2pd {
    net.p2pd(name)
        .tracker(&tracker.addr_string())
        .listen(&host.socket_addr(0).to_string())
        .prefix(host.prefix())
        .args(extra.iter().cloned())
        .spawn()
}

/// Waits until `p` has received `text` from `peer`.
#[track_caller]
fn wait_received(p: &P2pd, peer: &str, text: &str) {
    wait_history(p, peer, &format!("{text:?} received"), DEADLINE, |h| {
        texts(h, "in").iter().any(|t| t == text).then_some(())
    });
}

#[test]
fn peers_keep_chatting_when_the_tracker_host_is_cut_off() {
    let Some(mut lab) = Lab::or_skip(&[]) else {
        return;
    };
    let [t, a, b] = [lab.host("tracker"), lab.host("alice"), lab.host("bob")];
    let net = TestNet::new();
    let tracker = net.spawn_tracker_configured_via(t.prefix(), t.socket_addr(0), TRACKER_CONFIG);
    let alice = spawn(&net, "alice", &a, &tracker, &[]);
    let bob = spawn(&net, "bob", &b, &tracker, &[]);
    alice.wait_peer("bob", true, DEADLINE);
    bob.wait_peer("alice", true, DEADLINE);
    chat::send(&alice, "bob", "before the cut");
    wait_delivered(&alice, "bob", 1, DEADLINE);

    t.set_link(false);
    for p in [&alice, &bob] {
        p.wait_until("the tracker source down", TRACKER_DOWN, |rpc| {
            let s = rpc.call("status", json!({}));
            let sources = s["sources"].as_array()?;
            let tracker = sources.iter().find(|x| x["kind"] == "tracker")?;
            (tracker["state"] == "down").then_some(())
        });
    }
    let out = net.ctl(&alice, &["status"]);
    out.assert_success();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains(&tracker.addr_string()) && l.contains("down")),
        "{out}"
    );

    // Both ways, after the tracker is gone: the link, else the address book, carries them.
    chat::send(&alice, "bob", "after the cut, from alice");
    chat::send(&bob, "alice", "after the cut, from bob");
    wait_delivered(&alice, "bob", 2, DEADLINE);
    wait_delivered(&bob, "alice", 1, DEADLINE);
    wait_received(&bob, "alice", "after the cut, from alice");
    wait_received(&alice, "bob", "after the cut, from bob");
}

#[test]
fn a_peer_that_moved_with_the_tracker_gone_is_found_through_the_dht() {
    let Some(mut lab) = Lab::or_skip(&[]) else {
        return;
    };
    let [t, d, a, b, moved] = [
        lab.host("tracker"),
        lab.host("dht"),
        lab.host("alice"),
        lab.host("bob"),
        lab.host("bob-moved"),
    ];
    let net = TestNet::new();
    let dht = DhtTestnet::start_via(&net, 12, &d.prefix(), d.addr);
    let dht_args = dht.p2pd_args();
    let tracker = net.spawn_tracker_configured_via(t.prefix(), t.socket_addr(0), TRACKER_CONFIG);
    let alice = spawn(&net, "alice", &a, &tracker, &dht_args);
    let mut bob = spawn(&net, "bob", &b, &tracker, &dht_args);
    alice.wait_peer("bob", true, DEADLINE);
    chat::send(&alice, "bob", "hello");
    wait_delivered(&alice, "bob", 1, DEADLINE);

    // The tracker's host goes off the network; bob leaves his and starts on another one.
    t.set_link(false);
    bob.stop();
    let gone = alice.wait_peer("bob", false, TRACKER_DOWN);
    assert_eq!(gone["sources"], json!(["book"]), "{gone:#}");
    let mut bob = net
        .p2pd("bob")
        .tracker(&tracker.addr_string())
        .state_dir(&bob.state_dir)
        .socket(&bob.socket)
        .listen(&moved.socket_addr(0).to_string())
        .prefix(moved.prefix())
        .args(dht_args.iter().cloned())
        .spawn();
    bob.proc
        .wait_stderr_line("DHT: record published", 3 * DEADLINE);

    // Queued: the book's address is dead, the DHT gives the new one.
    let m = chat::send(&alice, "bob", "found you");
    assert_eq!(m["state"], "queued", "{m:#}");
    wait_delivered(&alice, "bob", 2, 3 * DEADLINE);
    wait_received(&bob, "alice", "found you");
    let entry = alice.wait_peer("bob", true, DEADLINE);
    let sources = entry["sources"].as_array().expect("sources");
    assert!(sources.contains(&json!("dht")), "{entry:#}");
    let now_at = moved.socket_addr(bob.listen.port()).to_string();
    assert!(
        entry["addrs"]
            .as_array()
            .expect("addrs")
            .contains(&json!(now_at)),
        "alice dials bob where he is now, {now_at}: {entry:#}"
    );
    bob.stop();
}
