//! The report: a table on stdout, or JSON with `--json`.

use std::time::{Duration, Instant};

use bench::stats::{Summary, verdict};
use serde_json::{Value, json};

use crate::baseline::{Scp, Socat};
use crate::load::peak;
use crate::resume::Resume;
use crate::transfer::{Batch, ProcCpu, Single};
use bench::pipe::Pipe;

/// Goal: a transfer runs at least this fraction of the TCP pipe's rate.
const GOAL_RATIO: f64 = 0.8;
/// Goal: each daemon's resident memory during a transfer, bytes.
const GOAL_RSS: u64 = 32 << 20;
/// Goal: chat p99 during a transfer, microseconds.
const GOAL_CHAT_P99_US: f64 = 5_000.0;
/// Goal: bytes sent again after a SIGKILL of the receiver at half, as a fraction of the file.
const GOAL_RESENT: f64 = 0.01;

/// Everything the report prints.
pub struct Report {
    /// When the run ended, UTC.
    pub date: String,
    /// CPUs this program may use.
    pub cpus: usize,
    /// The CPU model.
    pub cpu: String,
    /// Kernel release.
    pub kernel: String,
    /// Load averages at the start.
    pub loadavg: String,
    /// The temporary directory.
    pub dir: String,
    /// Its file system type and device.
    pub fs: (String, String),
    /// Free space there at the start, bytes.
    pub free: Option<u64>,
    /// Payload size, bytes.
    pub size: u64,
    /// Why the size is not the one asked for, if it is not.
    pub size_note: Option<String>,
    /// Interval between chat messages (`None`: no chat ran).
    pub interval: Option<Duration>,
    /// Writing the payload (PRNG, write, fsync).
    pub write_time: Duration,
    /// Reading the payload and hashing it with BLAKE3 on one thread, here.
    pub hash_time: Duration,
    /// The TCP pipe before and after the daemons ran.
    pub pipes: [Pipe; 2],
    /// The TCP pipe syncing every 16 MiB too (diagnostic, after the daemons ran).
    pub pipe_periodic: Pipe,
    /// The scp baseline.
    pub scp: Scp,
    /// The socat baseline (its CPU time beside the daemons').
    pub socat: Socat,
    /// From starting alice to both peers listing each other online.
    pub online_after: Duration,
    /// alice's and bob's `VmRSS` before any transfer.
    pub rss_idle: [u64; 2],
    /// The transfer accepted by hand, with chat beside it.
    pub single: Single,
    /// alice's and bob's `VmHWM` right after it.
    pub hwm_single: [u64; 2],
    /// One auto-accepted transfer of the whole size.
    pub batch_one: Batch,
    /// The same total in simultaneous transfers.
    pub batch_many: Batch,
    /// `VmHWM` at the end of the run.
    pub hwm_end: [u64; 2],
    /// bob auto-accepted the batches (else each offer was accepted by a call).
    pub auto_accept: bool,
    /// The transfer with bob SIGKILLed at half (`None` with `--no-resume`).
    pub resume: Option<Resume>,
}

fn mbs(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(b: u64) -> f64 {
    b as f64 / (1u64 << 20) as f64
}

/// Chat latencies by phase: A = event at bob - call returned, B = event at bob - request
/// written, C = the call.
pub struct ChatPhase {
    /// Phase name.
    pub name: &'static str,
    /// A.
    pub a: Summary,
    /// B.
    pub b: Summary,
    /// C.
    pub c: Summary,
}

/// Chat timings of messages whose request was written in `[from, to)`.
fn chat_phase(s: &Single, name: &'static str, from: Instant, to: Instant) -> ChatPhase {
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for m in s.chat.iter().filter(|m| m.t0 >= from && m.t0 < to) {
        if let Some(t2) = s.chat_received.get(&m.text) {
            a.push(t2.saturating_duration_since(m.t1));
            b.push(*t2 - m.t0);
            c.push(m.t1 - m.t0);
        }
    }
    ChatPhase {
        name,
        a: Summary::of(&a),
        b: Summary::of(&b),
        c: Summary::of(&c),
    }
}

/// Derived figures.
struct Figures {
    pipe_best: f64,
    end_to_end: f64,
    data: f64,
    streaming: Option<f64>,
    bob_progress_rate: Option<f64>,
    peak_single: [u64; 2],
    chat: Vec<ChatPhase>,
    one_rate: f64,
    many_rate: f64,
}

fn figures(r: &Report) -> Figures {
    let s = &r.single;
    let pipe_best = r
        .pipes
        .iter()
        .map(|p| mbs(p.bytes, p.total))
        .fold(0.0, f64::max);
    let streaming = match (s.t_running_out, s.t_sender_end) {
        (Some(a), Some(b)) if b > a => Some(mbs(s.bytes, b - a)),
        _ => None,
    };
    let bob_progress_rate = match (s.progress_in.first(), s.progress_in.last()) {
        (Some(a), Some(b)) if b.0 > a.0 && b.1 > a.1 => Some(mbs(b.1 - a.1, b.0 - a.0)),
        _ => None,
    };
    let chat = vec![
        chat_phase(s, "idle, before send_files", s.chat_started, s.t_send),
        chat_phase(s, "scan: send_files -> offer at bob", s.t_send, s.t_offered),
        chat_phase(s, "data: accept -> done at alice", s.t_accept, s.t_done_out),
        chat_phase(
            s,
            "whole transfer: send_files -> done",
            s.t_send,
            s.t_done_out,
        ),
    ];
    Figures {
        pipe_best,
        end_to_end: mbs(s.bytes, s.t_done_out - s.t_send),
        data: mbs(s.bytes, s.t_done_out - s.t_accept),
        streaming,
        bob_progress_rate,
        peak_single: peak(&s.samples, s.t_send, s.t_done_out),
        chat,
        one_rate: mbs(r.batch_one.bytes, r.batch_one.elapsed),
        many_rate: mbs(r.batch_many.bytes, r.batch_many.elapsed),
    }
}

fn cpu_line(who: &str, c: &ProcCpu, wall: Duration) -> String {
    let pct = |d: Duration| 100.0 * d.as_secs_f64() / wall.as_secs_f64();
    let busiest = if c.busy_threads == 0 {
        "no thread used 10 ms".to_string()
    } else {
        format!(
            "busiest thread {} ({}) {:.2} s ({:.0} %), {} threads used >= 10 ms",
            c.busiest.0,
            c.busiest.1,
            c.busiest.2.as_secs_f64(),
            pct(c.busiest.2),
            c.busy_threads
        )
    };
    format!(
        "{who} {:.2} s CPU ({:.0} % of one core); {busiest}",
        c.total.as_secs_f64(),
        pct(c.total)
    )
}

fn row(what: &str, measured: &str, baseline: &str, goal: &str, verdict: &str) {
    println!("{what:<44} {measured:>22}  {baseline:<34} {goal:<14} {verdict}");
}

/// Prints the report as a table.
pub fn print_table(r: &Report) {
    let f = figures(r);
    let s = &r.single;
    println!("transfer-throughput  {}", r.date);
    println!(
        "machine: {} CPUs (nproc), {}; Linux {}; load average at start {}",
        r.cpus, r.cpu, r.kernel, r.loadavg
    );
    println!(
        "disk: {} on {} ({}), {} GiB free at start",
        r.dir,
        r.fs.0,
        r.fs.1,
        r.free.map_or("?".into(), |b| format!(
            "{:.1}",
            b as f64 / (1u64 << 30) as f64
        ))
    );
    println!(
        "payload: {} bytes ({:.0} MiB) of PRNG output, written and fsync'd in {:.0} ms; read back + \
         BLAKE3 (one thread) here in {:.0} ms; page-cached for every reader",
        r.size,
        mib(r.size),
        ms(r.write_time),
        ms(r.hash_time)
    );
    if let Some(note) = &r.size_note {
        println!("note: {note}");
    }
    println!("MB = 10^6 bytes. trackerd, alice, bob and this program share the machine; loopback.");
    println!();
    row(
        "figure",
        "measured",
        "baseline (same run)",
        "goal",
        "verdict",
    );
    let pipe_txt = format!("TCP pipe + fsync {:.0} MB/s", f.pipe_best);
    row(
        "TCP pipe + fsync, before / after daemons",
        &format!(
            "{:.0} / {:.0} MB/s",
            mbs(r.pipes[0].bytes, r.pipes[0].total),
            mbs(r.pipes[1].bytes, r.pipes[1].total)
        ),
        &format!(
            "without fsync {:.0} / {:.0}",
            mbs(r.pipes[0].bytes, r.pipes[0].until_eof),
            mbs(r.pipes[1].bytes, r.pipes[1].until_eof)
        ),
        "",
        "",
    );
    row(
        "diagnostic: pipe, fsync every 16 MiB",
        &format!(
            "{:.0} MB/s",
            mbs(r.pipe_periodic.bytes, r.pipe_periodic.total)
        ),
        "as p2pd's receiver did (it now syncs once per file)",
        "",
        "",
    );
    match &r.scp {
        Scp::Skipped(why) => row("scp over loopback", "skipped", why, "", ""),
        Scp::Ran {
            bytes,
            scp,
            with_sync,
        } => row(
            "scp over loopback (aes128-gcm), + sync",
            &format!("{:.0} MB/s", mbs(*bytes, *with_sync)),
            &format!("scp alone {:.0} MB/s", mbs(*bytes, *scp)),
            "",
            "",
        ),
    }
    let daemons_cpu = daemons_cpu(&r.single);
    match &r.socat {
        Socat::Skipped(why) => row("socat -b 1048576, CPU", "skipped", why, "", ""),
        Socat::Ran { bytes, wall, cpu } => row(
            "CPU of both daemons (scan + data) vs socat -b 1 MiB",
            &format!("{daemons_cpu:.2} s"),
            &format!(
                "socat {:.2} s ({:.0} MB/s)",
                cpu.as_secs_f64(),
                mbs(*bytes, *wall)
            ),
            &format!("{:.2}x, <= 1.5x", daemons_cpu / cpu.as_secs_f64().max(1e-9)),
            bench::stats::verdict(daemons_cpu <= 1.5 * cpu.as_secs_f64()),
        ),
    }
    let ratio = |v: f64| v / f.pipe_best;
    row(
        "p2pd: send_files -> done at alice",
        &format!("{:.0} MB/s ({:.2}x)", f.end_to_end, ratio(f.end_to_end)),
        &pipe_txt,
        &format!(">= {GOAL_RATIO}x pipe"),
        verdict(ratio(f.end_to_end) >= GOAL_RATIO),
    );
    row(
        "p2pd: data phase, accept -> done at alice",
        &format!("{:.0} MB/s ({:.2}x)", f.data, ratio(f.data)),
        &pipe_txt,
        &format!(">= {GOAL_RATIO}x pipe"),
        verdict(ratio(f.data) >= GOAL_RATIO),
    );
    row(
        "p2pd: scan, send_files -> offer at bob",
        &format!("{:.0} ms", ms(s.t_offered - s.t_send)),
        &format!("read + BLAKE3 here {:.0} ms", ms(r.hash_time)),
        "",
        "",
    );
    let max2 = |v: [u64; 2]| v[0].max(v[1]);
    row(
        "peak VmRSS alice / bob, that transfer",
        &format!(
            "{:.1} / {:.1} MiB",
            mib(f.peak_single[0]),
            mib(f.peak_single[1])
        ),
        &format!(
            "idle {:.1} / {:.1} MiB",
            mib(r.rss_idle[0]),
            mib(r.rss_idle[1])
        ),
        "<= 32 MiB",
        verdict(max2(f.peak_single) <= GOAL_RSS),
    );
    row(
        &format!("peak VmRSS, {} simultaneous", r.batch_many.files),
        &format!(
            "{:.1} / {:.1} MiB",
            mib(r.batch_many.peak_rss[0]),
            mib(r.batch_many.peak_rss[1])
        ),
        &format!(
            "1 transfer {:.1} / {:.1} MiB",
            mib(r.batch_one.peak_rss[0]),
            mib(r.batch_one.peak_rss[1])
        ),
        "<= 32 MiB",
        verdict(max2(r.batch_many.peak_rss) <= GOAL_RSS),
    );
    row(
        "VmHWM alice / bob at the end of the run",
        &format!("{:.1} / {:.1} MiB", mib(r.hwm_end[0]), mib(r.hwm_end[1])),
        &format!(
            "after the first transfer {:.1} / {:.1}",
            mib(r.hwm_single[0]),
            mib(r.hwm_single[1])
        ),
        "<= 32 MiB",
        verdict(max2(r.hwm_end) <= GOAL_RSS),
    );
    let idle = &f.chat[0];
    for (i, label) in [
        (2, "chat during the data phase"),
        (3, "chat, send_files -> done"),
    ] {
        let p = &f.chat[i];
        if r.interval.is_none() {
            row(label, "not measured", "--no-chat", "p99 <= 5 ms", "");
            continue;
        }
        row(
            &format!("{label}, B p50/p99 (n={})", p.b.n),
            &format!("{:.2} / {:.2} ms", p.b.p50 / 1e3, p.b.p99 / 1e3),
            &format!(
                "idle {:.2} / {:.2} ms (n={})",
                idle.b.p50 / 1e3,
                idle.b.p99 / 1e3,
                idle.b.n
            ),
            "p99 <= 5 ms",
            verdict(p.b.p99 <= GOAL_CHAT_P99_US),
        );
    }
    row(
        &format!("{} simultaneous transfers, aggregate", r.batch_many.files),
        &format!("{:.0} MB/s ({:.2}x)", f.many_rate, ratio(f.many_rate)),
        &format!("1 transfer, same total: {:.0} MB/s", f.one_rate),
        "",
        "",
    );
    if let Some(k) = &r.resume {
        let share = k.again as f64 / k.bytes as f64;
        row(
            "SIGKILL of bob at half, restart: sent again",
            &format!("{} bytes ({:.2} %)", k.again, share * 100.0),
            &format!(
                "killed at {:.1} MiB verified; sessions (from, bytes) {:?}",
                mib(k.killed_at),
                k.sessions
            ),
            "<= 1 % of the file",
            verdict(share <= GOAL_RESENT),
        );
        row(
            "  restart -> done at alice",
            &format!("{:.0} ms", ms(k.rest)),
            &format!("bob killed and started again in {:.0} ms", ms(k.restart)),
            "",
            "",
        );
    }
    println!();
    println!("breakdown of the transfer accepted by hand (times from send_files written):");
    let at = |t: Instant| format!("{:>8.1} ms", ms(t - s.t_send));
    println!(
        "send_files call: {:.1} ms (peers call {:.1} ms)",
        ms(s.t_send_ret - s.t_send),
        ms(s.peers_call)
    );
    println!(
        "  {}  send_files answered (the tree is hashed after, as a job)",
        at(s.t_send_ret)
    );
    println!("  {}  transfer_offered read at bob", at(s.t_offered));
    println!("  {}  accept written to bob", at(s.t_accept));
    println!("  {}  accept answered", at(s.t_accept_ret));
    if let Some(t) = s.t_running_out {
        println!("  {}  alice running (read bob's Accept)", at(t));
    }
    if let Some(t) = s.t_sender_end {
        println!(
            "  {}  alice's last progress event (her last frame written)",
            at(t)
        );
    }
    if let Some(t) = s.t_done_in {
        println!("  {}  bob done (whole-file hash checked, renamed)", at(t));
    }
    println!("  {}  alice done (read bob's Done)", at(s.t_done_out));
    if let Some(v) = f.streaming {
        println!("  sender streaming rate (alice running -> her last frame): {v:.0} MB/s");
    }
    if let Some(v) = f.bob_progress_rate {
        println!(
            "  bob's verified-bytes rate between his first and last progress events: {v:.0} MB/s"
        );
    }
    let scan_wall = s.t_offered - s.t_send;
    let data_wall = s.t_done_out - s.t_accept;
    println!("CPU, scan phase ({:.0} ms):", ms(scan_wall));
    println!("  {}", cpu_line("alice", &s.cpu_scan[0], scan_wall));
    println!("  {}", cpu_line("bob  ", &s.cpu_scan[1], scan_wall));
    println!("CPU, data phase ({:.0} ms):", ms(data_wall));
    println!("  {}", cpu_line("alice", &s.cpu_data[0], data_wall));
    println!("  {}", cpu_line("bob  ", &s.cpu_data[1], data_wall));
    println!();
    match r.interval {
        None => println!("no chat ran beside the transfer (--no-chat)"),
        Some(interval) => print_chat(&f.chat, interval),
    }
    println!();
    println!(
        "simultaneous transfers ({}; each send_files on its own connection):",
        if r.auto_accept {
            "bob auto-accepts"
        } else {
            "bob accepts each offer as its event arrives"
        }
    );
    for b in [&r.batch_one, &r.batch_many] {
        let mut each: Vec<f64> = b.each.iter().map(|d| ms(*d)).collect();
        each.sort_by(f64::total_cmp);
        println!(
            "  {} x {:.0} MiB: {:.0} ms, {:.0} MB/s aggregate; all send_files answered after {:.0} ms; \
             each done after {:.0}..{:.0} ms; peak VmRSS alice / bob {:.1} / {:.1} MiB",
            b.files,
            mib(b.bytes / b.files as u64),
            ms(b.elapsed),
            mbs(b.bytes, b.elapsed),
            ms(b.calls),
            each.first().copied().unwrap_or(0.0),
            each.last().copied().unwrap_or(0.0),
            mib(b.peak_rss[0]),
            mib(b.peak_rss[1])
        );
        println!("    {}", cpu_line("alice", &b.cpu[0], b.elapsed));
        println!("    {}", cpu_line("bob  ", &b.cpu[1], b.elapsed));
    }
    println!();
    println!(
        "every received file matched its source (size and BLAKE3); peers online {:.2} s after start",
        r.online_after.as_secs_f64()
    );
}

fn print_chat(chat: &[ChatPhase], interval: Duration) {
    println!(
        "chat, one message every {} ms alice -> bob on its own connection (ms):",
        interval.as_millis()
    );
    println!(
        "  {:<38} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "phase", "n", "A p50", "A p99", "B p50", "B p99", "B max", "C p99"
    );
    for p in chat {
        println!(
            "  {:<38} {:>5} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            p.name,
            p.b.n,
            p.a.p50 / 1e3,
            p.a.p99 / 1e3,
            p.b.p50 / 1e3,
            p.b.p99 / 1e3,
            p.b.max / 1e3,
            p.c.p99 / 1e3
        );
    }
    println!("  A: send_message returned -> message_received read at bob; B: request written ->");
    println!("  message_received (end to end); C: the send_message call. Goal applied to B.");
}

/// CPU seconds of both daemons together over the single transfer (its scan and its data).
fn daemons_cpu(s: &Single) -> f64 {
    [&s.cpu_scan, &s.cpu_data]
        .iter()
        .flat_map(|c| c.iter())
        .map(|c| c.total.as_secs_f64())
        .sum()
}

fn cpu_json(c: &ProcCpu) -> Value {
    json!({"cpu_s": c.total.as_secs_f64(), "busiest_thread": c.busiest.0,
           "busiest_s": c.busiest.2.as_secs_f64(), "busy_threads": c.busy_threads})
}

fn batch_json(b: &Batch) -> Value {
    json!({
        "files": b.files, "bytes": b.bytes, "elapsed_ms": ms(b.elapsed),
        "mb_per_s": mbs(b.bytes, b.elapsed), "calls_ms": ms(b.calls),
        "each_ms": b.each.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
        "peak_rss_bytes": b.peak_rss, "cpu": [cpu_json(&b.cpu[0]), cpu_json(&b.cpu[1])],
    })
}

/// The report as JSON.
pub fn to_json(r: &Report) -> Value {
    let f = figures(r);
    let s = &r.single;
    let rel = |t: Option<Instant>| t.map(|t| ms(t - s.t_send));
    json!({
        "date": r.date,
        "machine": {"cpus_online": r.cpus, "cpu_model": r.cpu, "kernel": r.kernel,
                    "loadavg": r.loadavg, "dir": r.dir, "fs_type": r.fs.0, "device": r.fs.1,
                    "free_bytes": r.free},
        "size_bytes": r.size,
        "size_note": r.size_note,
        "payload_write_ms": ms(r.write_time),
        "payload_read_blake3_ms": ms(r.hash_time),
        "pipe": r.pipes.iter().map(|p| json!({"bytes": p.bytes, "total_ms": ms(p.total),
            "until_eof_ms": ms(p.until_eof), "mb_per_s": mbs(p.bytes, p.total)})).collect::<Vec<_>>(),
        "pipe_best_mb_per_s": f.pipe_best,
        "pipe_sync_every_16mib": {"total_ms": ms(r.pipe_periodic.total),
            "mb_per_s": mbs(r.pipe_periodic.bytes, r.pipe_periodic.total)},
        "scp": match &r.scp {
            Scp::Skipped(why) => json!({"skipped": why}),
            Scp::Ran { bytes, scp, with_sync } => json!({"bytes": bytes, "scp_ms": ms(*scp),
                "with_sync_ms": ms(*with_sync), "mb_per_s_with_sync": mbs(*bytes, *with_sync)}),
        },
        "socat": match &r.socat {
            Socat::Skipped(why) => json!({"skipped": why}),
            Socat::Ran { bytes, wall, cpu } => json!({"bytes": bytes, "wall_ms": ms(*wall),
                "cpu_s": cpu.as_secs_f64(), "mb_per_s": mbs(*bytes, *wall)}),
        },
        "single": {
            "cpu_both_daemons_s": daemons_cpu(s),
            "end_to_end_mb_per_s": f.end_to_end,
            "data_phase_mb_per_s": f.data,
            "ratio_to_pipe": f.end_to_end / f.pipe_best,
            "data_ratio_to_pipe": f.data / f.pipe_best,
            "sender_streaming_mb_per_s": f.streaming,
            "bob_progress_mb_per_s": f.bob_progress_rate,
            "ms_from_send_files": {
                "send_files_answered": rel(Some(s.t_send_ret)), "offer_at_bob": rel(Some(s.t_offered)),
                "peers_call": ms(s.peers_call),
                "accept_written": rel(Some(s.t_accept)), "accept_answered": rel(Some(s.t_accept_ret)),
                "alice_running": rel(s.t_running_out), "alice_last_progress": rel(s.t_sender_end),
                "bob_done": rel(s.t_done_in), "alice_done": rel(Some(s.t_done_out)),
            },
            "cpu_scan": [cpu_json(&s.cpu_scan[0]), cpu_json(&s.cpu_scan[1])],
            "cpu_data": [cpu_json(&s.cpu_data[0]), cpu_json(&s.cpu_data[1])],
        },
        "rss": {"idle_bytes": r.rss_idle, "peak_during_single_bytes": f.peak_single,
                "hwm_after_single_bytes": r.hwm_single, "hwm_end_bytes": r.hwm_end},
        "chat_interval_ms": r.interval.map(|i| i.as_millis() as u64),
        "chat": f.chat.iter().map(|p| json!({"phase": p.name, "a": p.a.json(), "b": p.b.json(),
            "c": p.c.json()})).collect::<Vec<_>>(),
        "batch_one": batch_json(&r.batch_one),
        "batch_many": batch_json(&r.batch_many),
        "auto_accept": r.auto_accept,
        "resume": r.resume.as_ref().map(|k| json!({"bytes": k.bytes, "killed_at": k.killed_at,
            "sessions": k.sessions, "sent_again": k.again,
            "sent_again_share": k.again as f64 / k.bytes as f64,
            "restart_ms": ms(k.restart), "restart_to_done_ms": ms(k.rest)})),
        "goals": {
            "resent_share": GOAL_RESENT,
            "ratio": GOAL_RATIO, "rss_bytes": GOAL_RSS, "chat_p99_us": GOAL_CHAT_P99_US,
            "ratio_met": f.end_to_end / f.pipe_best >= GOAL_RATIO,
            "chat_met": r.interval.map(|_| f.chat[3].b.p99 <= GOAL_CHAT_P99_US),
            "rss_met": r.hwm_end[0].max(r.hwm_end[1]) <= GOAL_RSS,
        },
    })
}
