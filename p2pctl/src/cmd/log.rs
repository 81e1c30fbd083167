//! `p2pctl log [PEER] [--since TIME] [--follow] [--limit N]`: the daemon's activity log,
//! oldest first, one record a line; with `--follow`, then each new record until interrupted.
//! Times are shown in UTC (`2026-12-05 22:10:03Z`). `--json` prints one record object a line.

use std::io::Write;

use proto::api::{Call, LOG_NOTIFICATION, LogRecord};
use proto::timefmt;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::client::Client;
use crate::error::Error;
use crate::output::{Out, clean, human_bytes};

/// Column widths used for streamed records, which cannot be measured in advance.
const STREAM_WIDTHS: (usize, usize) = (8, 14);

/// What `log` asks for.
pub(crate) struct Query {
    /// Name or id prefix.
    pub(crate) peer: Option<String>,
    /// RFC 3339 time.
    pub(crate) since: Option<String>,
    /// At most this many records.
    pub(crate) limit: Option<u32>,
    /// Stream new records.
    pub(crate) follow: bool,
}

/// Asks for the records and prints them; with `follow`, calls `on_following` and then prints
/// new records until `stop` completes (exit 0) or p2pd closes the connection (an error).
pub(crate) async fn run<S, W>(
    client: &mut Client<S>,
    out: &mut Out<W>,
    json: bool,
    q: Query,
    on_following: impl FnOnce(),
    stop: impl Future<Output = ()>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite,
    W: Write,
{
    let follow = q.follow;
    let call = Call::Log {
        peer: q.peer,
        since: q.since,
        limit: q.limit,
        follow,
    };
    let reply = client.call::<Vec<LogRecord>>(call).await?;
    if json {
        for r in &reply.value {
            out.line(&serde_json::to_string(r).map_err(|e| Error::Protocol(e.to_string()))?)?;
        }
    } else {
        let widths = widths(&reply.value);
        for r in &reply.value {
            out.line(&render(r, widths))?;
        }
    }
    if !follow {
        return Ok(());
    }
    on_following();
    let mut stop = std::pin::pin!(stop);
    loop {
        let Some(notice) = super::next_notice_of(client, LOG_NOTIFICATION, stop.as_mut()).await?
        else {
            return Ok(());
        };
        if json {
            out.line(&notice.raw_params)?;
        } else {
            let r: LogRecord = serde_json::from_value(notice.params)
                .map_err(|e| Error::Protocol(format!("a log record: {e}")))?;
            out.line(&render(&r, STREAM_WIDTHS))?;
        }
    }
}

/// The start of the `--since` window: a duration before `now_ms` (`45s`, `10m`, `2h`,
/// `3d`) or an RFC 3339 time, given back as RFC 3339.
pub(crate) fn since(text: &str, now_ms: u64) -> Result<String, String> {
    if let Some(ago) = timefmt::parse_duration_ms(text) {
        return Ok(timefmt::format_ms(now_ms.saturating_sub(ago)));
    }
    if timefmt::parse_ms(text).is_some() {
        return Ok(text.to_owned());
    }
    Err(format!(
        "not a duration or an RFC 3339 time: {:?} (examples: 10m, 2h, 3d, 2026-12-05T10:00:00Z)",
        clean(text)
    ))
}

/// The widths of the peer and operation columns for `records`.
fn widths(records: &[LogRecord]) -> (usize, usize) {
    let w = |f: fn(&LogRecord) -> Option<&String>| {
        records
            .iter()
            .filter_map(|r| f(r).map(|s| clean(s).chars().count()))
            .max()
            .unwrap_or(1)
    };
    (w(|r| r.peer.as_ref()), w(|r| r.op.as_ref()))
}

/// `2026-12-05 22:10:03Z  bob  file-received  report.pdf  1.2 MiB  id=..  TEXT`, every
/// part neutralised; a line the daemon could not read is shown whole after its time.
fn render(r: &LogRecord, (peer_w, op_w): (usize, usize)) -> String {
    let time = r
        .time
        .as_deref()
        .and_then(timefmt::parse_ms)
        .map(|ms| {
            let t = timefmt::format_ms(ms);
            format!("{} {}Z", &t[..10], &t[11..19])
        })
        .unwrap_or_else(|| format!("{:<20}", "-"));
    if let Some(raw) = &r.raw {
        return format!("{time}  {}", clean(raw));
    }
    let peer = clean(r.peer.as_deref().unwrap_or("-"));
    let op = clean(r.op.as_deref().unwrap_or("-"));
    let mut line = format!("{time}  {peer:<peer_w$}  {op:<op_w$}");
    if let Some(file) = r.fields.get("file") {
        line.push_str(&format!("  {}", clean(&text_of(file))));
    }
    if let Some(bytes) = r.fields.get("bytes").and_then(|b| b.as_u64()) {
        line.push_str(&format!("  {}", human_bytes(bytes)));
    }
    for (k, v) in &r.fields {
        if k != "file" && k != "bytes" {
            line.push_str(&format!("  {}={}", clean(k), clean(&text_of(v))));
        }
    }
    if let Some(m) = r.message.as_deref().filter(|m| !m.is_empty()) {
        line.push_str(&format!("  {}", clean(m)));
    }
    line.trim_end().to_owned()
}

/// A string's text, or any other value's JSON.
fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_times() {
        let now = timefmt::parse_ms("2026-12-05T22:00:00Z").expect("time");
        assert_eq!(since("2h", now).as_deref(), Ok("2026-12-05T20:00:00.000Z"));
        assert_eq!(since("45s", now).as_deref(), Ok("2026-12-05T21:59:15.000Z"));
        assert_eq!(since("3d", now).as_deref(), Ok("2026-12-02T22:00:00.000Z"));
        assert_eq!(
            since("2026-12-05T10:00:00Z", now).as_deref(),
            Ok("2026-12-05T10:00:00Z")
        );
        let e = since("yesterday", now).expect_err("bad");
        assert!(
            e.contains("10m") && e.contains("2026-12-05T10:00:00Z"),
            "{e}"
        );
        assert!(since("2026-12-05", now).is_err());
        assert!(since("\u{1b}[2J", now).expect_err("bad").contains("\\e[2J"));
    }

    #[test]
    fn renders_aligned_neutralised_lines() {
        let mut received = LogRecord {
            time: Some("2026-12-05T22:10:03.120Z".into()),
            op: Some("file-received".into()),
            peer: Some("bob".into()),
            message: Some("file verified\u{1b}[2J".into()),
            ..LogRecord::default()
        };
        received.fields.insert("file".into(), "report.pdf".into());
        received.fields.insert("bytes".into(), 1_258_291.into());
        received.fields.insert("id".into(), "ab12".into());
        let online = LogRecord {
            time: Some("2026-12-05T22:10:04Z".into()),
            op: Some("peer-online".into()),
            peer: Some("carol".into()),
            ..LogRecord::default()
        };
        let old = LogRecord {
            time: Some("2026-12-01T10:00:00.000001Z".into()),
            raw: Some("2026-12-01T10:00:00.000001Z  INFO op=x".into()),
            ..LogRecord::default()
        };
        let rs = [received, online, old];
        let w = widths(&rs);
        let lines: Vec<String> = rs.iter().map(|r| render(r, w)).collect();
        assert_eq!(
            lines,
            [
                "2026-12-05 22:10:03Z  bob    file-received  report.pdf  1.2 MiB  id=ab12  file verified\\e[2J",
                "2026-12-05 22:10:04Z  carol  peer-online",
                "2026-12-01 10:00:00Z  2026-12-01T10:00:00.000001Z  INFO op=x",
            ]
        );
        let untimed = LogRecord {
            raw: Some("junk".into()),
            ..LogRecord::default()
        };
        assert_eq!(render(&untimed, w), format!("{:<20}  junk", "-"));
    }
}
