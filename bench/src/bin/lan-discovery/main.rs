//! lan-discovery: how long after a p2pd starts another p2pd on the same LAN lists it online,
//! found by mDNS alone (a program, not a test).
//!
//! It makes a small LAN of network namespaces (needs root and `ip`): a switch with a bridge
//! and two hosts, each plugged in by a veth pair, so multicast never leaves what it made.
//! alice runs on one host throughout, with LAN discovery on and no reachable tracker. Then,
//! `--rounds` times, bob starts on the other host (same state directory, so the same key) and
//! the clock runs from just before his process is spawned until alice's `peers` lists him
//! online (and, second figure, until bob's lists alice: the newcomer's view); bob is stopped (SIGTERM: his goodbye on the LAN) and alice must list him offline
//! before the next round. Reports p50 and p95 against the goal (p95 under 2 s).
//!
//! ```text
//! cargo build --release -p bench -p p2pd
//! sudo target/release/lan-discovery --rounds 20
//! ```

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bench::net::{PeerFiles, start_daemon};
use bench::procs::{Daemon, after_prefix};
use bench::rpc::Rpc;
use bench::stats::{quantile_ms, verdict};
use bench::{exe_dir, utc_now};
use clap::Parser;
use serde_json::json;

/// How often `peers` is polled while waiting.
const POLL: Duration = Duration::from_millis(5);
/// The goal for p95, in milliseconds.
const GOAL_P95_MS: f64 = 2000.0;

#[derive(Debug, Parser)]
#[command(
    name = "lan-discovery",
    about = "Time from a p2pd's start to its peer listing it online, by mDNS in network namespaces"
)]
struct Args {
    /// Directory holding p2pd (default: the directory of this program).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Starts of bob to time.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// Also print the result as one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

/// The namespaces made: a switch and two hosts, deleted on drop.
struct Lan {
    switch: String,
    hosts: Vec<String>,
}

impl Lan {
    fn new() -> anyhow::Result<Lan> {
        let tag = format!("p2pb-{}", std::process::id());
        let switch = format!("{tag}-sw");
        ip(&["netns", "add", &switch]).context("making a network namespace needs root")?;
        let mut lan = Lan {
            switch,
            hosts: Vec::new(),
        };
        lan.on_switch(&["link", "add", "br0", "type", "bridge"])?;
        lan.on_switch(&["link", "set", "br0", "up"])?;
        for (i, label) in ["alice", "bob"].into_iter().enumerate() {
            let ns = format!("{tag}-{label}");
            ip(&["netns", "add", &ns])?;
            lan.hosts.push(ns.clone());
            let port = format!("h{i}");
            lan.on_switch(&[
                "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            lan.on_switch(&["link", "set", &port, "master", "br0", "up"])?;
            let addr = format!("10.78.0.{}/24", i + 1);
            ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(lan)
    }

    fn on_switch(&self, args: &[&str]) -> anyhow::Result<()> {
        let mut all = vec!["-n", self.switch.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in self.hosts.iter().chain([&self.switch]) {
            if let Err(e) = ip(&["netns", "delete", ns]) {
                eprintln!("cannot delete network namespace {ns}: {e:#}");
            }
        }
    }
}

/// Runs `ip ARGS`, failing with its stderr.
fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("cannot run `ip` (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Starts p2pd `name` in namespace `ns` with LAN discovery on and nothing listening at its
/// tracker address; returns it with its control socket.
fn start_peer(
    p2pd: &Path,
    ns: &str,
    name: &'static str,
    dir: &Path,
) -> anyhow::Result<(Daemon, PathBuf)> {
    let files = PeerFiles::under(dir, name);
    let mut args: Vec<&OsStr> = vec![
        "netns".as_ref(),
        "exec".as_ref(),
        ns.as_ref(),
        p2pd.as_os_str(),
        "--name".as_ref(),
        name.as_ref(),
        "--tracker".as_ref(),
        "127.0.0.1:9".as_ref(),
        "--listen".as_ref(),
        "0.0.0.0:0".as_ref(),
        "--lan".as_ref(),
    ];
    args.extend(files.args());
    let (daemon, _first, second) = start_daemon(name, Path::new("ip"), &args, false, dir)?;
    let path = after_prefix(&second, "control socket ", "second", name)?;
    Ok((daemon, PathBuf::from(path)))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin_dir = match args.bin_dir {
        Some(d) => d,
        None => exe_dir()?,
    };
    let p2pd = bin_dir.join("p2pd");
    if !p2pd.is_file() {
        bail!(
            "no {} (build: cargo build --release -p p2pd, or pass --bin-dir DIR)",
            p2pd.display()
        );
    }
    let lan = Lan::new()?;
    let dir = tempfile::tempdir()?;
    let (mut alice, alice_socket) = start_peer(&p2pd, &lan.hosts[0], "alice", dir.path())?;
    let mut rpc = Rpc::connect(&alice_socket)?;
    let mut samples = Vec::with_capacity(args.rounds);
    let mut newcomer = Vec::with_capacity(args.rounds);
    for round in 0..args.rounds {
        let t0 = Instant::now();
        let (mut bob, bob_socket) = start_peer(&p2pd, &lan.hosts[1], "bob", dir.path())?;
        rpc.wait_listed("alice", "bob", true, POLL)?;
        let took = t0.elapsed();
        Rpc::connect(&bob_socket)?.wait_listed("bob", "alice", true, POLL)?;
        let back = t0.elapsed();
        eprintln!(
            "round {}: alice lists bob after {} ms, bob lists alice after {} ms",
            round + 1,
            took.as_millis(),
            back.as_millis()
        );
        samples.push(took);
        newcomer.push(back);
        bob.stop()?;
        rpc.wait_listed("alice", "bob", false, POLL)?;
    }
    alice.stop()?;
    let p50 = quantile_ms(&mut samples, 0.50);
    let p95 = quantile_ms(&mut samples, 0.95);
    let max = quantile_ms(&mut samples, 1.0);
    let (n50, n95) = (
        quantile_ms(&mut newcomer, 0.50),
        quantile_ms(&mut newcomer, 0.95),
    );
    println!(
        "lan-discovery {} ({} starts of bob)",
        utc_now(),
        samples.len()
    );
    println!(
        "  bob's start -> alice lists bob online: p50 {p50:.0} ms, p95 {p95:.0} ms, max {max:.0} ms"
    );
    println!("  bob's start -> bob lists alice online: p50 {n50:.0} ms, p95 {n95:.0} ms");
    println!(
        "  goal p95 < {GOAL_P95_MS:.0} ms: {}",
        verdict(p95 < GOAL_P95_MS)
    );
    if args.json {
        let out = json!({
            "bench": "lan-discovery", "rounds": samples.len(),
            "p50_ms": p50, "p95_ms": p95, "max_ms": max, "goal_p95_ms": GOAL_P95_MS,
            "newcomer_p50_ms": n50, "newcomer_p95_ms": n95,
        });
        println!("{out}");
    }
    drop(rpc);
    drop(lan);
    Ok(())
}
