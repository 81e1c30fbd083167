//! `p2pctl watch`: subscribe, then print each event until interrupted (exit 0) or until the
//! daemon closes the connection (exit 1).
//!
//! The subscribe response is awaited first; once it has arrived the daemon sends every event
//! from then on. At that moment `on_subscribed` runs (the binary prints a line to stderr), so
//! a script can wait for it before causing the events it wants to see.

use std::io::Write;
use std::time::SystemTime;

use proto::api::{
    Call, EVENT_NOTIFICATION, Event, PeerInfo, Subscribed, TrackerLinkState, TrackerStatus,
};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::client::{Client, Notice};
use crate::error::Error;
use crate::output::{Out, addresses, clean, local_clock};

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
    let reply = client.call::<Subscribed>(Call::Subscribe {}).await?;
    if !reply.value.subscribed {
        return Err(Error::Protocol(
            "p2pd did not confirm the subscription".into(),
        ));
    }
    on_subscribed();
    let mut stop = std::pin::pin!(stop);
    loop {
        let notice = tokio::select! {
            biased;
            () = &mut stop => return Ok(()),
            notice = client.next_notice() => notice?,
        };
        let Some(notice) = notice else {
            return Err(Error::Closed);
        };
        if notice.method != EVENT_NOTIFICATION {
            continue;
        }
        if json {
            out.line(&notice.raw_params)?;
        } else {
            out.line(&format!(
                "{} {}",
                local_clock(SystemTime::now()),
                describe_notice(&notice)
            ))?;
        }
    }
}

/// Completes on ctrl-c or SIGTERM. If a handler cannot be installed, that signal keeps its
/// default action (the process ends) and this waits on the other.
pub(crate) async fn interrupted() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// The text of one event notification; events this p2pctl does not know yet are named by
/// their `type`.
fn describe_notice(notice: &Notice) -> String {
    match serde_json::from_value::<Event>(notice.params.clone()) {
        Ok(event) => describe(&event),
        Err(_) => {
            let kind = notice
                .params
                .get("type")
                .and_then(|t| t.as_str())
                .unwrap_or("unknown");
            format!("{} event", clean(kind))
        }
    }
}

/// One line of human text for an event (without the time).
fn describe(event: &Event) -> String {
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
    use crate::cmd::fake;
    use proto::{PeerName, SecretKey};

    fn bob(addrs: &[&str]) -> PeerInfo {
        PeerInfo {
            name: PeerName::new("bob").expect("name"),
            id: SecretKey::from_seed([1; 32]).peer_id(),
            addrs: addrs.iter().map(|a| a.parse().expect("addr")).collect(),
            online: true,
            since: 1,
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
        ];
        for (event, text) in cases {
            assert_eq!(describe(&event), text);
        }
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
        assert_eq!(describe_notice(&notice), "offer\\e[1m event");
    }

    fn event_line(event: &Event) -> String {
        let params = serde_json::to_string(event).expect("json");
        format!(r#"{{"jsonrpc":"2.0","method":"event","params":{params}}}"#)
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
            vec![vec![fake::ok(1, r#"{"subscribed":true}"#)]],
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
