//! The transfers themselves: one file with chat and memory sampling beside it (accepted by
//! hand as soon as the offer shows at bob), and batches of simultaneous auto-accepted
//! transfers.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bench::WAIT;
use bench::rpc::Rpc;
use bench::sys::{cpu_time, thread_cpu_times};
use proto::api::Call;
use serde_json::Value;

use crate::events::Events;
use crate::load::{Chat, Sample, Sampler, Sent};

/// How often the sampler reads `VmRSS`.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// What the transfer runs need to reach the daemons.
pub struct Ctx {
    /// alice's control socket.
    pub alice_sock: PathBuf,
    /// bob's control socket.
    pub bob_sock: PathBuf,
    /// alice's and bob's process ids.
    pub pids: [u32; 2],
    /// Clock ticks per second for `/proc` CPU times.
    pub ticks: u64,
}

/// How long a transfer of `bytes` may take before the run gives up (20 MB/s, plus a minute).
fn patience(bytes: u64) -> Duration {
    Duration::from_secs(60 + bytes / 20_000_000)
}

/// CPU times of both daemons at one moment: the process totals (exited threads included)
/// and each live thread's.
struct CpuSnap {
    total: [Duration; 2],
    threads: [HashMap<u32, (String, Duration)>; 2],
}

impl CpuSnap {
    fn take(ctx: &Ctx) -> CpuSnap {
        let threads = ctx.pids.map(|p| {
            thread_cpu_times(p, ctx.ticks)
                .into_iter()
                .map(|(tid, name, d)| (tid, (name, d)))
                .collect()
        });
        let total = ctx
            .pids
            .map(|p| cpu_time(p, ctx.ticks).unwrap_or(Duration::ZERO));
        CpuSnap { total, threads }
    }
}

/// CPU used by one daemon over an interval.
#[derive(Debug, Clone, Default)]
pub struct ProcCpu {
    /// User plus system time of the whole process.
    pub total: Duration,
    /// The thread that used the most: its name, id and time.
    pub busiest: (String, u32, Duration),
    /// Threads that used at least 10 ms.
    pub busy_threads: usize,
}

/// CPU used by alice and bob between two snapshots.
fn cpu_between(a: &CpuSnap, b: &CpuSnap) -> [ProcCpu; 2] {
    std::array::from_fn(|i| {
        let mut out = ProcCpu {
            total: b.total[i].saturating_sub(a.total[i]),
            ..ProcCpu::default()
        };
        for (tid, (name, d)) in &b.threads[i] {
            let before = a.threads[i].get(tid).map_or(Duration::ZERO, |x| x.1);
            let used = d.saturating_sub(before);
            if used >= Duration::from_millis(10) {
                out.busy_threads += 1;
            }
            if used > out.busiest.2 {
                out.busiest = (name.clone(), *tid, used);
            }
        }
        out
    })
}

/// The transfer id in a `TransferInfo` result.
fn transfer_id(info: &Value) -> anyhow::Result<String> {
    info["id"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("no transfer id in {info}"))
}

/// One transfer accepted by hand, with chat and sampling beside it.
pub struct Single {
    /// Bytes sent.
    pub bytes: u64,
    /// `send_files` request about to be written to alice.
    pub t_send: Instant,
    /// `send_files` answered (at once: alice hashes the tree after, as a job).
    pub t_send_ret: Instant,
    /// Round trip of a `peers` call made just before `send_files`, for comparison.
    pub peers_call: Duration,
    /// bob's `transfer_offered` read.
    pub t_offered: Instant,
    /// `accept` request about to be written to bob.
    pub t_accept: Instant,
    /// `accept` answered.
    pub t_accept_ret: Instant,
    /// alice's `transfer_updated` to running (she read the Accept frame).
    pub t_running_out: Option<Instant>,
    /// alice's last `transfer_progress` (published after her last frame is written).
    pub t_sender_end: Option<Instant>,
    /// bob's `transfer_updated` to done.
    pub t_done_in: Option<Instant>,
    /// alice's `transfer_updated` to done (she read bob's Done frame).
    pub t_done_out: Instant,
    /// bob's progress events during the transfer: (time, verified bytes).
    pub progress_in: Vec<(Instant, u64)>,
    /// CPU from `send_files` to the offer at bob (alice, bob).
    pub cpu_scan: [ProcCpu; 2],
    /// CPU from `accept` to done at alice.
    pub cpu_data: [ProcCpu; 2],
    /// Chat messages sent meanwhile (before, during and after the transfer).
    pub chat: Vec<Sent>,
    /// When bob's `message_received` for each text was read.
    pub chat_received: HashMap<String, Instant>,
    /// When the chat started (the idle baseline runs from here to `t_send`).
    pub chat_started: Instant,
    /// Memory samples over the whole run.
    pub samples: Vec<Sample>,
}

/// Sends `src` (`bytes` long) from alice to bob, accepting into `dest` as soon as the offer
/// shows at bob. Chat messages go every `interval` (`None`: no chat) from `idle` before
/// `send_files` until the end; both daemons' memory is sampled meanwhile.
pub fn single(
    ctx: &Ctx,
    events: &mut Events,
    src: &Path,
    bytes: u64,
    dest: &Path,
    interval: Option<Duration>,
    idle: Duration,
) -> anyhow::Result<Single> {
    let mut alice = Rpc::connect(&ctx.alice_sock)?;
    let mut bob = Rpc::connect(&ctx.bob_sock)?;
    // A first message dials the chat link, so that the measured ones do not.
    alice.call(Call::SendMessage {
        peer: "bob".into(),
        text: "warm-up".into(),
    })?;
    events.wait_until("the warm-up message at bob", WAIT, |s| {
        s.received.contains_key("warm-up")
    })?;

    let sampler = Sampler::start(ctx.pids, SAMPLE_EVERY);
    let chat_started = Instant::now();
    let chat = interval
        .map(|i| Chat::start(&ctx.alice_sock, i, "c"))
        .transpose()?;
    std::thread::sleep(idle);

    let peers = alice.timed_call(Call::Peers {})?;
    let peers_call = peers.read - peers.sent;
    let cpu0 = CpuSnap::take(ctx);
    let path = src.to_str().context("the payload path is not UTF-8")?;
    let timed = alice.timed_call(Call::SendFiles {
        peer: "bob".into(),
        path: path.into(),
        paths: Vec::new(),
    })?;
    let (t_send, t_send_ret) = (timed.sent, timed.read);
    let info = timed
        .result
        .context("a notification on an unsubscribed connection")?;
    let id = transfer_id(&info)?;
    events.wait_until("the offer at bob", WAIT, |s| s.offered_in.contains_key(&id))?;
    let t_offered = events.seen.offered_in[&id];

    let cpu1 = CpuSnap::take(ctx);
    let t_accept = Instant::now();
    bob.call(Call::Accept {
        id: id.clone(),
        to: Some(dest.to_str().context("destination not UTF-8")?.into()),
        mkdir: true,
    })?;
    let t_accept_ret = Instant::now();
    events.wait_until("the transfer done at alice", patience(bytes), |s| {
        s.done_out.contains_key(&id)
    })?;
    let cpu2 = CpuSnap::take(ctx);
    let t_done_out = events.seen.done_out[&id];
    // A little chat after the end, then stop it and collect every message.
    std::thread::sleep(Duration::from_millis(200));
    let chat = match chat {
        Some(c) => c.stop()?,
        None => Vec::new(),
    };
    let samples = sampler.stop();
    events.wait_until("every chat message at bob", WAIT, |s| {
        chat.iter().all(|m| s.received.contains_key(&m.text))
    })?;
    let seen = &events.seen;
    Ok(Single {
        bytes,
        t_send,
        t_send_ret,
        peers_call,
        t_offered,
        t_accept,
        t_accept_ret,
        t_running_out: seen.running_out.get(&id).copied(),
        t_sender_end: seen.last_progress_out.get(&id).copied(),
        t_done_in: seen.done_in.get(&id).copied(),
        t_done_out,
        progress_in: seen
            .progress_in
            .iter()
            .filter(|(_, i, _)| *i == id)
            .map(|(t, _, b)| (*t, *b))
            .collect(),
        cpu_scan: cpu_between(&cpu0, &cpu1),
        cpu_data: cpu_between(&cpu1, &cpu2),
        chat_received: chat
            .iter()
            .filter_map(|m| seen.received.get(&m.text).map(|t| (m.text.clone(), *t)))
            .collect(),
        chat,
        chat_started,
        samples,
    })
}

/// Simultaneous auto-accepted transfers.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Number of transfers (one file each).
    pub files: usize,
    /// Bytes in all.
    pub bytes: u64,
    /// First `send_files` written -> last transfer done at alice.
    pub elapsed: Duration,
    /// First `send_files` written -> last `send_files` answered (scan and hash).
    pub calls: Duration,
    /// Each transfer: `send_files` written -> done at alice.
    pub each: Vec<Duration>,
    /// Largest `VmRSS` of alice and bob sampled during the batch.
    pub peak_rss: [u64; 2],
    /// CPU used by alice and bob over the batch.
    pub cpu: [ProcCpu; 2],
}

/// Sends every file of `srcs` (path, size) at once, one `send_files` per file on
/// connections of their own, and waits until alice reports each done. With `accept_into`,
/// every new offer at bob is accepted there; without, bob must auto-accept.
pub fn batch(
    ctx: &Ctx,
    events: &mut Events,
    srcs: &[(PathBuf, u64)],
    accept_into: Option<&Path>,
) -> anyhow::Result<Batch> {
    let n = srcs.len();
    if n == 0 {
        bail!("empty batch");
    }
    events.drain()?;
    let mut handled: HashSet<String> = events.seen.offered_in.keys().cloned().collect();
    let mut bob = Rpc::connect(&ctx.bob_sock)?;
    let dest = accept_into
        .map(|d| {
            d.to_str()
                .map(str::to_string)
                .context("destination not UTF-8")
        })
        .transpose()?;
    let barrier = Arc::new(Barrier::new(n));
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(Rpc::connect(&ctx.alice_sock)?);
    }
    let sampler = Sampler::start(ctx.pids, SAMPLE_EVERY);
    let cpu0 = CpuSnap::take(ctx);
    let threads: Vec<_> = conns
        .into_iter()
        .zip(srcs)
        .map(|(mut rpc, (path, _))| {
            let barrier = barrier.clone();
            let path = path.to_str().map(str::to_string);
            std::thread::spawn(move || -> anyhow::Result<(String, Instant, Instant)> {
                let path = path.context("a payload path is not UTF-8")?;
                barrier.wait();
                let timed = rpc.timed_call(Call::SendFiles {
                    peer: "bob".into(),
                    path,
                    paths: Vec::new(),
                })?;
                let info = timed
                    .result
                    .context("a notification on an unsubscribed connection")?;
                Ok((transfer_id(&info)?, timed.sent, timed.read))
            })
        })
        .collect();
    let bytes: u64 = srcs.iter().map(|(_, s)| s).sum();
    let deadline = Instant::now() + patience(bytes);
    let mut calls: Option<Vec<(String, Instant, Instant)>> = None;
    let mut threads = Some(threads);
    loop {
        events.poll(Duration::from_millis(20))?;
        if let Some(to) = &dest {
            let new: Vec<String> = events
                .seen
                .offered_in
                .keys()
                .filter(|id| !handled.contains(*id))
                .cloned()
                .collect();
            for id in new {
                bob.call(Call::Accept {
                    id: id.clone(),
                    to: Some(to.clone()),
                    mkdir: true,
                })?;
                handled.insert(id);
            }
        }
        if threads
            .as_ref()
            .is_some_and(|t| t.iter().all(|h| h.is_finished()))
        {
            let mut done = Vec::with_capacity(n);
            for t in threads.take().into_iter().flatten() {
                done.push(
                    t.join()
                        .map_err(|_| anyhow::anyhow!("a send_files thread panicked"))??,
                );
            }
            calls = Some(done);
        }
        if let Some(c) = &calls
            && c.iter()
                .all(|(id, _, _)| events.seen.done_out.contains_key(id))
        {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "the batch of {n} transfers is not done after {:?}",
                patience(bytes)
            );
        }
    }
    let calls = calls.context("no send_files answers")?;
    let cpu1 = CpuSnap::take(ctx);
    let samples = sampler.stop();
    let first = calls.iter().map(|c| c.1).min().context("empty batch")?;
    let last_ret = calls.iter().map(|c| c.2).max().context("empty batch")?;
    let done = &events.seen.done_out;
    let each: Vec<Duration> = calls.iter().map(|(id, t0, _)| done[id] - *t0).collect();
    let last = calls
        .iter()
        .map(|(id, _, _)| done[id])
        .max()
        .context("empty batch")?;
    Ok(Batch {
        files: n,
        bytes,
        elapsed: last - first,
        calls: last_ret - first,
        each,
        peak_rss: crate::load::peak(&samples, first, last),
        cpu: cpu_between(&cpu0, &cpu1),
    })
}
