//! `p2pctl transfers`: incoming offers waiting for an answer first, then the other
//! transfers both ways, then finished ones, newest first in each group, with progress, rate,
//! ETA, the first file's name and a time; `transfers clear` forgets the finished ones.

use std::io::Write;

use proto::api::{
    Call, Direction, TransferInfo, TransferKind, TransferState, TransfersCleared, sort_for_listing,
};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::client::Client;
use crate::error::Error;
use crate::output::{
    Out, Table, clean, human_bytes, human_duration, human_rate, percent, reason, short_time,
    short_transfer, transfer_state,
};

/// Paths of an offer recalled under the table.
const SAMPLE: usize = 3;

/// Asks for the transfers (`all`: also those that ended over a week ago) and prints them.
pub(crate) async fn run<S, W>(
    client: &mut Client<S>,
    out: &mut Out<W>,
    json: bool,
    all: bool,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite,
    W: Write,
{
    let tz = jiff::tz::TimeZone::system();
    let now = crate::output::unix_now().saturating_mul(1000);
    super::show(
        client,
        out,
        json,
        Call::Transfers { all },
        |v: Vec<TransferInfo>| render(v, now, &tz),
    )
    .await
}

/// `transfers clear`: forgets the finished transfers and says how many.
pub(crate) async fn clear<S, W>(
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
        Call::TransfersClear {},
        |c: TransfersCleared| match c.cleared {
            1 => "forgot 1 finished transfer\n".into(),
            n => format!("forgot {n} finished transfers\n"),
        },
    )
    .await
}

/// An incoming offer waiting for the user's answer.
fn waiting(t: &TransferInfo) -> bool {
    t.group() == 0
}

/// The human table, with the waiting offers and the reasons of failures under it, or a
/// sentence when there is nothing. `now_ms` and `tz` place the TIME column.
fn render(mut list: Vec<TransferInfo>, now_ms: u64, tz: &jiff::tz::TimeZone) -> String {
    if list.is_empty() {
        return "no transfers\n".into();
    }
    sort_for_listing(&mut list);
    let mut table = Table::new(&[
        "ID", "DIR", "PEER", "STATE", "SIZE", "PROGRESS", "RATE", "ETA", "TIME", "NAME",
    ]);
    for t in &list {
        // While scanning, progress, rate and ETA are those of the hashing; p2pd gives no
        // rate while no data moves (the peer away, the link down).
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
            human_bytes(t.total_bytes),
            percent(t),
            if running && t.rate > 0 {
                human_rate(t.rate)
            } else {
                "-".into()
            },
            match t.eta_secs {
                Some(eta) if running && t.rate > 0 => human_duration(eta),
                _ => "-".into(),
            },
            match t.shown_at_ms() {
                0 => "-".into(),
                at => short_time(at, now_ms, tz),
            },
            t.first_name().map_or_else(|| "-".into(), |n| clean(&n)),
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
    use proto::timefmt::format_ms;
    use proto::transfer::TransferId;

    /// 2023-11-14 22:13:20 UTC.
    const NOW: u64 = 1_700_000_000_000;
    const MIN: u64 = 60_000;

    fn at(mut t: TransferInfo, first: u8, minutes_ago: u64) -> TransferInfo {
        t.id = TransferId([first; 16]);
        t.created_at = Some(format_ms(NOW - minutes_ago * MIN));
        if t.state.is_final() {
            t.ended_at = Some(format_ms(NOW - minutes_ago * MIN + MIN));
        }
        t
    }

    fn show(list: Vec<TransferInfo>) -> String {
        render(list, NOW, &jiff::tz::TimeZone::UTC)
    }

    #[test]
    fn table_puts_waiting_offers_first_and_the_newest_first_in_each_group() {
        let mut running = at(transfer(Direction::Out, TransferState::Running), 0x11, 30);
        running.done_bytes = 6_448_743;
        running.rate = 4_300_000;
        running.eta_secs = Some(2);
        // Running, but no data moves (the peer is away): no rate, no ETA.
        let mut stalled = at(transfer(Direction::In, TransferState::Running), 0x66, 20);
        stalled.eta_secs = Some(9);
        stalled.landed = vec!["photos/a (1).jpg".into()];
        let done = at(transfer(Direction::Out, TransferState::Done), 0x22, 24 * 60);
        let mut failed = at(transfer(Direction::In, TransferState::Failed), 0x33, 90);
        failed.error = Some("hash mismatch in a.jpg\u{1b}[1m".into());
        failed.kind = TransferKind::Pull;
        failed.files = 1;
        let mut offer = at(
            transfer(Direction::In, TransferState::Offered),
            0x44,
            400 * 24 * 60,
        );
        offer.files = 7;
        offer.sample = vec![
            "x\u{1b}[2J.txt".into(),
            "y.txt".into(),
            "z.txt".into(),
            "w.txt".into(),
        ];
        let mut queued = at(transfer(Direction::Out, TransferState::Queued), 0x55, 5);
        queued.sample.clear();
        queued.created_at = None;
        assert_eq!(
            show(vec![running, done, failed, offer, queued, stalled]),
            "ID        DIR     PEER  STATE    SIZE      PROGRESS  RATE       ETA  TIME          NAME\n\
             44444444  ← from  bob   offered  12.3 MiB  0%        -          -    2022-10-10    x\\e[2J.txt +6 more\n\
             66666666  ← from  bob   running  12.3 MiB  0%        -          -    21:53         photos/a (1).jpg +2 more\n\
             11111111  → to    bob   running  12.3 MiB  50%       4.1 MiB/s  2 s  21:43         photos/a.jpg +2 more\n\
             55555555  → to    bob   queued   12.3 MiB  0%        -          -    -             -\n\
             33333333  ← pull  bob   failed   12.3 MiB  0%        -          -    20:44         photos/a.jpg\n\
             22222222  → to    bob   done     12.3 MiB  100%      -          -    Nov 13 22:14  photos/a.jpg +2 more\n\
             \n\
             offer 44444444 from bob: x\\e[2J.txt, y.txt, z.txt and 4 more\n\
             answer with 'p2pctl accept ID [--to DIR]' or 'p2pctl decline ID'\n\
             \n\
             33333333 failed: hash mismatch in a.jpg\\e[1m\n"
        );
    }

    #[test]
    fn nothing_to_show() {
        assert_eq!(show(Vec::new()), "no transfers\n");
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
        let (requests, res) = tokio::join!(daemon, run(&mut client, &mut out, true, true));
        res.expect("transfers");
        assert_eq!(
            requests,
            [r#"{"jsonrpc":"2.0","id":1,"method":"transfers","params":{"all":true}}"#]
        );
        assert_eq!(out.into_inner(), format!("{list}\n").into_bytes());
    }

    #[tokio::test]
    async fn human_empty_list() {
        let (mut client, daemon) = fake::daemon(vec![vec![fake::ok(1, "[]")]], vec![]);
        let mut out = Out::new(Vec::new());
        let (requests, res) = tokio::join!(daemon, run(&mut client, &mut out, false, false));
        res.expect("transfers");
        assert_eq!(
            requests,
            [r#"{"jsonrpc":"2.0","id":1,"method":"transfers","params":{"all":false}}"#]
        );
        assert_eq!(out.into_inner(), b"no transfers\n");
    }

    #[tokio::test]
    async fn clear_says_how_many_were_forgotten() {
        for (n, text) in [
            (0, "forgot 0 finished transfers\n"),
            (1, "forgot 1 finished transfer\n"),
            (3, "forgot 3 finished transfers\n"),
        ] {
            let answer = format!(r#"{{"cleared":{n}}}"#);
            let (mut client, daemon) = fake::daemon(vec![vec![fake::ok(1, &answer)]], vec![]);
            let mut out = Out::new(Vec::new());
            let (requests, res) = tokio::join!(daemon, clear(&mut client, &mut out, false));
            res.expect("clear");
            assert_eq!(
                requests,
                [r#"{"jsonrpc":"2.0","id":1,"method":"transfers_clear","params":{}}"#]
            );
            assert_eq!(String::from_utf8(out.into_inner()).unwrap(), text);
        }
    }
}
