//! The report: a table on stdout, or JSON with `--json`.

use std::time::Duration;

use bench::stats::{Summary, verdict};
use serde_json::{Value, json};

use crate::measure::ChatSamples;

/// Goal: median of A (call returned on alice -> event at bob), microseconds.
const GOAL_P50_US: f64 = 1_000.0;
/// Goal: 99th percentile of A, microseconds.
const GOAL_P99_US: f64 = 5_000.0;
/// An A below this means bob's event was already waiting when alice's answer was read.
const EARLY: Duration = Duration::from_micros(20);

/// The history sent before the timing (`--history N`).
pub struct Preload {
    /// Messages sent.
    pub messages: usize,
    /// From the first call written to the last answered: all stored at alice.
    pub stored: Duration,
    /// From the first call written to bob's event for the last one.
    pub received: Duration,
    /// From the first call written to alice's event that the last one was delivered.
    pub delivered: Duration,
}

/// Everything the report prints.
pub struct Report {
    /// When the run ended, UTC.
    pub date: String,
    /// CPUs this program may use.
    pub cpus_online: usize,
    /// The CPU model.
    pub cpu: String,
    /// Load averages at the start.
    pub loadavg: String,
    /// How the processes were placed on CPUs.
    pub placement: String,
    /// Messages measured.
    pub args_messages: usize,
    /// Messages (and round trips) sent first and not counted.
    pub args_warmup: usize,
    /// The history sent first, if any.
    pub preload: Option<Preload>,
    /// The chat timings.
    pub chat: ChatSamples,
    /// `peers` round trips to alice before the chat.
    pub ping_before: Vec<Duration>,
    /// `peers` round trips to alice after the chat.
    pub ping_after: Vec<Duration>,
    /// Raw Unix socket echo round trips.
    pub echo: Vec<Duration>,
    /// From starting alice to both peers listing each other online.
    pub online_after: Duration,
}

fn us(v: f64) -> String {
    format!("{v:.0}")
}

/// Prints the report as a table.
pub fn print_table(r: &Report) {
    println!("chat-latency  {}", r.date);
    println!(
        "machine: {} CPUs online (nproc), {}; load average at start {}",
        r.cpus_online, r.cpu, r.loadavg
    );
    println!("placement: {}", r.placement);
    println!(
        "{} messages alice -> bob after {} warm-up, one at a time; trackerd, alice, bob and this \
         client on one machine, loopback",
        r.args_messages, r.args_warmup
    );
    if let Some(p) = &r.preload {
        println!(
            "history: {} messages alice -> bob sent first, pipelined: all stored at alice after \
             {:.1} s, the last received by bob after {:.1} s, acknowledged after {:.1} s \
             ({:.0} messages/s)",
            p.messages,
            p.stored.as_secs_f64(),
            p.received.as_secs_f64(),
            p.delivered.as_secs_f64(),
            p.messages as f64 / p.delivered.as_secs_f64()
        );
    }
    println!();
    println!(
        "{:<58} {:>6} {:>7} {:>7} {:>7} {:>8}",
        "microseconds", "n", "p50", "p90", "p99", "max"
    );
    let rows = [
        (
            "A  send_message returned (alice) -> event at bob",
            Summary::of(&r.chat.a),
        ),
        (
            "B  send_message written -> event at bob (end to end)",
            Summary::of(&r.chat.b),
        ),
        (
            "C  send_message call: request -> response",
            Summary::of(&r.chat.c),
        ),
        (
            "baseline: `peers` JSON-RPC round trip to alice, before",
            Summary::of(&r.ping_before),
        ),
        (
            "baseline: `peers` JSON-RPC round trip to alice, after",
            Summary::of(&r.ping_after),
        ),
        (
            "baseline: raw Unix socket echo, 64 B, two threads",
            Summary::of(&r.echo),
        ),
    ];
    for (what, s) in rows {
        println!(
            "{what:<58} {:>6} {:>7} {:>7} {:>7} {:>8}",
            s.n,
            us(s.p50),
            us(s.p90),
            us(s.p99),
            us(s.max)
        );
    }
    println!(
        "{:<58} {:>6} {:>7} {:>7} {:>7}",
        "goal (A)",
        "",
        format!("<={}", us(GOAL_P50_US)),
        "",
        format!("<={}", us(GOAL_P99_US))
    );
    println!();
    let a = Summary::of(&r.chat.a);
    println!(
        "goal: A p50 {} µs vs <= {} µs: {}; A p99 {} µs vs <= {} µs: {}",
        us(a.p50),
        us(GOAL_P50_US),
        verdict(a.p50 <= GOAL_P50_US),
        us(a.p99),
        us(GOAL_P99_US),
        verdict(a.p99 <= GOAL_P99_US)
    );
    println!(
        "first message (also dials the TLS link to bob): B = {:.2} ms; peers online {:.2} s after start",
        r.chat.first_b.as_secs_f64() * 1e3,
        r.online_after.as_secs_f64()
    );
    let k = (r.chat.c.len() / 10).max(1);
    let tenth = |v: &[Duration], last: bool| {
        let part = if last { &v[v.len() - k..] } else { &v[..k] };
        us(Summary::of(part).p50)
    };
    println!(
        "drift over the run (the conversation grows to {} messages): p50 of the first {k} -> last {k} \
         measured: A {} -> {} µs, B {} -> {} µs, C {} -> {} µs",
        r.args_warmup + r.args_messages,
        tenth(&r.chat.a, false),
        tenth(&r.chat.a, true),
        tenth(&r.chat.b, false),
        tenth(&r.chat.b, true),
        tenth(&r.chat.c, false),
        tenth(&r.chat.c, true),
    );
    let waiting = r.chat.a.iter().filter(|d| **d < EARLY).count();
    println!(
        "A < {} µs for {waiting} of {} messages: bob's event was most likely already waiting when \
         alice's answer was read (delivery overlapped the call; then B is the figure to use)",
        EARLY.as_micros(),
        r.chat.a.len()
    );
    if r.chat.other_events > 0 {
        println!(
            "note: {} other events arrived on bob's subscription meanwhile",
            r.chat.other_events
        );
    }
    println!();
    println!("t0: request line about to be written to alice; t1: alice's response line read;");
    println!("t2: bob's message_received line read on a connection subscribed before the run.");
    println!("A = t2 - t1, B = t2 - t0, C = t1 - t0. Lines are parsed after the time stamp.");
}

/// The report as JSON.
pub fn to_json(r: &Report) -> Value {
    let a = Summary::of(&r.chat.a);
    let k = (r.chat.c.len() / 10).max(1);
    json!({
        "date": r.date,
        "machine": {"cpus_online": r.cpus_online, "cpu_model": r.cpu, "loadavg": r.loadavg},
        "placement": r.placement,
        "messages": r.args_messages,
        "warmup": r.args_warmup,
        "history": r.preload.as_ref().map(|p| json!({
            "messages": p.messages,
            "stored_s": p.stored.as_secs_f64(),
            "received_s": p.received.as_secs_f64(),
            "delivered_s": p.delivered.as_secs_f64(),
        })),
        "a_returned_to_event": a.json(),
        "b_end_to_end": Summary::of(&r.chat.b).json(),
        "c_call": Summary::of(&r.chat.c).json(),
        "first_message_b_us": r.chat.first_b.as_secs_f64() * 1e6,
        "a_below_20us": r.chat.a.iter().filter(|d| **d < EARLY).count(),
        "first_tenth": {"a": Summary::of(&r.chat.a[..k]).json(), "b": Summary::of(&r.chat.b[..k]).json(),
                        "c": Summary::of(&r.chat.c[..k]).json()},
        "last_tenth": {"a": Summary::of(&r.chat.a[r.chat.a.len() - k..]).json(),
                       "b": Summary::of(&r.chat.b[r.chat.b.len() - k..]).json(),
                       "c": Summary::of(&r.chat.c[r.chat.c.len() - k..]).json()},
        "other_events": r.chat.other_events,
        "baseline_rpc_peers_before": Summary::of(&r.ping_before).json(),
        "baseline_rpc_peers_after": Summary::of(&r.ping_after).json(),
        "baseline_unix_echo": Summary::of(&r.echo).json(),
        "goal": {"p50_us": GOAL_P50_US, "p99_us": GOAL_P99_US,
                 "met": a.p50 <= GOAL_P50_US && a.p99 <= GOAL_P99_US},
    })
}
