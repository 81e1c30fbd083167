//! p2pd's peer port against peers that lie or misbehave, played by hand-made links (TLS with
//! a key of the test's choosing): a key other than the one pinned for the name it claims is
//! refused with `KeyMismatch` and reported, both when it calls and when p2pd dials it;
//! garbage, silence, half handshakes, bad first frames, oversized and malformed frames each
//! end only that connection (silent ones at the 10 s handshake deadline); a frame with an
//! unknown tag (a newer peer's) is answered and the link goes on, a TLS handshake asking
//! for a protocol p2pd does not serve fails; bad messages are
//! refused one by one and duplicates stored once; and through it all, real messages flow.

use std::net::SocketAddr;
use std::time::Duration;

use p2p_tests::chat::{self, history, texts};
use p2p_tests::raw::{self, Client};
use p2p_tests::raw_peer::{RawPeer, hello};
use p2p_tests::{DEADLINE, P2pd, TestNet, Tracker, events};
use proto::SecretKey;
use proto::peer::{
    ChatMessage, MAX_FRAME, MAX_TEXT, MessageId, PROTOCOL_VERSION, PeerFrame, Refusal,
};
use proto::tracker::{Record, TrackerMsg};
use tokio::io::AsyncWriteExt;

/// How long a connection that sent something bad may stay open: far below the handshake
/// deadline, so a close within it was caused by what was sent.
const FAST_CLOSE: Duration = Duration::from_secs(5);
/// p2pd's handshake deadline (TCP to the end of `Hello`).
const HANDSHAKE: Duration = Duration::from_secs(10);
/// A silent connection must be gone by then.
const SLOW_CLOSE: Duration = Duration::from_secs(15);

/// Registers `key` as `name` at the tracker, announcing `addr`, and keeps the registration
/// alive as long as the returned client lives.
async fn register(tracker: &Tracker, key: &SecretKey, name: &str, addr: SocketAddr) -> Client {
    let mut c = Client::connect(tracker.addr, key)
        .await
        .expect("connect to the tracker");
    let rec = Record {
        name: proto::PeerName::new(name).expect("name"),
        key: key.peer_id(),
        addrs: vec![addr],
        seq: 1,
    }
    .sign(key);
    match c.register(rec).await {
        TrackerMsg::Registered { .. } => c,
        other => panic!("the tracker refused {name}: {other:?}"),
    }
}

fn message(n: u8, seq: u64, text: &str) -> ChatMessage {
    ChatMessage {
        id: MessageId([n; 16]),
        seq,
        sent_at: 1_700_000_000_000,
        text: text.to_owned(),
    }
}

/// No `message_received` among the events `watch` printed so far.
#[track_caller]
fn assert_nothing_received(watch: &mut p2p_tests::Watch) {
    let events = watch.events();
    assert!(
        !events.iter().any(|e| e["type"] == "message_received"),
        "{events:#?}"
    );
}

/// Reads alice's `Refused{KeyMismatch}` for the whole link, then waits for her to close it.
/// Returns the refusal's detail.
async fn refused_and_closed(link: &mut RawPeer) -> String {
    let detail = match link.recv().await {
        Ok(Some(PeerFrame::Refused {
            id: None,
            reason: Refusal::KeyMismatch,
            detail,
        })) => detail,
        other => panic!("expected Refused(KeyMismatch), got {other:?}"),
    };
    raw::wait_closed(&mut link.tls, FAST_CLOSE)
        .await
        .expect("alice closes the refused link");
    detail
}

/// Registers a fresh key as "mallory" (announcing an address nobody listens on), waits until
/// alice sees it, and links to alice as mallory: a registered peer, so alice takes the link.
/// Returns the key, the registration (alive while held) and the link after `Hello`.
async fn mallory_linked(p: &chat::Pair) -> (SecretKey, Client, RawPeer) {
    let key = raw::random_key();
    let registration = register(
        &p.tracker,
        &key,
        "mallory",
        "0.0.0.0:9".parse().expect("addr"),
    )
    .await;
    p.alice.wait_peer("mallory", true, DEADLINE);
    let (link, name) = RawPeer::hello(p.alice.listen, &key, "mallory")
        .await
        .expect("link to alice");
    assert_eq!(name, "alice");
    (key, registration, link)
}

/// Sends `m` on `link` and expects its `Ack`.
async fn acked(link: &mut RawPeer, m: ChatMessage) {
    let want = m.id;
    link.send(&PeerFrame::Message(m)).await.expect("send");
    match link.recv().await.expect("an answer") {
        Some(PeerFrame::Ack { id }) => assert_eq!(id, want),
        other => panic!("expected Ack, got {other:?}"),
    }
}

/// Sends `Ping { nonce }` on `link` and expects the matching `Pong`.
async fn pong(link: &mut RawPeer, nonce: u64) {
    link.send(&PeerFrame::Ping { nonce }).await.expect("ping");
    match link.recv().await.expect("an answer") {
        Some(PeerFrame::Pong { nonce: n }) if n == nonce => {}
        other => panic!("expected Pong {nonce}, got {other:?}"),
    }
}

/// `alice` still delivers to `bob` and still answers on her control socket.
#[track_caller]
fn still_delivers(net: &TestNet, alice: &P2pd, text: &str) {
    let out = net.ctl(alice, &["msg", "bob", text]);
    out.assert_success();
    assert_eq!(out.stdout, "delivered to bob\n", "{out}");
}

#[tokio::test]
async fn a_peer_claiming_a_pinned_name_with_another_key_is_refused() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let alice_id = p.alice.id();
    net.ctl(&p.bob, &["msg", "alice", "from the real bob"])
        .assert_success();
    let before = history(&p.alice, "bob");
    let mut watch = net.watch(&p.alice);

    // An impostor with a new key calls alice and says it is bob; it sends a message at once.
    let fake = raw::random_key();
    let fake_id = fake.peer_id().to_string();
    let mut link = RawPeer::connect(p.alice.listen, &fake)
        .await
        .expect("TLS with a fresh key");
    assert_eq!(
        link.their_key.to_string(),
        alice_id,
        "alice presents her key"
    );
    link.send(&hello("bob")).await.expect("send Hello");
    let _ = link
        .send(&PeerFrame::Message(message(1, 1, "forged")))
        .await;
    match link.recv().await.expect("alice's Hello") {
        Some(PeerFrame::Hello { version, name }) => {
            assert_eq!((version, name.as_str()), (PROTOCOL_VERSION, "alice"));
        }
        other => panic!("expected alice's Hello, got {other:?}"),
    }
    let detail = refused_and_closed(&mut link).await;
    assert!(
        detail.contains(&fake_id),
        "the refusal names the key: {detail}"
    );

    // Reported to the user, with the key.
    let ev = watch.wait_for(
        "the mismatch reported",
        events::link_error(&fake_id),
        DEADLINE,
    );
    assert!(
        ev["detail"].as_str().is_some_and(|d| d.contains("bob")),
        "{ev}"
    );
    // Nothing delivered; the pin is unchanged; the real bob still gets through.
    assert_eq!(
        history(&p.alice, "bob"),
        before,
        "the impostor's message was stored"
    );
    assert_nothing_received(&mut watch);
    let peers = p.alice.peers();
    let b = peers
        .iter()
        .find(|b| b["name"] == "bob")
        .expect("bob listed");
    assert_eq!(b["id"], p.bob.id().as_str(), "{b}");
    net.ctl(&p.bob, &["msg", "alice", "still me"])
        .assert_success();
    assert_eq!(
        texts(&history(&p.alice, "bob"), "in"),
        ["from the real bob", "still me"]
    );
}

#[tokio::test]
async fn alice_refuses_to_link_when_the_dialed_address_shows_another_key() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let mut watch = net.watch(&p.alice);
    // "mallory" registers a key of its own but announces bob's peer port: whoever dials
    // mallory there meets bob's key.
    let fake = raw::random_key();
    let _registration = register(&p.tracker, &fake, "mallory", p.bob.listen).await;
    p.alice.wait_peer("mallory", true, DEADLINE);

    let m = chat::send(&p.alice, "mallory", "for mallory only");
    let ev = watch.wait_for(
        "the wrong key reported",
        events::link_error("presented key"),
        DEADLINE,
    );
    let detail = ev["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&p.bob.id()) && detail.contains(&fake.peer_id().to_string()),
        "names the key shown and the key expected: {ev}"
    );
    assert_eq!(ev["peer"], fake.peer_id().to_string(), "{ev}");
    // Nothing went out: the message waits, and bob got nothing from alice.
    let h = history(&p.alice, "mallory");
    assert_eq!(h.len(), 1, "{h:#?}");
    assert_eq!(
        (&h[0]["id"], &h[0]["state"]),
        (&m["id"], &"queued".into()),
        "{h:#?}"
    );
    assert!(history(&p.bob, "alice").is_empty());
    still_delivers(&net, &p.alice, "after the wrong key");
}

/// One side of a connection, to watch for its end.
type Stream = Box<dyn tokio::io::AsyncRead + Unpin>;

/// Opens a TCP connection, lets `f` misbehave on it, and returns how long p2pd took to close.
async fn closed_after(
    what: &str,
    addr: SocketAddr,
    within: Duration,
    f: impl AsyncFnOnce(tokio::net::TcpStream) -> Stream,
) -> Duration {
    let tcp = raw::tcp(addr).await;
    let mut s = f(tcp).await;
    raw::wait_closed(&mut s, within)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

#[tokio::test]
async fn garbage_silence_and_bad_handshakes_are_closed_and_delivery_goes_on() {
    let net = TestNet::new();
    let mut p = chat::pair(&net);
    let addr = p.alice.listen;

    let garbage = closed_after(
        "garbage instead of TLS",
        addr,
        FAST_CLOSE,
        async |mut tcp| {
            tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff\x16\x03\x01\xff\xff")
                .await
                .expect("write");
            Box::new(tcp) as Stream
        },
    );
    // Silent from the start.
    let silent = closed_after("a silent connection", addr, SLOW_CLOSE, async |tcp| {
        Box::new(tcp) as Stream
    });
    // The first bytes of a TLS record announcing a ClientHello, then nothing.
    let half_tls = closed_after("half a ClientHello", addr, SLOW_CLOSE, async |mut tcp| {
        tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
            .await
            .expect("write");
        Box::new(tcp) as Stream
    });
    // TLS completed, then no Hello.
    let key = raw::random_key();
    let no_hello = closed_after("TLS without Hello", addr, SLOW_CLOSE, async |tcp| {
        Box::new(raw::tls(tcp, &key).await.expect("TLS")) as Stream
    });
    // A first frame that is not Hello.
    let key2 = raw::random_key();
    let not_hello = closed_after("a message before Hello", addr, FAST_CLOSE, async |tcp| {
        let mut tls = raw::tls(tcp, &key2).await.expect("TLS");
        p2p_tests::raw_peer::write_frame(&mut tls, &PeerFrame::Message(message(1, 1, "x")))
            .await
            .expect("write");
        Box::new(tls) as Stream
    });
    // A Hello with a version p2pd does not speak.
    let key3 = raw::random_key();
    let bad_version = closed_after("a Hello of version 999", addr, FAST_CLOSE, async |tcp| {
        let mut tls = raw::tls(tcp, &key3).await.expect("TLS");
        let frame = PeerFrame::Hello {
            version: 999,
            name: proto::PeerName::new("mallory").expect("name"),
        };
        p2p_tests::raw_peer::write_frame(&mut tls, &frame)
            .await
            .expect("write");
        Box::new(tls) as Stream
    });
    // An undecodable first frame (tag 200).
    let key4 = raw::random_key();
    let bad_tag = closed_after(
        "an undecodable first frame",
        addr,
        FAST_CLOSE,
        async |tcp| {
            let mut tls = raw::tls(tcp, &key4).await.expect("TLS");
            tls.write_all(&[0, 0, 0, 5, 200, 1, 2, 3, 4])
                .await
                .expect("write");
            tls.flush().await.expect("flush");
            Box::new(tls) as Stream
        },
    );

    let (garbage, silent, half_tls, no_hello, not_hello, bad_version, bad_tag) = tokio::join!(
        garbage,
        silent,
        half_tls,
        no_hello,
        not_hello,
        bad_version,
        bad_tag
    );
    // The silent ones were closed for their silence: at the deadline, not before.
    for (what, took) in [
        ("silent", silent),
        ("half ClientHello", half_tls),
        ("no Hello", no_hello),
    ] {
        assert!(
            took >= HANDSHAKE - Duration::from_secs(2),
            "{what}: closed after {took:?}, before the {HANDSHAKE:?} handshake deadline"
        );
    }
    eprintln!(
        "closed after: garbage {garbage:?}, message first {not_hello:?}, \
         version 999 {bad_version:?}, tag 200 {bad_tag:?}"
    );

    assert!(p.alice.proc.is_running());
    still_delivers(&net, &p.alice, "after the noise");
}

#[tokio::test]
async fn bad_frames_on_an_established_link_end_only_that_link() {
    let net = TestNet::new();
    let mut p = chat::pair(&net);
    let mut watch = net.watch(&p.alice);
    let (key, _registration, mut link) = mallory_linked(&p).await;
    // A good message is stored and acknowledged; the same id again is acknowledged, not
    // stored twice.
    for _ in 0..2 {
        acked(&mut link, message(7, 1, "hello from mallory")).await;
    }
    watch.wait_for(
        "mallory's message",
        events::message_received("hello from mallory"),
        DEADLINE,
    );
    // Bad messages are refused one by one; the link stays up.
    for (n, text, what) in [
        (8, String::new(), "an empty message"),
        (9, "x".repeat(MAX_TEXT + 1), "a message over 64 KiB"),
    ] {
        link.send(&PeerFrame::Message(message(n, 2, &text)))
            .await
            .expect("send");
        match link.recv().await.expect("an answer") {
            Some(PeerFrame::Refused {
                id: Some(id),
                reason: Refusal::BadMessage,
                ..
            }) => assert_eq!(id, MessageId([n; 16]), "{what}"),
            other => panic!("{what}: expected Refused(BadMessage), got {other:?}"),
        }
    }
    pong(&mut link, 42).await;
    let h = history(&p.alice, "mallory");
    assert_eq!(
        texts(&h, "in"),
        ["hello from mallory"],
        "stored once: {h:#?}"
    );

    // A length prefix of 4 GiB: the link is closed at once.
    link.send_raw(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3])
        .await
        .expect("write");
    raw::wait_closed(&mut link.tls, FAST_CLOSE)
        .await
        .expect("alice closes a link announcing a 4 GiB frame");

    // One byte over the cap, and an undecodable frame, on fresh links.
    let over = u32::try_from(MAX_FRAME + 1).expect("fits").to_be_bytes();
    for (what, bytes) in [
        ("a frame one byte over the cap", over.to_vec()),
        // A `Message` tag with a body cut short: garbage, not a newer peer's frame.
        (
            "an undecodable frame",
            vec![0, 0, 0, 5, 1, 0xab, 0xab, 0xab, 0xab],
        ),
    ] {
        let (mut link, _) = RawPeer::hello(p.alice.listen, &key, "mallory")
            .await
            .expect("link to alice");
        link.send_raw(&bytes).await.expect("write");
        raw::wait_closed(&mut link.tls, FAST_CLOSE)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
    }

    assert!(p.alice.proc.is_running());
    still_delivers(&net, &p.alice, "after the bad frames");
    assert_eq!(
        texts(&history(&p.alice, "mallory"), "in"),
        ["hello from mallory"]
    );
}

#[tokio::test]
async fn unknown_frames_and_protocols_are_refused_and_the_link_goes_on() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let mut watch = net.watch(&p.alice);
    let (key, _registration, mut link) = mallory_linked(&p).await;

    // Frames with tags past the known ones, as a newer peer would send: one with a body, one
    // with a two-byte tag. Each gets a refusal naming its tag, for the frame, not the link.
    for (tag, bytes) in [
        (9, vec![0, 0, 0, 4, 9, 1, 2, 3]),
        (200, vec![0, 0, 0, 3, 0xc8, 0x01, 7]),
    ] {
        link.send_raw(&bytes).await.expect("write");
        match link.recv().await.expect("an answer") {
            Some(PeerFrame::Refused {
                id: None,
                reason: Refusal::BadMessage,
                detail,
            }) => assert_eq!(detail, format!("unknown frame tag {tag}")),
            other => panic!("tag {tag}: expected Refused(BadMessage), got {other:?}"),
        }
    }
    // The same link still carries messages.
    acked(&mut link, message(5, 1, "after the unknown frames")).await;
    watch.wait_for(
        "mallory's message",
        events::message_received("after the unknown frames"),
        DEADLINE,
    );

    // A protocol alice has no handler for is refused by the TLS handshake itself.
    let other = RawPeer::connect_alpn(p.alice.listen, &key, Some(b"p2p-unknown/1")).await;
    assert!(other.is_err(), "TLS with an unserved ALPN must fail");
    pong(&mut link, 3).await;
}

#[tokio::test]
async fn a_key_the_tracker_never_showed_cannot_take_a_name() {
    let net = TestNet::new();
    let tracker = net.spawn_tracker(None);
    let alice = net.spawn_p2pd("alice", &tracker.addr_string(), &[]);
    alice.wait_tracker_state("registered", DEADLINE);
    let mut watch = net.watch(&alice);

    // Someone who never registered anything calls alice as "carol", before the real carol
    // ever showed up, and sends a message in her name.
    let fake = raw::random_key();
    if let Ok((mut link, _)) = RawPeer::hello(alice.listen, &fake, "carol").await {
        let _ = link
            .send(&PeerFrame::Message(message(3, 1, "hi, it's carol")))
            .await;
        // Alice may refuse the link or close it, but must not store the message.
        let answer = link.recv().await;
        assert!(
            !matches!(answer, Ok(Some(PeerFrame::Ack { .. }))),
            "alice stored a message from a key the tracker never showed: {answer:?}"
        );
    }

    // The real carol registers.
    let carol = net.spawn_p2pd("carol", &tracker.addr_string(), &[]);
    let carol_id = carol.id();
    watch.wait_for("carol joined", events::peer_joined("carol"), DEADLINE);
    let c = alice.wait_peer("carol", true, DEADLINE);

    // Alice must not have pinned "carol" to the caller's key, nor shown its message as
    // carol's.
    assert_eq!(
        c["id"],
        carol_id.as_str(),
        "carol is listed with her own key: {c}"
    );
    assert!(
        c.get("key_conflict").is_none(),
        "an unregistered caller took carol's name at alice: {c}"
    );
    let shown: Vec<_> = watch
        .events()
        .iter()
        .filter(|e| e["type"] == "message_received" && e["message"]["peer_name"] == "carol")
        .cloned()
        .collect();
    assert!(
        shown.is_empty(),
        "a message from an impostor shown as carol's: {shown:#?}"
    );
    let out = net.ctl(&alice, &["msg", "carol", "hello carol"]);
    out.assert_success();
    assert_eq!(out.stdout, "delivered to carol\n", "{out}");
    assert_eq!(texts(&history(&alice, "carol"), "in"), Vec::<String>::new());
}

#[tokio::test]
async fn a_dialled_peer_cannot_answer_under_another_name() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    net.ctl(&p.bob, &["msg", "alice", "from the real bob"])
        .assert_success();
    let mut watch = net.watch(&p.alice);
    // "eve" registers her own key and name, and listens where she announced.
    let eve = raw::random_key();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind eve's port");
    let _registration = register(
        &p.tracker,
        &eve,
        "eve",
        listener.local_addr().expect("eve's address"),
    )
    .await;
    p.alice.wait_peer("eve", true, DEADLINE);

    // Alice has a message for eve, so she dials; eve answers as bob and speaks at once.
    let m = chat::send(&p.alice, "eve", "hello eve");
    let mut link = RawPeer::accept(&listener, &eve).await.expect("alice dials");
    assert_eq!(link.their_key.to_string(), p.alice.id(), "alice's key");
    match link.recv().await.expect("alice's Hello") {
        Some(PeerFrame::Hello { name, .. }) => assert_eq!(name.as_str(), "alice"),
        other => panic!("expected alice's Hello, got {other:?}"),
    }
    link.send(&hello("bob")).await.expect("send Hello");
    let _ = link
        .send(&PeerFrame::Message(message(
            7,
            1,
            "Hi Alice, this is Bob. New account number: 1234",
        )))
        .await;
    let detail = refused_and_closed(&mut link).await;
    assert!(
        detail.contains("\"bob\"") && detail.contains("\"eve\""),
        "the refusal names both names: {detail}"
    );

    let ev = watch.wait_for(
        "the lie reported",
        events::link_error("calls itself"),
        DEADLINE,
    );
    assert_eq!(ev["peer"], eve.peer_id().to_string(), "{ev}");
    // Nothing stored under either name; alice's message to eve still waits.
    assert_eq!(
        texts(&history(&p.alice, "bob"), "in"),
        ["from the real bob"]
    );
    let h = history(&p.alice, "eve");
    assert_eq!(h.len(), 1, "{h:#?}");
    assert_eq!((&h[0]["id"], &h[0]["state"]), (&m["id"], &"queued".into()));
    assert_nothing_received(&mut watch);
    still_delivers(&net, &p.alice, "bob is still bob");
}
