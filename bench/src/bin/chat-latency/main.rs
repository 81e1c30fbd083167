//! chat-latency: how long a chat message takes from `send_message` on one p2pd to the
//! `message_received` event on the other's control socket (a program, not a test).
//!
//! It starts a real `trackerd` and two real `p2pd` (alice and bob) on loopback in a temporary
//! directory, waits until each lists the other online, and subscribes to bob's events. Then,
//! one message at a time, it calls `send_message {peer: "bob", text: "m<i>"}` on alice's
//! control socket and waits for bob's `message_received` event with that text:
//!
//! - t0: the request line is about to be written to alice's socket;
//! - t1: alice's response line has been read (the call returned);
//! - t2: bob's `message_received` line has been read on the subscribed connection.
//!
//! A = t2 - t1 (call returned on alice -> event at bob's watcher), B = t2 - t0 (end to end),
//! C = t1 - t0 (the call itself). In the same run it measures two baselines: a trivial
//! JSON-RPC round trip (`peers`) to alice, before and after the messages, and a raw Unix
//! socket echo between two threads of this process (the kernel's floor).
//!
//! With `--history N` it first sends N messages alice -> bob for real, 64 calls in flight, and
//! waits until bob has them all and alice has every Ack, so that the timed messages go into a
//! conversation that already holds N (the report gives how long the N took).
//!
//! Placement matters on a 2-vCPU VM (a cross-CPU wake-up costs ~40 µs more per round trip),
//! so `--pin` runs this program and every daemon on CPU 0 (`taskset`), and the report says
//! which placement was used; baselines and measurement always share it.
//!
//! ```text
//! cargo build --release -p bench -p p2pd -p trackerd
//! target/release/chat-latency            # unpinned
//! target/release/chat-latency --pin      # everything on CPU 0
//! target/release/chat-latency --history 100000
//! ```

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use bench::net::{Net, PIN_CPU, Peer};
use bench::rpc::Rpc;
use bench::sys::{cpu_model, cpus_allowed, cpus_online, loadavg};
use bench::{exe_dir, utc_now};
use clap::Parser;
use proto::api::Call;
use serde_json::Value;

mod measure;
mod report;

use measure::{chat, kernel_echo, rpc_ping};
use report::{Preload, Report, print_table, to_json};

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    name = "chat-latency",
    about = "Chat message latency between two p2pd on loopback, beside local-socket baselines"
)]
struct Args {
    /// Directory holding trackerd and p2pd (default: the directory of this program).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Messages measured.
    #[arg(long, value_name = "N", default_value_t = 2000)]
    messages: usize,
    /// Messages sent first and not counted (the first one also dials the peer link).
    #[arg(long, value_name = "N", default_value_t = 100)]
    warmup: usize,
    /// Round trips measured for each baseline (after the same warm-up count).
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pings: usize,
    /// Messages sent alice -> bob before the warm-up, for real and pipelined (64 calls in
    /// flight), so that the conversation already holds them when the timing starts.
    #[arg(long, value_name = "N", default_value_t = 0)]
    history: usize,
    /// Run this program and every daemon on CPU 0 (`taskset -c 0`).
    #[arg(long)]
    pin: bool,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Pins this process (all its threads) to [`PIN_CPU`]; children inherit it.
fn pin_self() -> anyhow::Result<()> {
    let status = Command::new("taskset")
        .args(["-a", "-c", "-p", PIN_CPU])
        .arg(std::process::id().to_string())
        .stdout(Stdio::null())
        .status()
        .context("cannot run taskset (util-linux)")?;
    if !status.success() {
        bail!("taskset -a -c -p {PIN_CPU} failed: {status}");
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin_dir = match &args.bin_dir {
        Some(d) => d.clone(),
        None => exe_dir()?,
    };
    let trackerd = bin_dir.join("trackerd");
    let p2pd = bin_dir.join("p2pd");
    for bin in [&trackerd, &p2pd] {
        if !bin.is_file() {
            bail!(
                "no {} (build: cargo build --release -p p2pd -p trackerd, or pass --bin-dir DIR)",
                bin.display()
            );
        }
    }
    if args.messages == 0 {
        bail!("--messages must be at least 1");
    }

    let cpus_online = cpus_online();
    let loadavg = loadavg();
    if args.pin {
        pin_self()?;
    }

    let dir = tempfile::Builder::new()
        .prefix("chat-latency-")
        .tempdir()
        .context("cannot make a temporary directory")?;
    let d = dir.path();
    let mut net = Net::start(&bin_dir, d, args.pin)?;
    let started = Instant::now();
    let Peer {
        daemon: mut alice,
        socket: alice_sock,
        ..
    } = net.start_peer("alice")?;
    let Peer {
        daemon: mut bob,
        socket: bob_sock,
        ..
    } = net.start_peer("bob")?;

    let placement = {
        let me = cpus_allowed("self");
        let who = [
            ("chat-latency", me),
            ("trackerd", cpus_allowed(&net.tracker.pid().to_string())),
            ("alice", cpus_allowed(&alice.pid().to_string())),
            ("bob", cpus_allowed(&bob.pid().to_string())),
        ];
        let list = who
            .iter()
            .map(|(n, c)| format!("{n} {c}"))
            .collect::<Vec<_>>()
            .join(", ");
        if args.pin {
            format!("pinned (--pin, taskset -c {PIN_CPU}); CPUs allowed: {list}")
        } else {
            format!("unpinned (processes float between CPUs); CPUs allowed: {list}")
        }
    };
    eprintln!("placement: {placement}");

    let mut a_rpc = Rpc::connect(&alice_sock)?;
    let mut b_rpc = Rpc::connect(&bob_sock)?;
    eprintln!("waiting until alice and bob list each other online");
    a_rpc.wait_online("alice", "bob")?;
    b_rpc.wait_online("bob", "alice")?;
    let online_after = started.elapsed();
    // Bob trusts alice: the run sends faster than the message rate bob allows untrusted peers,
    // and measures delivery, not deferral.
    b_rpc.call(Call::Trust {
        peer: "alice".into(),
        auto_accept: false,
    })?;
    let sub = b_rpc.call(Call::Subscribe {})?;
    if sub["subscribed"] != Value::Bool(true) {
        bail!("subscribe answered {sub}");
    }

    let preload = if args.history > 0 {
        eprintln!("history: {} messages alice -> bob, pipelined", args.history);
        Some(preload(&alice_sock, &mut a_rpc, &mut b_rpc, args.history)?)
    } else {
        None
    };

    let warm = args.warmup;
    eprintln!("baseline: raw Unix socket echo, {} rounds", args.pings);
    let echo = kernel_echo(args.pings, warm)?;
    eprintln!(
        "baseline: `peers` round trips to alice, {} rounds",
        args.pings
    );
    let ping_before = rpc_ping(&mut a_rpc, args.pings, warm)?;
    eprintln!(
        "chat: {} warm-up + {} messages alice -> bob",
        warm, args.messages
    );
    let chat = chat(&mut a_rpc, &mut b_rpc, args.messages, warm).with_context(|| {
        format!(
            "alice stderr:\n{}\nbob stderr:\n{}",
            alice.stderr_tail(),
            bob.stderr_tail()
        )
    })?;
    eprintln!("baseline again: `peers` round trips to alice");
    let ping_after = rpc_ping(&mut a_rpc, args.pings, warm)?;

    drop((a_rpc, b_rpc));
    eprintln!("stopping the daemons");
    alice.stop()?;
    bob.stop()?;
    net.tracker.stop()?;

    let report = Report {
        date: utc_now(),
        cpus_online,
        cpu: cpu_model(),
        loadavg,
        placement,
        args_messages: args.messages,
        args_warmup: warm,
        preload,
        chat,
        ping_before,
        ping_after,
        echo,
        online_after,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&to_json(&report))?);
    } else {
        print_table(&report);
    }
    Ok(())
}

/// Sends `n` messages alice -> bob with the calls pipelined on `alice`, then waits until bob's
/// subscription (`bob`, subscribed) shows the last one received and alice's (a connection of
/// its own) shows it delivered, so that no Ack is still in flight when the timing starts.
fn preload(
    alice_sock: &std::path::Path,
    alice: &mut Rpc,
    bob: &mut Rpc,
    n: usize,
) -> anyhow::Result<Preload> {
    let mut acks = Rpc::connect(alice_sock)?;
    let sub = acks.call(Call::Subscribe {})?;
    if sub["subscribed"] != Value::Bool(true) {
        bail!("subscribe answered {sub}");
    }
    let started = Instant::now();
    let calls = (0..n).map(|i| Call::SendMessage {
        peer: "bob".into(),
        text: format!("h{i}"),
    });
    let answered = alice.pipelined(calls, 64)?;
    let stored = started.elapsed();
    if answered.len() != n {
        bail!("{} of {n} send_message calls answered", answered.len());
    }
    // The calls ran concurrently, so seqs follow the order of the inserts, not of the texts;
    // the link delivers in seq order, and acknowledges in that order.
    let last = answered
        .iter()
        .max_by_key(|m| m["seq"].as_u64().unwrap_or(0))
        .and_then(|m| m["text"].as_str())
        .context("send_message answered without a seq or text")?
        .to_owned();
    bob.wait_event(|e| e["type"] == "message_received" && e["message"]["text"] == last.as_str())
        .context("waiting for the last history message at bob")?;
    let received = started.elapsed();
    acks.wait_event(|e| {
        e["type"] == "message_updated"
            && e["message"]["text"] == last.as_str()
            && e["message"]["state"] == "delivered"
    })
    .context("waiting for alice to see the last history message delivered")?;
    let delivered = started.elapsed();
    eprintln!(
        "history: {n} stored at alice after {:.1} s, received by bob after {:.1} s, acknowledged \
         after {:.1} s",
        stored.as_secs_f64(),
        received.as_secs_f64(),
        delivered.as_secs_f64()
    );
    Ok(Preload {
        messages: n,
        stored,
        received,
        delivered,
    })
}
