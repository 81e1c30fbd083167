//! The registering clients: keys and signed records prepared ahead, the handshake, and the
//! ramp that registers them all with a number in flight.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use bench::stats::percentiles;
use bench::sys::cpu_time;
use proto::tracker::{
    MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME, PROTOCOL_VERSION, PeerMsg, Record, TrackerMsg,
};
use proto::{PeerId, PeerName, SecretKey};
use serde_json::json;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use transport::FramedConn;

use crate::tracker::TrackerProc;

/// One client's link to the tracker.
pub type Conn = FramedConn<TlsStream<TcpStream>>;

/// A ramp stops early after this many failed registrations.
const MAX_FAILURES: usize = 200;

/// A client ready to connect: its own key, pinned to the tracker, with two signed records
/// (seq 1 for its first registration, seq 2 for registering again after a reconnect).
pub struct Prepared {
    connector: TlsConnector,
    /// `Register` with seq 1.
    pub first: PeerMsg,
    /// `Register` with seq 2.
    pub again: PeerMsg,
    /// `Watch` of the keys this client pins (sent after `Registered`), if any.
    pub watch: Option<PeerMsg>,
}

/// Makes `n` clients with fresh random keys, named `{prefix}{i}`; client `i` watches the
/// keys of `watch` other clients spread over the whole ramp (so that about half of a key's
/// watchers are registered when it joins), as a peer watches the peers it pins.
pub fn prepare(
    n: usize,
    prefix: &str,
    tracker: PeerId,
    watch: usize,
) -> anyhow::Result<Vec<Prepared>> {
    let mut clients = prepare_keys(n, prefix, tracker)?;
    let keys: Vec<PeerId> = clients
        .iter()
        .map(|c| match &c.first {
            PeerMsg::Register(s) => s.record.key,
            _ => unreachable!("prepared as Register"),
        })
        .collect();
    let watch = watch.min(n.saturating_sub(1));
    for (i, c) in clients.iter_mut().enumerate() {
        if watch > 0 {
            let keys = (1..=watch)
                .map(|d| keys[spread(i, d, n)].key_bytes())
                .collect();
            c.watch = Some(PeerMsg::Watch { req: 0, keys });
        }
    }
    Ok(clients)
}

/// The `d`th client that client `i` of `n` watches: never `i` itself, spread over `0..n`.
fn spread(i: usize, d: usize, n: usize) -> usize {
    let offset = 1 + (d.wrapping_mul(2_654_435_761) ^ i.wrapping_mul(40_503)) % (n - 1);
    (i + offset) % n
}

fn prepare_keys(n: usize, prefix: &str, tracker: PeerId) -> anyhow::Result<Vec<Prepared>> {
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
                watch: None,
            })
        })
        .collect()
}

/// Connects to the tracker at `addr` as `p` (Nagle off) and completes the TLS handshake.
pub async fn connect_tls(addr: SocketAddr, p: &Prepared) -> anyhow::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await.context("connect")?;
    tcp.set_nodelay(true)?;
    p.connector
        .connect(transport::tls::server_name(), tcp)
        .await
        .context("TLS handshake")
}

/// Connects, handshakes, exchanges `Hello` and sends `msg` (a `Register`), then the
/// client's `Watch` if it has one. Returns the open connection once the tracker has answered
/// `Registered` (and the watch's `Peers`), and whether TLS resumed an earlier session (the
/// client's configuration is kept, with its session store, from ramp to ramp).
async fn register(addr: SocketAddr, p: &Prepared, msg: &PeerMsg) -> anyhow::Result<(Conn, bool)> {
    let tls = connect_tls(addr, p).await?;
    let resumed =
        tls.get_ref().1.handshake_kind() == Some(tokio_rustls::rustls::HandshakeKind::Resumed);
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
        Some(TrackerMsg::Registered { .. }) => {}
        Some(TrackerMsg::Refused { reason, detail }) => {
            bail!("registration refused: {reason:?}: {detail}")
        }
        other => bail!("expected Registered, got {other:?}"),
    }
    if let Some(watch) = &p.watch {
        conn.send(watch).await?;
        // Events for watched keys may only follow the answer, which comes first.
        match conn.read::<TrackerMsg>().await? {
            Some(TrackerMsg::Peers { .. }) => {}
            other => bail!("expected Peers answering Watch, got {other:?}"),
        }
    }
    Ok((conn, resumed))
}

/// Which record a ramp registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Seq 1 under a name the tracker has never seen: a new name binding.
    New,
    /// Seq 2 under a name the key already owns: a reconnect.
    Again,
}

/// The figures of one ramp.
pub struct RampStats {
    /// Clients registered (and kept open).
    pub registered: usize,
    /// Of those, the ones whose TLS handshake resumed an earlier session.
    pub resumed: usize,
    /// Clients that failed or were not tried after [`MAX_FAILURES`].
    pub failures: usize,
    /// The first failure's error.
    pub first_error: Option<String>,
    /// Wall-clock time of the whole ramp.
    pub secs: f64,
    /// p50 and p99 of connect-to-Registered, ms.
    pub latency_ms: (f64, f64),
    /// trackerd's CPU time (user + sys) over the ramp.
    pub tracker_cpu_secs: f64,
    /// Event frames trackerd queued over the ramp (from its admin socket), if known.
    pub events: Option<u64>,
}

impl RampStats {
    /// Registrations per wall-clock second.
    pub fn per_sec(&self) -> f64 {
        self.registered as f64 / self.secs
    }

    /// Registrations per second of trackerd CPU time.
    pub fn per_tracker_cpu_sec(&self) -> f64 {
        self.registered as f64 / self.tracker_cpu_secs
    }

    /// Event frames queued per registration over the ramp.
    pub fn events_per_registration(&self) -> Option<f64> {
        Some(self.events? as f64 / self.registered.max(1) as f64)
    }

    /// The figures as JSON.
    pub fn json(&self) -> serde_json::Value {
        json!({
            "registered": self.registered,
            "resumed": self.resumed,
            "failures": self.failures,
            "first_error": self.first_error,
            "secs": self.secs,
            "reg_per_sec": self.per_sec(),
            "tracker_cpu_secs": self.tracker_cpu_secs,
            "reg_per_tracker_cpu_sec": self.per_tracker_cpu_sec(),
            "p50_ms": self.latency_ms.0,
            "p99_ms": self.latency_ms.1,
            "events": self.events,
            "events_per_registration": self.events_per_registration(),
        })
    }
}

/// Registers every prepared client with `concurrency` in flight, measuring the tracker's CPU
/// time over the ramp. Returns the open connections with the figures.
pub fn ramp(
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
    let events_before = tracker.events_sent().ok();
    let cpu_before = cpu_time(tracker.pid(), ticks)?;
    let started = Instant::now();
    let (conns, mut latencies, first_error, resumed) = rt.block_on(async {
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..concurrency.clamp(1, n.max(1)) {
            let (clients, next, failures) = (clients.clone(), next.clone(), failures.clone());
            workers.spawn(async move {
                let mut conns = Vec::new();
                let mut latencies = Vec::new();
                let mut first_error = None;
                let mut resumed = 0;
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
                        Ok((conn, was_resumed)) => {
                            latencies.push(t.elapsed());
                            conns.push(conn);
                            resumed += usize::from(was_resumed);
                        }
                        Err(e) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            first_error.get_or_insert_with(|| format!("{e:#}"));
                        }
                    }
                }
                (conns, latencies, first_error, resumed)
            });
        }
        let mut all = (Vec::with_capacity(n), Vec::with_capacity(n), None, 0);
        while let Some(joined) = workers.join_next().await {
            match joined {
                Ok((conns, latencies, err, resumed)) => {
                    all.0.extend(conns);
                    all.1.extend(latencies);
                    all.3 += resumed;
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
    let events = match (events_before, tracker.events_sent()) {
        (Some(before), Ok(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    let stats = RampStats {
        registered: conns.len(),
        resumed,
        failures: n - conns.len(),
        first_error,
        secs,
        latency_ms: percentiles(&mut latencies),
        tracker_cpu_secs: tracker_cpu.as_secs_f64(),
        events,
    };
    Ok((conns, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_never_watches_itself() {
        for n in [2, 3, 1000] {
            for i in 0..n {
                for d in 1..=4 {
                    let j = spread(i, d, n);
                    assert!(j < n && j != i, "n={n} i={i} d={d} -> {j}");
                }
            }
        }
    }

    #[test]
    fn names_fit_the_rules() {
        assert!(PeerName::new("p9999").is_ok());
        assert!(PeerName::new("bench-list0").is_ok());
    }
}
