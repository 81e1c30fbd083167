//! Planned key rotation end to end: `p2pctl rekey` makes a new key and restarts the daemon
//! with it; the tracker moves the name on the old key's statement; a peer that pinned the old
//! key follows the new one by itself (trust kept, queued messages moved), and only when the
//! tracker's chain of statements leads from the pinned key to the key shown. With the tracker
//! down the statement waits in the state directory and is used when it returns. The tracker
//! keeps each name's chain across restarts and serves it to registered peers only.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use p2p_tests::chat::{self, Pair, history, texts};
use p2p_tests::raw::{self, Client};
use p2p_tests::transfer::register_raw;
use p2p_tests::{DEADLINE, P2pd, TestNet};
use proto::tracker::{Handover, PeerMsg, Refusal, SignedHandover, TrackerMsg};
use proto::{PeerName, SecretKey};
use serde_json::{Value, json};

/// Generous: a rotation takes a daemon restart and a tracker round trip on a loaded machine.
const LONG: Duration = Duration::from_secs(30);

/// A pair that trust each other's messages: alice trusts bob, and one message went each way.
fn acquainted(net: &TestNet) -> Pair {
    let p = chat::pair(net);
    net.ctl(&p.alice, &["trust", "bob"]).assert_success();
    chat::send(&p.alice, "bob", "before");
    chat::wait_delivered(&p.alice, "bob", 1, LONG);
    chat::send(&p.bob, "alice", "before, from bob");
    chat::wait_delivered(&p.bob, "alice", 1, LONG);
    p
}

/// `old`'s statement handing `name` to `new`.
fn hand(name: &str, old: &SecretKey, new: &SecretKey, seq: u64) -> SignedHandover {
    Handover {
        name: PeerName::new(name).expect("name"),
        old_key: old.peer_id(),
        new_key: new.peer_id(),
        seq,
    }
    .sign(old)
}

fn key_in(path: &Path) -> SecretKey {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    SecretKey::from_seed_slice(&bytes).expect("a key file holds a key")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Waits until `p` lists `name` under `id`, online; returns the entry.
#[track_caller]
fn wait_listed(p: &P2pd, name: &str, id: &str) -> Value {
    p.wait_until(&format!("{name} listed as {id}"), LONG, |rpc| {
        let peers = rpc.call("peers", json!({}));
        peers
            .as_array()?
            .iter()
            .find(|e| e["name"] == name && e["id"] == id && e["online"] == true)
            .cloned()
    })
}

/// Waits for bob's daemon to come back from the in-process restart.
fn wait_restarted(bob: &mut P2pd) {
    bob.proc.wait_line("control socket ", LONG);
}

/// Waits until bob's tracker accepted the handover; the pending statement is then gone.
fn wait_accepted(bob: &P2pd) {
    bob.wait_activity("the tracker accepting the handover", 1, LONG, |l| {
        l.contains("rekey") && l.contains("accepted")
    });
    assert!(!bob.state_dir.join("rekey.pending").exists());
}

/// The old key cannot register the name any more: the tracker binds it to the new key.
async fn assert_old_key_refused(addr: std::net::SocketAddr, old: &SecretKey) {
    let mut c = Client::connect(addr, old).await.expect("connect");
    let answer = c.register(raw::signed(old, "bob", u64::MAX - 1)).await;
    assert!(
        matches!(
            answer,
            TrackerMsg::Refused {
                reason: Refusal::NameTaken,
                ..
            }
        ),
        "the old key registered bob again: {answer:?}"
    );
}

#[tokio::test]
async fn a_pinned_peer_follows_a_rotated_key_and_keeps_its_trust() {
    let net = TestNet::new();
    let mut p = acquainted(&net);
    let old_id = p.bob.id();

    let out = net.ctl(&p.bob, &["--json", "rekey"]);
    out.assert_success();
    let r: Value = serde_json::from_str(&out.stdout).expect("rekey --json prints JSON");
    assert_eq!(r["old_key"], old_id.as_str(), "{r}");
    let new_id = r["new_key"].as_str().expect("a new key").to_owned();
    assert_ne!(new_id, old_id);
    wait_restarted(&mut p.bob);
    assert_eq!(p.bob.id(), new_id);
    let (key, old_key) = (
        p.bob.state_dir.join("identity.key"),
        p.bob.state_dir.join("identity.key.old"),
    );
    assert_eq!(key_in(&key).peer_id().to_string(), new_id);
    assert_eq!(key_in(&old_key).peer_id().to_string(), old_id);
    assert_eq!((mode(&key), mode(&old_key)), (0o600, 0o600));

    // Alice, without doing anything, lists bob under the new key: trusted, no conflict.
    let bob = wait_listed(&p.alice, "bob", &new_id);
    assert_eq!(bob["trusted"], true, "{bob}");
    assert!(bob["key_conflict"].is_null(), "{bob}");
    let peers = p.alice.peers();
    assert!(
        peers.iter().all(|e| e["id"] != old_id.as_str()),
        "the old key is still listed: {peers:#?}"
    );
    p.alice
        .wait_activity("following the rotation", 1, LONG, |l| {
            l.contains("key-rotated")
        });
    wait_accepted(&p.bob);

    // Messages flow both ways with the new key.
    chat::send(&p.alice, "bob", "after");
    chat::wait_delivered(&p.alice, "bob", 2, LONG);
    chat::send(&p.bob, "alice", "after, from bob");
    chat::wait_delivered(&p.bob, "alice", 2, LONG);
    assert_eq!(texts(&history(&p.bob, "alice"), "in"), ["before", "after"]);

    assert_old_key_refused(p.tracker.addr, &key_in(&old_key)).await;
}

#[tokio::test]
async fn with_the_tracker_down_the_statement_waits_and_queued_messages_follow() {
    let net = TestNet::new();
    let mut p = acquainted(&net);
    let old_id = p.bob.id();
    p.tracker.stop();
    p.bob.wait_tracker_state("connecting", LONG);

    let out = net.ctl(&p.bob, &["rekey"]);
    out.assert_success();
    assert!(out.stdout.contains(&old_id), "{}", out.stdout);
    let new_id = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("new key: "))
        .expect("the new key is printed")
        .trim()
        .to_owned();
    wait_restarted(&mut p.bob);
    assert_eq!(p.bob.id(), new_id);
    assert!(p.bob.state_dir.join("rekey.pending").exists());
    // One rotation at a time.
    let again = net.ctl(&p.bob, &["rekey"]);
    again.assert_code(1);
    assert!(again.stderr.contains("pending"), "{}", again.stderr);
    assert_eq!(p.bob.id(), new_id);

    // Alice writes to bob meanwhile: queued under the key she pinned.
    p.alice.wait_peer("bob", false, LONG);
    chat::send(&p.alice, "bob", "while the tracker was down");

    p.tracker.restart();
    wait_accepted(&p.bob);
    let bob = wait_listed(&p.alice, "bob", &new_id);
    assert_eq!(bob["trusted"], true, "{bob}");
    assert!(bob["key_conflict"].is_null(), "{bob}");
    let h = chat::wait_delivered(&p.alice, "bob", 2, LONG);
    chat::assert_unique_ids(&h);
    // The queued message reached the new bob, once.
    let got = chat::wait_history(&p.bob, "alice", "the queued message", LONG, |h| {
        let ins = texts(h, "in");
        (ins.len() >= 2).then_some(ins)
    });
    assert_eq!(got, ["before", "while the tracker was down"]);
    chat::send(&p.bob, "alice", "back");
    chat::wait_delivered(&p.bob, "alice", 2, LONG);
    assert_old_key_refused(
        p.tracker.addr,
        &key_in(&p.bob.state_dir.join("identity.key.old")),
    )
    .await;
}

#[tokio::test]
async fn a_chain_that_does_not_start_at_the_pinned_key_is_not_followed() {
    let net = TestNet::new();
    let tracker = net.spawn_tracker(None);
    let alice = net.spawn_p2pd("alice", &tracker.addr_string(), &[]);
    // The bob alice knows: pinned when she writes to him.
    let real = raw::random_key();
    let real_conn = register_raw(&tracker, &real, "bob").await;
    alice.wait_peer("bob", true, LONG);
    chat::send(&alice, "bob", "hello");
    net.ctl(&alice, &["trust", "bob"]).assert_success();

    // The operator frees the name; another key takes it and hands it on with a statement
    // that the tracker accepts (signed by the key holding the name, not by the pinned one).
    let mut cmd = net.command("trackerd");
    cmd.arg("release")
        .arg("--state-dir")
        .arg(&tracker.state_dir)
        .arg("bob");
    p2p_tests::run_with_timeout(cmd, DEADLINE).assert_success();
    drop(real_conn);
    let (other, next) = (raw::random_key(), raw::random_key());
    let _other_conn = register_raw(&tracker, &other, "bob").await;
    let mut c = Client::connect(tracker.addr, &next).await.expect("connect");
    c.send(&PeerMsg::RegisterHandover {
        record: raw::signed(&next, "bob", 1),
        statement: hand("bob", &other, &next, 10),
    })
    .await;
    let answer = c.recv().await;
    assert!(
        matches!(answer, TrackerMsg::Registered { .. }),
        "{answer:?}"
    );

    // Alice asked for the chain, found it does not start at her pin, and keeps the conflict.
    let next_id = next.peer_id().to_string();
    alice.wait_activity("refusing the chain", 1, LONG, |l| {
        l.contains("key-rotation-refused") && l.contains(&next.peer_id().short())
    });
    let bob = alice.wait_until("bob's conflict with the last key", LONG, |rpc| {
        let peers = rpc.call("peers", json!({}));
        peers
            .as_array()?
            .iter()
            .find(|e| e["name"] == "bob" && e["key_conflict"] == next_id.as_str())
            .cloned()
    });
    assert_eq!(bob["id"], real.peer_id().to_string(), "{bob}");
    assert_eq!(bob["trusted"], true, "{bob}");
    assert!(
        alice.peers().iter().all(|e| e["id"] != next_id.as_str()),
        "the unproven key is listed"
    );
    assert_eq!(texts(&history(&alice, "bob"), "out"), ["hello"]);
}

#[tokio::test]
async fn the_tracker_serves_each_names_chain_after_a_restart_and_only_to_registered_peers() {
    let net = TestNet::new();
    let mut tracker = net.spawn_tracker(None);
    let keys: Vec<SecretKey> = (0..3).map(|_| raw::random_key()).collect();
    let name = PeerName::new("rotating").expect("name");
    let statement = |i: usize| hand("rotating", &keys[i], &keys[i + 1], 100 + i as u64);
    let mut asker = Client::connect(tracker.addr, &raw::random_key())
        .await
        .expect("connect");
    asker
        .send(&PeerMsg::GetHandovers { name: name.clone() })
        .await;
    assert!(
        matches!(
            asker.recv().await,
            TrackerMsg::Refused {
                reason: Refusal::NotRegistered,
                ..
            }
        ),
        "a chain for a peer that did not register"
    );
    let _first = register_raw(&tracker, &keys[0], "rotating").await;
    for i in 0..2 {
        let mut c = Client::connect(tracker.addr, &keys[i + 1])
            .await
            .expect("connect");
        c.send(&PeerMsg::RegisterHandover {
            record: raw::signed(&keys[i + 1], "rotating", 1),
            statement: statement(i),
        })
        .await;
        let answer = c.recv().await;
        assert!(
            matches!(answer, TrackerMsg::Registered { .. }),
            "{answer:?}"
        );
    }
    drop(asker);
    tracker.restart();
    let mut asker = register_raw(&tracker, &raw::random_key(), "asker").await;
    for (asked, want) in [
        (name.clone(), vec![statement(0), statement(1)]),
        (PeerName::new("asker").expect("name"), vec![]),
    ] {
        asker
            .send(&PeerMsg::GetHandovers {
                name: asked.clone(),
            })
            .await;
        match asker.recv().await {
            TrackerMsg::Handovers { name, chain } => {
                assert_eq!(name, asked);
                assert_eq!(chain, want);
            }
            other => panic!("expected Handovers, got {other:?}"),
        }
    }
}
