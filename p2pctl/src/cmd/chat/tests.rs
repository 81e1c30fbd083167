//! `chat` against a scripted daemon, with stdin from a byte string.

use super::*;
use crate::cmd::fake::{self, event_line};
use crate::lines::Tail;
use proto::peer::MessageId;
use proto::{PeerName, SecretKey};

fn bob(online: bool) -> PeerInfo {
    peer("bob", 1, online)
}

fn peer(name: &str, seed: u8, online: bool) -> PeerInfo {
    PeerInfo {
        name: PeerName::new(name).expect("name"),
        id: SecretKey::from_seed([seed; 32]).peer_id(),
        addrs: vec![],
        online,
        since: 1,
        trusted: false,
        auto_accept: false,
        blocked: false,
        key_conflict: None,
        same_name: Vec::new(),
        trackers: Vec::new(),
        sources: Vec::new(),
        verified: true,
    }
}

/// Our message number `n` to bob, with `text`, in `state`.
fn ours(n: u8, text: &str, state: MessageState) -> MessageInfo {
    MessageInfo {
        id: MessageId([n; 16]),
        peer: bob(true).id,
        peer_name: PeerName::new("bob").expect("name"),
        direction: Direction::Out,
        seq: u64::from(n),
        text: text.into(),
        state,
        sent_at: 1_700_000_000_000,
        detail: None,
    }
}

/// A message from `from` (bob unless said otherwise).
fn theirs(from: &PeerInfo, n: u8, text: &str) -> MessageInfo {
    MessageInfo {
        id: MessageId([100 + n; 16]),
        peer: from.id,
        peer_name: from.name.clone(),
        direction: Direction::In,
        seq: u64::from(n),
        text: text.into(),
        state: MessageState::Received,
        sent_at: 1_700_000_000_000,
        detail: None,
    }
}

fn updated(m: &MessageInfo) -> String {
    event_line(&Event::MessageUpdated { message: m.clone() })
}

fn received(m: &MessageInfo) -> String {
    event_line(&Event::MessageReceived { message: m.clone() })
}

fn json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).expect("json")
}

/// Replies to `subscribe` and `peers` (ids 1 and 2).
fn opening(peers: &[PeerInfo]) -> Vec<Vec<String>> {
    vec![
        vec![fake::ok(1, r#"{"subscribed":true}"#)],
        vec![fake::ok(2, &json(&peers))],
    ]
}

/// The request line for sending `text` as request `id`.
fn send_request(id: u64, text: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"send_message","params":{{"peer":"{}","text":{}}}}}"#,
        bob(true).id,
        json(&text)
    )
}

struct Run {
    requests: Vec<String>,
    result: Result<(), Error>,
    stdout: String,
    stderr: String,
}

async fn chat(
    replies: Vec<Vec<String>>,
    after: Vec<String>,
    stdin: &[u8],
    options: Options,
) -> Run {
    let (client, daemon) = fake::daemon_held_open(replies, after);
    let mut input = LineReader::new(stdin, MAX_TEXT + 1, Tail::Keep);
    drive(client, daemon, &mut input, options, std::future::pending()).await
}

/// Runs `chat bob` on `client` until it ends, beside its scripted `daemon`.
async fn drive(
    client: Client<tokio::io::DuplexStream>,
    daemon: impl Future<Output = Vec<String>>,
    input: &mut impl Input,
    options: Options,
    stop: impl Future<Output = ()>,
) -> Run {
    let mut out = Out::new(Vec::new());
    let mut notes = Out::new(Vec::new());
    let session = async {
        let mut client = client;
        run(
            &mut client,
            &mut out,
            &mut notes,
            input,
            "bob",
            options,
            stop,
        )
        .await
    };
    let (requests, result) = tokio::join!(daemon, session);
    Run {
        requests,
        result,
        stdout: String::from_utf8(out.into_inner()).expect("utf8"),
        stderr: String::from_utf8(notes.into_inner()).expect("utf8"),
    }
}

const PIPED: Options = Options {
    json: false,
    interactive: false,
    drain: DRAIN,
    last: 0,
};

/// Stdout with each line's leading `HH:MM:SS ` checked and removed.
fn untimed(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| {
            let (clock, rest) = l.split_at(9);
            assert!(
                clock.len() == 9 && clock.as_bytes()[2] == b':' && clock.ends_with(' '),
                "{l}"
            );
            rest.to_owned()
        })
        .collect()
}

#[tokio::test]
async fn piped_lines_are_sent_in_order_and_delivered() {
    let (a, b) = (
        ours(1, "a", MessageState::Queued),
        ours(2, "b", MessageState::Queued),
    );
    let mut replies = opening(&[peer("carol", 2, true), bob(true)]);
    replies.push(vec![
        fake::ok(3, &json(&a)),
        updated(&ours(1, "a", MessageState::Delivered)),
    ]);
    replies.push(vec![fake::ok(4, &json(&b))]);
    let after = vec![updated(&ours(2, "b", MessageState::Delivered))];
    let run = chat(replies, after, b"a\nb\n", PIPED).await;
    run.result.expect("all delivered");
    assert_eq!(
        run.requests,
        [
            r#"{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{}}"#.to_owned(),
            r#"{"jsonrpc":"2.0","id":2,"method":"peers","params":{}}"#.to_owned(),
            send_request(3, "a"),
            send_request(4, "b"),
        ]
    );
    assert_eq!(
        untimed(&run.stdout),
        ["you: a", "✓ delivered: a", "you: b", "✓ delivered: b"]
    );
    assert_eq!(run.stderr, "2 delivered, 0 queued\n");
}

#[tokio::test]
async fn offline_peer_means_queued_and_no_wait() {
    let mut replies = opening(&[bob(false)]);
    replies.push(vec![fake::ok(
        3,
        &json(&ours(1, "a", MessageState::Queued)),
    )]);
    replies.push(vec![fake::ok(
        4,
        &json(&ours(2, "b", MessageState::Queued)),
    )]);
    // No event ever comes and the daemon stays open: only "offline" can end this.
    let run = chat(replies, vec![], b"a\nb", PIPED).await;
    run.result.expect("queued is success");
    assert_eq!(run.requests.len(), 4);
    assert_eq!(run.stderr, "0 delivered, 2 queued\n");
}

#[tokio::test]
async fn peer_leaving_ends_the_wait() {
    let mut replies = opening(&[bob(true)]);
    replies.push(vec![fake::ok(
        3,
        &json(&ours(1, "a", MessageState::Queued)),
    )]);
    let after = vec![event_line(&Event::PeerLeft { peer: bob(false) })];
    let run = chat(replies, after, b"a\n", PIPED).await;
    run.result.expect("queued is success");
    assert_eq!(
        untimed(&run.stdout),
        ["you: a", "bob went offline; messages wait until it is back"]
    );
    assert_eq!(run.stderr, "0 delivered, 1 queued\n");
}

#[tokio::test]
async fn a_changed_key_ends_the_wait() {
    let mut replies = opening(&[bob(true)]);
    replies.push(vec![fake::ok(
        3,
        &json(&ours(1, "a", MessageState::Queued)),
    )]);
    let mut conflicted = bob(true);
    conflicted.key_conflict = Some(SecretKey::from_seed([5; 32]).peer_id());
    let after = vec![event_line(&Event::PeerUpdated { peer: conflicted })];
    let run = chat(replies, after, b"a\n", PIPED).await;
    run.result.expect("queued is success");
    assert_eq!(untimed(&run.stdout), ["you: a"]);
    assert_eq!(run.stderr, "0 delivered, 1 queued\n");
}

#[tokio::test(start_paused = true)]
async fn deadline_ends_the_wait_with_queued() {
    let mut replies = opening(&[bob(true)]);
    replies.push(vec![fake::ok(
        3,
        &json(&ours(1, "a", MessageState::Queued)),
    )]);
    let run = chat(replies, vec![], b"a\n", PIPED).await;
    run.result.expect("queued is success");
    assert_eq!(run.stderr, "0 delivered, 1 queued\n");
}

#[tokio::test]
async fn refused_message_fails_after_the_summary() {
    let mut refused = ours(1, "a", MessageState::Refused);
    refused.detail = Some("the peer has blocked you".into());
    let mut replies = opening(&[bob(true)]);
    replies.push(vec![
        fake::ok(3, &json(&ours(1, "a", MessageState::Queued))),
        updated(&refused),
    ]);
    let run = chat(replies, vec![], b"a\n", PIPED).await;
    assert!(
        matches!(run.result, Err(Error::Reported)),
        "{:?}",
        run.result
    );
    assert_eq!(
        untimed(&run.stdout),
        ["you: a", "✗ refused by bob: a (the peer has blocked you)"]
    );
    assert_eq!(run.stderr, "0 delivered, 0 queued, 1 refused\n");
}

#[tokio::test]
async fn blank_long_and_crlf_lines() {
    let mut input = b"a\r\n\n   \n".to_vec();
    input.extend(std::iter::repeat_n(b'x', MAX_TEXT + 1));
    input.extend(b"\n");
    input.extend(std::iter::repeat_n(b'y', MAX_TEXT + 5));
    input.extend(b"\nz\n");
    let mut replies = opening(&[bob(false)]);
    replies.push(vec![fake::ok(
        3,
        &json(&ours(1, "a", MessageState::Queued)),
    )]);
    replies.push(vec![fake::ok(
        4,
        &json(&ours(2, "z", MessageState::Queued)),
    )]);
    let run = chat(replies, vec![], &input, PIPED).await;
    assert!(matches!(run.result, Err(Error::Reported)));
    assert_eq!(run.requests[2], send_request(3, "a"));
    assert_eq!(run.requests[3], send_request(4, "z"));
    assert_eq!(run.requests.len(), 4);
    assert_eq!(
        run.stderr,
        "p2pctl: the message is 65537 bytes long; the limit is 65536 bytes (64 KiB)\n\
         p2pctl: not sent: a line longer than 65537 bytes (messages are at most 64 KiB)\n\
         0 delivered, 2 queued, 2 not sent\n"
    );
}

#[tokio::test]
async fn daemon_refusing_a_send_is_reported_and_the_rest_goes_on() {
    let mut replies = opening(&[bob(false)]);
    replies.push(vec![
        r#"{"jsonrpc":"2.0","id":3,"error":{"code":1003,"message":"message too long"}}"#.into(),
    ]);
    replies.push(vec![fake::ok(
        4,
        &json(&ours(2, "b", MessageState::Queued)),
    )]);
    let run = chat(replies, vec![], b"a\nb\n", PIPED).await;
    assert!(matches!(run.result, Err(Error::Reported)));
    assert_eq!(
        run.stderr,
        "p2pctl: not sent: message too long\n0 delivered, 1 queued, 1 not sent\n"
    );
}

#[tokio::test]
async fn incoming_messages_from_the_peer_only_and_neutralised() {
    let carol = peer("carol", 2, true);
    let mut replies = opening(&[bob(true), carol.clone()]);
    replies.push(vec![
        fake::ok(3, &json(&ours(1, "a", MessageState::Queued))),
        received(&theirs(&carol, 1, "not for this window")),
        received(&theirs(&bob(true), 1, "hi \u{1b}[31mthere")),
        updated(&ours(1, "a", MessageState::Delivered)),
    ]);
    let run = chat(replies, vec![], b"a\n", PIPED).await;
    run.result.expect("delivered");
    assert_eq!(
        untimed(&run.stdout),
        ["you: a", "bob: hi \\e[31mthere", "✓ delivered: a"]
    );
}

#[tokio::test]
async fn json_prints_message_objects_only() {
    let carol = peer("carol", 2, true);
    let sent = ours(1, "a", MessageState::Queued);
    let delivered = ours(1, "a", MessageState::Delivered);
    let incoming = theirs(&bob(true), 1, "hello");
    let mut replies = opening(&[bob(true), carol.clone()]);
    replies.push(vec![
        fake::ok(3, &json(&sent)),
        received(&theirs(&carol, 1, "elsewhere")),
        event_line(&Event::PeerUpdated { peer: bob(true) }),
        received(&incoming),
        updated(&delivered),
    ]);
    let options = Options {
        json: true,
        ..PIPED
    };
    let run = chat(replies, vec![], b"a\n", options).await;
    run.result.expect("delivered");
    let lines: Vec<MessageInfo> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a MessageInfo per line"))
        .collect();
    assert_eq!(lines, [sent, incoming, delivered]);
    assert_eq!(run.stderr, "1 delivered, 0 queued\n");
}

#[tokio::test]
async fn interactive_ends_at_end_of_input_without_waiting() {
    let mut replies = opening(&[bob(false)]);
    replies.push(vec![fake::ok(
        3,
        &json(&ours(1, "a", MessageState::Queued)),
    )]);
    let options = Options {
        interactive: true,
        ..PIPED
    };
    let run = chat(replies, vec![], b"a\n", options).await;
    run.result.expect("ok");
    assert_eq!(untimed(&run.stdout), ["queued (bob is offline)"]);
    assert_eq!(
        run.stderr,
        "chatting with bob (offline); type a line and press enter to send it, ctrl-d or \
         ctrl-c to leave\n\
         1 message still queued for bob; p2pd delivers them when bob can be reached\n"
    );
}

#[tokio::test]
async fn stop_ends_an_interactive_session() {
    let (client, daemon) = fake::daemon_held_open(opening(&[bob(true)]), vec![]);
    // stdin that never ends: the read half of a pipe nobody writes to.
    let (_keep, never) = tokio::io::duplex(64);
    let mut input = LineReader::new(tokio::io::BufReader::new(never), 100, Tail::Keep);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let options = Options {
        interactive: true,
        ..PIPED
    };
    let stop = async {
        rx.await.ok();
    };
    let trigger = async {
        tokio::task::yield_now().await;
        tx.send(()).ok();
    };
    let (run, ()) = tokio::join!(drive(client, daemon, &mut input, options, stop), trigger);
    run.result.expect("stopped");
}

#[tokio::test]
async fn unknown_peer_fails_before_sending() {
    let mut replies = opening(&[peer("carol", 2, true)]);
    replies.push(vec![fake::status(3, "alice", 9)]);
    let run = chat(replies, vec![], b"a\n", PIPED).await;
    let err = run.result.expect_err("unknown");
    assert!(err.to_string().starts_with("unknown peer 'bob'"), "{err}");
    assert_eq!(
        run.requests.len(),
        3,
        "subscribe, peers, status: nothing sent"
    );
    assert!(run.requests[2].contains(r#""method":"status""#));
}

#[tokio::test(start_paused = true)]
async fn link_error_and_lost_events() {
    let mut replies = opening(&[bob(true)]);
    replies.push(vec![
        fake::ok(3, &json(&ours(1, "a", MessageState::Queued))),
        event_line(&Event::Lagged { missed: 3 }),
    ]);
    replies.push(vec![fake::ok(
        4,
        &json(&[ours(1, "a", MessageState::Queued)]),
    )]);
    let error = event_line(&Event::LinkError {
        peer: Some(bob(true).id),
        detail: "key mismatch".into(),
    });
    // The same error from each retry is shown once.
    replies.push(vec![fake::ok(5, &json(&[bob(true)])), error.clone(), error]);
    let run = chat(replies, vec![], b"a\n", PIPED).await;
    run.result.expect("queued");
    assert_eq!(
        run.requests[3],
        format!(
            r#"{{"jsonrpc":"2.0","id":4,"method":"history","params":{{"peer":"{}","limit":101}}}}"#,
            bob(true).id
        )
    );
    assert_eq!(
        untimed(&run.stdout),
        ["you: a", "link error with bob: key mismatch"]
    );
    assert_eq!(
        run.stderr,
        "p2pctl: missed 3 events; 'p2pctl history bob' shows any message missed\n\
         0 delivered, 1 queued\n"
    );
}

#[test]
fn update_lines() {
    let mut m = ours(1, &"long ".repeat(20), MessageState::Delivered);
    assert_eq!(
        update_text(&m, "bob"),
        "✓ delivered: long long long long long long long long…"
    );
    m.state = MessageState::Refused;
    m.text = "x\u{1b}".into();
    assert_eq!(update_text(&m, "bob"), "✗ refused by bob: x\\e");
    m.detail = Some("nope\u{7}".into());
    assert_eq!(
        update_text(&m, "bob"),
        "✗ refused by bob: x\\e (nope\\u{7})"
    );
}

/// An interactive session on `replies` whose input never ends; it ends when the daemon
/// closes or after `stop_after` (paused time).
async fn interactive(
    replies: Vec<Vec<String>>,
    after: Vec<String>,
    held_open: bool,
    stop_after: Duration,
) -> Run {
    let (_keep, never) = tokio::io::duplex(64);
    let mut input = LineReader::new(tokio::io::BufReader::new(never), 100, Tail::Keep);
    let options = Options {
        interactive: true,
        last: 20,
        ..PIPED
    };
    let stop = tokio::time::sleep(stop_after);
    if held_open {
        let (client, daemon) = fake::daemon_held_open(replies, after);
        drive(client, daemon, &mut input, options, stop).await
    } else {
        let (client, daemon) = fake::daemon(replies, after);
        drive(client, daemon, &mut input, options, stop).await
    }
}

fn offer(state: proto::api::TransferState) -> proto::api::TransferInfo {
    proto::api::TransferInfo {
        id: proto::transfer::TransferId([0x1a; 16]),
        peer: bob(true).id,
        peer_name: PeerName::new("bob").expect("name"),
        direction: Direction::In,
        state,
        files: 1,
        sample: vec!["report.pdf".into()],
        total_bytes: 2048,
        done_bytes: 0,
        rate: 0,
        eta_secs: None,
        local_path: None,
        error: None,
        kind: proto::api::TransferKind::Receive,
        created_at: None,
        ended_at: None,
        landed: Vec::new(),
        sources: Vec::new(),
        dirs_left_out: 0,
    }
}

#[tokio::test(start_paused = true)]
async fn opening_shows_history_once_then_offers_and_a_stopped_daemon_is_not_the_peer() {
    let bob_ = bob(true);
    let mut replies = opening(std::slice::from_ref(&bob_));
    let old_ours = ours(1, "old", MessageState::Queued);
    let old_theirs = theirs(&bob_, 1, "hi");
    replies.push(vec![
        fake::ok(3, &json(&[old_ours, old_theirs.clone()])),
        // Arrived between `subscribe` and `history`: already shown.
        received(&old_theirs),
        received(&theirs(&bob_, 2, "new")),
        event_line(&Event::TransferOffered {
            transfer: offer(proto::api::TransferState::Offered),
        }),
        event_line(&Event::TransferUpdated {
            transfer: offer(proto::api::TransferState::Done),
        }),
        // p2pd stopping drops its links before its socket.
        event_line(&Event::PeerLeft { peer: bob(false) }),
    ]);
    let run = interactive(replies, vec![], false, Duration::from_secs(3600)).await;
    assert!(
        matches!(run.result, Err(Error::DaemonStopped)),
        "{:?}",
        run.result
    );
    assert_eq!(
        run.requests[2],
        format!(
            r#"{{"jsonrpc":"2.0","id":3,"method":"history","params":{{"peer":"{}","limit":20}}}}"#,
            bob_.id
        )
    );
    assert_eq!(
        untimed(&run.stdout),
        [
            "you: old  [queued]",
            "bob: hi",
            "bob: new",
            "bob offers report.pdf (2.0 KiB): p2pctl accept 1a1a1a1a",
            "report.pdf from bob: done",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_peer_leaving_and_coming_back_is_shown() {
    let mut replies = opening(&[bob(true)]);
    replies.push(vec![
        fake::ok(3, "[]"),
        event_line(&Event::PeerLeft { peer: bob(false) }),
    ]);
    let run = interactive(replies.clone(), vec![], true, Duration::from_secs(5)).await;
    run.result.expect("stopped");
    assert_eq!(
        untimed(&run.stdout),
        ["bob went offline; messages wait until it is back"]
    );

    replies[2].push(event_line(&Event::PeerJoined { peer: bob(true) }));
    let run = interactive(replies, vec![], true, Duration::from_secs(5)).await;
    run.result.expect("stopped");
    assert_eq!(
        untimed(&run.stdout),
        [
            "bob went offline; messages wait until it is back",
            "bob is back"
        ]
    );
}
