//! Indexing many small files: `share add` on alice, then `share_ls` until the share is ready
//! and every file hashed, while another connection times a `status` call every
//! [`POLL_EVERY`] and reads alice's `VmRSS`; the same `status` polling with no share first is
//! the baseline.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bench::rpc::Rpc;
use bench::stats::Summary;
use bench::sys::status_bytes;
use proto::api::Call;
use serde_json::{Value, json};

/// How often `status` is asked while indexing (and in the baseline).
pub const POLL_EVERY: Duration = Duration::from_millis(20);

/// How long indexing may take before the run gives up.
const PATIENCE: Duration = Duration::from_secs(900);

/// `status` timed every [`POLL_EVERY`] on a connection of its own, with alice's `VmRSS`
/// read at each tick, until stopped.
struct Poller {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<anyhow::Result<(Vec<Duration>, u64)>>,
}

impl Poller {
    fn start(socket: &Path, pid: u32) -> anyhow::Result<Poller> {
        let mut rpc = Rpc::connect(socket)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut took = Vec::new();
            let mut peak = 0;
            let mut next = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                let t = rpc.timed_call(Call::Status {})?;
                took.push(t.read - t.sent);
                peak = peak.max(status_bytes(pid, "VmRSS").unwrap_or(0));
                next += POLL_EVERY;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else {
                    next = now;
                }
            }
            Ok((took, peak))
        });
        Ok(Poller { stop, thread })
    }

    /// Stops polling; returns every round trip and the largest `VmRSS` read.
    fn stop(self) -> anyhow::Result<(Vec<Duration>, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the status poller panicked"))?
    }
}

/// `status` polled with no share, for `how_long`.
pub fn idle_status(socket: &Path, pid: u32, how_long: Duration) -> anyhow::Result<Summary> {
    let poller = Poller::start(socket, pid)?;
    std::thread::sleep(how_long);
    Ok(Summary::of(&poller.stop()?.0))
}

/// The indexing figures.
pub struct Indexing {
    /// Files in the share.
    pub files: usize,
    /// Directories in it.
    pub dirs: usize,
    /// Bytes in the files.
    pub bytes: u64,
    /// `share_add` written → `share_ls` first shows the share ready.
    pub ready: Duration,
    /// `share_add` written → `share_ls` first shows every file hashed.
    pub hashed: Duration,
    /// `status` round trips from `share_add` until every file was hashed.
    pub status: Summary,
    /// alice's `VmRSS` before `share_add`.
    pub rss_before: u64,
    /// The largest `VmRSS` sampled meanwhile.
    pub rss_peak_sampled: u64,
    /// alice's `VmHWM` once every file was hashed (her peak over her whole life so far).
    pub hwm: u64,
    /// alice's `VmRSS` once every file was hashed.
    pub rss_final: u64,
}

impl Indexing {
    /// The figures as JSON.
    pub fn json(&self) -> Value {
        json!({
            "files": self.files, "dirs": self.dirs, "bytes": self.bytes,
            "ready_ms": self.ready.as_secs_f64() * 1e3,
            "hashed_ms": self.hashed.as_secs_f64() * 1e3,
            "status": self.status.json(),
            "rss_before_bytes": self.rss_before,
            "rss_peak_sampled_bytes": self.rss_peak_sampled,
            "hwm_bytes": self.hwm,
            "rss_final_bytes": self.rss_final,
        })
    }
}

/// Adds `root` (holding `files` files in `dirs` directories, `bytes` in all) as alice's share
/// `name` and waits until it is indexed and hashed, polling `status` meanwhile.
pub fn measure(
    alice: &mut Rpc,
    socket: &Path,
    pid: u32,
    name: &str,
    root: &Path,
    (files, dirs, bytes): (usize, usize, u64),
) -> anyhow::Result<Indexing> {
    let rss_before = status_bytes(pid, "VmRSS")?;
    let poller = Poller::start(socket, pid)?;
    let started = Instant::now();
    super::add_share(alice, name, root)?;
    let mut ready = None;
    let hashed = loop {
        let shares = alice.call(Call::ShareLs {})?;
        let s = shares
            .as_array()
            .and_then(|a| a.iter().find(|s| s["name"] == name))
            .with_context(|| format!("share_ls does not list {name}: {shares}"))?;
        let count = |k: &str| s[k].as_u64().unwrap_or(0);
        if s["ready"] == true {
            ready.get_or_insert_with(|| started.elapsed());
            if count("files") != files as u64 {
                bail!("{name} is ready with {} files, not {files}", count("files"));
            }
            if count("hashed") == files as u64 {
                break started.elapsed();
            }
        }
        if started.elapsed() > PATIENCE {
            bail!("{name} is not hashed after {PATIENCE:?}: {s}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (status, rss_peak_sampled) = poller.stop()?;
    Ok(Indexing {
        files,
        dirs,
        bytes,
        ready: ready.unwrap_or(hashed),
        hashed,
        status: Summary::of(&status),
        rss_before,
        rss_peak_sampled,
        hwm: status_bytes(pid, "VmHWM")?,
        rss_final: status_bytes(pid, "VmRSS")?,
    })
}

/// Waits until alice's share `name` is ready with every one of its `files` files hashed.
pub fn wait_hashed(alice: &mut Rpc, name: &str, files: u64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let shares = alice.call(Call::ShareLs {})?;
        let done = shares.as_array().is_some_and(|a| {
            a.iter().any(|s| {
                s["name"] == name
                    && s["ready"] == true
                    && s["files"] == files
                    && s["hashed"] == files
            })
        });
        if done {
            return Ok(started.elapsed());
        }
        if started.elapsed() > PATIENCE {
            bail!("{name} is not hashed after {PATIENCE:?}: {shares}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
