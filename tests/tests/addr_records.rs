//! Signed address records through trackers: a tracker takes only the registered key's own,
//! validly signed, unexpired record and serves it unchanged; a peer's addresses come from the
//! highest seq seen across trackers, so a tracker serving an older record changes nothing.

use std::net::SocketAddr;

use p2p_tests::raw::{Client, random_key};
use p2p_tests::{DEADLINE, P2pd, TestNet, Tracker};
use proto::addr_record::{AddrRecord, SignedAddrRecord};
use proto::tracker::{PeerMsg, Record, Refusal, TrackerMsg};
use proto::{PeerName, SecretKey};
use serde_json::{Value, json};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn addr_record(key: &SecretKey, seq: u64, addr: SocketAddr, expiry: u64) -> SignedAddrRecord {
    AddrRecord {
        key: key.peer_id(),
        seq,
        addrs: vec![addr],
        expiry,
    }
    .sign(key)
}

/// A current-version client registered at `tracker` as `name` with `seq` and `addr`.
async fn register(
    tracker: &Tracker,
    key: &SecretKey,
    name: &str,
    seq: u64,
    addr: SocketAddr,
) -> Client {
    let mut c = Client::connect_current(tracker.addr, key)
        .await
        .expect("connect to the tracker");
    let rec = Record {
        name: PeerName::new(name).expect("name"),
        key: key.peer_id(),
        addrs: vec![addr],
        seq,
    }
    .sign(key);
    match c.register(rec).await {
        TrackerMsg::Registered { .. } => c,
        other => panic!("the tracker refused {name}: {other:?}"),
    }
}

/// Sends an address record the tracker must refuse, and returns why.
async fn refused(c: &mut Client, rec: SignedAddrRecord) -> Refusal {
    c.send(&PeerMsg::AddrRecord(rec)).await;
    match c.recv().await {
        TrackerMsg::Refused { reason, .. } => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// `p`'s entry for the peer named `name`, once `check` accepts it.
fn wait_entry(p: &P2pd, name: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    p.wait_until(what, DEADLINE, |rpc| {
        let peers = rpc.call("peers", json!({}));
        peers
            .as_array()?
            .iter()
            .find(|e| e["name"] == name && check(e))
            .cloned()
    })
}

#[tokio::test]
async fn forged_records_are_refused_by_the_tracker_and_a_valid_one_is_served() {
    let net = TestNet::new();
    let tracker = net.spawn_tracker(None);
    let alice = net.spawn_p2pd("alice", &tracker.addr_string(), &[]);
    let mallory = random_key();
    let first: SocketAddr = "127.0.0.1:9".parse().expect("addr");
    let mut c = register(&tracker, &mallory, "mallory", 1, first).await;
    wait_entry(&alice, "mallory", "mallory listed", |e| {
        e["addrs"] == json!([first])
    });

    let forged: SocketAddr = "127.0.0.1:6666".parse().expect("addr");
    let later = now() + 3600;
    // Another key's record, validly signed by that key.
    let other = random_key();
    assert_eq!(
        refused(&mut c, addr_record(&other, 5, forged, later)).await,
        Refusal::KeyMismatch
    );
    // Mallory's key, signed by another.
    let mut bad = addr_record(&other, 5, forged, later);
    bad.record.key = mallory.peer_id();
    assert_eq!(refused(&mut c, bad).await, Refusal::BadSignature);
    // Expired, and too far ahead.
    assert_eq!(
        refused(&mut c, addr_record(&mallory, 5, forged, now() - 1)).await,
        Refusal::BadRecord
    );
    assert_eq!(
        refused(
            &mut c,
            addr_record(&mallory, 5, forged, now() + 30 * 24 * 3600)
        )
        .await,
        Refusal::BadRecord
    );
    // The connection is still served, and alice still has mallory at its registered address.
    c.ping(1).await;
    let entry = wait_entry(&alice, "mallory", "mallory listed", |_| true);
    assert_eq!(
        entry["addrs"],
        json!([first]),
        "nothing taken on a forgery's word: {entry}"
    );

    // A valid record of a higher seq moves mallory; a replay of a lower one is refused.
    let moved: SocketAddr = "127.0.0.1:7777".parse().expect("addr");
    c.send(&PeerMsg::AddrRecord(addr_record(&mallory, 6, moved, later)))
        .await;
    c.ping(2).await;
    wait_entry(&alice, "mallory", "mallory at the record's address", |e| {
        e["addrs"] == json!([moved])
    });
    assert_eq!(
        refused(&mut c, addr_record(&mallory, 6, forged, later)).await,
        Refusal::StaleSeq
    );
}

#[tokio::test]
async fn a_tracker_serving_an_older_seq_leaves_the_newer_addresses() {
    let net = TestNet::new();
    let t1 = net.spawn_tracker(None);
    let t2 = net.spawn_tracker(None);
    let (a1, a2) = (t1.addr_string(), t2.addr_string());
    let alice = net.spawn_p2pd("alice", &a1, &["--tracker", &a2]);
    let mallory = random_key();
    let later = now() + 3600;
    let (new, old): (SocketAddr, SocketAddr) = (
        "127.0.0.1:7100".parse().expect("addr"),
        "127.0.0.1:7200".parse().expect("addr"),
    );
    // Tracker 1 has the newer record (seq 10).
    let mut c1 = register(&t1, &mallory, "mallory", 10, new).await;
    c1.send(&PeerMsg::AddrRecord(addr_record(&mallory, 10, new, later)))
        .await;
    c1.ping(1).await;
    wait_entry(&alice, "mallory", "mallory at the new address", |e| {
        e["addrs"] == json!([new])
    });
    // Tracker 2 is told an older registration and record (seq 5) at another address.
    let mut c2 = register(&t2, &mallory, "mallory", 5, old).await;
    c2.send(&PeerMsg::AddrRecord(addr_record(&mallory, 5, old, later)))
        .await;
    c2.ping(1).await;
    // Alice handles tracker 2's frames in order: once carol (registered after) is listed,
    // mallory's older frames were handled.
    let _carol = register(&t2, &random_key(), "carol", 1, old).await;
    wait_entry(&alice, "carol", "carol listed", |_| true);
    let entry = wait_entry(&alice, "mallory", "mallory seen by both trackers", |e| {
        e["trackers"].as_array().is_some_and(|t| t.len() == 2)
    });
    assert_eq!(entry["addrs"], json!([new]), "the higher seq wins: {entry}");
}

/// A tracker from before address records: version 1 only. Refuses p2pd's highest version
/// (which a version-1 tracker cannot decode the later frames of), then serves
/// one version-1 session and returns the first frame p2pd sends after `Subscribe`.
async fn old_tracker(listener: tokio::net::TcpListener, key: SecretKey) -> PeerMsg {
    use proto::tracker::{MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME, PeerEntry};
    let config = transport::server_config(&key).expect("TLS config");
    let accept = || async {
        let (tcp, _) = listener.accept().await.expect("accept");
        let tls = tokio_rustls::TlsAcceptor::from(config.clone())
            .accept(tcp)
            .await
            .expect("TLS");
        transport::FramedConn::new(tls, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME)
    };
    let read =
        |m: Result<Option<PeerMsg>, transport::ConnError>| m.expect("read").expect("a frame");
    let mut conn = accept().await;
    assert_eq!(
        read(conn.read().await),
        PeerMsg::Hello {
            version: proto::tracker::PROTOCOL_VERSION
        }
    );
    conn.send(&TrackerMsg::Refused {
        reason: Refusal::BadVersion,
        detail: "this tracker speaks version 1 only".into(),
    })
    .await
    .expect("send");
    drop(conn);
    let mut conn = accept().await;
    assert_eq!(read(conn.read().await), PeerMsg::Hello { version: 1 });
    conn.send(&TrackerMsg::Hello {
        version: 1,
        lease_secs: 3,
    })
    .await
    .expect("send");
    let PeerMsg::Register(signed) = read(conn.read().await) else {
        panic!("expected Register")
    };
    let entry = PeerEntry {
        signed,
        observed: "127.0.0.1".parse().expect("ip"),
    };
    conn.send(&TrackerMsg::Registered { entry })
        .await
        .expect("send");
    let PeerMsg::Subscribe { req } = read(conn.read().await) else {
        panic!("expected Subscribe")
    };
    conn.send(&TrackerMsg::Peers { req, peers: vec![] })
        .await
        .expect("send");
    read(conn.read().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2pd_speaks_version_1_to_a_tracker_from_before_address_records() {
    let net = TestNet::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let tracker = tokio::spawn(old_tracker(listener, random_key()));
    let alice = net.spawn_p2pd("alice", &addr, &[]);
    let alice = tokio::task::spawn_blocking(move || {
        alice.wait_tracker_state("registered", DEADLINE);
        alice
    })
    .await
    .expect("wait");
    // After Subscribe, a version-1 link carries no address record: the next frame is the
    // keepalive.
    let next = tokio::time::timeout(DEADLINE, tracker)
        .await
        .expect("in time")
        .expect("tracker");
    assert!(matches!(next, PeerMsg::Ping { .. }), "{next:?}");
    drop(alice);
}
