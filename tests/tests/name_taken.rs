//! No name hijack and no replay at the tracker: a name belongs to the first key that
//! registers it; an old (or repeated) registration, one whose record key is not the TLS key,
//! or one with a forged signature is refused, and the rightful owner is unaffected.

use p2p_tests::raw::{self, Client};
use p2p_tests::{DEADLINE, TestNet, events};
use proto::tracker::{Refusal, TrackerMsg};

#[test]
fn a_second_key_cannot_take_a_registered_name() {
    let net = TestNet::new();
    let tracker = net.spawn_tracker(None);
    let mut alice = net.spawn_p2pd("alice", &tracker.addr_string(), &[]);
    alice.wait_tracker_state("registered", DEADLINE);
    let alice_id = alice.id();
    let bob = net.spawn_p2pd("bob", &tracker.addr_string(), &[]);
    bob.wait_peer("alice", true, DEADLINE);
    let mut bob_watch = net.watch(&bob);

    // Another daemon (its own state directory, so its own key) claims "alice".
    let impostor = net.spawn_p2pd("alice", &tracker.addr_string(), &[]);
    assert_ne!(impostor.id(), alice_id, "the impostor has its own key");
    let t = impostor.wait_tracker_state("refused", DEADLINE);
    let detail = t["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("taken"), "refusal detail: {t:#}");
    // p2pctl shows the same.
    let status = net
        .ctl(&impostor, &["--json", "status"])
        .assert_success()
        .json();
    assert_eq!(status["tracker"]["state"], "refused", "{status:#}");
    assert!(
        status["tracker"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("taken")),
        "{status:#}"
    );
    // Refused, it is not subscribed either: it knows no peers.
    assert_eq!(impostor.peers(), Vec::<serde_json::Value>::new());

    // The owner is unaffected: still registered, and bob still sees the real alice.
    let s = alice.status();
    assert_eq!(s["tracker"]["state"], "registered", "{s:#}");
    let a = bob.wait_peer("alice", true, DEADLINE);
    assert_eq!(a["id"], alice_id.as_str(), "{a}");
    // Bob never saw "alice" change hands or go away. (A late `peer_joined` for the real
    // alice may show up: p2pd updates its table before it publishes the event.)
    let seen = bob_watch.events().to_vec();
    assert!(
        !seen.iter().any(|e| e["peer"]["name"] == "alice"
            && (e["peer"]["id"] != alice_id.as_str() || e["type"] != "peer_joined")),
        "bob saw something happen to alice: {seen:#?}"
    );
    assert!(alice.proc.is_running());

    // The owner keeps the name across its own restart.
    bob_watch.mark();
    alice.restart();
    let t = alice.wait_tracker_state("registered", DEADLINE);
    assert_eq!(t["detail"], serde_json::Value::Null, "{t:#}");
    bob_watch.wait_for("alice back", events::peer_joined("alice"), DEADLINE);
}

fn refusal(msg: TrackerMsg) -> Refusal {
    match msg {
        TrackerMsg::Refused { reason, .. } => reason,
        other => panic!("expected Refused, got {other:?}"),
    }
}

#[tokio::test]
async fn replayed_mismatched_and_forged_registrations_are_refused() {
    let net = TestNet::new();
    let tracker = net.spawn_tracker(None);
    let addr = tracker.addr;
    let key = raw::random_key();

    let mut c = Client::connect(addr, &key).await.expect("connect");
    let rec5 = raw::signed(&key, "carol", 5);
    match c.register(rec5.clone()).await {
        TrackerMsg::Registered { entry } => {
            assert_eq!(
                entry.signed, rec5,
                "the tracker serves the record unchanged"
            );
            assert_eq!(entry.observed.to_string(), "127.0.0.1");
        }
        other => panic!("first registration refused: {other:?}"),
    }
    // The same record again, on the same connection.
    assert_eq!(refusal(c.register(rec5.clone()).await), Refusal::StaleSeq);
    // An older record.
    assert_eq!(
        refusal(c.register(raw::signed(&key, "carol", 4)).await),
        Refusal::StaleSeq
    );
    // The refusals did not end the session.
    c.ping(1).await;

    // The same record replayed from a fresh connection.
    let mut c2 = Client::connect(addr, &key).await.expect("connect");
    assert_eq!(refusal(c2.register(rec5.clone()).await), Refusal::StaleSeq);

    // A record for another key, correctly signed by that key, sent over our TLS key.
    let other = raw::random_key();
    assert_eq!(
        refusal(c2.register(raw::signed(&other, "dave", 1)).await),
        Refusal::KeyMismatch
    );
    // Our key in the record, but signed by another key.
    let forged = raw::record(&key, "carol", 6).sign(&other);
    assert_eq!(refusal(c2.register(forged).await), Refusal::BadSignature);
    // A valid record whose fields were changed after signing.
    let mut tampered = raw::signed(&key, "carol", 7);
    tampered.record.seq = 8;
    assert_eq!(refusal(c2.register(tampered).await), Refusal::BadSignature);

    // Another key claiming carol's name.
    let mut c3 = Client::connect(addr, &other).await.expect("connect");
    assert_eq!(
        refusal(c3.register(raw::signed(&other, "carol", 1)).await),
        Refusal::NameTaken
    );
    // None of this displaced carol's live connection.
    c.ping(2).await;
    // A higher seq from carol's key is still accepted.
    match c2.register(raw::signed(&key, "carol", 9)).await {
        TrackerMsg::Registered { .. } => {}
        other => panic!("a fresh registration was refused: {other:?}"),
    }
}

#[tokio::test]
async fn name_bindings_and_seqs_survive_a_tracker_restart() {
    let net = TestNet::new();
    let mut tracker = net.spawn_tracker(None);
    let (owner, thief) = (raw::random_key(), raw::random_key());
    let rec = raw::signed(&owner, "erin", 10);
    let mut c = Client::connect(tracker.addr, &owner)
        .await
        .expect("connect");
    assert!(matches!(
        c.register(rec.clone()).await,
        TrackerMsg::Registered { .. }
    ));
    drop(c);

    tracker.restart();
    let mut c = Client::connect(tracker.addr, &thief)
        .await
        .expect("connect");
    assert_eq!(
        refusal(c.register(raw::signed(&thief, "erin", 1)).await),
        Refusal::NameTaken,
        "the binding was forgotten"
    );
    let mut c = Client::connect(tracker.addr, &owner)
        .await
        .expect("connect");
    assert_eq!(
        refusal(c.register(rec).await),
        Refusal::StaleSeq,
        "the last seq was forgotten: an old record can be replayed"
    );
    assert!(matches!(
        c.register(raw::signed(&owner, "erin", 11)).await,
        TrackerMsg::Registered { .. }
    ));
}
