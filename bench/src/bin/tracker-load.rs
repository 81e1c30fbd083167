//! tracker-load: a load benchmark for `trackerd` (a program, not a test).
//!
//! For each peer count N it starts a fresh `trackerd` on loopback with raised limits, opens N
//! real TLS 1.3 connections (each with its own Ed25519 key), sends `Hello` and `Register` with
//! `--concurrency` handshakes in flight, and keeps every connection open and idle. It reads the
//! tracker's resident memory before and after that ramp, then measures, from one extra
//! registered client, `List` round trips beside `Ping` round trips on the same connection.
//! Last (unless `--no-reconnect`) it closes the N peers and registers the same names again,
//! which the tracker handles without a new name binding, so without a disk sync.
//!
//! Progress goes to stderr; the result table (or JSON with `--json`) goes to stdout.
//!
//! ```text
//! cargo build --release -p bench -p trackerd
//! target/release/tracker-load --trackerd target/release/trackerd
//! ```

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bench::{cpu_model, utc_now};
use clap::Parser;
use proto::tracker::{
    MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME, PROTOCOL_VERSION, PeerMsg, Record, TrackerMsg,
};
use proto::{PeerId, PeerName, SecretKey};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use transport::FramedConn;

/// One client's link to the tracker.
type Conn = FramedConn<TlsStream<TcpStream>>;

/// File descriptors kept back from N for the listener, the extra client, stdio and slack.
const FD_RESERVE: u64 = 64;
/// A ramp stops early after this many failed registrations.
const MAX_FAILURES: usize = 200;
/// Time a stopping tracker gets before it is killed (its own grace period is 5 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Goal: registered idle peers held within [`GOAL_RSS_MIB`].
const GOAL_PEERS: usize = 10_000;
/// Goal: tracker RSS with [`GOAL_PEERS`] registered idle peers.
const GOAL_RSS_MIB: f64 = 100.0;
/// Goal: memory per registered idle peer.
const GOAL_KIB_PER_PEER: f64 = 10.0;
/// Goal: registrations per second per core (the TLS handshake is the limit).
const GOAL_REG_PER_CORE: f64 = 5_000.0;
/// Goal: 99th percentile of a `List` round trip.
const GOAL_LIST_P99_MS: f64 = 10.0;

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
        default_value = "1000,10000"
    )]
    peers: Vec<usize>,
    /// Handshakes (connect + TLS + Hello + Register) in flight at once.
    #[arg(long, value_name = "C", default_value_t = 64)]
    concurrency: usize,
    /// Sequential `List` round trips (each beside a `Ping`) once all N are registered.
    #[arg(long, value_name = "M", default_value_t = 200)]
    list_requests: usize,
    /// Skip the reconnect phase (close all N, then register the same names again).
    #[arg(long)]
    no_reconnect: bool,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// A `trackerd` child process in its own temporary state directory.
struct TrackerProc {
    child: Child,
    addr: SocketAddr,
    id: PeerId,
    stderr_path: PathBuf,
    /// Removed on drop, after the child is gone.
    _dir: tempfile::TempDir,
}

impl TrackerProc {
    /// Starts `bin` with raised limits in a temporary state directory and waits for its
    /// address and key.
    fn start(bin: &Path) -> anyhow::Result<TrackerProc> {
        let dir = tempfile::Builder::new()
            .prefix("tracker-load-")
            .tempdir()
            .context("cannot make a temporary directory")?;
        let state = dir.path().join("state");
        let config = dir.path().join("trackerd.toml");
        let state_str = state
            .to_str()
            .context("temporary directory path is not UTF-8")?;
        // A JSON string is a valid TOML basic string.
        let text = format!(
            "state-dir = {}\nlease-secs = 600\n\n[limits]\nmax-connections = 100000\n\
             max-connections-per-ip = 100000\nregistrations-per-ip-per-sec = 1000000.0\n\
             registration-burst = 1000000\n",
            serde_json::to_string(state_str)?
        );
        std::fs::write(&config, text).context("cannot write the tracker config")?;
        let stderr_path = dir.path().join("trackerd.stderr");
        let stderr = std::fs::File::create(&stderr_path)?;
        let mut child = Command::new(bin)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        // Read the two startup lines on a thread (with a timeout), then drain the pipe.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let second = lines.next();
            let _ = tx.send((first, second));
            for _ in lines {}
        });
        let mut proc = TrackerProc {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            id: SecretKey::from_seed([0; 32]).peer_id(), // replaced below
            stderr_path,
            _dir: dir,
        };
        let (first, second) = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok((Some(Ok(a)), Some(Ok(b)))) => (a, b),
            _ => bail!(
                "trackerd did not print its address; stderr:\n{}",
                proc.stderr_tail()
            ),
        };
        proc.addr = first
            .strip_prefix("listening on ")
            .with_context(|| format!("unexpected first line from trackerd: {first:?}"))?
            .parse()
            .context("bad address from trackerd")?;
        proc.id = second
            .strip_prefix("tracker key ")
            .with_context(|| format!("unexpected second line from trackerd: {second:?}"))?
            .parse()
            .map_err(|e| anyhow::anyhow!("bad tracker key from trackerd: {e}"))?;
        Ok(proc)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines trackerd wrote to stderr.
    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Sends SIGTERM (with the `kill` command: no unsafe code here) and waits for the exit.
    /// Returns how long the tracker took to stop.
    fn stop(&mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .context("cannot run kill")?;
        if !status.success() {
            bail!("kill -TERM {} failed: {status}", self.pid());
        }
        while started.elapsed() < STOP_TIMEOUT {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    eprintln!("note: trackerd exited with {status}");
                }
                return Ok(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        bail!("trackerd did not stop within {STOP_TIMEOUT:?} of SIGTERM; killed it")
    }
}

impl Drop for TrackerProc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Resident set size of process `pid` in bytes (`VmRSS` in `/proc/PID/status`).
fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS line")?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .context("empty VmRSS line")?
        .parse()?;
    Ok(kib * 1024)
}

/// User plus system CPU time of process `pid` (`/proc/PID/stat` fields 14 and 15).
fn cpu_time(pid: u32, ticks_per_sec: u64) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("bad stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state), so field 14 is index 11.
    let utime: u64 = fields.get(11).context("short stat")?.parse()?;
    let stime: u64 = fields.get(12).context("short stat")?.parse()?;
    Ok(Duration::from_secs_f64(
        (utime + stime) as f64 / ticks_per_sec as f64,
    ))
}

/// Clock ticks per second for `/proc` CPU times (`getconf CLK_TCK`, else 100).
fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// Unreclaimable kernel slab memory, system-wide, in bytes (`SUnreclaim` in `/proc/meminfo`).
/// Socket objects live there; on loopback it counts both ends of every connection.
fn kernel_slab() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("SUnreclaim:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// p50 and p99 (nearest rank) of `samples`, in milliseconds.
fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    if samples.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    samples.sort_unstable();
    let rank = |p: f64| {
        let i = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i].as_secs_f64() * 1e3
    };
    (rank(0.50), rank(0.99))
}

/// A client ready to connect: its own key, pinned to the tracker, with two signed records
/// (seq 1 for its first registration, seq 2 for registering again after a reconnect).
struct Prepared {
    connector: TlsConnector,
    first: PeerMsg,
    again: PeerMsg,
}

/// Makes `n` clients with fresh random keys, named `{prefix}{i}`.
fn prepare(n: usize, prefix: &str, tracker: PeerId) -> anyhow::Result<Vec<Prepared>> {
    let mut seeds = vec![0u8; n * 32];
    getrandom::fill(&mut seeds).map_err(|e| anyhow::anyhow!("getrandom: {e}"))?;
    seeds
        .chunks_exact(32)
        .enumerate()
        .map(|(i, seed)| {
            let mut s = [0u8; 32];
            s.copy_from_slice(seed);
            let key = SecretKey::from_seed(s);
            let record = Record {
                name: PeerName::new(&format!("{prefix}{i}"))?,
                key: key.peer_id(),
                addrs: vec![SocketAddr::from(([0, 0, 0, 0], 4000))],
                seq: 1,
            };
            let again = Record {
                seq: 2,
                ..record.clone()
            };
            Ok(Prepared {
                connector: TlsConnector::from(transport::client_config(&key, Some(tracker))?),
                first: PeerMsg::Register(record.sign(&key)),
                again: PeerMsg::Register(again.sign(&key)),
            })
        })
        .collect()
}

/// Connects, handshakes, exchanges `Hello` and sends `msg` (a `Register`). Returns the
/// open connection once the tracker answers `Registered`.
async fn register(addr: SocketAddr, p: &Prepared, msg: &PeerMsg) -> anyhow::Result<Conn> {
    let tcp = TcpStream::connect(addr).await.context("connect")?;
    tcp.set_nodelay(true)?;
    let tls = p
        .connector
        .connect(transport::tls::server_name(), tcp)
        .await
        .context("TLS handshake")?;
    let mut conn = FramedConn::new(tls, MAX_RESPONSE_FRAME, MAX_REQUEST_FRAME);
    conn.send(&PeerMsg::Hello {
        version: PROTOCOL_VERSION,
    })
    .await?;
    match conn.read::<TrackerMsg>().await? {
        Some(TrackerMsg::Hello { version, .. }) if version == PROTOCOL_VERSION => {}
        other => bail!("expected the tracker's Hello, got {other:?}"),
    }
    conn.send(msg).await?;
    match conn.read::<TrackerMsg>().await? {
        Some(TrackerMsg::Registered { .. }) => Ok(conn),
        Some(TrackerMsg::Refused { reason, detail }) => {
            bail!("registration refused: {reason:?}: {detail}")
        }
        other => bail!("expected Registered, got {other:?}"),
    }
}

/// Which record a ramp registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Seq 1 under a name the tracker has never seen: a new name binding.
    New,
    /// Seq 2 under a name the key already owns: a reconnect.
    Again,
}

/// The figures of one ramp.
struct RampStats {
    registered: usize,
    failures: usize,
    first_error: Option<String>,
    secs: f64,
    /// p50 and p99 of connect-to-Registered, ms.
    latency_ms: (f64, f64),
    tracker_cpu_secs: f64,
}

impl RampStats {
    fn per_sec(&self) -> f64 {
        self.registered as f64 / self.secs
    }

    fn per_tracker_cpu_sec(&self) -> f64 {
        self.registered as f64 / self.tracker_cpu_secs
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "registered": self.registered,
            "failures": self.failures,
            "first_error": self.first_error,
            "secs": self.secs,
            "reg_per_sec": self.per_sec(),
            "tracker_cpu_secs": self.tracker_cpu_secs,
            "reg_per_tracker_cpu_sec": self.per_tracker_cpu_sec(),
            "p50_ms": self.latency_ms.0,
            "p99_ms": self.latency_ms.1,
        })
    }
}

/// Registers every prepared client with `concurrency` in flight, measuring the tracker's CPU
/// time over the ramp. Returns the open connections with the figures.
fn ramp(
    rt: &tokio::runtime::Runtime,
    tracker: &TrackerProc,
    clients: &Arc<Vec<Prepared>>,
    phase: Phase,
    concurrency: usize,
    ticks: u64,
) -> anyhow::Result<(Vec<Conn>, RampStats)> {
    let n = clients.len();
    let addr = tracker.addr;
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let cpu_before = cpu_time(tracker.pid(), ticks)?;
    let started = Instant::now();
    let (conns, mut latencies, first_error) = rt.block_on(async {
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..concurrency.clamp(1, n.max(1)) {
            let (clients, next, failures) = (clients.clone(), next.clone(), failures.clone());
            workers.spawn(async move {
                let mut conns = Vec::new();
                let mut latencies = Vec::new();
                let mut first_error = None;
                while failures.load(Ordering::Relaxed) < MAX_FAILURES {
                    let Some(p) = clients.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    let msg = match phase {
                        Phase::New => &p.first,
                        Phase::Again => &p.again,
                    };
                    let t = Instant::now();
                    match register(addr, p, msg).await {
                        Ok(conn) => {
                            latencies.push(t.elapsed());
                            conns.push(conn);
                        }
                        Err(e) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            first_error.get_or_insert_with(|| format!("{e:#}"));
                        }
                    }
                }
                (conns, latencies, first_error)
            });
        }
        let mut all = (Vec::with_capacity(n), Vec::with_capacity(n), None);
        while let Some(joined) = workers.join_next().await {
            match joined {
                Ok((conns, latencies, err)) => {
                    all.0.extend(conns);
                    all.1.extend(latencies);
                    if all.2.is_none() {
                        all.2 = err;
                    }
                }
                Err(e) => {
                    all.2.get_or_insert_with(|| format!("worker: {e}"));
                }
            }
        }
        all
    });
    let secs = started.elapsed().as_secs_f64();
    let tracker_cpu = cpu_time(tracker.pid(), ticks)
        .with_context(|| format!("trackerd is gone; stderr:\n{}", tracker.stderr_tail()))?
        .saturating_sub(cpu_before);
    let stats = RampStats {
        registered: conns.len(),
        failures: n - conns.len(),
        first_error,
        secs,
        latency_ms: percentiles(&mut latencies),
        tracker_cpu_secs: tracker_cpu.as_secs_f64(),
    };
    Ok((conns, stats))
}

/// List and Ping round trips from one extra client.
struct ListStats {
    /// Send of `List` to the last byte of `Peers` received (no decoding), p50/p99 ms.
    list_ms: (f64, f64),
    /// The same round trip plus this client decoding the list, p50/p99 ms.
    list_decoded_ms: (f64, f64),
    /// Send of `Ping` to the last byte of `Pong`, p50/p99 ms.
    ping_ms: (f64, f64),
    peers_listed: usize,
    /// The `Peers` frame, header included.
    response_bytes: usize,
}

/// Writes one message as a frame and flushes.
async fn send_frame<S: AsyncWrite + Unpin>(io: &mut S, msg: &PeerMsg) -> anyhow::Result<()> {
    let frame = proto::frame::encode(msg, MAX_REQUEST_FRAME)?;
    io.write_all(&frame).await?;
    io.flush().await?;
    Ok(())
}

/// Reads one whole frame's payload into `buf` without decoding it.
async fn read_frame<S: AsyncRead + Unpin>(io: &mut S, buf: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut header = [0u8; proto::frame::HEADER_LEN];
    io.read_exact(&mut header).await?;
    let len = proto::frame::peek_len(&header, MAX_RESPONSE_FRAME)?.context("no frame header")?;
    buf.resize(len, 0);
    io.read_exact(buf).await?;
    Ok(())
}

/// The list client: a raw TLS stream whose frames are read and written by hand, so that a
/// round trip can be timed apart from decoding.
type RawConn = TlsStream<TcpStream>;

/// Connects and registers `p` on a raw TLS stream.
async fn register_raw(addr: SocketAddr, p: &Prepared) -> anyhow::Result<RawConn> {
    let tcp = TcpStream::connect(addr).await.context("connect")?;
    tcp.set_nodelay(true)?;
    let mut tls = p
        .connector
        .connect(transport::tls::server_name(), tcp)
        .await
        .context("TLS handshake")?;
    let mut buf = Vec::new();
    send_frame(
        &mut tls,
        &PeerMsg::Hello {
            version: PROTOCOL_VERSION,
        },
    )
    .await?;
    read_frame(&mut tls, &mut buf).await?;
    match proto::frame::decode_payload::<TrackerMsg>(&buf)? {
        TrackerMsg::Hello { version, .. } if version == PROTOCOL_VERSION => {}
        other => bail!("expected the tracker's Hello, got {other:?}"),
    }
    send_frame(&mut tls, &p.first).await?;
    read_frame(&mut tls, &mut buf).await?;
    match proto::frame::decode_payload::<TrackerMsg>(&buf)? {
        TrackerMsg::Registered { .. } => Ok(tls),
        other => bail!("expected Registered, got {other:?}"),
    }
}

/// Live peers the tracker lists now.
async fn live_count(io: &mut RawConn) -> anyhow::Result<usize> {
    let mut buf = Vec::new();
    send_frame(io, &PeerMsg::List { req: u32::MAX }).await?;
    read_frame(io, &mut buf).await?;
    match proto::frame::decode_payload::<TrackerMsg>(&buf)? {
        TrackerMsg::Peers { peers, .. } => Ok(peers.len()),
        other => bail!("expected Peers, got {other:?}"),
    }
}

/// `m` sequential rounds of Ping→Pong then List→Peers on one connection.
async fn measure_list(io: &mut RawConn, m: usize) -> anyhow::Result<ListStats> {
    let mut list = Vec::with_capacity(m);
    let mut list_decoded = Vec::with_capacity(m);
    let mut ping = Vec::with_capacity(m);
    let mut peers_listed = 0;
    let mut response_bytes = 0;
    let mut buf = Vec::new();
    for i in 0..m {
        let nonce = i as u64;
        let t = Instant::now();
        send_frame(io, &PeerMsg::Ping { nonce }).await?;
        read_frame(io, &mut buf).await?;
        ping.push(t.elapsed());
        match proto::frame::decode_payload::<TrackerMsg>(&buf)? {
            TrackerMsg::Pong { nonce: n } if n == nonce => {}
            other => bail!("expected Pong {nonce}, got {other:?}"),
        }

        let req = u32::try_from(i)?;
        let t = Instant::now();
        send_frame(io, &PeerMsg::List { req }).await?;
        read_frame(io, &mut buf).await?;
        list.push(t.elapsed());
        let msg = proto::frame::decode_payload::<TrackerMsg>(&buf)?;
        list_decoded.push(t.elapsed());
        match msg {
            TrackerMsg::Peers { req: r, peers } if r == req => peers_listed = peers.len(),
            other => bail!("expected Peers {req}, got {other:?}"),
        }
        response_bytes = proto::frame::HEADER_LEN + buf.len();
    }
    Ok(ListStats {
        list_ms: percentiles(&mut list),
        list_decoded_ms: percentiles(&mut list_decoded),
        ping_ms: percentiles(&mut ping),
        peers_listed,
        response_bytes,
    })
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
    let clients = Arc::new(prepare(n, "p", tracker.id)?);
    let extra = prepare(1, "bench-list", tracker.id)?;
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
            rt.block_on(measure_list(io, args.list_requests)),
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

fn delta(before: Option<u64>, after: Option<u64>) -> Option<i64> {
    Some(after? as i64 - before? as i64)
}
const MIB: f64 = 1024.0 * 1024.0;

fn ms_pair((p50, p99): (f64, f64), decimals: usize) -> String {
    format!("{p50:.decimals$}/{p99:.decimals$}")
}

fn print_table(results: &[RunResult], machine: &str, args: &Args, notes: &[String]) {
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
         ~{GOAL_REG_PER_CORE} registrations/s per core, limited by the TLS handshake; List p99 <= {GOAL_LIST_P99_MS} ms)"
    );
    println!();
    println!(
        "registration ramps (each: connect + TLS 1.3 handshake + Hello + Register, kept open)"
    );
    println!(
        "{:>6} {:<22} {:>6} {:>6} {:>7} {:>7} {:>9} {:>15}",
        "N", "phase", "ok", "failed", "secs", "reg/s", "reg/cpu-s", "p50/p99 ms"
    );
    for r in results {
        let phases = [
            ("new names (fsync'd)", Some(&r.first)),
            ("reconnect, known names", r.again.as_ref()),
        ];
        for (phase, stats) in phases {
            let Some(s) = stats else { continue };
            println!(
                "{:>6} {:<22} {:>6} {:>6} {:>7.2} {:>7.0} {:>9.0} {:>15}",
                r.n,
                phase,
                s.registered,
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
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
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
            println!(
                "  N={}: List p99 {:.2} ms vs <= {GOAL_LIST_P99_MS} ms: {}",
                r.n,
                l.list_ms.1,
                verdict(l.list_ms.1 <= GOAL_LIST_P99_MS)
            );
        }
        let kib = r.bytes_per_peer() / 1024.0;
        println!(
            "  N={}: {kib:.2} KiB per idle peer vs <= {GOAL_KIB_PER_PEER} KiB: {}",
            r.n,
            verdict(kib <= GOAL_KIB_PER_PEER)
        );
        if r.first.registered == GOAL_PEERS {
            let mib = r.rss_after as f64 / MIB;
            println!(
                "  N={}: RSS {mib:.1} MiB vs <= {GOAL_RSS_MIB} MiB at {GOAL_PEERS} peers: {}",
                r.n,
                verdict(mib <= GOAL_RSS_MIB)
            );
        }
    }
}

fn to_json(results: &[RunResult], machine: serde_json::Value, args: &Args) -> serde_json::Value {
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
                })),
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

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = match &args.trackerd {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("this program has no directory")?
            .join("trackerd"),
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

    let nproc = std::thread::available_parallelism().map_or(1, |n| n.get());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentiles(&mut v), (50.0, 99.0));
        let mut one = vec![Duration::from_millis(3)];
        assert_eq!(percentiles(&mut one), (3.0, 3.0));
    }

    #[test]
    fn names_fit_the_rules() {
        assert!(PeerName::new("p9999").is_ok());
        assert!(PeerName::new("bench-list0").is_ok());
    }
}
