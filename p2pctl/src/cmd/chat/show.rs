//! What an interactive `chat` shows besides messages: the recent conversation when it opens,
//! the peer's file offers, and how transfers with the peer ended. Pure formatting, apart from
//! the one `history` request.

use std::collections::HashSet;

use proto::api::{Call, Direction, MessageInfo, MessageState, TransferInfo, TransferState};
use proto::peer::MessageId;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::client::Client;
use crate::error::Error;
use crate::output::{
    clean, files, from_unix_ms, human_bytes, local_clock, message_state, reason, short_transfer,
    to_from, transfer_state,
};

/// Reads the last `last` messages with the peer and returns their lines, oldest first, and
/// their ids (so the same messages arriving as events are not shown twice).
pub(super) async fn recent<S>(
    client: &mut Client<S>,
    peer: &proto::PeerId,
    last: u32,
) -> Result<(Vec<String>, HashSet<MessageId>), Error>
where
    S: AsyncRead + AsyncWrite,
{
    let history = client
        .call::<Vec<MessageInfo>>(Call::History {
            peer: peer.to_string(),
            limit: Some(last),
        })
        .await?
        .value;
    let ids = history.iter().map(|m| m.id).collect();
    Ok((history.iter().map(past_line).collect(), ids))
}

/// A message of the past: `HH:MM:SS bob: text`, or `HH:MM:SS you: text` with ` [STATE]`
/// after ours that are not delivered.
pub(super) fn past_line(m: &MessageInfo) -> String {
    let clock = local_clock(from_unix_ms(m.sent_at));
    let text = clean(&m.text);
    if m.direction == Direction::In {
        return format!("{clock} {}: {text}", clean(m.peer_name.as_str()));
    }
    match (m.state, m.detail.as_deref().filter(|d| !d.is_empty())) {
        (MessageState::Delivered, _) => format!("{clock} you: {text}"),
        (MessageState::Refused, Some(d)) => {
            format!("{clock} you: {text}  [refused: {}]", clean(d))
        }
        (state, _) => format!("{clock} you: {text}  [{}]", message_state(state)),
    }
}

/// For an offer the peer made to us: `bob offers report.pdf (2.1 MiB): p2pctl accept 1a2b3c4d`.
pub(super) fn offer_line(t: &TransferInfo, name: &str) -> Option<String> {
    if t.direction != Direction::In || t.state != TransferState::Offered {
        return None;
    }
    Some(format!(
        "{name} offers {}: p2pctl accept {}",
        what(t, true),
        short_transfer(&t.id)
    ))
}

/// For a transfer with the peer that ended: `report.pdf from bob: done`, `dir/ (3 files) to
/// bob: failed: REASON`.
pub(super) fn end_line(t: &TransferInfo, name: &str) -> Option<String> {
    if !t.state.is_final() {
        return None;
    }
    Some(format!(
        "{} {} {name}: {}{}",
        what(t, false),
        to_from(t.direction),
        transfer_state(t.state),
        reason(t)
    ))
}

/// What a transfer carries: `report.pdf (2.1 MiB)`, `photos/ (3 files, 2.1 MiB)`, `3 files
/// (2.1 MiB)`; without the size when `size` is false.
fn what(t: &TransferInfo, size: bool) -> String {
    let top = |p: &str| p.split('/').next().unwrap_or(p).to_owned();
    let bytes = human_bytes(t.total_bytes);
    match t.sample.first() {
        Some(first) if t.files == 1 => {
            let name = clean(first);
            if size {
                format!("{name} ({bytes})")
            } else {
                name
            }
        }
        Some(first) if first.contains('/') && t.sample.iter().all(|p| top(p) == top(first)) => {
            let dir = clean(&top(first));
            if size {
                format!("{dir}/ ({}, {bytes})", files(t.files))
            } else {
                format!("{dir}/ ({})", files(t.files))
            }
        }
        _ if size => format!("{} ({bytes})", files(t.files)),
        _ => files(t.files),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::api::TransferKind;
    use proto::{PeerName, SecretKey};

    fn transfer(direction: Direction, state: TransferState, sample: &[&str]) -> TransferInfo {
        TransferInfo {
            id: "1a2b3c4d5e6f708192a3b4c5d6e7f809".parse().expect("id"),
            peer: SecretKey::from_seed([1; 32]).peer_id(),
            peer_name: PeerName::new("bob").expect("name"),
            direction,
            state,
            files: u32::try_from(sample.len()).expect("few"),
            sample: sample.iter().map(|s| (*s).to_owned()).collect(),
            total_bytes: 2_202_010,
            done_bytes: 0,
            rate: 0,
            eta_secs: None,
            local_path: None,
            error: None,
            kind: TransferKind::Receive,
            created_at: None,
            ended_at: None,
            landed: Vec::new(),
            sources: Vec::new(),
            dirs_left_out: 0,
        }
    }

    #[test]
    fn an_offer_names_the_file_its_size_and_the_command() {
        let t = transfer(Direction::In, TransferState::Offered, &["report.pdf"]);
        assert_eq!(
            offer_line(&t, "bob").as_deref(),
            Some("bob offers report.pdf (2.1 MiB): p2pctl accept 1a2b3c4d")
        );
        let t = transfer(
            Direction::In,
            TransferState::Offered,
            &["pics/a.jpg", "pics/b.jpg"],
        );
        assert_eq!(
            offer_line(&t, "bob").as_deref(),
            Some("bob offers pics/ (2 files, 2.1 MiB): p2pctl accept 1a2b3c4d")
        );
        // Ours, or one already decided, is no offer to show.
        let t = transfer(Direction::Out, TransferState::Offered, &["report.pdf"]);
        assert_eq!(offer_line(&t, "bob"), None);
        let t = transfer(Direction::In, TransferState::Running, &["report.pdf"]);
        assert_eq!(offer_line(&t, "bob"), None);
    }

    #[test]
    fn only_ended_transfers_have_an_end_line() {
        let t = transfer(Direction::In, TransferState::Done, &["a.txt", "b/c.txt"]);
        assert_eq!(
            end_line(&t, "bob").as_deref(),
            Some("2 files from bob: done")
        );
        let mut t = transfer(Direction::Out, TransferState::Failed, &["report.pdf"]);
        t.error = Some("disk full\u{1b}[2J".into());
        assert_eq!(
            end_line(&t, "bob").as_deref(),
            Some("report.pdf to bob: failed: disk full\\e[2J")
        );
        let t = transfer(Direction::Out, TransferState::Running, &["report.pdf"]);
        assert_eq!(end_line(&t, "bob"), None);
    }
}
