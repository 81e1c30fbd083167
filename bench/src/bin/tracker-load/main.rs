//! tracker-load: a load benchmark for `trackerd` (a program, not a test).
//!
//! For each peer count N it starts a fresh `trackerd` on loopback with raised limits, opens N
//! real TLS 1.3 connections (each with its own Ed25519 key), sends `Hello` and `Register` with
//! `--concurrency` handshakes in flight, and keeps every connection open and idle. It reads the
//! tracker's resident memory before and after that ramp, then measures, from one extra
//! registered client, `List` round trips beside `Ping` round trips on the same connection,
//! then `Lookup` by name and `ListPage` round trips. Each registering peer watches the keys
//! of the next `--watch` peers (protocol version 3), so each registration is heard by about
//! that many watchers; the tracker's admin socket counts the event frames it queued.
//! Last (unless `--no-reconnect`) it closes the N peers and registers the same names again,
//! which the tracker handles without a new name binding, so without a disk sync.
//!
//! Progress goes to stderr; the result table (or JSON with `--json`) goes to stdout.
//!
//! ```text
//! cargo build --release -p bench -p trackerd
//! target/release/tracker-load --trackerd target/release/trackerd
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bench::sys::{clock_ticks, cpu_model, cpus_online, kernel_slab, rss_bytes};
use bench::{exe_dir, utc_now};
use clap::Parser;
use serde_json::json;

mod clients;
mod list;
mod report;
mod tracker;

use clients::{Phase, RampStats, prepare, ramp};
use list::{ListStats, live_count, measure_list, register_raw};
use report::{print_table, to_json};
use tracker::TrackerProc;

/// File descriptors kept back from N for the listener, the extra client, stdio and slack.
const FD_RESERVE: u64 = 64;

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    name = "tracker-load",
    about = "Load benchmark for trackerd: many idle TLS peers, registration rate, list latency"
)]
struct Args {
    /// The trackerd binary (default: `trackerd` next to this program).
    #[arg(long, value_name = "PATH")]
    trackerd: Option<PathBuf>,
    /// Peer counts to test, comma-separated; each gets a fresh tracker.
    #[arg(
        long,
        value_name = "N,...",
        value_delimiter = ',',
        default_value = "1000,10000,15000"
    )]
    peers: Vec<usize>,
    /// Keys each registering peer watches (other peers spread over the ramp), as a peer
    /// watches the peers it pins; 0 for none.
    #[arg(long, value_name = "K", default_value_t = 4)]
    watch: usize,
    /// Entries per `ListPage` request in the page measurement.
    #[arg(long, value_name = "P", default_value_t = 500)]
    page_size: u16,
    /// Handshakes (connect + TLS + Hello + Register) in flight at once.
    #[arg(long, value_name = "C", default_value_t = 64)]
    concurrency: usize,
    /// Sequential `List` round trips (each beside a `Ping`), then as many `Lookup`s and
    /// `ListPage`s, once all N are registered.
    #[arg(long, value_name = "M", default_value_t = 200)]
    list_requests: usize,
    /// Skip the reconnect phase (close all N, then register the same names again).
    #[arg(long)]
    no_reconnect: bool,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// The figures for one N.
struct RunResult {
    n: usize,
    first: RampStats,
    again: Option<RampStats>,
    list: Option<ListStats>,
    rss_before: u64,
    rss_after: u64,
    rss_after_list: u64,
    kernel_slab_delta: Option<i64>,
    stop_secs: f64,
}

impl RunResult {
    /// RSS extrapolated to `n` peers: the baseline plus `n` times the bytes per peer.
    fn rss_at(&self, n: usize) -> f64 {
        self.rss_before as f64 + self.bytes_per_peer() * n as f64
    }

    /// Tracker memory per registered peer: (RSS after - RSS before) / registered.
    fn bytes_per_peer(&self) -> f64 {
        if self.first.registered == 0 {
            return f64::NAN;
        }
        self.rss_after.saturating_sub(self.rss_before) as f64 / self.first.registered as f64
    }
}

/// Runs `f` and turns an error into a printed note.
fn or_note<T>(n: usize, what: &str, r: anyhow::Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("N={n}: {what} failed: {e:#}");
            None
        }
    }
}

/// One fresh tracker, N peers.
fn run_one(
    rt: &tokio::runtime::Runtime,
    bin: &Path,
    n: usize,
    args: &Args,
    ticks: u64,
) -> anyhow::Result<RunResult> {
    let mut tracker = TrackerProc::start(bin)?;
    let pid = tracker.pid();
    eprintln!(
        "N={n}: trackerd pid {pid} on {}; preparing {n} keys",
        tracker.addr
    );
    let clients = Arc::new(prepare(n, "p", tracker.id, args.watch)?);
    let names: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
    let extra = prepare(1, "bench-list", tracker.id, 0)?;
    let extra = extra.first().context("no extra client")?;
    // Let the tracker settle before the baseline.
    std::thread::sleep(Duration::from_millis(300));
    let rss_before = rss_bytes(pid)?;
    let kernel_before = kernel_slab();

    eprintln!(
        "N={n}: registering new names, {} in flight",
        args.concurrency
    );
    let (conns, first) = ramp(rt, &tracker, &clients, Phase::New, args.concurrency, ticks)?;
    eprintln!(
        "N={n}: {} registered in {:.2} s ({} failed)",
        first.registered, first.secs, first.failures
    );
    if let Some(e) = &first.first_error {
        eprintln!("N={n}: first error: {e}");
    }
    std::thread::sleep(Duration::from_millis(500));
    let rss_after = rss_bytes(pid)
        .with_context(|| format!("trackerd is gone; stderr:\n{}", tracker.stderr_tail()))?;
    let kernel_after = kernel_slab();

    let mut list_conn = or_note(
        n,
        "list client",
        rt.block_on(register_raw(tracker.addr, extra)),
    );
    let list = list_conn.as_mut().and_then(|io| {
        eprintln!("N={n}: {} List and Ping rounds", args.list_requests);
        or_note(
            n,
            "list measurement",
            rt.block_on(measure_list(io, args.list_requests, &names, args.page_size)),
        )
    });
    let rss_after_list = rss_bytes(pid).unwrap_or(0);

    // Reconnect: close every peer, wait until the tracker has seen them go, register again.
    let mut again = None;
    let mut open = conns;
    if !args.no_reconnect
        && let Some(io) = list_conn.as_mut()
    {
        eprintln!("N={n}: closing {} peers", open.len());
        rt.block_on(async { drop(std::mem::take(&mut open)) });
        let gone = rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let live = live_count(io).await?;
                if live <= 1 {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    bail!("{live} peers still listed 60 s after closing them");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        if or_note(n, "waiting for disconnects", gone).is_some() {
            eprintln!("N={n}: registering the same names again (seq 2)");
            let (conns, stats) = ramp(
                rt,
                &tracker,
                &clients,
                Phase::Again,
                args.concurrency,
                ticks,
            )?;
            eprintln!(
                "N={n}: {} registered again in {:.2} s ({} failed)",
                stats.registered, stats.secs, stats.failures
            );
            open = conns;
            again = Some(stats);
        }
    }

    eprintln!("N={n}: stopping trackerd");
    let stop = tracker.stop()?;
    // Close the clients only after the tracker is gone.
    rt.block_on(async { drop((open, list_conn)) });
    Ok(RunResult {
        n,
        first,
        again,
        list,
        rss_before,
        rss_after,
        rss_after_list,
        kernel_slab_delta: delta(kernel_before, kernel_after),
        stop_secs: stop.as_secs_f64(),
    })
}

/// `after - before`, if both are known.
fn delta(before: Option<u64>, after: Option<u64>) -> Option<i64> {
    Some(after? as i64 - before? as i64)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = match &args.trackerd {
        Some(p) => p.clone(),
        None => exe_dir()?.join("trackerd"),
    };
    if !bin.is_file() {
        bail!(
            "no trackerd at {} (build it: cargo build --release -p trackerd, or pass --trackerd PATH)",
            bin.display()
        );
    }
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }

    let fd_limit = rlimit::increase_nofile_limit(u64::MAX).context("cannot raise RLIMIT_NOFILE")?;
    let max_n = usize::try_from(fd_limit.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
    let mut notes = Vec::new();
    let ns: Vec<usize> = args
        .peers
        .iter()
        .map(|&n| {
            if n > max_n {
                let note = format!(
                    "N={n} capped to {max_n}: this process may open {fd_limit} files \
                     (each peer is one socket here and one in trackerd)"
                );
                eprintln!("note: {note}");
                notes.push(note);
                max_n
            } else {
                n
            }
        })
        .collect();

    let nproc = cpus_online();
    let cpu = cpu_model();
    let date = utc_now();
    let machine = format!("{date}; {nproc} CPUs, {cpu}; open files limit {fd_limit}");
    let ticks = clock_ticks();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    let mut results = Vec::new();
    for &n in &ns {
        if n == 0 {
            continue;
        }
        results.push(run_one(&rt, &bin, n, &args, ticks)?);
    }

    if args.json {
        let machine = json!({
            "date": date,
            "nproc": nproc,
            "cpu_model": cpu,
            "open_files_limit": fd_limit,
            "notes": notes,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&results, machine, &args))?
        );
    } else {
        print_table(&results, &machine, &args, &notes);
    }
    Ok(())
}
