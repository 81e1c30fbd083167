//! The progress bar's shape and the closing summary line: what fits in how many columns, and
//! what to say once the transfer is over. Pure: the terminal's width and the clock are given.
//!
//! A bar line must never be wider than the terminal: a line that wraps is redrawn one row
//! lower at each tick and scrolls the screen. So the layout is chosen from the width (the bar
//! narrows, then goes, then the byte counts go), and the text beside it (rate, ETA) drops its
//! parts from the end until it fits; indicatif's `wide_msg` cuts whatever is still too long.

use std::time::Duration;

use indicatif::HumanBytes;
use proto::api::{Direction, TransferInfo};

use crate::output::{clean, files, human_bytes, human_elapsed, human_rate};

/// Width assumed when the terminal's is unknown.
pub(crate) const DEFAULT_COLS: u16 = 80;

/// Gap between the parts of the text beside the bar, as in plain progress lines.
const GAP: &str = "  ";

/// What the bar line holds at a given terminal width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Width of the `[=====>   ]` bar between its brackets, if there is one.
    pub(crate) bar: Option<u16>,
    /// Whether `1.00 MiB/2.86 MiB` is shown.
    pub(crate) bytes: bool,
}

impl Layout {
    /// The layout for a terminal `cols` columns wide. The last column is left empty, so that
    /// no terminal wraps a full line.
    pub(crate) fn for_width(cols: u16) -> Self {
        let usable = cols.saturating_sub(1);
        match usable {
            // `100% [` + 30 + `] 1023.99 MiB/1023.99 MiB ` leaves ~17 for the rate and ETA.
            c if c >= 79 => Layout {
                bar: Some(30),
                bytes: true,
            },
            // Narrower: the bar gives up columns first, down to 10.
            c if c >= 59 => Layout {
                bar: Some((c - 49).min(30)),
                bytes: true,
            },
            c if c >= 36 => Layout {
                bar: None,
                bytes: true,
            },
            _ => Layout {
                bar: None,
                bytes: false,
            },
        }
    }

    /// The indicatif template.
    pub(crate) fn template(self) -> String {
        let mut t = String::from("{percent:>3}%");
        if let Some(w) = self.bar {
            t.push_str(&format!(" [{{bar:{w}}}]"));
        }
        if self.bytes {
            t.push_str(" {bytes}/{total_bytes}");
        }
        t.push_str(" {wide_msg}");
        t
    }

    /// Columns left for the text beside the bar on a terminal `cols` wide, with `done` of
    /// `total` bytes shown.
    pub(crate) fn room(self, cols: u16, done: u64, total: u64) -> usize {
        // `100%` and the space before the text.
        let mut used = 5;
        if let Some(w) = self.bar {
            used += usize::from(w) + 3;
        }
        if self.bytes {
            used += HumanBytes(done).to_string().len() + HumanBytes(total).to_string().len() + 2;
        }
        usize::from(cols.saturating_sub(1)).saturating_sub(used)
    }
}

/// As many of `parts` as fit in `room` columns, from the first, joined by two spaces; parts
/// that do not fit are dropped whole (the ETA before the rate), never cut.
pub(crate) fn fit(parts: &[String], room: usize) -> String {
    let mut out = String::new();
    for p in parts.iter().filter(|p| !p.is_empty()) {
        let extra = if out.is_empty() { 0 } else { GAP.len() };
        if out.chars().count() + extra + p.chars().count() > room {
            break;
        }
        if !out.is_empty() {
            out.push_str(GAP);
        }
        out.push_str(p);
    }
    out
}

/// The line said once a transfer is done: `sent report.pdf to bob: 2.1 MiB in 1.3 s
/// (1.6 MiB/s)`, or `received 3 files from bob: ...`. `moved` bytes went over in `elapsed`
/// (the time from the first data to the end, as seen here); the average rate is theirs.
pub(crate) fn summary(t: &TransferInfo, moved: u64, elapsed: Duration) -> String {
    let name = clean(t.peer_name.as_str());
    let what = match (t.files, t.sample.first()) {
        (1, Some(path)) => clean(path),
        (n, _) => files(n),
    };
    let (verb, dir) = match t.direction {
        Direction::Out => ("sent", "to"),
        Direction::In => ("received", "from"),
    };
    let secs = elapsed.as_secs_f64().max(0.001);
    let rate = (moved as f64 / secs) as u64;
    format!(
        "{verb} {what} {dir} {name}: {} in {} ({})",
        human_bytes(t.total_bytes),
        human_elapsed(elapsed),
        human_rate(rate)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::fake::transfer;
    use proto::api::TransferState;

    /// What the widest bar line can take at `cols`: the layout's fixed parts with the widest
    /// byte counts, and the text that fits beside them.
    fn widest_line(cols: u16) -> usize {
        let l = Layout::for_width(cols);
        // `1023.99 MiB`, as wide as indicatif's byte counts get.
        let big = 1_073_735_000;
        let room = l.room(cols, big, big);
        let text = fit(&["1023.9 MiB/s".into(), "ETA 3 min 12 s".into()], room);
        let mut used = 5 + text.chars().count();
        if let Some(w) = l.bar {
            used += usize::from(w) + 3;
        }
        if l.bytes {
            used += 2 * HumanBytes(big).to_string().len() + 2;
        }
        used
    }

    #[test]
    fn the_layout_narrows_with_the_terminal() {
        assert_eq!(
            Layout::for_width(120),
            Layout {
                bar: Some(30),
                bytes: true
            }
        );
        assert_eq!(Layout::for_width(80).bar, Some(30));
        assert_eq!(Layout::for_width(60).bar, Some(10));
        assert_eq!(
            Layout::for_width(50),
            Layout {
                bar: None,
                bytes: true
            }
        );
        assert_eq!(
            Layout::for_width(20),
            Layout {
                bar: None,
                bytes: false
            }
        );
        assert_eq!(
            Layout::for_width(60).template(),
            "{percent:>3}% [{bar:10}] {bytes}/{total_bytes} {wide_msg}"
        );
        assert_eq!(Layout::for_width(10).template(), "{percent:>3}% {wide_msg}");
        for cols in 10..200 {
            assert!(widest_line(cols) < usize::from(cols), "{cols}");
        }
    }

    #[test]
    fn rate_and_eta_are_dropped_whole_from_the_end() {
        let parts = ["4.1 MiB/s".to_string(), "ETA 21 s".to_string()];
        assert_eq!(fit(&parts, 40), "4.1 MiB/s  ETA 21 s");
        assert_eq!(fit(&parts, 19), "4.1 MiB/s  ETA 21 s");
        assert_eq!(fit(&parts, 18), "4.1 MiB/s");
        assert_eq!(fit(&parts, 8), "");
        assert_eq!(fit(&[String::new(), "ETA 2 s".into()], 10), "ETA 2 s");
        // At 60 columns with mid-sized figures, the rate and the ETA both fit.
        let room = Layout::for_width(60).room(60, 12 * 1024 * 1024, 100 * 1024 * 1024);
        assert_eq!(fit(&parts, room), "4.1 MiB/s  ETA 21 s");
    }

    #[test]
    fn the_summary_names_one_file_and_gives_time_and_average_rate() {
        let mut t = transfer(Direction::Out, TransferState::Done);
        assert_eq!(
            summary(&t, t.total_bytes, Duration::from_millis(2500)),
            "sent 3 files to bob: 12.3 MiB in 2.5 s (4.9 MiB/s)"
        );
        t.files = 1;
        t.sample = vec!["report\u{1b}.pdf".into()];
        t.total_bytes = 2_200_000;
        assert_eq!(
            summary(&t, 2_200_000, Duration::from_millis(1300)),
            "sent report\\e.pdf to bob: 2.1 MiB in 1.3 s (1.6 MiB/s)"
        );
        t.direction = Direction::In;
        assert_eq!(
            summary(&t, 1_100_000, Duration::from_secs(75)),
            "received report\\e.pdf from bob: 2.1 MiB in 1 min 15 s (14.3 KiB/s)"
        );
    }
}
