//! `p2pctl transfers`: incoming offers waiting for an answer first, then the other
//! transfers both ways, with progress, rate and ETA.

use std::io::Write;

use proto::api::{Call, Direction, TransferInfo, TransferKind, TransferState};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::client::Client;
use crate::error::Error;
use crate::output::{
    Out, Table, clean, human_bytes, human_duration, human_rate, percent, reason, short_transfer,
    transfer_state,
};

/// Paths of an offer recalled under the table.
const SAMPLE: usize = 3;

/// Asks for the transfers and prints them.
pub(crate) async fn run<S, W>(
    client: &mut Client<S>,
    out: &mut Out<W>,
    json: bool,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite,
    W: Write,
{
    super::show(
        client,
        out,
        json,
        Call::Transfers {},
        |v: Vec<TransferInfo>| render(v),
    )
    .await
}

/// An incoming offer waiting for the user's answer.
fn waiting(t: &TransferInfo) -> bool {
    t.direction == Direction::In && t.state == TransferState::Offered
}

/// Where a transfer sorts: offers to answer, then those under way, then finished ones; the
/// daemon's order within each group.
fn group(t: &TransferInfo) -> u8 {
    if waiting(t) {
        0
    } else if t.state.is_final() {
        2
    } else {
        1
    }
}

/// The human table, with the waiting offers and the reasons of failures under it, or a
/// sentence when there is nothing.
fn render(mut list: Vec<TransferInfo>) -> String {
    if list.is_empty() {
        return "no transfers\n".into();
    }
    list.sort_by_key(group);
    let mut table = Table::new(&[
        "ID", "DIR", "PEER", "STATE", "FILES", "SIZE", "PROGRESS", "RATE", "ETA",
    ]);
    for t in &list {
        // While scanning, progress, rate and ETA are those of the hashing.
        let running = matches!(t.state, TransferState::Running | TransferState::Scanning);
        table.row(vec![
            short_transfer(&t.id),
            match (t.direction, t.kind) {
                (Direction::Out, _) => "→ to",
                (Direction::In, TransferKind::Pull) => "← pull",
                (Direction::In, _) => "← from",
            }
            .into(),
            clean(t.peer_name.as_str()),
            transfer_state(t.state).into(),
            t.files.to_string(),
            human_bytes(t.total_bytes),
            percent(t),
            if running && t.rate > 0 {
                human_rate(t.rate)
            } else {
                "-".into()
            },
            match t.eta_secs {
                Some(eta) if running => human_duration(eta),
                _ => "-".into(),
            },
        ]);
    }
    let mut text = table.render();
    let offers: Vec<&TransferInfo> = list.iter().filter(|t| waiting(t)).collect();
    if !offers.is_empty() {
        text.push('\n');
        for t in &offers {
            text.push_str(&format!(
                "offer {} from {}: {}\n",
                short_transfer(&t.id),
                clean(t.peer_name.as_str()),
                sample(t)
            ));
        }
        text.push_str("answer with 'p2pctl accept ID [--to DIR]' or 'p2pctl decline ID'\n");
    }
    let ended: Vec<&TransferInfo> = list
        .iter()
        .filter(|t| t.state.is_final() && t.state != TransferState::Done)
        .filter(|t| t.error.as_deref().is_some_and(|e| !e.is_empty()))
        .collect();
    if !ended.is_empty() {
        text.push('\n');
        for t in ended {
            text.push_str(&format!(
                "{} {}{}\n",
                short_transfer(&t.id),
                transfer_state(t.state),
                reason(t)
            ));
        }
    }
    text
}

/// Up to [`SAMPLE`] of an offer's paths, neutralised: `a.jpg, b.jpg and 4 more`.
fn sample(t: &TransferInfo) -> String {
    let shown: Vec<String> = t.sample.iter().take(SAMPLE).map(|p| clean(p)).collect();
    let rest = u64::from(t.files).saturating_sub(shown.len() as u64);
    match (shown.is_empty(), rest) {
        (true, _) => crate::output::files(t.files),
        (false, 0) => shown.join(", "),
        (false, n) => format!("{} and {n} more", shown.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::fake::{self, transfer};
    use proto::transfer::TransferId;

    fn with_id(mut t: TransferInfo, first: u8) -> TransferInfo {
        t.id = TransferId([first; 16]);
        t
    }

    #[test]
    fn table_puts_waiting_offers_first() {
        let mut running = with_id(transfer(Direction::Out, TransferState::Running), 0x11);
        running.done_bytes = 6_448_743;
        running.rate = 4_300_000;
        running.eta_secs = Some(2);
        let done = with_id(transfer(Direction::Out, TransferState::Done), 0x22);
        let mut failed = with_id(transfer(Direction::In, TransferState::Failed), 0x33);
        failed.error = Some("hash mismatch in a.jpg\u{1b}[1m".into());
        failed.kind = TransferKind::Pull;
        let mut offer = with_id(transfer(Direction::In, TransferState::Offered), 0x44);
        offer.files = 7;
        offer.sample = vec![
            "x\u{1b}[2J.txt".into(),
            "y.txt".into(),
            "z.txt".into(),
            "w.txt".into(),
        ];
        let queued = with_id(transfer(Direction::Out, TransferState::Queued), 0x55);
        assert_eq!(
            render(vec![running, done, failed, offer, queued]),
            "ID        DIR     PEER  STATE    FILES  SIZE      PROGRESS  RATE       ETA\n\
             44444444  ← from  bob   offered  7      12.3 MiB  0%        -          -\n\
             11111111  → to    bob   running  3      12.3 MiB  50%       4.1 MiB/s  2s\n\
             55555555  → to    bob   queued   3      12.3 MiB  0%        -          -\n\
             22222222  → to    bob   done     3      12.3 MiB  100%      -          -\n\
             33333333  ← pull  bob   failed   3      12.3 MiB  0%        -          -\n\
             \n\
             offer 44444444 from bob: x\\e[2J.txt, y.txt, z.txt and 4 more\n\
             answer with 'p2pctl accept ID [--to DIR]' or 'p2pctl decline ID'\n\
             \n\
             33333333 failed: hash mismatch in a.jpg\\e[1m\n"
        );
    }

    #[test]
    fn nothing_to_show() {
        assert_eq!(render(Vec::new()), "no transfers\n");
    }

    #[test]
    fn samples() {
        let mut t = transfer(Direction::In, TransferState::Offered);
        assert_eq!(sample(&t), "photos/a.jpg, photos/b.jpg, notes.txt");
        t.sample.clear();
        assert_eq!(sample(&t), "3 files");
        t.sample = vec!["a".into()];
        t.files = 2;
        assert_eq!(sample(&t), "a and 1 more");
    }

    #[tokio::test]
    async fn json_is_the_list_verbatim() {
        let list = serde_json::to_string(&[transfer(Direction::In, TransferState::Offered)])
            .expect("json");
        let (mut client, daemon) = fake::daemon(vec![vec![fake::ok(1, &list)]], vec![]);
        let mut out = Out::new(Vec::new());
        let (requests, res) = tokio::join!(daemon, run(&mut client, &mut out, true));
        res.expect("transfers");
        assert_eq!(
            requests,
            [r#"{"jsonrpc":"2.0","id":1,"method":"transfers","params":{}}"#]
        );
        assert_eq!(out.into_inner(), format!("{list}\n").into_bytes());
    }

    #[tokio::test]
    async fn human_empty_list() {
        let (mut client, daemon) = fake::daemon(vec![vec![fake::ok(1, "[]")]], vec![]);
        let mut out = Out::new(Vec::new());
        let (_, res) = tokio::join!(daemon, run(&mut client, &mut out, false));
        res.expect("transfers");
        assert_eq!(out.into_inner(), b"no transfers\n");
    }
}
