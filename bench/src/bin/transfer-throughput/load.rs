//! Work running beside a transfer: chat messages from alice to bob at a steady pace, and a
//! sampler of both daemons' resident memory.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bench::rpc::Rpc;
use bench::sys::rss_bytes;
use proto::api::Call;

/// One chat message sent.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Its text (unique).
    pub text: String,
    /// The request line was about to be written to alice's socket.
    pub t0: Instant,
    /// Alice's answer was read.
    pub t1: Instant,
}

/// A thread calling `send_message` on alice every `interval` until stopped.
pub struct Chat {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<anyhow::Result<Vec<Sent>>>,
}

impl Chat {
    /// Starts sending `prefix0`, `prefix1`, ... to bob on a connection of its own. A call
    /// that takes longer than `interval` is followed at once by the next (no burst to catch
    /// up).
    pub fn start(socket: &Path, interval: Duration, prefix: &str) -> anyhow::Result<Chat> {
        let mut rpc = Rpc::connect(socket)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let prefix = prefix.to_string();
        let handle = std::thread::spawn(move || -> anyhow::Result<Vec<Sent>> {
            let mut sent = Vec::new();
            let mut next = Instant::now();
            while !stop2.load(Ordering::Relaxed) {
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                }
                let text = format!("{prefix}{}", sent.len());
                let timed = rpc.timed_call(Call::SendMessage {
                    peer: "bob".into(),
                    text: text.clone(),
                })?;
                let result = timed
                    .result
                    .context("a notification on the chat connection")?;
                if result["text"] != text.as_str() {
                    bail!("send_message answered {result} for {text:?}");
                }
                sent.push(Sent {
                    text,
                    t0: timed.sent,
                    t1: timed.read,
                });
                next = (next + interval).max(timed.read);
            }
            Ok(sent)
        });
        Ok(Chat { stop, handle })
    }

    /// Stops the thread and returns what it sent.
    pub fn stop(self) -> anyhow::Result<Vec<Sent>> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .join()
            .map_err(|_| anyhow::anyhow!("the chat thread panicked"))?
    }
}

/// One reading of both daemons' resident memory (`VmRSS`).
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When.
    pub at: Instant,
    /// alice, bob, in bytes.
    pub rss: [u64; 2],
}

/// A thread reading the `VmRSS` of alice and bob every `every`.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<Sample>>,
}

impl Sampler {
    /// Starts sampling processes `pids` (alice, bob).
    pub fn start(pids: [u32; 2], every: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut out = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                let rss = pids.map(|p| rss_bytes(p).unwrap_or(0));
                out.push(Sample {
                    at: Instant::now(),
                    rss,
                });
                std::thread::sleep(every);
            }
            out
        });
        Sampler { stop, handle }
    }

    /// Stops the thread and returns its samples.
    pub fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

/// The largest reading of each process among samples taken in `[from, to]` (0 for none).
pub fn peak(samples: &[Sample], from: Instant, to: Instant) -> [u64; 2] {
    let mut p = [0u64; 2];
    for s in samples.iter().filter(|s| s.at >= from && s.at <= to) {
        p[0] = p[0].max(s.rss[0]);
        p[1] = p[1].max(s.rss[1]);
    }
    p
}
