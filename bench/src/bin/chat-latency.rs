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
//! Placement matters on a 2-vCPU VM (a cross-CPU wake-up costs ~40 µs more per round trip),
//! so `--pin` runs this program and every daemon on CPU 0 (`taskset`), and the report says
//! which placement was used; baselines and measurement always share it.
//!
//! ```text
//! cargo build --release -p bench -p p2pd -p trackerd
//! target/release/chat-latency            # unpinned
//! target/release/chat-latency --pin      # everything on CPU 0
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bench::{cpu_model, utc_now};
use clap::Parser;
use proto::api::{Call, EVENT_NOTIFICATION};
use proto::rpc::{Outcome, Request, ServerLine, parse_server_line};
use serde_json::{Value, json};

/// Goal: median of A (call returned on alice -> event at bob), microseconds.
const GOAL_P50_US: f64 = 1_000.0;
/// Goal: 99th percentile of A, microseconds.
const GOAL_P99_US: f64 = 5_000.0;
/// How long to wait for a daemon's startup lines, for peers to come online, or for a line.
const WAIT: Duration = Duration::from_secs(30);
/// Time a stopping daemon gets after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Size of one raw echo message (about a `peers` request line).
const ECHO_BYTES: usize = 64;
/// An A below this means bob's event was already waiting when alice's answer was read.
const EARLY: Duration = Duration::from_micros(20);
/// The CPU that `--pin` uses.
const PIN_CPU: &str = "0";

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
    /// Run this program and every daemon on CPU 0 (`taskset -c 0`).
    #[arg(long)]
    pin: bool,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// A child daemon; killed on drop if still running.
struct Daemon {
    name: &'static str,
    child: Child,
    stderr_path: PathBuf,
}

impl Daemon {
    /// Starts `bin args` (under `taskset -c 0` when `pin`), with stderr to a file in `dir`,
    /// and returns it with the first two lines it prints on stdout.
    fn start(
        name: &'static str,
        bin: &Path,
        args: &[&std::ffi::OsStr],
        pin: bool,
        dir: &Path,
    ) -> anyhow::Result<(Daemon, String, String)> {
        let stderr_path = dir.join(format!("{name}.stderr"));
        let stderr = std::fs::File::create(&stderr_path)?;
        let mut cmd = if pin {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(PIN_CPU).arg(bin);
            c
        } else {
            Command::new(bin)
        };
        cmd.args(args)
            // Nothing from the caller's environment: no config file, socket or log settings.
            .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
            .env_remove(proto::paths::SOCKET_ENV)
            .env_remove("RUST_LOG")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let second = lines.next();
            let _ = tx.send((first, second));
            for _ in lines {}
        });
        let daemon = Daemon {
            name,
            child,
            stderr_path,
        };
        match rx.recv_timeout(WAIT) {
            Ok((Some(Ok(a)), Some(Ok(b)))) => Ok((daemon, a, b)),
            _ => bail!(
                "{name} did not print its startup lines; stderr:\n{}",
                daemon.stderr_tail()
            ),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines the daemon wrote to stderr.
    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Sends SIGTERM (with the `kill` command: the workspace denies unsafe code) and waits.
    fn stop(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .context("cannot run kill")?;
        if !status.success() {
            bail!("kill -TERM {} ({}) failed: {status}", self.pid(), self.name);
        }
        let started = Instant::now();
        while started.elapsed() < STOP_TIMEOUT {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    eprintln!("note: {} exited with {status}", self.name);
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        bail!(
            "{} did not stop within {STOP_TIMEOUT:?}; killed it",
            self.name
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The CPUs process (or thread) `pid` may run on, from `/proc/PID/status`.
fn cpus_allowed(pid: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

/// A JSON-RPC 2.0 connection to a control socket: one object per line.
struct Rpc {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
    line: String,
}

impl Rpc {
    fn connect(path: &Path) -> anyhow::Result<Rpc> {
        let stream = UnixStream::connect(path)
            .with_context(|| format!("cannot connect to {}", path.display()))?;
        stream.set_read_timeout(Some(WAIT))?;
        Ok(Rpc {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            next_id: 1,
            line: String::new(),
        })
    }

    /// Serialises a request for `call` with the next id, newline included.
    fn request(&mut self, call: Call) -> anyhow::Result<(u64, String)> {
        let id = self.next_id;
        self.next_id += 1;
        let mut text = serde_json::to_string(&Request::new(id, call))?;
        text.push('\n');
        Ok((id, text))
    }

    /// Writes one prepared line.
    fn write(&mut self, text: &str) -> anyhow::Result<()> {
        self.writer.write_all(text.as_bytes())?;
        Ok(())
    }

    /// Reads the next line into `self.line` (EOF and timeouts are errors).
    fn read_line(&mut self) -> anyhow::Result<()> {
        self.line.clear();
        let n = self.reader.read_line(&mut self.line)?;
        if n == 0 {
            bail!("the daemon closed the control connection");
        }
        Ok(())
    }

    /// Reads lines until the response to `id`; returns its result. Notifications are skipped.
    fn response(&mut self, id: u64) -> anyhow::Result<Value> {
        loop {
            self.read_line()?;
            if let Some(v) = self.parse_response(id)? {
                return Ok(v);
            }
        }
    }

    /// Interprets `self.line`: `Some(result)` if it is the response to `id`, `None` if it is
    /// a notification.
    fn parse_response(&self, id: u64) -> anyhow::Result<Option<Value>> {
        match parse_server_line(self.line.trim_end())
            .with_context(|| format!("bad line from the daemon: {:?}", self.line))?
        {
            ServerLine::Notification(_) => Ok(None),
            ServerLine::Response(r) if r.id != id => {
                bail!("response to {} while waiting for {id}", r.id)
            }
            ServerLine::Response(r) => match r.outcome {
                Outcome::Result(v) => Ok(Some(v)),
                Outcome::Error(e) => bail!("error {}: {}", e.code, e.message),
            },
        }
    }

    /// One call, answered.
    fn call(&mut self, call: Call) -> anyhow::Result<Value> {
        let (id, text) = self.request(call)?;
        self.write(&text)?;
        self.response(id)
    }
}

/// Polls `peers` on `rpc` until a peer named `name` is online.
fn wait_online(rpc: &mut Rpc, who: &str, name: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let peers = rpc.call(Call::Peers {})?;
        let online = peers.as_array().is_some_and(|a| {
            a.iter()
                .any(|p| p["name"] == name && p["online"] == Value::Bool(true))
        });
        if online {
            return Ok(started.elapsed());
        }
        if started.elapsed() > WAIT {
            bail!("{who} does not list {name} online after {WAIT:?}: {peers}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Percentiles of a set of durations, in microseconds (nearest rank).
#[derive(Debug, Clone, Copy)]
struct Summary {
    n: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

impl Summary {
    fn of(samples: &[Duration]) -> Summary {
        let mut us: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        us.sort_unstable_by(f64::total_cmp);
        let rank = |p: f64| {
            if us.is_empty() {
                return f64::NAN;
            }
            let i = ((p * us.len() as f64).ceil() as usize).clamp(1, us.len()) - 1;
            us[i]
        };
        Summary {
            n: us.len(),
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: rank(1.0),
            mean: us.iter().sum::<f64>() / us.len().max(1) as f64,
        }
    }

    fn json(&self) -> Value {
        json!({
            "n": self.n, "p50_us": self.p50, "p90_us": self.p90, "p99_us": self.p99,
            "max_us": self.max, "mean_us": self.mean,
        })
    }
}

/// Round trips of `ECHO_BYTES` over a socket pair between this thread and an echo thread.
fn kernel_echo(rounds: usize, warmup: usize) -> anyhow::Result<Vec<Duration>> {
    let (mut near, mut far) = UnixStream::pair()?;
    near.set_read_timeout(Some(WAIT))?;
    let total = rounds + warmup;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let mut buf = [0u8; ECHO_BYTES];
        for _ in 0..total {
            far.read_exact(&mut buf)?;
            far.write_all(&buf)?;
        }
        Ok(())
    });
    let msg = [b'x'; ECHO_BYTES];
    let mut buf = [0u8; ECHO_BYTES];
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..total {
        let t0 = Instant::now();
        near.write_all(&msg)?;
        near.read_exact(&mut buf)?;
        if i >= warmup {
            samples.push(t0.elapsed());
        }
    }
    echo.join()
        .map_err(|_| anyhow::anyhow!("the echo thread panicked"))??;
    Ok(samples)
}

/// `peers` round trips on `rpc`, timed from the write to the response line read.
fn rpc_ping(rpc: &mut Rpc, rounds: usize, warmup: usize) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..rounds + warmup {
        let (id, text) = rpc.request(Call::Peers {})?;
        let t0 = Instant::now();
        rpc.write(&text)?;
        rpc.read_line()?;
        let t1 = Instant::now();
        if rpc.parse_response(id)?.is_none() {
            bail!("a notification on an unsubscribed connection");
        }
        if i >= warmup {
            samples.push(t1 - t0);
        }
    }
    Ok(samples)
}

/// The three timings of every measured message, and the first (cold) message's.
struct ChatSamples {
    a: Vec<Duration>,
    b: Vec<Duration>,
    c: Vec<Duration>,
    /// B of the first warm-up message: it also dials the TLS link to bob.
    first_b: Duration,
    /// Other lines read on bob's subscription meanwhile (other events).
    other_events: usize,
}

/// Sends `warmup + n` messages from alice to bob, one at a time.
fn chat(alice: &mut Rpc, bob: &mut Rpc, n: usize, warmup: usize) -> anyhow::Result<ChatSamples> {
    let mut out = ChatSamples {
        a: Vec::with_capacity(n),
        b: Vec::with_capacity(n),
        c: Vec::with_capacity(n),
        first_b: Duration::ZERO,
        other_events: 0,
    };
    for i in 0..warmup + n {
        let text = format!("m{i}");
        let (id, line) = alice.request(Call::SendMessage {
            peer: "bob".into(),
            text: text.clone(),
        })?;
        let t0 = Instant::now();
        alice.write(&line)?;
        alice.read_line()?;
        let t1 = Instant::now();
        let result = alice
            .parse_response(id)?
            .context("a notification on alice's unsubscribed connection")?;
        if result["text"] != text.as_str() {
            bail!("send_message answered {result} for {text:?}");
        }
        let t2 = loop {
            bob.read_line()
                .with_context(|| format!("waiting for {text:?} at bob"))?;
            let t2 = Instant::now();
            let event = match parse_server_line(bob.line.trim_end())? {
                ServerLine::Notification(n) if n.method == EVENT_NOTIFICATION => n.params,
                other => bail!("unexpected line on bob's subscription: {other:?}"),
            };
            if event["type"] == "message_received" && event["message"]["text"] == text.as_str() {
                break t2;
            }
            if event["type"] == "message_received" {
                bail!(
                    "bob received {} while waiting for {text:?}",
                    event["message"]
                );
            }
            out.other_events += 1;
        };
        if i == 0 {
            out.first_b = t2 - t0;
        }
        if i >= warmup {
            out.a.push(t2 - t1);
            out.b.push(t2 - t0);
            out.c.push(t1 - t0);
        }
    }
    Ok(out)
}

/// Everything the report prints.
struct Report {
    date: String,
    cpus_online: usize,
    cpu: String,
    loadavg: String,
    placement: String,
    args_messages: usize,
    args_warmup: usize,
    chat: ChatSamples,
    ping_before: Vec<Duration>,
    ping_after: Vec<Duration>,
    echo: Vec<Duration>,
    online_after: Duration,
}

fn us(v: f64) -> String {
    format!("{v:.0}")
}

fn print_table(r: &Report) {
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
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
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

fn to_json(r: &Report) -> Value {
    let a = Summary::of(&r.chat.a);
    let k = (r.chat.c.len() / 10).max(1);
    json!({
        "date": r.date,
        "machine": {"cpus_online": r.cpus_online, "cpu_model": r.cpu, "loadavg": r.loadavg},
        "placement": r.placement,
        "messages": r.args_messages,
        "warmup": r.args_warmup,
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
        None => std::env::current_exe()?
            .parent()
            .context("this program has no directory")?
            .to_path_buf(),
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

    let cpus_online = std::thread::available_parallelism().map_or(1, |n| n.get());
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into());
    if args.pin {
        pin_self()?;
    }

    let dir = tempfile::Builder::new()
        .prefix("chat-latency-")
        .tempdir()
        .context("cannot make a temporary directory")?;
    let d = dir.path();
    eprintln!("starting trackerd");
    let tracker_state = d.join("tracker");
    let (mut tracker, first, second) = Daemon::start(
        "trackerd",
        &trackerd,
        &[
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--state-dir".as_ref(),
            tracker_state.as_os_str(),
        ],
        args.pin,
        d,
    )?;
    let tracker_addr = first
        .strip_prefix("listening on ")
        .with_context(|| format!("unexpected first line from trackerd: {first:?}"))?
        .to_string();
    let tracker_key = second
        .strip_prefix("tracker key ")
        .with_context(|| format!("unexpected second line from trackerd: {second:?}"))?
        .to_string();

    let start_peer = |name: &'static str| -> anyhow::Result<(Daemon, PathBuf)> {
        eprintln!("starting p2pd {name}");
        let base = d.join(name);
        let state = base.join("state");
        let socket = base.join("run").join("p2pd.sock");
        let downloads = base.join("downloads");
        let (daemon, first, second) = Daemon::start(
            name,
            &p2pd,
            &[
                "--name".as_ref(),
                name.as_ref(),
                "--tracker".as_ref(),
                tracker_addr.as_ref(),
                "--tracker-key".as_ref(),
                tracker_key.as_ref(),
                "--listen".as_ref(),
                "127.0.0.1:0".as_ref(),
                "--state-dir".as_ref(),
                state.as_os_str(),
                "--socket".as_ref(),
                socket.as_os_str(),
                "--download-dir".as_ref(),
                downloads.as_os_str(),
            ],
            args.pin,
            d,
        )?;
        if !first.starts_with("listening on ") {
            bail!("unexpected first line from {name}: {first:?}");
        }
        let path = second
            .strip_prefix("control socket ")
            .with_context(|| format!("unexpected second line from {name}: {second:?}"))?;
        Ok((daemon, PathBuf::from(path)))
    };
    let started = Instant::now();
    let (mut alice, alice_sock) = start_peer("alice")?;
    let (mut bob, bob_sock) = start_peer("bob")?;

    let placement = {
        let me = cpus_allowed("self");
        let who = [
            ("chat-latency", me),
            ("trackerd", cpus_allowed(&tracker.pid().to_string())),
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
    wait_online(&mut a_rpc, "alice", "bob")?;
    wait_online(&mut b_rpc, "bob", "alice")?;
    let online_after = started.elapsed();
    let sub = b_rpc.call(Call::Subscribe {})?;
    if sub["subscribed"] != Value::Bool(true) {
        bail!("subscribe answered {sub}");
    }

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
    tracker.stop()?;

    let report = Report {
        date: utc_now(),
        cpus_online,
        cpu: cpu_model(),
        loadavg,
        placement,
        args_messages: args.messages,
        args_warmup: warm,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        let s = Summary::of(&v);
        assert_eq!((s.p50, s.p90, s.p99, s.max), (50.0, 90.0, 99.0, 100.0));
        let s = Summary::of(&[Duration::from_micros(7)]);
        assert_eq!((s.p50, s.max), (7.0, 7.0));
    }
}
