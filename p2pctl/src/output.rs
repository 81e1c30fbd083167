//! Everything about how results look: the stdout writer, tables, key/value blocks, human
//! sizes, durations and times. Text that came from the daemon or other peers is passed
//! through [`clean`] before it reaches a terminal.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proto::api::{Direction, MessageState, TransferInfo, TransferState};
use proto::transfer::TransferId;

use crate::error::Error;

/// Gap between table columns and between keys and values.
const GAP: &str = "  ";

/// Writes to stdout (or a test buffer), flushing after every write so that whoever reads a
/// stream sees each line as soon as it is printed.
pub(crate) struct Out<W: Write> {
    w: W,
}

impl<W: Write> Out<W> {
    /// Wraps a writer.
    pub(crate) fn new(w: W) -> Self {
        Self { w }
    }

    /// Writes `text` followed by a newline, then flushes.
    pub(crate) fn line(&mut self, text: &str) -> Result<(), Error> {
        writeln!(self.w, "{text}")
            .and_then(|()| self.w.flush())
            .map_err(Error::Output)
    }

    /// Writes `text`, which already ends in a newline when it is not empty, then flushes.
    pub(crate) fn block(&mut self, text: &str) -> Result<(), Error> {
        self.w
            .write_all(text.as_bytes())
            .and_then(|()| self.w.flush())
            .map_err(Error::Output)
    }

    /// The writer, for tests.
    #[cfg(test)]
    pub(crate) fn into_inner(self) -> W {
        self.w
    }
}

/// Neutralises control and bidi characters in text that came from outside this process.
pub(crate) fn clean(text: &str) -> String {
    proto::text::neutralize(text)
}

/// Bytes in binary units with one decimal: `512 B`, `1.5 KiB`, `12.3 MiB`.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    // Move up a unit when one decimal would round to 1024.0.
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A whole number of seconds in the one duration style of p2pctl's output
/// ([`human_duration_ms`]): `45 s`, `3 min 12 s`, `2 h 5 min`, `3 d 4 h`.
pub(crate) fn human_duration(secs: u64) -> String {
    if secs == 0 {
        return "0 s".into();
    }
    human_duration_ms(secs.saturating_mul(1000))
}

/// A duration in the one style of p2pctl's output: milliseconds under a second (`850 ms`),
/// seconds with one decimal under ten (`1.3 s`, `2 s`), whole seconds under a minute
/// (`45 s`), then the two largest units (`2 min 5 s`, `1 h 2 min`, `3 d 4 h`), a zero second
/// unit left out (`2 min`).
pub(crate) fn human_duration_ms(ms: u64) -> String {
    const SEC: u64 = 1000;
    const MIN: u64 = 60 * SEC;
    const HOUR: u64 = 60 * MIN;
    const DAY: u64 = 24 * HOUR;
    let two = |big: u64, big_unit: &str, small: u64, small_unit: &str| {
        if small == 0 {
            format!("{big} {big_unit}")
        } else {
            format!("{big} {big_unit} {small} {small_unit}")
        }
    };
    match ms {
        ms if ms < SEC => format!("{ms} ms"),
        ms if ms < 10 * SEC => {
            // Tenths, rounded down so that 9.99 s never reads `10.0 s`.
            let tenths = ms / 100;
            if tenths % 10 == 0 {
                format!("{} s", tenths / 10)
            } else {
                format!("{}.{} s", tenths / 10, tenths % 10)
            }
        }
        ms if ms < MIN => format!("{} s", ms / SEC),
        ms if ms < HOUR => two(ms / MIN, "min", ms % MIN / SEC, "s"),
        ms if ms < DAY => two(ms / HOUR, "h", ms % HOUR / MIN, "min"),
        ms => two(ms / DAY, "d", ms % DAY / HOUR, "h"),
    }
}

/// A measured duration in the one style of [`human_duration_ms`]: `850 ms`, `1.3 s`,
/// `12 s`, `3 min 12 s`.
pub(crate) fn human_elapsed(d: std::time::Duration) -> String {
    human_duration_ms(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// How long ago the unix time `since` was, seen at `now`, in the largest unit of
/// [`human_duration`]'s style: `just now`, `42 s ago`, `3 min ago`, `5 h ago`, `2 d ago`;
/// `-` for 0 (never).
pub(crate) fn relative_time(since: u64, now: u64) -> String {
    if since == 0 {
        return "-".into();
    }
    match now.saturating_sub(since) {
        0 => "just now".into(),
        d if d < 60 => format!("{d} s ago"),
        d if d < 3600 => format!("{} min ago", d / 60),
        d if d < 86_400 => format!("{} h ago", d / 3600),
        d => format!("{} d ago", d / 86_400),
    }
}

/// A time (unix ms) in a short local style, seen at `now_ms` in `tz`: `14:03` on the same
/// day, `Dec 05 14:03` in the same year, `2025-12-05` before.
pub(crate) fn short_time(at_ms: u64, now_ms: u64, tz: &jiff::tz::TimeZone) -> String {
    let (at, now) = (from_unix_ms(at_ms), from_unix_ms(now_ms));
    let day = |t| date_in(t, tz);
    let format = if day(at) == day(now) {
        "%H:%M"
    } else if day(at).get(..4) == day(now).get(..4) {
        "%b %d %H:%M"
    } else {
        "%Y-%m-%d"
    };
    strftime_in(at, tz, format).unwrap_or_else(|| "-".into())
}

/// The first address, with `+N` when there are more; `-` when there are none.
pub(crate) fn addresses(addrs: &[SocketAddr]) -> String {
    match addrs {
        [] => "-".into(),
        [one] => one.to_string(),
        [first, rest @ ..] => format!("{first} +{}", rest.len()),
    }
}

/// Seconds since the unix epoch, now.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A time given in unix milliseconds (message times); the epoch if it is out of range.
pub(crate) fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .unwrap_or(UNIX_EPOCH)
}

/// `HH:MM:SS` of `at` in the system's local time zone (UTC if that cannot be read).
pub(crate) fn local_clock(at: SystemTime) -> String {
    clock_in(at, &jiff::tz::TimeZone::system())
}

/// `HH:MM:SS` of `at` in `tz`.
pub(crate) fn clock_in(at: SystemTime, tz: &jiff::tz::TimeZone) -> String {
    strftime_in(at, tz, "%H:%M:%S").unwrap_or_else(|| "--:--:--".into())
}

/// `YYYY-MM-DD` of `at` in `tz`.
pub(crate) fn date_in(at: SystemTime, tz: &jiff::tz::TimeZone) -> String {
    strftime_in(at, tz, "%Y-%m-%d").unwrap_or_else(|| "----------".into())
}

fn strftime_in(at: SystemTime, tz: &jiff::tz::TimeZone, format: &str) -> Option<String> {
    let ts = jiff::Timestamp::try_from(at).ok()?;
    Some(
        ts.to_zoned_datetime(tz.clone())
            .strftime(format)
            .to_string(),
    )
}

/// The word for a message state: `queued`, `delivered`, `refused`, `received`, `deferred`.
pub(crate) fn message_state(state: MessageState) -> &'static str {
    match state {
        MessageState::Queued => "queued",
        MessageState::Delivered => "delivered",
        MessageState::Refused => "refused",
        MessageState::Received => "received",
        MessageState::Deferred => "deferred",
    }
}

/// The first 8 hex characters of a transfer id, as tables and confirmations show it (`p2pd`
/// takes any unique prefix of at least 6).
pub(crate) fn short_transfer(id: &TransferId) -> String {
    id.to_string().chars().take(8).collect()
}

/// `1 file`, `3 files`.
pub(crate) fn files(n: u32) -> String {
    if n == 1 {
        "1 file".into()
    } else {
        format!("{n} files")
    }
}

/// A rate in bytes per second: `4.1 MiB/s`.
pub(crate) fn human_rate(bytes_per_sec: u64) -> String {
    format!("{}/s", human_bytes(bytes_per_sec))
}

/// The word for a transfer state: `scanning`, `queued`, `offered`, `running`, `done`, `declined`,
/// `cancelled`, `failed`, `expired`.
pub(crate) fn transfer_state(state: TransferState) -> &'static str {
    match state {
        TransferState::Scanning => "scanning",
        TransferState::Queued => "queued",
        TransferState::Offered => "offered",
        TransferState::Running => "running",
        TransferState::Done => "done",
        TransferState::Declined => "declined",
        TransferState::Cancelled => "cancelled",
        TransferState::Failed => "failed",
        TransferState::Expired => "expired",
    }
}

/// `to` for a transfer we send, `from` for one we receive.
pub(crate) fn to_from(direction: Direction) -> &'static str {
    match direction {
        Direction::Out => "to",
        Direction::In => "from",
    }
}

/// How much of a transfer is verified, in whole percent rounded down (so `100%` means done):
/// `0%` .. `100%`.
pub(crate) fn percent(t: &TransferInfo) -> String {
    if t.state == TransferState::Done {
        return "100%".into();
    }
    if t.total_bytes == 0 {
        return "0%".into();
    }
    let p = u128::from(t.done_bytes.min(t.total_bytes)) * 100 / u128::from(t.total_bytes);
    format!("{p}%")
}

/// Rate and time left of a transfer: `4.1 MiB/s  ETA 21 s`; each part left out when the
/// daemon has no figure for it yet (a rate of 0), so possibly empty.
pub(crate) fn rate_and_eta(t: &TransferInfo) -> String {
    rate_and_eta_parts(t).join(GAP)
}

/// The parts of [`rate_and_eta`]: `["4.1 MiB/s", "ETA 21 s"]`, either left out when unknown.
pub(crate) fn rate_and_eta_parts(t: &TransferInfo) -> Vec<String> {
    let mut parts = Vec::new();
    if t.rate > 0 {
        parts.push(human_rate(t.rate));
    }
    if let Some(eta) = t.eta_secs {
        parts.push(format!("ETA {}", human_duration(eta)));
    }
    parts
}

/// One plain progress line: `12.3 MiB / 100.0 MiB  4.1 MiB/s  ETA 21 s`.
pub(crate) fn progress_line(t: &TransferInfo) -> String {
    let line = format!(
        "{} / {}{GAP}{}",
        human_bytes(t.done_bytes),
        human_bytes(t.total_bytes),
        rate_and_eta(t)
    );
    line.trim_end().to_owned()
}

/// The reason a transfer ended without success, neutralised, with a leading `: `; empty when
/// the daemon gave none.
pub(crate) fn reason(t: &TransferInfo) -> String {
    match t.error.as_deref().filter(|e| !e.is_empty()) {
        Some(e) => format!(": {}", clean(e)),
        None => String::new(),
    }
}

/// Peer text, neutralised and cut to at most `max` characters (the last one `…` when cut),
/// for lines that only need to recall which message is meant.
pub(crate) fn preview(text: &str, max: usize) -> String {
    let clean = clean(text);
    if clean.chars().count() <= max {
        return clean;
    }
    let mut cut: String = clean.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Aligned `key  value` lines.
pub(crate) fn key_values(rows: &[(&str, String)]) -> String {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (key, value) in rows {
        out.push_str(format!("{key:<width$}{GAP}{value}").trim_end());
        out.push('\n');
    }
    out
}

/// A plain text table: a header row, then one row per item, columns left-aligned and
/// separated by two spaces, no trailing spaces.
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub(crate) fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are blank, extra cells are dropped.
    pub(crate) fn row(&mut self, mut cells: Vec<String>) {
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    /// The table as text, one line per row, each ending in a newline.
    pub(crate) fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str(GAP);
                }
                line.push_str(cell);
                let pad = width.saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bytes_in_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(12_897_485), "12.3 MiB");
        assert_eq!(human_bytes(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(human_bytes(1_048_524), "1023.9 KiB");
        assert_eq!(human_bytes(5 * (1 << 30)), "5.0 GiB");
        assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn durations_have_one_style() {
        assert_eq!(human_duration_ms(0), "0 ms");
        assert_eq!(human_duration_ms(850), "850 ms");
        assert_eq!(human_duration_ms(999), "999 ms");
        assert_eq!(human_duration_ms(1000), "1 s");
        assert_eq!(human_duration_ms(1_349), "1.3 s");
        assert_eq!(human_duration_ms(9_999), "9.9 s");
        assert_eq!(human_duration_ms(10_000), "10 s");
        assert_eq!(human_duration_ms(59_999), "59 s");
        assert_eq!(human_duration_ms(125_000), "2 min 5 s");
        assert_eq!(human_duration_ms(3_720_000), "1 h 2 min");
        assert_eq!(human_duration_ms(u64::MAX), "213503982334 d 14 h");
        assert_eq!(human_duration(0), "0 s");
        assert_eq!(human_duration(2), "2 s");
        assert_eq!(human_duration(59), "59 s");
        assert_eq!(human_duration(60), "1 min");
        assert_eq!(human_duration(192), "3 min 12 s");
        assert_eq!(human_duration(3600), "1 h");
        assert_eq!(human_duration(2 * 3600 + 5 * 60 + 7), "2 h 5 min");
        assert_eq!(human_duration(3 * 86_400 + 4 * 3600 + 59), "3 d 4 h");
        assert_eq!(human_duration(86_400), "1 d");
        assert_eq!(human_duration(u64::MAX), human_duration_ms(u64::MAX));
    }

    #[test]
    fn short_times_drop_what_today_makes_plain() {
        let utc = jiff::tz::TimeZone::UTC;
        // 2023-11-14 22:13:20 UTC.
        let now = 1_700_000_000_000;
        assert_eq!(short_time(now - 3_600_000, now, &utc), "21:13");
        assert_eq!(short_time(now - 86_400_000, now, &utc), "Nov 13 22:13");
        assert_eq!(short_time(now - 365 * 86_400_000, now, &utc), "2022-11-14");
        // The day is the local one: 00:13 on the 15th, two hours east.
        let east = jiff::tz::TimeZone::fixed(jiff::tz::offset(2));
        assert_eq!(short_time(now, now, &east), "00:13");
        assert_eq!(short_time(now - 3_600_000, now, &east), "Nov 14 23:13");
    }

    #[test]
    fn elapsed_times_share_the_style() {
        assert_eq!(human_elapsed(Duration::from_millis(40)), "40 ms");
        assert_eq!(human_elapsed(Duration::from_millis(1349)), "1.3 s");
        assert_eq!(human_elapsed(Duration::from_millis(12_900)), "12 s");
        assert_eq!(human_elapsed(Duration::from_secs(192)), "3 min 12 s");
    }

    #[test]
    fn relative_times() {
        let now = 1_700_000_000;
        assert_eq!(relative_time(0, now), "-");
        assert_eq!(relative_time(now, now), "just now");
        assert_eq!(relative_time(now + 5, now), "just now");
        assert_eq!(relative_time(now - 42, now), "42 s ago");
        assert_eq!(relative_time(now - 180, now), "3 min ago");
        assert_eq!(relative_time(now - 3599, now), "59 min ago");
        assert_eq!(relative_time(now - 5 * 3600, now), "5 h ago");
        assert_eq!(relative_time(now - 2 * 86_400 - 1, now), "2 d ago");
    }

    #[test]
    fn address_summary() {
        let a: SocketAddr = "127.0.0.1:4000".parse().expect("addr");
        let b: SocketAddr = "[::1]:4000".parse().expect("addr");
        assert_eq!(addresses(&[]), "-");
        assert_eq!(addresses(&[a]), "127.0.0.1:4000");
        assert_eq!(addresses(&[a, b, b]), "127.0.0.1:4000 +2");
    }

    #[test]
    fn clock_is_hh_mm_ss() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(clock_in(at, &jiff::tz::TimeZone::UTC), "22:13:20");
        let offset = jiff::tz::TimeZone::fixed(jiff::tz::offset(2));
        assert_eq!(clock_in(at, &offset), "00:13:20");
        assert_eq!(local_clock(at).len(), 8);
    }

    #[test]
    fn dates_and_message_times() {
        let at = from_unix_ms(1_700_000_000_123);
        assert_eq!(clock_in(at, &jiff::tz::TimeZone::UTC), "22:13:20");
        assert_eq!(date_in(at, &jiff::tz::TimeZone::UTC), "2023-11-14");
        let offset = jiff::tz::TimeZone::fixed(jiff::tz::offset(2));
        assert_eq!(date_in(at, &offset), "2023-11-15");
        // Far out of range: no panic, a placeholder.
        let far = from_unix_ms(u64::MAX);
        assert_eq!(clock_in(far, &jiff::tz::TimeZone::UTC), "--:--:--");
        assert_eq!(date_in(far, &jiff::tz::TimeZone::UTC), "----------");
    }

    #[test]
    fn transfer_figures() {
        use crate::cmd::fake::transfer;
        let mut t = transfer(Direction::Out, TransferState::Running);
        assert_eq!(short_transfer(&t.id), "abcd1234");
        assert_eq!(files(1), "1 file");
        assert_eq!(files(0), "0 files");
        assert_eq!(human_rate(4_300_000), "4.1 MiB/s");
        assert_eq!(to_from(Direction::In), "from");
        assert_eq!(transfer_state(TransferState::Cancelled), "cancelled");
        assert_eq!(percent(&t), "0%");
        assert_eq!(rate_and_eta(&t), "");
        assert_eq!(progress_line(&t), "0 B / 12.3 MiB");
        t.done_bytes = t.total_bytes - 1;
        t.rate = 4_300_000;
        assert_eq!(percent(&t), "99%");
        assert_eq!(rate_and_eta(&t), "4.1 MiB/s");
        t.eta_secs = Some(192);
        t.done_bytes = 12_897_485 / 10;
        assert_eq!(rate_and_eta(&t), "4.1 MiB/s  ETA 3 min 12 s");
        assert_eq!(
            progress_line(&t),
            "1.2 MiB / 12.3 MiB  4.1 MiB/s  ETA 3 min 12 s"
        );
        t.state = TransferState::Done;
        assert_eq!(percent(&t), "100%");
        t.total_bytes = 0;
        t.done_bytes = 0;
        assert_eq!(percent(&t), "100%");
        t.state = TransferState::Running;
        assert_eq!(percent(&t), "0%");
        // More done than announced (a confused daemon) still reads 100% at most.
        t.total_bytes = 10;
        t.done_bytes = 20;
        assert_eq!(percent(&t), "100%");
        assert_eq!(reason(&t), "");
        t.error = Some("bad\u{1b}[1m".into());
        assert_eq!(reason(&t), ": bad\\e[1m");
    }

    #[test]
    fn previews_are_clean_and_short() {
        assert_eq!(preview("hello", 5), "hello");
        assert_eq!(preview("hello!", 5), "hell…");
        assert_eq!(preview("a\u{1b}[2Jb", 40), "a\\e[2Jb");
        assert_eq!(preview("éééééé", 3), "éé…");
    }

    #[test]
    fn table_aligns_columns_without_trailing_spaces() {
        let mut t = Table::new(&["NAME", "ID", "STATE"]);
        t.row(vec!["bob".into(), "abcdefghijkl".into(), "online".into()]);
        t.row(vec!["alexandra".into(), "mnop".into(), "offline".into()]);
        t.row(vec!["c".into()]);
        assert_eq!(
            t.render(),
            "NAME       ID            STATE\n\
             bob        abcdefghijkl  online\n\
             alexandra  mnop          offline\n\
             c\n"
        );
        assert_eq!(Table::new(&["A", "B"]).render(), "A  B\n");
    }

    #[test]
    fn key_value_block_is_aligned() {
        let block = key_values(&[
            ("name", "alice".into()),
            ("control socket", "/s".into()),
            ("empty", String::new()),
        ]);
        assert_eq!(block, "name            alice\ncontrol socket  /s\nempty\n");
    }

    #[test]
    fn out_writes_whole_lines() {
        let mut out = Out::new(Vec::new());
        out.line("a").expect("write");
        out.block("b\nc\n").expect("write");
        assert_eq!(out.into_inner(), b"a\nb\nc\n");
    }

    #[test]
    fn clean_neutralises_escapes() {
        assert_eq!(clean("bob\u{1b}[2J"), "bob\\e[2J");
    }
}
