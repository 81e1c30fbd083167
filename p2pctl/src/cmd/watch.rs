//! `p2pctl watch`: subscribe, then print each event until interrupted (exit 0) or until the
//! daemon closes the connection (exit 1).
//!
//! The subscribe response is awaited first; once it has arrived the daemon sends every event
//! from then on. At that moment `on_subscribed` runs (the binary prints a line to stderr), so
//! a script can wait for it before causing the events it wants to see. Human output then
//! reads the peer list once, to name peers in events that carry only an id (`link_error`).
//! Human output leaves out `transfer_progress` events (several a second per transfer); `--json`
//! prints every event.

use std::collections::HashMap;
use std::io::Write;
use std::time::SystemTime;

use proto::PeerId;
use proto::api::{
    Call, EVENT_NOTIFICATION, Event, MessageInfo, MessageState, PeerInfo, TrackerLinkState,
    TrackerStatus, TransferInfo, TransferState,
};
use tokio::io::{AsyncRead, AsyncWrite};

use super::subscribe;
use crate::client::{Client, Notice};
use crate::error::Error;
use crate::output::{
    Out, addresses, clean, files, human_bytes, local_clock, message_state, percent, rate_and_eta,
    reason, short_transfer, to_from, transfer_state,
};

/// Subscribes, calls `on_subscribed`, and prints events until `stop` completes or the
/// stream ends.
pub(crate) async fn run<S, W>(
    client: &mut Client<S>,
    out: &mut Out<W>,
    json: bool,
    on_subscribed: impl FnOnce(),
    stop: impl Future<Output = ()>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite,
    W: Write,
{
    subscribe(client).await?;
    on_subscribed();
    let mut names = Names::default();
    if !json {
        // Events that arrive meanwhile are kept by the client and shown next.
        match client.call::<Vec<PeerInfo>>(Call::Peers {}).await {
            Ok(peers) => peers.value.iter().for_each(|p| names.learn_peer(p)),
            // Names are a nicety: without them ids are shown.
            Err(Error::Rpc(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let mut stop = std::pin::pin!(stop);
    loop {
        let Some(notice) = super::next_notice_of(client, EVENT_NOTIFICATION, stop.as_mut()).await?
        else {
            return Ok(());
        };
        if json {
            out.line(&notice.raw_params)?;
        } else if let Some(text) = describe_notice(&notice, &mut names) {
            out.line(&format!("{} {text}", local_clock(SystemTime::now())))?;
        }
    }
}

/// Peer names by id, learnt from the peer list and from events.
#[derive(Debug, Default)]
struct Names(HashMap<PeerId, String>);

impl Names {
    fn learn_peer(&mut self, p: &PeerInfo) {
        self.0.insert(p.id, clean(p.name.as_str()));
    }

    fn learn_message(&mut self, m: &MessageInfo) {
        self.0.insert(m.peer, clean(m.peer_name.as_str()));
    }

    fn learn_transfer(&mut self, t: &TransferInfo) {
        self.0.insert(t.peer, clean(t.peer_name.as_str()));
    }

    /// The name, or the short id of a peer not seen yet.
    fn of(&self, id: &PeerId) -> String {
        self.0.get(id).cloned().unwrap_or_else(|| id.short())
    }
}

/// Completes on ctrl-c or (on Unix) SIGTERM. If a handler cannot be installed, that signal keeps its
/// default action (the process ends) and this waits on the other.
pub(crate) async fn interrupted() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    // No SIGTERM elsewhere: ctrl-c is the way to stop.
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// The text of one event notification; events this p2pctl does not know yet are named by
/// their `type`. `None` for events human output leaves out (`transfer_progress`).
fn describe_notice(notice: &Notice, names: &mut Names) -> Option<String> {
    match serde_json::from_value::<Event>(notice.params.clone()) {
        Ok(event) => {
            match &event {
                Event::PeerJoined { peer }
                | Event::PeerLeft { peer }
                | Event::PeerUpdated { peer } => names.learn_peer(peer),
                Event::MessageReceived { message } | Event::MessageUpdated { message } => {
                    names.learn_message(message)
                }
                Event::TransferOffered { transfer } | Event::TransferUpdated { transfer } => {
                    names.learn_transfer(transfer)
                }
                Event::TransferProgress { .. } | Event::PutProgress { .. } => return None,
                _ => {}
            }
            Some(describe(&event, names))
        }
        Err(_) => {
            let kind = notice
                .params
                .get("type")
                .and_then(|t| t.as_str())
                .unwrap_or("unknown");
            Some(format!("{} event", clean(kind)))
        }
    }
}

/// One line of human text for an event (without the time).
fn describe(event: &Event, names: &Names) -> String {
    match event {
        Event::PeerJoined { peer } => with_addrs(peer, "joined"),
        Event::PeerLeft { peer } => format!("{} left", who(peer)),
        Event::PeerUpdated { peer } => with_addrs(peer, "updated"),
        Event::Tracker { tracker } => describe_tracker(tracker),
        Event::Lagged { missed } => {
            format!(
                "missed {missed} event{} (p2pctl fell behind)",
                if *missed == 1 { "" } else { "s" }
            )
        }
        Event::MessageReceived { message } => format!(
            "message from {}: {}",
            clean(message.peer_name.as_str()),
            clean(&message.text)
        ),
        Event::MessageUpdated { message } => describe_update(message),
        Event::LinkError {
            peer: Some(peer),
            detail,
        } => format!("link error with {}: {}", names.of(peer), clean(detail)),
        Event::LinkError { peer: None, detail } => format!("link error: {}", clean(detail)),
        Event::TransferOffered { transfer } => describe_offer(transfer),
        Event::PutProgress { put } => format!(
            "put of {} to {}:{}: {} / {}",
            clean(&put.src),
            clean(put.peer.as_str()),
            put.share,
            human_bytes(put.done_bytes),
            human_bytes(put.total_bytes)
        ),
        Event::TransferProgress { transfer } => {
            let rate = rate_and_eta(transfer);
            format!(
                "transfer {} with {}: {}{}",
                short_transfer(&transfer.id),
                clean(transfer.peer_name.as_str()),
                percent(transfer),
                if rate.is_empty() {
                    rate
                } else {
                    format!(", {rate}")
                }
            )
        }
        Event::TransferUpdated { transfer } => format!(
            "transfer {} with {}: {}{}",
            short_transfer(&transfer.id),
            clean(transfer.peer_name.as_str()),
            transfer_state(transfer.state),
            reason(transfer)
        ),
    }
}

/// `offer from bob: 3 files, 12.3 MiB (id abcd1234)`; `offer to bob: ...` for ours, or
/// `offer to bob: hashing PATH (id abcd1234)` while p2pd hashes it.
fn describe_offer(t: &TransferInfo) -> String {
    if t.state == TransferState::Scanning {
        return format!(
            "offer {} {}: hashing {} (id {})",
            to_from(t.direction),
            clean(t.peer_name.as_str()),
            clean(t.local_path.as_deref().unwrap_or("the files")),
            short_transfer(&t.id)
        );
    }
    format!(
        "offer {} {}: {}, {} (id {})",
        to_from(t.direction),
        clean(t.peer_name.as_str()),
        files(t.files),
        human_bytes(t.total_bytes),
        short_transfer(&t.id)
    )
}

/// `message to bob delivered`, `message to bob refused: DETAIL`.
fn describe_update(m: &MessageInfo) -> String {
    let name = clean(m.peer_name.as_str());
    match (m.state, m.detail.as_deref().filter(|d| !d.is_empty())) {
        (MessageState::Refused, Some(d)) => format!("message to {name} refused: {}", clean(d)),
        (state, _) => format!("message to {name} {}", message_state(state)),
    }
}

/// `name (shortid)`.
fn who(peer: &PeerInfo) -> String {
    format!("{} ({})", clean(peer.name.as_str()), peer.id.short())
}

/// `name (shortid) VERB, ADDR [+N]`, or without the address part when there is none.
fn with_addrs(peer: &PeerInfo, verb: &str) -> String {
    if peer.addrs.is_empty() {
        format!("{} {verb}", who(peer))
    } else {
        format!("{} {verb}, {}", who(peer), addresses(&peer.addrs))
    }
}

/// The tracker link's new state.
fn describe_tracker(t: &TrackerStatus) -> String {
    let addr = clean(&t.addr);
    let detail = t.detail.as_deref().filter(|d| !d.is_empty()).map(clean);
    match (t.state, detail) {
        (TrackerLinkState::Registered, _) => format!("tracker registered at {addr}"),
        (TrackerLinkState::Connecting, Some(d)) => format!("tracker connecting: {d}"),
        (TrackerLinkState::Connecting, None) => format!("tracker connecting to {addr}"),
        (TrackerLinkState::Refused, Some(d)) => format!("tracker refused: {d}"),
        (TrackerLinkState::Refused, None) => format!("tracker {addr} refused the registration"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::fake::{self, event_line};
    use proto::api::Direction;
    use proto::peer::MessageId;
    use proto::{PeerName, SecretKey};

    fn bob(addrs: &[&str]) -> PeerInfo {
        PeerInfo {
            name: PeerName::new("bob").expect("name"),
            id: SecretKey::from_seed([1; 32]).peer_id(),
            addrs: addrs.iter().map(|a| a.parse().expect("addr")).collect(),
            online: true,
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

    fn message(direction: Direction, state: MessageState, detail: Option<&str>) -> MessageInfo {
        MessageInfo {
            id: MessageId([7; 16]),
            peer: bob(&[]).id,
            peer_name: PeerName::new("bob").expect("name"),
            direction,
            seq: 3,
            text: "hi \u{1b}[5mthere".into(),
            state,
            sent_at: 1_700_000_000_000,
            detail: detail.map(Into::into),
        }
    }

    fn tracker(state: TrackerLinkState, detail: Option<&str>) -> TrackerStatus {
        TrackerStatus {
            addr: "127.0.0.1:7000".into(),
            key: None,
            state,
            detail: detail.map(Into::into),
            since: 1,
        }
    }

    #[test]
    fn describes_every_event() {
        let short = bob(&[]).id.short();
        let cases = [
            (
                Event::PeerJoined {
                    peer: bob(&["127.0.0.1:4000"]),
                },
                format!("bob ({short}) joined, 127.0.0.1:4000"),
            ),
            (
                Event::PeerJoined { peer: bob(&[]) },
                format!("bob ({short}) joined"),
            ),
            (
                Event::PeerLeft {
                    peer: bob(&["127.0.0.1:4000"]),
                },
                format!("bob ({short}) left"),
            ),
            (
                Event::PeerUpdated {
                    peer: bob(&["127.0.0.1:4001", "[::1]:4001"]),
                },
                format!("bob ({short}) updated, 127.0.0.1:4001 +1"),
            ),
            (
                Event::Tracker {
                    tracker: tracker(TrackerLinkState::Registered, None),
                },
                "tracker registered at 127.0.0.1:7000".into(),
            ),
            (
                Event::Tracker {
                    tracker: tracker(TrackerLinkState::Connecting, Some("connection refused")),
                },
                "tracker connecting: connection refused".into(),
            ),
            (
                Event::Tracker {
                    tracker: tracker(TrackerLinkState::Connecting, None),
                },
                "tracker connecting to 127.0.0.1:7000".into(),
            ),
            (
                Event::Tracker {
                    tracker: tracker(
                        TrackerLinkState::Refused,
                        Some("name is taken by another key"),
                    ),
                },
                "tracker refused: name is taken by another key".into(),
            ),
            (
                Event::Lagged { missed: 1 },
                "missed 1 event (p2pctl fell behind)".into(),
            ),
            (
                Event::Lagged { missed: 7 },
                "missed 7 events (p2pctl fell behind)".into(),
            ),
            (
                Event::MessageReceived {
                    message: message(Direction::In, MessageState::Received, None),
                },
                "message from bob: hi \\e[5mthere".into(),
            ),
            (
                Event::MessageUpdated {
                    message: message(Direction::Out, MessageState::Delivered, None),
                },
                "message to bob delivered".into(),
            ),
            (
                Event::MessageUpdated {
                    message: message(
                        Direction::Out,
                        MessageState::Refused,
                        Some("the peer has blocked you"),
                    ),
                },
                "message to bob refused: the peer has blocked you".into(),
            ),
            (
                Event::MessageUpdated {
                    message: message(Direction::Out, MessageState::Refused, None),
                },
                "message to bob refused".into(),
            ),
            (
                Event::LinkError {
                    peer: None,
                    detail: "handshake failed".into(),
                },
                "link error: handshake failed".into(),
            ),
            (
                Event::LinkError {
                    peer: Some(bob(&[]).id),
                    detail: "key mismatch".into(),
                },
                format!("link error with {short}: key mismatch"),
            ),
        ];
        for (event, text) in cases {
            assert_eq!(describe(&event, &Names::default()), text);
        }
    }

    #[test]
    fn link_errors_name_known_peers() {
        let mut names = Names::default();
        let error = Event::LinkError {
            peer: Some(bob(&[]).id),
            detail: "key mismatch\u{1b}".into(),
        };
        let notice = |e: &Event| Notice {
            method: "event".into(),
            params: serde_json::to_value(e).expect("json"),
            raw_params: String::new(),
        };
        assert!(
            describe_notice(&notice(&error), &mut names)
                .expect("shown")
                .starts_with("link error with ")
        );
        describe_notice(
            &notice(&Event::MessageReceived {
                message: message(Direction::In, MessageState::Received, None),
            }),
            &mut names,
        );
        assert_eq!(
            describe_notice(&notice(&error), &mut names).as_deref(),
            Some("link error with bob: key mismatch\\e")
        );
    }

    #[test]
    fn describes_transfer_events_and_skips_progress() {
        use crate::cmd::fake::transfer;
        use proto::api::TransferState;
        let notice = |e: &Event| Notice {
            method: "event".into(),
            params: serde_json::to_value(e).expect("json"),
            raw_params: String::new(),
        };
        let mut names = Names::default();
        let offer = transfer(Direction::In, TransferState::Offered);
        assert_eq!(
            describe_notice(
                &notice(&Event::TransferOffered { transfer: offer }),
                &mut names
            )
            .as_deref(),
            Some("offer from bob: 3 files, 12.3 MiB (id abcd1234)")
        );
        // The sender learns the name from the offer.
        assert_eq!(names.of(&bob(&[]).id), "bob");
        let ours = transfer(Direction::Out, TransferState::Offered);
        assert_eq!(
            describe(&Event::TransferOffered { transfer: ours }, &names),
            "offer to bob: 3 files, 12.3 MiB (id abcd1234)"
        );
        let mut hashing = transfer(Direction::Out, TransferState::Scanning);
        hashing.local_path = Some("/home/alice/photos".into());
        assert_eq!(
            describe(&Event::TransferOffered { transfer: hashing }, &names),
            "offer to bob: hashing /home/alice/photos (id abcd1234)"
        );
        let mut running = transfer(Direction::Out, TransferState::Running);
        running.done_bytes = running.total_bytes / 4;
        running.rate = 1 << 20;
        running.eta_secs = Some(9);
        let progress = Event::TransferProgress { transfer: running };
        assert_eq!(describe_notice(&notice(&progress), &mut names), None);
        assert_eq!(
            describe(&progress, &names),
            "transfer abcd1234 with bob: 24%, 1.0 MiB/s  ETA 9 s"
        );
        let done = transfer(Direction::Out, TransferState::Done);
        assert_eq!(
            describe(&Event::TransferUpdated { transfer: done }, &names),
            "transfer abcd1234 with bob: done"
        );
        let mut failed = transfer(Direction::In, TransferState::Failed);
        failed.error = Some("disk full\u{1b}[2J".into());
        assert_eq!(
            describe(&Event::TransferUpdated { transfer: failed }, &names),
            "transfer abcd1234 with bob: failed: disk full\\e[2J"
        );
    }

    #[tokio::test]
    async fn human_stream_leaves_out_progress() {
        use crate::cmd::fake::transfer;
        use proto::api::TransferState;
        let progress = Event::TransferProgress {
            transfer: transfer(Direction::Out, TransferState::Running),
        };
        let done = Event::TransferUpdated {
            transfer: transfer(Direction::Out, TransferState::Done),
        };
        let (mut client, daemon) = fake::daemon(
            vec![
                vec![fake::ok(1, r#"{"subscribed":true}"#)],
                vec![fake::ok(2, "[]")],
            ],
            vec![event_line(&progress), event_line(&done)],
        );
        let mut out = Out::new(Vec::new());
        let (_, res) = tokio::join!(
            daemon,
            run(&mut client, &mut out, false, || {}, std::future::pending())
        );
        assert!(matches!(res, Err(Error::Closed)));
        let text = String::from_utf8(out.into_inner()).expect("utf8");
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.ends_with(" transfer abcd1234 with bob: done\n"),
            "{text}"
        );
    }

    #[test]
    fn peer_text_is_neutralised() {
        let t = tracker(TrackerLinkState::Refused, Some("bad\u{1b}]0;pwned\u{7}"));
        assert_eq!(
            describe_tracker(&t),
            "tracker refused: bad\\e]0;pwned\\u{7}"
        );
        let notice = Notice {
            method: "event".into(),
            params: serde_json::json!({"type": "offer\u{1b}[1m"}),
            raw_params: String::new(),
        };
        assert_eq!(
            describe_notice(&notice, &mut Names::default()).as_deref(),
            Some("offer\\e[1m event")
        );
    }

    #[tokio::test]
    async fn json_stream_then_closed_connection_fails() {
        let joined = Event::PeerJoined {
            peer: bob(&["127.0.0.1:4000"]),
        };
        let lagged = Event::Lagged { missed: 3 };
        let other = r#"{"jsonrpc":"2.0","method":"something_else","params":{}}"#.to_owned();
        let (mut client, daemon) = fake::daemon(
            vec![vec![fake::ok(1, r#"{"subscribed":true}"#)]],
            vec![event_line(&joined), other, event_line(&lagged)],
        );
        let mut out = Out::new(Vec::new());
        let (requests, res) = tokio::join!(
            daemon,
            run(&mut client, &mut out, true, || {}, std::future::pending())
        );
        assert_eq!(
            requests,
            [r#"{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{}}"#]
        );
        assert!(matches!(res, Err(Error::Closed)), "{res:?}");
        let text = String::from_utf8(out.into_inner()).expect("utf8");
        let lines: Vec<Event> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("one event per line"))
            .collect();
        assert_eq!(lines, [joined, lagged]);
    }

    #[tokio::test]
    async fn human_lines_start_with_the_time() {
        let (mut client, daemon) = fake::daemon(
            vec![
                vec![fake::ok(1, r#"{"subscribed":true}"#)],
                vec![fake::ok(2, "[]")],
            ],
            vec![event_line(&Event::PeerLeft { peer: bob(&[]) })],
        );
        let mut out = Out::new(Vec::new());
        let (_, res) = tokio::join!(
            daemon,
            run(&mut client, &mut out, false, || {}, std::future::pending())
        );
        assert!(matches!(res, Err(Error::Closed)));
        let text = String::from_utf8(out.into_inner()).expect("utf8");
        let (time, rest) = text.split_once(' ').expect("time and text");
        assert_eq!(time.len(), 8, "{text}");
        assert_eq!(time.bytes().filter(|b| *b == b':').count(), 2, "{text}");
        assert_eq!(rest, format!("bob ({}) left\n", bob(&[]).id.short()));
    }

    #[tokio::test]
    async fn stop_ends_the_stream_successfully() {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let (a, b) = tokio::io::duplex(4096);
        let mut client = Client::new(a);
        // The daemon's end stays open for the whole test: only `stop` can end the watch.
        let (read, mut write) = tokio::io::split(b);
        let mut requests = BufReader::new(read).lines();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let daemon = async {
            requests
                .next_line()
                .await
                .expect("read")
                .expect("subscribe request");
            let reply = format!("{}\n", fake::ok(1, r#"{"subscribed":true}"#));
            write.write_all(reply.as_bytes()).await.expect("write");
            tx.send(()).ok();
        };
        let stop = async move {
            rx.await.ok();
        };
        let mut out = Out::new(Vec::new());
        let mut subscribed = false;
        let ((), res) = tokio::join!(
            daemon,
            run(&mut client, &mut out, true, || subscribed = true, stop)
        );
        assert!(res.is_ok(), "{res:?}");
        assert!(subscribed);
        assert!(out.into_inner().is_empty());
    }

    #[tokio::test]
    async fn refused_subscription_is_an_error() {
        let error = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"unknown method \"subscribe\""}}"#;
        let (mut client, daemon) = fake::daemon(vec![vec![error.into()]], vec![]);
        let mut out = Out::new(Vec::<u8>::new());
        let (_, res) = tokio::join!(
            daemon,
            run(&mut client, &mut out, true, || {}, std::future::pending())
        );
        assert!(matches!(res, Err(Error::Rpc(e)) if e.code == -32601));
    }
}
