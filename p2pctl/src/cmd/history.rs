//! `p2pctl history PEER [--limit N]`: the conversation with a peer, oldest first.

use std::io::Write;
use std::time::SystemTime;

use jiff::tz::TimeZone;
use proto::api::{Call, Direction, MessageInfo, MessageState};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::client::Client;
use crate::error::Error;
use crate::output::{Out, clean, clock_in, date_in, from_unix_ms, message_state};

/// Asks for the conversation and prints it.
pub(crate) async fn run<S, W>(
    client: &mut Client<S>,
    out: &mut Out<W>,
    json: bool,
    peer: String,
    limit: Option<u32>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite,
    W: Write,
{
    let shown = clean(&peer);
    let reply = client
        .call::<Vec<MessageInfo>>(Call::History { peer, limit })
        .await?;
    if json {
        out.line(&reply.raw)
    } else {
        let text = render(&reply.value, &shown, SystemTime::now(), &TimeZone::system());
        out.block(&text)
    }
}

/// One line per message, `HH:MM:SS  WHO  TEXT  [STATE]`, where WHO is `you` or the peer's
/// name and the state is shown for our own messages only. A `--- YYYY-MM-DD ---` line
/// precedes each message whose local date differs from the one before it (the first one's
/// from today's), so a history of today alone has none. `peer` names the peer when there are
/// no messages.
fn render(messages: &[MessageInfo], peer: &str, now: SystemTime, tz: &TimeZone) -> String {
    if messages.is_empty() {
        return format!("no messages with {peer}\n");
    }
    let names: Vec<String> = messages
        .iter()
        .map(|m| match m.direction {
            Direction::Out => "you".to_owned(),
            Direction::In => clean(m.peer_name.as_str()),
        })
        .collect();
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    let mut day = date_in(now, tz);
    let mut text = String::new();
    for (m, who) in messages.iter().zip(names) {
        let at = from_unix_ms(m.sent_at);
        let date = date_in(at, tz);
        if date != day {
            text.push_str(&format!("--- {date} ---\n"));
            day = date;
        }
        let mut line = format!("{}  {who:<width$}  {}", clock_in(at, tz), clean(&m.text));
        if m.direction == Direction::Out {
            line.push_str(&format!("  {}", state_tag(m)));
        }
        text.push_str(&line);
        text.push('\n');
    }
    text
}

/// `[queued]`, `[delivered]`, `[refused: DETAIL]`.
pub(crate) fn state_tag(m: &MessageInfo) -> String {
    match (m.state, m.detail.as_deref().filter(|d| !d.is_empty())) {
        (MessageState::Refused, Some(detail)) => format!("[refused: {}]", clean(detail)),
        (state, _) => format!("[{}]", message_state(state)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cmd::fake;
    use proto::peer::MessageId;
    use proto::{PeerName, SecretKey};

    /// A message with bob; `n` picks the id and seq, `at` is unix seconds.
    pub(crate) fn message(
        n: u8,
        direction: Direction,
        state: MessageState,
        text: &str,
        at: u64,
    ) -> MessageInfo {
        MessageInfo {
            id: MessageId([n; 16]),
            peer: SecretKey::from_seed([1; 32]).peer_id(),
            peer_name: PeerName::new("bob").expect("name"),
            direction,
            seq: u64::from(n),
            text: text.into(),
            state,
            sent_at: at * 1000 + 250,
            detail: None,
        }
    }

    #[test]
    fn lines_with_who_text_and_state() {
        let now = from_unix_ms(1_700_000_000_000 + 3_600_000);
        let mut refused = message(
            3,
            Direction::Out,
            MessageState::Refused,
            "third",
            1_700_000_010,
        );
        refused.detail = Some("the peer has blocked you\u{1b}[0m".into());
        let messages = [
            message(
                1,
                Direction::Out,
                MessageState::Delivered,
                "hello bob",
                1_700_000_000,
            ),
            message(
                1,
                Direction::In,
                MessageState::Received,
                "hi \u{1b}[31mthere\nfriend",
                1_700_000_005,
            ),
            refused,
            message(
                4,
                Direction::Out,
                MessageState::Queued,
                "later",
                1_700_000_020,
            ),
        ];
        assert_eq!(
            render(&messages, "bob", now, &TimeZone::UTC),
            "22:13:20  you  hello bob  [delivered]\n\
             22:13:25  bob  hi \\e[31mthere\\nfriend\n\
             22:13:30  you  third  [refused: the peer has blocked you\\e[0m]\n\
             22:13:40  you  later  [queued]\n"
        );
    }

    #[test]
    fn days_other_than_today_get_a_date_line() {
        let day = 86_400;
        let now = from_unix_ms((1_700_000_000 + 2 * day) * 1000);
        let messages = [
            message(
                1,
                Direction::In,
                MessageState::Received,
                "old",
                1_700_000_000,
            ),
            message(
                2,
                Direction::In,
                MessageState::Received,
                "same day",
                1_700_000_001,
            ),
            message(
                2,
                Direction::Out,
                MessageState::Delivered,
                "today",
                1_700_000_000 + 2 * day,
            ),
        ];
        assert_eq!(
            render(&messages, "bob", now, &TimeZone::UTC),
            "--- 2023-11-14 ---\n\
             22:13:20  bob  old\n\
             22:13:21  bob  same day\n\
             --- 2023-11-16 ---\n\
             22:13:20  you  today  [delivered]\n"
        );
    }

    #[test]
    fn nothing_yet() {
        assert_eq!(
            render(&[], "bob", SystemTime::now(), &TimeZone::UTC),
            "no messages with bob\n"
        );
    }

    #[tokio::test]
    async fn json_prints_the_array_and_passes_the_limit() {
        let list = serde_json::to_string(&[message(
            1,
            Direction::In,
            MessageState::Received,
            "hi",
            1_700_000_000,
        )])
        .expect("json");
        let (mut client, daemon) = fake::daemon(vec![vec![fake::ok(1, &list)]], vec![]);
        let mut out = Out::new(Vec::new());
        let (requests, res) = tokio::join!(
            daemon,
            run(&mut client, &mut out, true, "bob".into(), Some(5))
        );
        res.expect("history");
        assert_eq!(
            requests,
            [r#"{"jsonrpc":"2.0","id":1,"method":"history","params":{"peer":"bob","limit":5}}"#]
        );
        assert_eq!(
            String::from_utf8(out.into_inner()).expect("utf8"),
            format!("{list}\n")
        );
    }

    #[tokio::test]
    async fn default_limit_is_left_to_the_daemon() {
        let (mut client, daemon) = fake::daemon(vec![vec![fake::ok(1, "[]")]], vec![]);
        let mut out = Out::new(Vec::new());
        let (requests, res) = tokio::join!(
            daemon,
            run(&mut client, &mut out, false, "Bob\u{1b}".into(), None)
        );
        res.expect("history");
        assert_eq!(
            requests,
            [
                r#"{"jsonrpc":"2.0","id":1,"method":"history","params":{"peer":"Bob\u001b","limit":null}}"#
            ]
        );
        assert_eq!(out.into_inner(), b"no messages with Bob\\e\n");
    }
}
