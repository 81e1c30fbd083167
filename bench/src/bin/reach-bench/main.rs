//! reach-bench: how fast a peer is reached when a tracker is down or gone (a program, not a
//! test; everything on 127.0.0.1, LAN discovery off, a local `dht-testnet`, never the public
//! DHT).
//!
//! - Two trackers: bob is registered at tracker A. `--rounds` times each, alternating, alice
//!   starts (same state directory, so the same key) with `--tracker A --tracker B`, B either
//!   a second running tracker ("both up") or a port nothing listens on ("one down"). The
//!   clock runs from just before her process is spawned to her `status` showing A
//!   `registered`, and to bob's `peers` listing her online; she stops and bob must list her
//!   offline before the next round.
//! - DHT: alice and bob run with `--dht` on a `dht-testnet` of `--dht-nodes` nodes, met
//!   through a tracker that is then stopped. `--rounds` times: bob stops, alice sends him a
//!   message (her dials of the address she knows fail, so it is queued), bob starts again on another
//!   port (same key, publishing his record in the DHT), and the clock runs from just before
//!   his process is spawned to alice's history showing the message delivered.
//!
//! ```text
//! cargo build --release -p bench -p p2pd -p trackerd -p dht-testnet
//! target/release/reach-bench --rounds 10
//! ```

use std::ffi::OsStr;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bench::WAIT;
use bench::net::{Net, PeerFiles, start_daemon};
use bench::procs::{Daemon, LISTENING, after_prefix, tracker_lines};
use bench::rpc::Rpc;
use bench::stats::quantile_ms;
use bench::sys::{cpu_model, cpus_online, loadavg};
use bench::{exe_dir, utc_now};
use clap::Parser;
use proto::api::Call;
use serde_json::{Value, json};

/// How often a state is polled while waiting.
const POLL: Duration = Duration::from_millis(5);

#[derive(Debug, Parser)]
#[command(
    name = "reach-bench",
    about = "Registration time with one of two trackers down; a moved peer reached through the DHT"
)]
struct Args {
    /// Directory holding p2pd, trackerd and dht-testnet (default: this program's).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Rounds per measured case.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Nodes of the local DHT testnet.
    #[arg(long, default_value_t = 20)]
    dht_nodes: u16,
    /// Print one JSON document on stdout (the text goes to stderr).
    #[arg(long)]
    json: bool,
}

/// Prints a line of the text report: on stdout, or on stderr when stdout carries the JSON.
fn say(json: bool, line: &str) {
    if json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

/// p50 and max of `samples`, in ms, as JSON and as text.
fn summary(samples: &mut [Duration]) -> (Value, String) {
    let (p50, max) = (quantile_ms(samples, 0.5), quantile_ms(samples, 1.0));
    (
        json!({ "n": samples.len(), "p50_ms": p50, "max_ms": max }),
        format!("p50 {p50:.0} ms, max {max:.0} ms (n={})", samples.len()),
    )
}

/// Starts p2pd `name` with `extra` arguments (trackers, DHT), its files under `dir/name`;
/// returns it with its control socket.
fn start_p2pd(
    bin_dir: &Path,
    dir: &Path,
    name: &'static str,
    extra: &[String],
) -> anyhow::Result<(Daemon, PathBuf)> {
    let files = PeerFiles::under(dir, name);
    let mut args: Vec<&OsStr> = vec![
        "--name".as_ref(),
        name.as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--no-lan".as_ref(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    args.extend(files.args());
    let (daemon, first, second) = start_daemon(name, &bin_dir.join("p2pd"), &args, false, dir)?;
    after_prefix(&first, LISTENING, "first", name)?;
    let socket = after_prefix(&second, "control socket ", "second", name)?;
    Ok((daemon, PathBuf::from(socket)))
}

/// Polls `what` every [`POLL`] until it holds, for up to [`WAIT`].
fn wait(what: &str, mut check: impl FnMut() -> anyhow::Result<bool>) -> anyhow::Result<()> {
    let started = Instant::now();
    while !check()? {
        if started.elapsed() > WAIT {
            bail!("not {what} after {WAIT:?}");
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

/// Whether `status` shows the tracker at `addr` registered.
fn registered(status: &Value, addr: &str) -> bool {
    status["sources"].as_array().is_some_and(|s| {
        s.iter()
            .any(|x| x["kind"] == "tracker" && x["addr"] == addr && x["state"] == "registered")
    })
}

/// A `HOST:PORT` nothing listens on (bound, read, closed).
fn closed_port() -> anyhow::Result<String> {
    let s = UdpSocket::bind("127.0.0.1:0")?;
    Ok(s.local_addr()?.to_string())
}

/// The two-tracker rounds: (both up, one down) figures to "registered" and to "bob sees her".
fn two_trackers(bin_dir: &Path, dir: &Path, rounds: usize, json: bool) -> anyhow::Result<Value> {
    std::fs::create_dir_all(dir.join("a"))?;
    let a = Net::start(bin_dir, &dir.join("a"), false)?;
    let b_dir = dir.join("b");
    std::fs::create_dir_all(&b_dir)?;
    let b_state = b_dir.join("state");
    let (mut b, first, second) = start_daemon(
        "trackerd",
        &bin_dir.join("trackerd"),
        &[
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--state-dir".as_ref(),
            b_state.as_os_str(),
        ],
        false,
        &b_dir,
    )?;
    let b_addr = tracker_lines(&first, &second)?.0.to_owned();
    let dead = closed_port()?;
    let (mut bob, bob_socket) =
        start_p2pd(bin_dir, dir, "bob", &["--tracker".into(), a.addr.clone()])?;
    let mut bob_rpc = Rpc::connect(&bob_socket)?;
    let mut reg = [Vec::new(), Vec::new()];
    let mut seen = [Vec::new(), Vec::new()];
    for round in 0..rounds * 2 {
        let case = round % 2;
        let second = if case == 0 { &b_addr } else { &dead };
        let extra = [
            "--tracker".into(),
            a.addr.clone(),
            "--tracker".into(),
            second.clone(),
        ];
        let t0 = Instant::now();
        let (mut alice, socket) = start_p2pd(bin_dir, dir, "alice", &extra)?;
        let mut rpc = Rpc::connect(&socket)?;
        wait("registered at the live tracker", || {
            Ok(registered(&rpc.call(Call::Status {})?, &a.addr))
        })?;
        reg[case].push(t0.elapsed());
        bob_rpc.wait_listed("bob", "alice", true, POLL)?;
        seen[case].push(t0.elapsed());
        drop(rpc);
        alice.stop()?;
        bob_rpc.wait_listed("bob", "alice", false, POLL)?;
    }
    bob.stop()?;
    b.stop()?;
    let cases = ["both_up", "one_down"];
    let mut out = serde_json::Map::new();
    for (i, case) in cases.iter().enumerate() {
        let (rj, rt) = summary(&mut reg[i]);
        let (sj, st) = summary(&mut seen[i]);
        say(
            json,
            &format!(
                "  two trackers, {case}: start -> registered {rt}; start -> online at bob {st}"
            ),
        );
        out.insert(
            (*case).into(),
            json!({ "registered": rj, "online_at_peer": sj }),
        );
    }
    Ok(Value::Object(out))
}

/// Whether alice's history with bob has `text` delivered.
fn delivered(rpc: &mut Rpc, text: &str) -> anyhow::Result<bool> {
    let h = rpc.call(Call::History {
        peer: "bob".into(),
        limit: Some(20),
    })?;
    Ok(h.as_array().is_some_and(|a| {
        a.iter()
            .any(|m| m["text"] == text && m["direction"] == "out" && m["state"] == "delivered")
    }))
}

/// The DHT rounds: bob moved with the tracker gone, to alice's queued message delivered.
fn moved_through_dht(
    bin_dir: &Path,
    dir: &Path,
    rounds: usize,
    nodes: u16,
    json: bool,
) -> anyhow::Result<Value> {
    std::fs::create_dir_all(dir.join("t"))?;
    let testnet = bin_dir.join("dht-testnet");
    let nodes = nodes.max(2).to_string();
    let (mut dht, first, second) = start_daemon(
        "dht-testnet",
        &testnet,
        &["--nodes".as_ref(), nodes.as_ref()],
        false,
        dir,
    )?;
    let mut extra = vec!["--dht".to_owned()];
    for line in [&first, &second] {
        let addr = after_prefix(line, "bootstrap ", "a", "dht-testnet")?;
        extra.extend(["--dht-bootstrap".to_owned(), addr.to_owned()]);
    }
    let mut net = Net::start(bin_dir, &dir.join("t"), false)?;
    let mut with_tracker = extra.clone();
    with_tracker.extend(["--tracker".into(), net.addr.clone()]);
    let (mut alice, alice_socket) = start_p2pd(bin_dir, dir, "alice", &with_tracker)?;
    let (mut bob, _) = start_p2pd(bin_dir, dir, "bob", &with_tracker)?;
    let mut rpc = Rpc::connect(&alice_socket)?;
    rpc.wait_online("alice", "bob")?;
    rpc.call(Call::SendMessage {
        peer: "bob".into(),
        text: "hello".into(),
    })?;
    wait("hello delivered", || delivered(&mut rpc, "hello"))?;
    net.tracker.stop()?;
    let mut samples = Vec::with_capacity(rounds);
    for round in 0..rounds {
        // From the second round alice may still list bob online: the DHT's record of him
        // holds until it expires. Her dials of that address fail all the same.
        bob.stop()?;
        let text = format!("round {round}");
        rpc.call(Call::SendMessage {
            peer: "bob".into(),
            text: text.clone(),
        })?;
        let t0 = Instant::now();
        bob = start_p2pd(bin_dir, dir, "bob", &with_tracker)?.0;
        wait("the queued message delivered", || {
            delivered(&mut rpc, &text)
        })?;
        let took = t0.elapsed();
        eprintln!(
            "round {}: delivered {} ms after bob moved",
            round + 1,
            took.as_millis()
        );
        samples.push(took);
    }
    bob.stop()?;
    alice.stop()?;
    dht.stop()?;
    let (j, t) = summary(&mut samples);
    say(
        json,
        &format!("  dht: bob moved, tracker gone -> alice's queued message delivered: {t}"),
    );
    Ok(j)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin_dir = match args.bin_dir {
        Some(d) => d,
        None => exe_dir()?,
    };
    for bin in ["p2pd", "trackerd", "dht-testnet"] {
        if !bin_dir.join(bin).is_file() {
            bail!(
                "no {bin} in {} (build: cargo build --release -p bench -p p2pd -p trackerd -p dht-testnet)",
                bin_dir.display()
            );
        }
    }
    let dir = tempfile::tempdir().context("a temporary directory")?;
    say(
        args.json,
        &format!(
            "reach-bench {} ({} rounds per case)",
            utc_now(),
            args.rounds
        ),
    );
    let trackers = two_trackers(
        &bin_dir,
        &dir.path().join("trackers"),
        args.rounds,
        args.json,
    )?;
    let dht = moved_through_dht(
        &bin_dir,
        &dir.path().join("dht"),
        args.rounds,
        args.dht_nodes,
        args.json,
    )?;
    if args.json {
        let out = json!({
            "bench": "reach-bench", "time": utc_now(), "cpu": cpu_model(), "cpus": cpus_online(),
            "loadavg": loadavg(), "rounds": args.rounds, "dht_nodes": args.dht_nodes,
            "two_trackers": trackers, "dht_moved": dht,
        });
        println!("{out}");
    }
    Ok(())
}
