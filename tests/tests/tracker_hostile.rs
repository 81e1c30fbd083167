//! The tracker survives hostile and broken clients: garbage, silence (slowloris), oversized
//! and truncated frames each end only that connection, promptly; a connection flood from one
//! IP is capped per IP; and well-behaved clients are served throughout.

use std::net::IpAddr;
use std::time::Duration;

use p2p_tests::TestNet;
use p2p_tests::raw::{self, register_fresh};
use proto::tracker::TrackerMsg;
use tokio::io::AsyncWriteExt;

/// A short handshake deadline, for the tests of silence.
const HANDSHAKE_MS: u64 = 500;
/// A handshake deadline far beyond [`CLOSE_WITHIN`]: a connection closed within that time
/// was closed for what it sent, not for being slow.
const LONG_HANDSHAKE_MS: u64 = 60_000;
/// How long a misbehaving connection may stay open, at most. Well below the deadlines that
/// could otherwise explain a close: [`LONG_HANDSHAKE_MS`] and the default 30 s lease.
const CLOSE_WITHIN: Duration = Duration::from_secs(5);

fn hostile_tracker(net: &TestNet, handshake_ms: u64) -> p2p_tests::Tracker {
    net.spawn_tracker(Some(&format!(
        "[limits]\nhandshake-timeout-ms = {handshake_ms}\n"
    )))
}

#[tokio::test]
async fn garbage_instead_of_tls_is_closed() {
    let net = TestNet::new();
    let tracker = hostile_tracker(&net, LONG_HANDSHAKE_MS);
    let mut tcp = raw::tcp(tracker.addr).await;
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff\x16\x03\x01\xff\xff")
        .await
        .expect("write garbage");
    raw::wait_closed(&mut tcp, CLOSE_WITHIN)
        .await
        .expect("the tracker closes a connection that sends garbage");
    register_fresh(tracker.addr, "after-garbage").await;
}

#[tokio::test]
async fn a_silent_connection_is_closed_at_the_handshake_deadline() {
    let net = TestNet::new();
    let tracker = hostile_tracker(&net, HANDSHAKE_MS);
    let mut tcp = raw::tcp(tracker.addr).await;
    let took = raw::wait_closed(&mut tcp, CLOSE_WITHIN)
        .await
        .expect("the tracker closes a silent connection");
    assert!(
        took >= Duration::from_millis(HANDSHAKE_MS * 6 / 10),
        "closed after {took:?}: before the {HANDSHAKE_MS} ms deadline, so not for silence"
    );
    register_fresh(tracker.addr, "after-silence").await;
}

#[tokio::test]
async fn tls_without_hello_is_closed_at_the_handshake_deadline() {
    let net = TestNet::new();
    let tracker = hostile_tracker(&net, HANDSHAKE_MS);
    let tcp = raw::tcp(tracker.addr).await;
    let mut tls = raw::tls(tcp, &raw::random_key()).await.expect("TLS");
    let took = raw::wait_closed(&mut tls, CLOSE_WITHIN)
        .await
        .expect("the tracker closes a connection that never says Hello");
    assert!(
        took >= Duration::from_millis(HANDSHAKE_MS / 4),
        "closed after {took:?}, long before the deadline: not for silence"
    );
    register_fresh(tracker.addr, "after-no-hello").await;
}

#[tokio::test]
async fn an_oversized_length_prefix_is_closed() {
    let net = TestNet::new();
    let tracker = hostile_tracker(&net, LONG_HANDSHAKE_MS);
    let tcp = raw::tcp(tracker.addr).await;
    let mut tls = raw::tls(tcp, &raw::random_key()).await.expect("TLS");
    assert!(matches!(
        raw::hello_raw(&mut tls).await,
        TrackerMsg::Hello { .. }
    ));
    tls.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3])
        .await
        .expect("write");
    tls.flush().await.expect("flush");
    raw::wait_closed(&mut tls, CLOSE_WITHIN)
        .await
        .expect("the tracker closes a connection announcing a 4 GiB frame");
    register_fresh(tracker.addr, "after-oversized").await;
}

#[tokio::test]
async fn a_length_just_over_the_cap_is_closed() {
    let net = TestNet::new();
    let tracker = hostile_tracker(&net, LONG_HANDSHAKE_MS);
    let tcp = raw::tcp(tracker.addr).await;
    let mut tls = raw::tls(tcp, &raw::random_key()).await.expect("TLS");
    raw::hello_raw(&mut tls).await;
    let len = u32::try_from(proto::tracker::MAX_REQUEST_FRAME + 1).expect("fits");
    tls.write_all(&len.to_be_bytes()).await.expect("write");
    tls.flush().await.expect("flush");
    raw::wait_closed(&mut tls, CLOSE_WITHIN)
        .await
        .expect("the tracker closes a connection announcing a frame over its cap");
    register_fresh(tracker.addr, "after-over-cap").await;
}

#[tokio::test]
async fn a_malformed_frame_is_closed() {
    let net = TestNet::new();
    let tracker = hostile_tracker(&net, LONG_HANDSHAKE_MS);
    let tcp = raw::tcp(tracker.addr).await;
    let mut tls = raw::tls(tcp, &raw::random_key()).await.expect("TLS");
    raw::hello_raw(&mut tls).await;
    // Tag 200 is no message; then junk.
    tls.write_all(&[0, 0, 0, 5, 200, 1, 2, 3, 4])
        .await
        .expect("write");
    tls.flush().await.expect("flush");
    raw::wait_closed(&mut tls, CLOSE_WITHIN)
        .await
        .expect("the tracker closes a connection sending an undecodable frame");
    register_fresh(tracker.addr, "after-malformed").await;
}

#[tokio::test]
async fn a_frame_cut_short_by_eof_is_closed() {
    let net = TestNet::new();
    let tracker = hostile_tracker(&net, LONG_HANDSHAKE_MS);
    let tcp = raw::tcp(tracker.addr).await;
    let mut tls = raw::tls(tcp, &raw::random_key()).await.expect("TLS");
    raw::hello_raw(&mut tls).await;
    // Announce 100 bytes, send 10, then end the stream.
    tls.write_all(&[0, 0, 0, 100]).await.expect("write");
    tls.write_all(&[1; 10]).await.expect("write");
    tls.shutdown().await.expect("close our side");
    raw::wait_closed(&mut tls, CLOSE_WITHIN)
        .await
        .expect("the tracker closes a connection whose frame was cut short");
    register_fresh(tracker.addr, "after-truncated").await;
}

#[tokio::test]
async fn a_registered_peer_sending_garbage_is_dropped_and_leaves() {
    let net = TestNet::new();
    let tracker = hostile_tracker(&net, LONG_HANDSHAKE_MS);
    let mut watcher = register_fresh(tracker.addr, "watcher").await;
    watcher
        .send(&proto::tracker::PeerMsg::Subscribe { req: 7 })
        .await;
    assert!(matches!(
        watcher.recv().await,
        TrackerMsg::Peers { req: 7, .. }
    ));

    let key = raw::random_key();
    let tcp = raw::tcp(tracker.addr).await;
    let mut tls = raw::tls(tcp, &key).await.expect("TLS");
    raw::hello_raw(&mut tls).await;
    raw::write_frame(
        &mut tls,
        &proto::tracker::PeerMsg::Register(raw::signed(&key, "mallory", 1)),
    )
    .await
    .expect("register");
    assert!(matches!(
        raw::read_frame(&mut tls).await.expect("answer"),
        TrackerMsg::Registered { .. }
    ));
    match watcher.recv().await {
        TrackerMsg::Joined(e) => assert_eq!(e.signed.record.key, key.peer_id()),
        other => panic!("expected mallory's Joined, got {other:?}"),
    }
    tls.write_all(&[0xff; 4]).await.expect("write");
    tls.flush().await.expect("flush");
    raw::wait_closed(&mut tls, CLOSE_WITHIN)
        .await
        .expect("closed");
    match watcher.recv().await {
        TrackerMsg::Left { key: k } => assert_eq!(k, key.peer_id()),
        other => panic!("expected mallory's Left, got {other:?}"),
    }
    watcher.ping(1).await;
}

#[tokio::test]
async fn connections_over_the_per_ip_cap_are_refused_and_others_still_served() {
    let net = TestNet::new();
    // A long handshake deadline, so the held connections are not closed for silence.
    let tracker = net.spawn_tracker(Some(
        "[limits]\nmax-connections-per-ip = 4\nhandshake-timeout-ms = 30000\n",
    ));
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(raw::tcp(tracker.addr).await);
    }
    // The tracker accepts in order, so by the time it takes the fifth, the four hold their
    // slots.
    let mut fifth = raw::tcp(tracker.addr).await;
    raw::wait_closed(&mut fifth, CLOSE_WITHIN)
        .await
        .expect("the fifth connection from one IP is closed");
    for (i, c) in held.iter().enumerate() {
        assert!(raw::still_open(c), "held connection {i} was closed");
    }
    // Another IP is still served while 127.0.0.1 is at its cap.
    let other: IpAddr = "127.0.0.2".parse().expect("ip");
    let key = raw::random_key();
    let mut c = raw::Client::connect_from(other, tracker.addr, &key)
        .await
        .expect("a client from another IP connects");
    match c.register(raw::signed(&key, "elsewhere", 1)).await {
        TrackerMsg::Registered { entry } => assert_eq!(entry.observed, other),
        other => panic!("refused: {other:?}"),
    }

    // Once the held connections go, 127.0.0.1 is served again. The tracker frees a slot
    // when it notices the close, which no event announces: retry for a while.
    drop(held);
    let deadline = tokio::time::Instant::now() + CLOSE_WITHIN;
    let key = raw::random_key();
    let mut client = loop {
        match raw::Client::connect(tracker.addr, &key).await {
            Ok(c) => break c,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("not yet served again: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("127.0.0.1 still refused after its connections closed: {e}"),
        }
    };
    assert!(matches!(
        client.register(raw::signed(&key, "back", 1)).await,
        TrackerMsg::Registered { .. }
    ));
}
