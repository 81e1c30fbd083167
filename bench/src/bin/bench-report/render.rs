//! The Markdown report: one table per benchmark, each figure beside its same-run baseline.

use std::fmt::Write;

use serde_json::Value;

use crate::Run;

/// What the report says about where and when it ran.
pub struct Machine {
    /// When the first benchmark started (UTC).
    pub started: String,
    /// CPUs this process could use.
    pub cpus: usize,
    /// `/proc/cpuinfo` model name.
    pub cpu_model: String,
    /// Kernel release.
    pub kernel: String,
    /// Total memory in bytes.
    pub memory: Option<u64>,
    /// Load averages before the first benchmark.
    pub load_before: String,
    /// `git describe` of the checkout, if any.
    pub revision: Option<String>,
    /// Whether this was the smaller `--quick` run.
    pub quick: bool,
}

/// One row of a table.
pub(crate) struct Row {
    figure: String,
    measured: Option<f64>,
    baseline_name: &'static str,
    baseline: Option<f64>,
    /// The goal as text, and whether the measured figure meets it.
    goal: Option<(String, bool)>,
}

impl Row {
    pub(crate) fn new(figure: impl Into<String>, measured: Option<f64>) -> Self {
        Row {
            figure: figure.into(),
            measured,
            baseline_name: "",
            baseline: None,
            goal: None,
        }
    }

    pub(crate) fn beside(mut self, name: &'static str, baseline: Option<f64>) -> Self {
        self.baseline_name = name;
        self.baseline = baseline;
        self
    }

    /// A goal met when `ok(measured)` holds.
    pub(crate) fn goal(mut self, text: impl Into<String>, ok: impl Fn(f64) -> bool) -> Self {
        if let Some(m) = self.measured {
            self.goal = Some((text.into(), ok(m)));
        }
        self
    }
}

pub(crate) fn num(v: &Value, pointer: &str) -> Option<f64> {
    v.pointer(pointer).and_then(Value::as_f64)
}

fn fmt(x: Option<f64>) -> String {
    match x {
        None => "–".into(),
        Some(x) if x.abs() >= 100.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 10.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.2}"),
    }
}

pub(crate) fn table(out: &mut String, rows: &[Row]) {
    out.push_str("| figure | measured | baseline (same run) | ratio | goal | verdict |\n");
    out.push_str("|---|---:|---|---:|---|---|\n");
    for r in rows {
        let baseline = match r.baseline {
            Some(b) => format!("{} {}", r.baseline_name, fmt(Some(b))),
            None => "–".into(),
        };
        let ratio = match (r.measured, r.baseline) {
            (Some(m), Some(b)) if b != 0.0 => format!("{:.2}×", m / b),
            _ => "–".into(),
        };
        let (goal, verdict) = match &r.goal {
            Some((g, ok)) => (g.clone(), bench::stats::verdict(*ok).to_string()),
            None => ("–".into(), "–".into()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {baseline} | {ratio} | {goal} | {verdict} |",
            r.figure,
            fmt(r.measured)
        );
    }
    out.push('\n');
}

pub(crate) const MIB: f64 = 1024.0 * 1024.0;

fn transfer(out: &mut String, run: &Run) {
    let v = &run.json;
    let size = num(v, "/size_bytes").unwrap_or(0.0) / MIB;
    let pipe = num(v, "/pipe_best_mb_per_s");
    let max2 = |p: &str| {
        let a = num(v, &format!("{p}/0"));
        let b = num(v, &format!("{p}/1"));
        a.zip(b).map(|(a, b)| a.max(b) / MIB)
    };
    let ratio_goal = num(v, "/goals/ratio").unwrap_or(0.8);
    let rss_goal = num(v, "/goals/rss_bytes").unwrap_or(32.0 * MIB) / MIB;
    let chat_goal = num(v, "/goals/chat_p99_us").unwrap_or(5000.0) / 1000.0;
    let mut rows = vec![
        Row::new(
            format!("{size:.0} MiB send → verified, fsynced, renamed at the receiver, MB/s"),
            num(v, "/single/end_to_end_mb_per_s"),
        )
        .beside("TCP pipe + fsync", pipe)
        .goal(format!("≥ {ratio_goal}× the pipe"), |m| {
            pipe.is_some_and(|p| m >= ratio_goal * p)
        }),
        Row::new(
            "data phase only (accept → done), MB/s",
            num(v, "/single/data_phase_mb_per_s"),
        )
        .beside("TCP pipe + fsync", pipe),
    ];
    if let Some(socat) = num(v, "/socat/cpu_s") {
        rows.push(
            Row::new(
                "CPU of both daemons for the send (scan + data), s",
                num(v, "/single/cpu_both_daemons_s"),
            )
            .beside("socat -b 1 MiB", Some(socat))
            .goal("≤ 1.5× socat", |m| m <= 1.5 * socat),
        );
    }
    if let Some(scp) = num(v, "/scp/mb_per_s_with_sync") {
        rows.push(
            Row::new("same transfer, MB/s", num(v, "/single/end_to_end_mb_per_s"))
                .beside("scp + sync", Some(scp)),
        );
    }
    let streams = v
        .pointer("/batch_many/files")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    rows.extend([
        Row::new(
            format!("{streams} transfers at once, aggregate MB/s"),
            num(v, "/batch_many/mb_per_s"),
        )
        .beside(
            "one transfer of the same bytes",
            num(v, "/batch_one/mb_per_s"),
        ),
        Row::new(
            "peak RSS of the larger daemon, whole run, MiB",
            max2("/rss/hwm_end_bytes"),
        )
        .beside("idle", max2("/rss/idle_bytes"))
        .goal(format!("≤ {rss_goal:.0} MiB"), |m| m <= rss_goal),
        Row::new(
            "peak RSS during the single transfer, MiB",
            max2("/rss/peak_during_single_bytes"),
        )
        .beside("idle", max2("/rss/idle_bytes")),
    ]);
    if let Some(share) = num(v, "/resume/sent_again_share") {
        let goal = num(v, "/goals/resent_share").unwrap_or(0.01) * 100.0;
        rows.push(
            Row::new(
                "receiver SIGKILLed at half, restarted: bytes sent again, % of the file",
                Some(share * 100.0),
            )
            .goal(format!("≤ {goal:.0} %"), |m| m <= goal),
        );
    }
    if let Some(chat) = v.pointer("/chat").and_then(Value::as_array)
        && chat.len() >= 4
    {
        let ms = |i: usize, p: &str| num(&chat[i], p).map(|us| us / 1000.0);
        rows.extend([
            Row::new(
                "chat end to end during the transfer, p50 ms",
                ms(3, "/b/p50_us"),
            )
            .beside("idle", ms(0, "/b/p50_us")),
            Row::new(
                "chat end to end during the transfer, p99 ms",
                ms(3, "/b/p99_us"),
            )
            .beside("idle", ms(0, "/b/p99_us"))
            .goal(format!("≤ {chat_goal} ms"), |m| m <= chat_goal),
        ]);
    }
    let _ = writeln!(
        out,
        "## File transfer (`transfer-throughput`)\n\n`{} {}`; the temporary directory was on {} ({}).\n",
        run.program,
        run.args.join(" "),
        v.pointer("/machine/fs_type")
            .and_then(Value::as_str)
            .unwrap_or("?"),
        v.pointer("/machine/dir")
            .and_then(Value::as_str)
            .unwrap_or("?"),
    );
    if let Some(note) = v.pointer("/size_note").and_then(Value::as_str) {
        let _ = writeln!(out, "Note: {note}\n");
    }
    if let Some(why) = v.pointer("/socat/skipped").and_then(Value::as_str) {
        let _ = writeln!(out, "socat baseline skipped: {why}.\n");
    }
    if let Some(why) = v.pointer("/scp/skipped").and_then(Value::as_str) {
        let _ = writeln!(out, "scp baseline skipped: {why}.\n");
    }
    table(out, &rows);
}

fn chat(out: &mut String, run: &Run) {
    let v = &run.json;
    let us = |p: &str| num(v, p);
    let p50_goal = num(v, "/goal/p50_us").unwrap_or(1000.0);
    let p99_goal = num(v, "/goal/p99_us").unwrap_or(5000.0);
    let rows = [
        Row::new(
            "A: send_message returned → event at the peer's watcher, p50 µs",
            us("/a_returned_to_event/p50_us"),
        )
        .beside(
            "`peers` RPC round trip",
            us("/baseline_rpc_peers_before/p50_us"),
        )
        .goal(format!("≤ {p50_goal} µs"), |m| m <= p50_goal),
        Row::new("A, p99 µs", us("/a_returned_to_event/p99_us"))
            .beside(
                "`peers` RPC round trip",
                us("/baseline_rpc_peers_before/p99_us"),
            )
            .goal(format!("≤ {p99_goal} µs"), |m| m <= p99_goal),
        Row::new(
            "B: end to end (request written → event read), p50 µs",
            us("/b_end_to_end/p50_us"),
        )
        .beside("Unix socket echo", us("/baseline_unix_echo/p50_us"))
        .goal(format!("≤ {p50_goal} µs"), |m| m <= p50_goal),
        Row::new("B, p99 µs", us("/b_end_to_end/p99_us"))
            .beside("Unix socket echo", us("/baseline_unix_echo/p99_us"))
            .goal(format!("≤ {p99_goal} µs"), |m| m <= p99_goal),
    ];
    let history = v.pointer("/history/messages").and_then(Value::as_u64);
    let placement = v
        .pointer("/placement")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let (heading, cpus) = placement.split_once(';').unwrap_or((placement, ""));
    let heading = match history {
        Some(n) => format!("{heading}, with {n} messages already in the conversation"),
        None => heading.to_string(),
    };
    let _ = writeln!(
        out,
        "## Chat latency, {heading} (`chat-latency`)\n\n`{} {}`: {} messages after {} warm-up;{cpus}. \
         When everything shares one CPU, A shrinks to reading a line already waiting; B is then \
         the latency.\n",
        run.program,
        run.args.join(" "),
        v.pointer("/messages").and_then(Value::as_u64).unwrap_or(0),
        v.pointer("/warmup").and_then(Value::as_u64).unwrap_or(0),
    );
    if let (Some(n), Some(stored), Some(acked)) = (
        history,
        num(v, "/history/stored_s"),
        num(v, "/history/delivered_s"),
    ) {
        let _ = writeln!(
            out,
            "The history was sent for real first, with 64 `send_message` calls in flight: all \
             {n} stored at alice after {stored:.1} s, the last acknowledged by bob after \
             {acked:.1} s ({:.0} messages/s).\n",
            n as f64 / acked
        );
    }
    table(out, &rows);
}

fn tracker(out: &mut String, run: &Run) {
    let v = &run.json;
    let reg_goal = num(v, "/goals/reg_per_sec_per_core").unwrap_or(5000.0);
    let list_goal = num(v, "/goals/list_p99_ms").unwrap_or(10.0);
    let kib_goal = num(v, "/goals/kib_per_peer").unwrap_or(10.0);
    let rss_goal = num(v, "/goals/rss_mib").unwrap_or(100.0);
    let goal_peers = num(v, "/goals/peers").unwrap_or(10_000.0);
    let _ = writeln!(
        out,
        "## Tracker under many peers (`tracker-load`)\n\n`{} {}`. The load client shares the \
         machine's cores with trackerd, so registrations are counted per second of trackerd's \
         own CPU time.\n",
        run.program,
        run.args.join(" "),
    );
    let mut rows = Vec::new();
    for r in v
        .pointer("/runs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let n = num(r, "/n").unwrap_or(0.0);
        let new = num(r, "/new_names/reg_per_tracker_cpu_sec");
        let again = num(r, "/reconnect/reg_per_tracker_cpu_sec");
        rows.push(
            Row::new(
                format!("N={n:.0}: new-name registrations per trackerd CPU-second (each fsync'd)"),
                new,
            )
            .beside("reconnects, no new name", again)
            .goal(format!("~{reg_goal:.0} per core"), |m| m >= reg_goal),
        );
        rows.push(
            Row::new(
                format!("N={n:.0}: reconnects per trackerd CPU-second"),
                again,
            )
            .goal(format!("~{reg_goal:.0} per core"), |m| m >= reg_goal),
        );
        rows.push(
            Row::new(
                format!("N={n:.0}: List of every peer, p99 ms"),
                num(r, "/list/p99_ms"),
            )
            .beside("Ping on the same connection", num(r, "/list/ping_p99_ms"))
            .goal(format!("≤ {list_goal} ms"), |m| m <= list_goal),
        );
        rows.push(
            Row::new(
                format!("N={n:.0}: lookup by name, p99 ms"),
                num(r, "/list/lookup_p99_ms"),
            )
            .beside("Ping on the same connection", num(r, "/list/ping_p99_ms"))
            .goal(format!("≤ {list_goal} ms"), |m| m <= list_goal),
        );
        rows.push(
            Row::new(
                format!("N={n:.0}: one page of the list, p99 ms"),
                num(r, "/list/page_p99_ms"),
            )
            .beside("the whole List", num(r, "/list/p99_ms"))
            .goal(format!("≤ {list_goal} ms"), |m| m <= list_goal),
        );
        rows.push(
            Row::new(
                format!("N={n:.0}: event frames per registration, the peers watching"),
                num(r, "/new_names/events_per_registration"),
            )
            .beside("keys each peer watches", num(v, "/watch"))
            .goal("~ the watchers, not N".to_string(), |m| {
                m <= num(v, "/watch").unwrap_or(0.0) + 1.0
            }),
        );
        let rss = Row::new(
            format!("N={n:.0}: RSS with every peer idle, MiB"),
            num(r, "/rss_after_bytes").map(|b| b / MIB),
        )
        .beside(
            "before the peers",
            num(r, "/rss_before_bytes").map(|b| b / MIB),
        );
        rows.push(if n >= goal_peers {
            rss.goal(format!("≤ {rss_goal:.0} MiB"), |m| m <= rss_goal)
        } else {
            rss
        });
        rows.push(
            Row::new(
                format!("N={n:.0}: RSS extrapolated to {goal_peers:.0} peers, MiB"),
                num(r, "/rss_at_goal_peers_bytes").map(|b| b / MIB),
            )
            .goal(format!("≤ {rss_goal:.0} MiB"), |m| m <= rss_goal),
        );
        rows.push(
            Row::new(
                format!("N={n:.0}: KiB per idle registered peer"),
                num(r, "/bytes_per_peer").map(|b| b / 1024.0),
            )
            .goal(format!("≤ {kib_goal:.0} KiB"), |m| m <= kib_goal),
        );
    }
    table(out, &rows);
}

/// The whole report.
pub fn report(m: &Machine, runs: &[Run]) -> String {
    let mut out = String::new();
    out.push_str(
        "# Benchmark figures\n\nWritten by `scripts/bench` (`bench-report`), which runs every \
         benchmark program and puts each figure beside a baseline measured in the same run. How \
         each program measures, and earlier investigations, are in \
         [benchmark-methods.md](benchmark-methods.md). Do not edit this file by hand: run \
         `scripts/bench` again.\n\n",
    );
    let _ = writeln!(
        out,
        "- run: {}{}\n- machine: {} CPUs, {}, {} memory, Linux {}\n- load average before the \
         run: {}\n- revision: {}\n",
        m.started,
        if m.quick { " (`--quick`)" } else { "" },
        m.cpus,
        m.cpu_model,
        m.memory.map_or("?".into(), |b| format!(
            "{:.0} GiB",
            b as f64 / MIB / 1024.0
        )),
        m.kernel,
        m.load_before,
        m.revision.as_deref().unwrap_or("unknown"),
    );
    for run in runs {
        match run.program {
            "transfer-throughput" => transfer(&mut out, run),
            "chat-latency" => chat(&mut out, run),
            "tracker-load" => tracker(&mut out, run),
            "share-bench" => crate::shares::render(&mut out, run),
            "reach-bench" => crate::reach::render_reach(&mut out, run),
            "dht-lookup" => crate::reach::render_lookup(&mut out, run),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn machine() -> Machine {
        Machine {
            started: "2026-01-01 00:00 UTC".into(),
            cpus: 2,
            cpu_model: "cpu".into(),
            kernel: "6.0".into(),
            memory: Some(1 << 30),
            load_before: "0 0 0".into(),
            revision: None,
            quick: false,
        }
    }

    #[test]
    fn transfer_rows_put_each_figure_beside_its_baseline_with_ratio_and_verdict() {
        let run = Run {
            program: "transfer-throughput",
            args: vec![],
            json: json!({
                "size_bytes": 1u64 << 30,
                "pipe_best_mb_per_s": 1000.0,
                "single": {"end_to_end_mb_per_s": 850.0, "data_phase_mb_per_s": 900.0},
                "batch_one": {"mb_per_s": 400.0},
                "batch_many": {"files": 8, "mb_per_s": 600.0},
                "rss": {"idle_bytes": [8u64 << 20, 9u64 << 20],
                        "hwm_end_bytes": [30u64 << 20, 40u64 << 20],
                        "peak_during_single_bytes": [20u64 << 20, 21u64 << 20]},
                "resume": {"sent_again_share": 0.004},
                "goals": {"ratio": 0.8, "rss_bytes": 32u64 << 20, "chat_p99_us": 5000,
                          "resent_share": 0.01},
            }),
        };
        let text = report(&machine(), &[run]);
        assert!(
            text.contains("| 1024 MiB send → verified, fsynced, renamed at the receiver, MB/s | 850 | TCP pipe + fsync 1000 | 0.85× | ≥ 0.8× the pipe | met |"),
            "{text}"
        );
        assert!(
            text.contains("| 8 transfers at once, aggregate MB/s | 600 | one transfer of the same bytes 400 | 1.50× | – | – |"),
            "{text}"
        );
        assert!(
            text.contains("| peak RSS of the larger daemon, whole run, MiB | 40.0 | idle 9.00 | 4.44× | ≤ 32 MiB | MISSED |"),
            "{text}"
        );
        assert!(
            text.contains("| receiver SIGKILLed at half, restarted: bytes sent again, % of the file | 0.40 | – | – | ≤ 1 % | met |"),
            "{text}"
        );
    }

    #[test]
    fn missing_figures_show_as_dashes_without_a_verdict() {
        let run = Run {
            program: "tracker-load",
            args: vec![],
            json: json!({"runs": [{"n": 10}]}),
        };
        let text = report(&machine(), &[run]);
        assert!(
            text.contains("| N=10: List of every peer, p99 ms | – | – | – | – | – |"),
            "{text}"
        );
    }
}
