//! `p2pctl msg PEER TEXT`: send one message; say whether it was delivered or queued.
//!
//! Order of requests: `subscribe` (so no event about the message can be missed), `peers` (is
//! the peer online?), `send_message`. If the peer is online, wait up to [`DELIVERY_WAIT`] for
//! the `message_updated` event with the message's id. An offline peer, a `peer_left` for it,
//! or the end of the wait all mean the message stays queued: the daemon delivers it later,
//! and `msg` still succeeds. A `link_error` for the peer does not end the wait (p2pd retries,
//! and the retry may deliver), but is named if the wait ends without delivery.

use std::io::Write;
use std::time::Duration;

use proto::api::{Call, EVENT_NOTIFICATION, Event, MessageInfo, MessageState, PeerInfo};
use proto::peer::MAX_TEXT;
use tokio::io::{AsyncRead, AsyncWrite};

use proto::reach::Reach;

use super::{message_raw, subscribe};
use crate::client::Client;
use crate::error::Error;
use crate::output::{self, Out, clean};

/// How long to wait for delivery to an online peer before reporting the message as queued.
pub(crate) const DELIVERY_WAIT: Duration = Duration::from_secs(10);

/// How many recent messages to read back when events were lost (`lagged`).
const LOOKBACK: u32 = 200;

/// Why a message is still queued.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    /// The peer is offline.
    Offline,
    /// No source sees the peer; p2pd dials its last known address (the address book).
    LastKnown,
    /// The tracker shows another key for the peer's name; p2pd sends nothing until the user
    /// forgets the pinned key.
    KeyChanged,
    /// No answer within the wait.
    NoAnswer(Duration),
    /// No answer within the wait, and the link to the peer failed meanwhile.
    LinkError(String),
}

/// How the send ended.
#[derive(Debug)]
enum Outcome {
    /// Delivered or refused: the message in its final state, and its JSON as received.
    Settled(MessageInfo, String),
    /// Still queued.
    Queued(Pending),
}

/// Sends `text` to `peer` and reports the outcome; waits at most `wait` for delivery.
pub(crate) async fn run<S, W>(
    client: &mut Client<S>,
    out: &mut Out<W>,
    json: bool,
    peer: String,
    text: String,
    wait: Duration,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite,
    W: Write,
{
    if text.len() > MAX_TEXT {
        return Err(too_long(text.len()));
    }
    subscribe(client).await?;
    let peers = client.call::<Vec<PeerInfo>>(Call::Peers {}).await?.value;
    let sent = client
        .call::<MessageInfo>(Call::SendMessage { peer, text })
        .await?;
    let peer = peers.iter().find(|p| p.id == sent.value.peer);
    let outcome = match sent.value.state {
        MessageState::Delivered | MessageState::Refused | MessageState::Deferred => {
            Outcome::Settled(sent.value.clone(), sent.raw.clone())
        }
        _ => match Reach::of_known(peer) {
            Reach::KeyChanged => Outcome::Queued(Pending::KeyChanged),
            // See `awaited`: a dial to the last known address is not waited for.
            Reach::Book => Outcome::Queued(Pending::LastKnown),
            Reach::Offline | Reach::Blocked => Outcome::Queued(Pending::Offline),
            Reach::Online => {
                let mut link_error = None;
                let settled = settle(client, &sent.value, &mut link_error);
                match tokio::time::timeout(wait, settled).await {
                    Ok(outcome) => outcome?,
                    Err(_) => Outcome::Queued(match link_error {
                        Some(detail) => Pending::LinkError(detail),
                        None => Pending::NoAnswer(wait),
                    }),
                }
            }
        },
    };
    let name = clean(sent.value.peer_name.as_str());
    match outcome {
        Outcome::Settled(message, raw) => {
            // A refusal is the error document alone (one JSON document per command).
            if message.state == MessageState::Refused {
                return Err(refused(&name, message.detail.as_deref()));
            }
            if json {
                out.line(&raw)?;
            }
            if !json {
                if message.state == MessageState::Deferred {
                    out.line(&format!(
                        "deferred by {name} (it is receiving too fast from you); \
                         p2pd sends it again later"
                    ))?;
                } else {
                    out.line(&format!("delivered to {name}"))?;
                }
            }
            Ok(())
        }
        Outcome::Queued(why) => {
            if json {
                out.line(&sent.raw)
            } else {
                out.line(&queued_line(&name, &why))
            }
        }
    }
}

/// The error for a text over [`MAX_TEXT`].
pub(crate) fn too_long(len: usize) -> Error {
    Error::Failed(format!(
        "the message is {len} bytes long; the limit is {MAX_TEXT} bytes (64 KiB)"
    ))
}

/// The error for a refused message.
fn refused(name: &str, detail: Option<&str>) -> Error {
    match detail.filter(|d| !d.is_empty()) {
        Some(d) => Error::Failed(format!("{name} refused the message: {}", clean(d))),
        None => Error::Failed(format!("{name} refused the message")),
    }
}

/// What to say about a message left in the outbox.
fn queued_line(name: &str, why: &Pending) -> String {
    match why {
        Pending::Offline => {
            format!("queued for {name} (offline); it will be delivered when {name} is back")
        }
        Pending::LastKnown => format!(
            "queued for {name} (offline); p2pd tries its last known address, and delivers it \
             when {name} is back"
        ),
        Pending::KeyChanged => format!(
            "queued for {name}, but not sent: the tracker shows another key for {name} \
             (see 'p2pctl peers'; 'p2pctl forget-key {name}' if the new key is really theirs)"
        ),
        Pending::NoAnswer(wait) => format!(
            "queued for {name} (not delivered within {}); p2pd keeps trying",
            output::human_duration(wait.as_secs())
        ),
        Pending::LinkError(detail) => format!(
            "queued for {name} (not delivered; link error: {}); p2pd keeps trying",
            clean(detail)
        ),
    }
}

/// Reads events until `sent` is delivered or refused, or its peer goes away. The last link
/// error reported for the peer meanwhile is left in `link_error`.
async fn settle<S: AsyncRead + AsyncWrite>(
    client: &mut Client<S>,
    sent: &MessageInfo,
    link_error: &mut Option<String>,
) -> Result<Outcome, Error> {
    loop {
        let Some(notice) = client.next_notice().await? else {
            return Err(Error::Closed);
        };
        if notice.method != EVENT_NOTIFICATION {
            continue;
        }
        let Ok(event) = serde_json::from_value::<Event>(notice.params.clone()) else {
            continue;
        };
        match event {
            Event::MessageUpdated { message } if message.id == sent.id && settled(&message) => {
                let raw = message_raw(&notice, &message);
                return Ok(Outcome::Settled(message, raw));
            }
            Event::PeerLeft { peer } if peer.id == sent.peer => {
                return Ok(Outcome::Queued(Pending::Offline));
            }
            Event::LinkError {
                peer: Some(peer),
                detail,
            } if peer == sent.peer => *link_error = Some(detail),
            Event::Lagged { .. } => {
                // The update may be among the lost events: read the conversation back.
                let history = client
                    .call::<Vec<MessageInfo>>(Call::History {
                        peer: sent.peer.to_string(),
                        limit: Some(LOOKBACK),
                    })
                    .await?;
                if let Some(m) = history
                    .value
                    .into_iter()
                    .find(|m| m.id == sent.id && settled(m))
                {
                    let raw = serde_json::to_string(&m)
                        .map_err(|e| Error::Protocol(format!("cannot encode a message: {e}")))?;
                    return Ok(Outcome::Settled(m, raw));
                }
            }
            _ => {}
        }
    }
}

/// Delivered or refused (no further change will come), or deferred by the peer (p2pd sends
/// it again later; waiting for that is not `msg`'s job).
fn settled(m: &MessageInfo) -> bool {
    matches!(
        m.state,
        MessageState::Delivered | MessageState::Refused | MessageState::Deferred
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::fake::{self, event_line};
    use crate::cmd::history::tests::message;
    use proto::api::Direction;
    use proto::{PeerName, SecretKey};

    const SUBSCRIBE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{}}"#;
    const PEERS: &str = r#"{"jsonrpc":"2.0","id":2,"method":"peers","params":{}}"#;
    const SEND: &str =
        r#"{"jsonrpc":"2.0","id":3,"method":"send_message","params":{"peer":"bob","text":"hi"}}"#;

    fn bob(online: bool) -> PeerInfo {
        PeerInfo {
            name: PeerName::new("bob").expect("name"),
            id: SecretKey::from_seed([1; 32]).peer_id(),
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

    fn queued() -> MessageInfo {
        message(7, Direction::Out, MessageState::Queued, "hi", 1_700_000_000)
    }

    fn with_state(state: MessageState, detail: Option<&str>) -> MessageInfo {
        MessageInfo {
            state,
            detail: detail.map(Into::into),
            ..queued()
        }
    }

    /// The daemon's first three answers: subscribed, the peer list, the queued message; then
    /// `events` right after the send's answer.
    fn script(online: bool, events: Vec<String>) -> Vec<Vec<String>> {
        let peers = serde_json::to_string(&[bob(online)]).expect("json");
        let sent = serde_json::to_string(&queued()).expect("json");
        let mut send_reply = vec![fake::ok(3, &sent)];
        send_reply.extend(events);
        vec![
            vec![fake::ok(1, r#"{"subscribed":true}"#)],
            vec![fake::ok(2, &peers)],
            send_reply,
        ]
    }

    async fn msg(
        replies: Vec<Vec<String>>,
        json: bool,
    ) -> (Vec<String>, Result<(), Error>, String) {
        let (client, daemon) = fake::daemon_held_open(replies, vec![]);
        let mut out = Out::new(Vec::new());
        let run = async {
            let mut client = client;
            run(
                &mut client,
                &mut out,
                json,
                "bob".into(),
                "hi".into(),
                DELIVERY_WAIT,
            )
            .await
        };
        let (requests, res) = tokio::join!(daemon, run);
        let text = String::from_utf8(out.into_inner()).expect("utf8");
        (requests, res, text)
    }

    fn updated(m: &MessageInfo) -> String {
        event_line(&Event::MessageUpdated { message: m.clone() })
    }

    #[tokio::test]
    async fn delivered_to_an_online_peer() {
        let delivered = with_state(MessageState::Delivered, None);
        // An update for another message first: ignored.
        let other = MessageInfo {
            id: proto::peer::MessageId([1; 16]),
            ..delivered.clone()
        };
        let (requests, res, text) = msg(
            script(true, vec![updated(&other), updated(&delivered)]),
            false,
        )
        .await;
        res.expect("delivered");
        assert_eq!(requests, [SUBSCRIBE, PEERS, SEND]);
        assert_eq!(text, "delivered to bob\n");
    }

    #[tokio::test]
    async fn json_prints_the_final_message_verbatim() {
        let delivered = with_state(MessageState::Delivered, None);
        let (_, res, text) = msg(script(true, vec![updated(&delivered)]), true).await;
        res.expect("delivered");
        let got: MessageInfo = serde_json::from_str(text.trim_end()).expect("one document");
        assert_eq!(got, delivered);
        assert_eq!(text.lines().count(), 1);
    }

    #[tokio::test]
    async fn refused_fails_with_the_reason() {
        let refused = with_state(MessageState::Refused, Some("the peer has blocked you"));
        let (_, res, text) = msg(script(true, vec![updated(&refused)]), false).await;
        let err = res.expect_err("refused");
        assert_eq!(
            err.to_string(),
            "bob refused the message: the peer has blocked you"
        );
        assert_eq!(err.exit_code(), std::process::ExitCode::from(1));
        assert_eq!(text, "");
        // With --json too the command prints nothing: the error document says it all.
        let (_, res, text) = msg(script(true, vec![updated(&refused)]), true).await;
        assert!(res.is_err());
        assert_eq!(text, "");
    }

    #[tokio::test]
    async fn offline_peer_means_queued_at_once() {
        let (requests, res, text) = msg(script(false, vec![]), false).await;
        res.expect("queued is success");
        assert_eq!(requests, [SUBSCRIBE, PEERS, SEND]);
        assert_eq!(
            text,
            "queued for bob (offline); it will be delivered when bob is back\n"
        );
        let (_, res, text) = msg(script(false, vec![]), true).await;
        res.expect("queued");
        let got: MessageInfo = serde_json::from_str(text.trim_end()).expect("json");
        assert_eq!(got, queued());
    }

    #[tokio::test]
    async fn changed_key_means_queued_at_once() {
        let mut replies = script(true, vec![]);
        let mut conflicted = bob(true);
        conflicted.key_conflict = Some(SecretKey::from_seed([5; 32]).peer_id());
        replies[1] = vec![fake::ok(
            2,
            &serde_json::to_string(&[conflicted]).expect("json"),
        )];
        let (_, res, text) = msg(replies, false).await;
        res.expect("queued");
        assert_eq!(
            text,
            "queued for bob, but not sent: the tracker shows another key for bob (see 'p2pctl \
             peers'; 'p2pctl forget-key bob' if the new key is really theirs)\n"
        );
    }

    #[tokio::test]
    async fn a_peer_known_only_from_the_book_is_not_waited_for() {
        let mut replies = script(false, vec![]);
        let mut booked = bob(false);
        booked.addrs = vec!["127.0.0.1:4000".parse().expect("addr")];
        booked.sources = vec![proto::api::PeerSource::Book];
        replies[1] = vec![fake::ok(
            2,
            &serde_json::to_string(&[booked]).expect("json"),
        )];
        let (requests, res, text) = msg(replies, false).await;
        res.expect("queued");
        assert_eq!(requests, [SUBSCRIBE, PEERS, SEND]);
        assert_eq!(
            text,
            "queued for bob (offline); p2pd tries its last known address, and delivers it when \
             bob is back\n"
        );
    }

    #[tokio::test]
    async fn peer_leaving_means_queued() {
        let left = event_line(&Event::PeerLeft { peer: bob(false) });
        let (_, res, text) = msg(script(true, vec![left]), false).await;
        res.expect("queued");
        assert_eq!(
            text,
            "queued for bob (offline); it will be delivered when bob is back\n"
        );
    }

    fn link_error() -> String {
        event_line(&Event::LinkError {
            peer: Some(bob(true).id),
            detail: "key mismatch\u{1b}[1m".into(),
        })
    }

    #[tokio::test]
    async fn a_link_error_does_not_end_the_wait() {
        let delivered = with_state(MessageState::Delivered, None);
        let (_, res, text) =
            msg(script(true, vec![link_error(), updated(&delivered)]), false).await;
        res.expect("delivered");
        assert_eq!(text, "delivered to bob\n");
    }

    #[tokio::test(start_paused = true)]
    async fn a_link_error_is_named_when_the_wait_ends() {
        let (_, res, text) = msg(script(true, vec![link_error()]), false).await;
        res.expect("queued");
        assert_eq!(
            text,
            "queued for bob (not delivered; link error: key mismatch\\e[1m); p2pd keeps trying\n"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_answer_within_the_wait_means_queued() {
        let (_, res, text) = msg(script(true, vec![]), false).await;
        res.expect("queued");
        assert_eq!(
            text,
            "queued for bob (not delivered within 10 s); p2pd keeps trying\n"
        );
    }

    #[tokio::test]
    async fn lost_events_are_recovered_from_history() {
        let delivered = with_state(MessageState::Delivered, None);
        let mut replies = script(true, vec![event_line(&Event::Lagged { missed: 4 })]);
        let history = serde_json::to_string(&[delivered]).expect("json");
        replies.push(vec![fake::ok(4, &history)]);
        let (requests, res, text) = msg(replies, false).await;
        res.expect("delivered");
        assert_eq!(
            requests[3],
            format!(
                r#"{{"jsonrpc":"2.0","id":4,"method":"history","params":{{"peer":"{}","limit":200}}}}"#,
                bob(true).id
            )
        );
        assert_eq!(text, "delivered to bob\n");
    }

    #[tokio::test]
    async fn too_long_is_refused_before_sending() {
        let (mut client, daemon) = fake::daemon(vec![], vec![]);
        let mut out = Out::new(Vec::new());
        let text = "x".repeat(MAX_TEXT + 1);
        let (requests, res) = tokio::join!(
            daemon,
            run(
                &mut client,
                &mut out,
                false,
                "bob".into(),
                text,
                DELIVERY_WAIT
            )
        );
        assert!(requests.is_empty());
        let err = res.expect_err("too long");
        assert_eq!(
            err.to_string(),
            "the message is 65537 bytes long; the limit is 65536 bytes (64 KiB)"
        );
    }

    #[tokio::test]
    async fn daemon_errors_fail() {
        let error =
            r#"{"jsonrpc":"2.0","id":3,"error":{"code":1001,"message":"unknown peer \"bob\""}}"#;
        let mut replies = script(true, vec![]);
        replies[2] = vec![error.into()];
        let (_, res, text) = msg(replies, false).await;
        assert!(matches!(res, Err(Error::Rpc(e)) if e.code == 1001));
        assert_eq!(text, "");
    }
}
