//! The report: tables on stdout, or JSON with `--json`.

use bench::stats::verdict;
use serde_json::json;

use crate::clients::RampStats;
use crate::{Args, RunResult};

/// Goal: registered idle peers held within [`GOAL_RSS_MIB`] (extrapolated from the largest N
/// measured: one process may open 20,000 files here).
const GOAL_PEERS: usize = 50_000;
/// Goal: tracker RSS with [`GOAL_PEERS`] registered idle peers.
const GOAL_RSS_MIB: f64 = 256.0;
/// Goal: memory per registered idle peer.
const GOAL_KIB_PER_PEER: f64 = 5.0;
/// Goal: registrations per trackerd CPU-second, the registering peers watching.
const GOAL_REG_PER_CORE: f64 = 5_000.0;
/// Goal: 99th percentile of a lookup or page round trip (and of a whole `List`, the old way).
const GOAL_LIST_P99_MS: f64 = 10.0;

/// Bytes in a mebibyte.
const MIB: f64 = 1024.0 * 1024.0;

/// A p50/p99 pair of milliseconds as `p50/p99`.
fn ms_pair((p50, p99): (f64, f64), decimals: usize) -> String {
    format!("{p50:.decimals$}/{p99:.decimals$}")
}

/// Prints the results as tables, then the goals with verdicts.
pub fn print_table(results: &[RunResult], machine: &str, args: &Args, notes: &[String]) {
    println!("tracker-load  {machine}");
    println!(
        "{} handshakes in flight, {} List+Ping rounds; the load client and trackerd share the machine's cores",
        args.concurrency, args.list_requests
    );
    for note in notes {
        println!("note: {note}");
    }
    println!();
    println!(
        "{:>6} {:>7} {:>9} {:>15} {:>15} {:>15} {:>10} {:>8} {:>8}",
        "N",
        "reg/s",
        "reg/cpu-s",
        "reg p50/p99 ms",
        "list p50/p99 ms",
        "ping p50/p99 ms",
        "list bytes",
        "RSS MiB",
        "KiB/peer"
    );
    for r in results {
        let (list, ping, bytes) = match &r.list {
            Some(l) => (
                ms_pair(l.list_ms, 2),
                ms_pair(l.ping_ms, 3),
                l.response_bytes.to_string(),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "{:>6} {:>7.0} {:>9.0} {:>15} {:>15} {:>15} {:>10} {:>8.1} {:>8.2}",
            r.n,
            r.first.per_sec(),
            r.first.per_tracker_cpu_sec(),
            ms_pair(r.first.latency_ms, 1),
            list,
            ping,
            bytes,
            r.rss_after as f64 / MIB,
            r.bytes_per_peer() / 1024.0,
        );
    }
    println!(
        "{:>6} {:>7} {:>9} {:>15} {:>15} {:>15} {:>10} {:>8} {:>8}",
        "goal",
        "",
        format!("~{GOAL_REG_PER_CORE}"),
        "",
        format!("p99 <= {GOAL_LIST_P99_MS}"),
        "",
        "",
        format!("<= {GOAL_RSS_MIB}"),
        format!("<= {GOAL_KIB_PER_PEER}"),
    );
    println!(
        "(goal: {GOAL_PEERS} idle peers in <= {GOAL_RSS_MIB} MiB, i.e. <= {GOAL_KIB_PER_PEER} KiB/peer; \
         >= {GOAL_REG_PER_CORE} registrations per trackerd CPU-second with the peers watching; lookup and page p99 <= {GOAL_LIST_P99_MS} ms)"
    );
    println!();
    println!(
        "lookups, pages and events (protocol version 3; each registering peer watches {} keys)",
        args.watch
    );
    println!(
        "{:>6} {:>17} {:>15} {:>10} {:>10} {:>16}",
        "N", "lookup p50/p99 ms", "page p50/p99 ms", "page bytes", "events/reg", "RSS at 50k, MiB"
    );
    for r in results {
        let (lookup, page, bytes) = match &r.list {
            Some(l) => (
                ms_pair(l.lookup_ms, 3),
                ms_pair(l.page_ms, 2),
                l.page_bytes.to_string(),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "{:>6} {:>17} {:>15} {:>10} {:>10} {:>16.0}",
            r.n,
            lookup,
            page,
            bytes,
            r.first
                .events_per_registration()
                .map_or("?".into(), |e| format!("{e:.2}")),
            r.rss_at(GOAL_PEERS) / MIB,
        );
    }
    println!(
        "lookup: Lookup by name -> Found; page: ListPage of {} -> Page, walking the list; \
         events/reg: event frames trackerd queued over the new-names ramp / registrations;",
        args.page_size
    );
    println!("  RSS at 50k: RSS before + 50,000 x the measured bytes per peer.");
    println!();
    println!(
        "registration ramps (each: connect + TLS 1.3 handshake + Hello + Register, kept open)"
    );
    println!(
        "{:>6} {:<22} {:>6} {:>7} {:>6} {:>7} {:>7} {:>9} {:>15}",
        "N", "phase", "ok", "resumed", "failed", "secs", "reg/s", "reg/cpu-s", "p50/p99 ms"
    );
    for r in results {
        let phases = [
            ("new names (fsync'd)", Some(&r.first)),
            ("reconnect, known names", r.again.as_ref()),
        ];
        for (phase, stats) in phases {
            let Some(s) = stats else { continue };
            println!(
                "{:>6} {:<22} {:>6} {:>7} {:>6} {:>7.2} {:>7.0} {:>9.0} {:>15}",
                r.n,
                phase,
                s.registered,
                s.resumed,
                s.failures,
                s.secs,
                s.per_sec(),
                s.per_tracker_cpu_sec(),
                ms_pair(s.latency_ms, 1),
            );
        }
    }
    println!();
    println!(
        "reg/s: registrations per wall-clock second over the whole ramp; reg/cpu-s: per second of"
    );
    println!("  trackerd CPU time (user+sys) over the ramp, i.e. per fully used core.");
    println!(
        "resumed: TLS handshakes that resumed a session (each client keeps its TLS configuration)."
    );
    println!(
        "reg p50/p99: connect to Registered, including the queueing that the concurrency causes."
    );
    println!(
        "list: List sent -> last byte of Peers received (not decoded); ping: Ping -> Pong on the"
    );
    println!("  same connection, interleaved with the Lists in the same run.");
    println!(
        "RSS: trackerd VmRSS with all N registered and idle; KiB/peer = (RSS after - RSS before) / N."
    );
    println!();
    for r in results {
        println!(
            "N={}: trackerd RSS {:.1} MiB before, {:.1} MiB with N idle peers, {:.1} MiB after the List rounds; \
             kernel slab (SUnreclaim) {} for both ends of the loopback connections; SIGTERM to exit {:.2} s",
            r.n,
            r.rss_before as f64 / MIB,
            r.rss_after as f64 / MIB,
            r.rss_after_list as f64 / MIB,
            r.kernel_slab_delta
                .map_or("?".into(), |d| format!("{:+.1} MiB", d as f64 / MIB)),
            r.stop_secs,
        );
        if let Some(l) = &r.list {
            println!(
                "N={}: List returned {} peers in {} bytes; with this client decoding them the round trip is {} ms p50/p99",
                r.n,
                l.peers_listed,
                l.response_bytes,
                ms_pair(l.list_decoded_ms, 2),
            );
        }
        for s in std::iter::once(&r.first).chain(r.again.as_ref()) {
            if s.failures > 0 {
                println!(
                    "N={}: {} registrations FAILED; first error: {}",
                    r.n,
                    s.failures,
                    s.first_error.as_deref().unwrap_or("?")
                );
            }
        }
    }
    println!();
    println!("goals:");
    for r in results {
        for (phase, s) in std::iter::once(("new names", &r.first))
            .chain(r.again.as_ref().map(|s| ("reconnect", s)))
        {
            println!(
                "  N={}: {phase}: {:.0} registrations per trackerd CPU-second ({:.0}/s wall clock) vs ~{GOAL_REG_PER_CORE}/s per core: {}",
                r.n,
                s.per_tracker_cpu_sec(),
                s.per_sec(),
                verdict(s.per_tracker_cpu_sec() >= GOAL_REG_PER_CORE * 0.8)
            );
        }
        if let Some(l) = &r.list {
            for (what, p99) in [
                ("lookup by name", l.lookup_ms.1),
                ("page", l.page_ms.1),
                ("whole List (version 2)", l.list_ms.1),
            ] {
                println!(
                    "  N={}: {what} p99 {p99:.2} ms vs <= {GOAL_LIST_P99_MS} ms: {}",
                    r.n,
                    verdict(p99 <= GOAL_LIST_P99_MS)
                );
            }
        }
        let kib = r.bytes_per_peer() / 1024.0;
        println!(
            "  N={}: {kib:.2} KiB per idle peer vs <= {GOAL_KIB_PER_PEER} KiB: {}",
            r.n,
            verdict(kib <= GOAL_KIB_PER_PEER)
        );
        let mib = r.rss_at(GOAL_PEERS) / MIB;
        println!(
            "  N={}: RSS extrapolated to {GOAL_PEERS} peers {mib:.0} MiB vs <= {GOAL_RSS_MIB} MiB: {}",
            r.n,
            verdict(mib <= GOAL_RSS_MIB)
        );
    }
}

/// The results as JSON; `machine` describes the machine.
pub fn to_json(
    results: &[RunResult],
    machine: serde_json::Value,
    args: &Args,
) -> serde_json::Value {
    let runs: Vec<_> = results
        .iter()
        .map(|r| {
            json!({
                "n": r.n,
                "new_names": r.first.json(),
                "reconnect": r.again.as_ref().map(RampStats::json),
                "list": r.list.as_ref().map(|l| json!({
                    "p50_ms": l.list_ms.0,
                    "p99_ms": l.list_ms.1,
                    "decoded_p50_ms": l.list_decoded_ms.0,
                    "decoded_p99_ms": l.list_decoded_ms.1,
                    "ping_p50_ms": l.ping_ms.0,
                    "ping_p99_ms": l.ping_ms.1,
                    "peers": l.peers_listed,
                    "response_bytes": l.response_bytes,
                    "lookup_p50_ms": l.lookup_ms.0,
                    "lookup_p99_ms": l.lookup_ms.1,
                    "page_p50_ms": l.page_ms.0,
                    "page_p99_ms": l.page_ms.1,
                    "page_bytes": l.page_bytes,
                })),
                "rss_at_goal_peers_bytes": r.rss_at(GOAL_PEERS),
                "rss_before_bytes": r.rss_before,
                "rss_after_bytes": r.rss_after,
                "rss_after_list_bytes": r.rss_after_list,
                "bytes_per_peer": r.bytes_per_peer(),
                "kernel_slab_delta_bytes": r.kernel_slab_delta,
                "stop_secs": r.stop_secs,
            })
        })
        .collect();
    json!({
        "machine": machine,
        "concurrency": args.concurrency,
        "list_requests": args.list_requests,
        "watch": args.watch,
        "page_size": args.page_size,
        "goals": {
            "peers": GOAL_PEERS,
            "rss_mib": GOAL_RSS_MIB,
            "kib_per_peer": GOAL_KIB_PER_PEER,
            "reg_per_sec_per_core": GOAL_REG_PER_CORE,
            "list_p99_ms": GOAL_LIST_P99_MS,
        },
        "runs": runs,
    })
}
