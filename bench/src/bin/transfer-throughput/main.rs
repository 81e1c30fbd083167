//! transfer-throughput: how fast p2pd moves one large file between two daemons on loopback,
//! beside a plain TCP pipe of the same file in the same run (a program, not a test).
//!
//! It writes a random payload (`--size`, default 1 GiB) in a temporary directory, copies it
//! through a loopback TCP pipe that syncs the copy at the end (the baseline; again at the
//! end of the run), through two `socat -b 1048576` (whose CPU time is the baseline of the
//! daemons'; skipped if socat is missing) and through scp when an sshd can be started. Then it starts a real
//! `trackerd` and two real `p2pd` (alice and bob) there, waits until each lists the other
//! online, subscribes to both daemons' events, and:
//!
//! 1. calls `send_files` on alice and `accept` on bob (into a fresh directory) as soon as
//!    bob's `transfer_offered` event arrives, and waits for alice's `transfer_updated` to
//!    `done`. What is sent is a directory holding the payload (a hard link: no second copy
//!    on disk). The `send_files` call itself (it answers at once; alice hashes the tree
//!    after, as a job) is timed beside a `peers` call made just before it; the scan
//!    (`send_files` -> offer at bob) and the data phase (accept -> done) are timed apart. Meanwhile chat messages go from alice to bob every
//!    `--chat-interval-ms` (from `--chat-idle-ms` before `send_files`, the idle baseline),
//!    each timed until bob's `message_received`, and both daemons' `VmRSS` is read every
//!    50 ms. Per-thread CPU times (`/proc/PID/task`) show which side is the bottleneck.
//! 2. sends the whole payload once, then `--streams` files of `--size / --streams` bytes at
//!    once, each `send_files` from its own control connection, and reports the aggregate
//!    rate of each. bob accepts each offer as its event arrives (or, with `--auto-accept`,
//!    trusts alice with `auto_accept` first).
//!
//! 3. sends the payload again, SIGKILLs bob once he reports half of it verified, starts him
//!    again on the same state, and reports what alice's link sessions sent beyond the
//!    file's size (her activity log); `--no-resume` skips it.
//!
//! Every received file is checked against its source (size and BLAKE3). At the end, after
//! the second plain pipe, a diagnostic pipe also syncs every 16 MiB, as p2pd's receiver
//! does.
//!
//! ```text
//! cargo build --release -p bench -p p2pd -p trackerd
//! target/release/transfer-throughput                 # 1 GiB
//! target/release/transfer-throughput --size 256M     # quicker
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use bench::rpc::Rpc;
use bench::sys::{clock_ticks, cpu_model, cpus_online, free_bytes, fs_of, loadavg, status_bytes};
use bench::utc_now;
use clap::Parser;
use proto::api::Call;

mod baseline;
mod daemons;
mod events;
mod load;
mod report;
mod resume;
mod transfer;

use bench::payload::{hash_file, parse_size, sync_all_disks, verify, write_random};
use events::Events;
use report::{Report, print_table, to_json};
use transfer::Ctx;

/// How often the diagnostic pipe syncs: as p2pd's receiver did before it synced once per
/// file.
const PERIODIC_SYNC: u64 = 16 << 20;

/// Size used instead of the one asked for when the disk is short of space.
const FALLBACK_SIZE: u64 = 512 << 20;

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    name = "transfer-throughput",
    about = "File transfer rate between two p2pd on loopback, beside a TCP pipe baseline"
)]
struct Args {
    /// Directory holding trackerd and p2pd (default: the directory of this program).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Payload size: bytes, or with a binary suffix (K, M, G; KiB, MiB, GiB).
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse_size)]
    size: u64,
    /// Simultaneous transfers in the concurrency test (each of size / N bytes).
    #[arg(long, value_name = "N", default_value_t = 8)]
    streams: usize,
    /// Milliseconds between chat messages during the transfer.
    #[arg(long, value_name = "MS", default_value_t = 10)]
    chat_interval_ms: u64,
    /// No chat beside the first transfer (to see what the chat costs the transfer).
    #[arg(long)]
    no_chat: bool,
    /// Milliseconds of chat before send_files (the idle baseline).
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    chat_idle_ms: u64,
    /// Where to make the temporary directory (default: the system's, usually /tmp).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// In the concurrency test, let bob auto-accept (`trust` with `auto_accept`) instead of
    /// calling `accept` for each offer as its event arrives.
    #[arg(long)]
    auto_accept: bool,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Skip the last run, which SIGKILLs bob at half a transfer of the payload and counts
    /// the bytes sent again after his restart.
    #[arg(long)]
    no_resume: bool,
}

/// `uname -r`.
fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// `VmHWM` of alice and bob.
fn hwm(pids: [u32; 2]) -> [u64; 2] {
    pids.map(|p| status_bytes(p, "VmHWM").unwrap_or(0))
}

/// Checks and removes received files.
fn check_and_remove(files: &[(PathBuf, u64, [u8; 32])]) -> anyhow::Result<()> {
    for (path, size, hash) in files {
        verify(path, *size, hash)?;
        std::fs::remove_file(path)?;
    }
    sync_all_disks();
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin_dir = bench::daemon_dir(args.bin_dir.as_deref())?;
    if args.streams == 0 || args.size < args.streams as u64 {
        bail!("--streams must be between 1 and --size");
    }
    let loadavg = loadavg();
    let tmp = bench::temp_dir("transfer-throughput-", args.dir.as_deref())?;
    let d = tmp.path().to_path_buf();
    let fs = fs_of(&d).unwrap_or_else(|| ("?".into(), "?".into()));
    let free = free_bytes(&d);

    // At most three payloads' worth on disk at once: the source, the split parts, a copy.
    let need = |size: u64| 3 * size + (256 << 20);
    let mut size = args.size;
    let mut size_note = None;
    if let Some(free) = free
        && free < need(size)
    {
        if size > FALLBACK_SIZE && free >= need(FALLBACK_SIZE) {
            size_note = Some(format!(
                "--size {size} needs about {} MiB free and {} has {} MiB: using {} MiB",
                need(size) >> 20,
                d.display(),
                free >> 20,
                FALLBACK_SIZE >> 20
            ));
            size = FALLBACK_SIZE;
        } else {
            bail!(
                "{} has {} MiB free; --size {size} needs about {} MiB",
                d.display(),
                free >> 20,
                need(size) >> 20
            );
        }
    }
    if let Some(n) = &size_note {
        eprintln!("note: {n}");
    }

    // The payloads.
    let payload = d.join("payload.bin");
    eprintln!("writing {size} random bytes to {}", payload.display());
    let (hash, write_time) = write_random(&payload, size)?;
    let (h2, hash_time) = hash_file(&payload)?;
    anyhow::ensure!(h2 == hash, "the payload reads back differently");
    // The single transfer sends a directory: the payload, linked into one.
    let tree = d.join("tree");
    std::fs::create_dir(&tree)?;
    std::fs::hard_link(&payload, tree.join("payload.bin"))?;
    let part_size = size / args.streams as u64;
    let parts_dir = d.join("parts");
    std::fs::create_dir(&parts_dir)?;
    let mut parts = Vec::with_capacity(args.streams);
    for i in 0..args.streams {
        let p = parts_dir.join(format!("part-{i}.bin"));
        let (h, _) = write_random(&p, part_size)?;
        parts.push((p, part_size, h));
    }
    sync_all_disks();

    // Baselines.
    eprintln!("baseline: TCP pipe + fsync");
    let pipe_copy = d.join("pipe-copy.bin");
    let pipe_before = bench::pipe::tcp_pipe(&payload, &pipe_copy, None)?;
    check_and_remove(&[(pipe_copy.clone(), size, hash)])?;
    eprintln!("baseline: socat -b 1048576 (CPU)");
    let socat_copy = d.join("socat-copy.bin");
    let socat = baseline::socat(&payload, &socat_copy);
    match &socat {
        baseline::Socat::Skipped(why) => eprintln!("socat skipped: {why}"),
        baseline::Socat::Ran { .. } => check_and_remove(&[(socat_copy, size, hash)])?,
    }
    eprintln!("baseline: scp");
    let scp_copy = d.join("scp-copy.bin");
    let scp = baseline::scp(&payload, &scp_copy, &d.join("ssh"));
    match &scp {
        baseline::Scp::Skipped(why) => eprintln!("scp skipped: {why}"),
        baseline::Scp::Ran { .. } => check_and_remove(&[(scp_copy, size, hash)])?,
    }

    // The daemons.
    let started = Instant::now();
    let mut cluster = daemons::start(&bin_dir, &d)?;
    let pids = [cluster.alice.daemon.pid(), cluster.bob.daemon.pid()];
    let ctx = Ctx {
        alice_sock: cluster.alice.socket.clone(),
        bob_sock: cluster.bob.socket.clone(),
        pids,
        ticks: clock_ticks(),
    };
    let result = (|| -> anyhow::Result<Report> {
        let mut a_rpc = Rpc::connect(&ctx.alice_sock)?;
        let mut b_rpc = Rpc::connect(&ctx.bob_sock)?;
        eprintln!("waiting until alice and bob list each other online");
        a_rpc.wait_online("alice", "bob")?;
        b_rpc.wait_online("bob", "alice")?;
        // The chat beside the transfer may pass the message rate bob allows untrusted peers.
        b_rpc.call(Call::Trust {
            peer: "alice".into(),
            auto_accept: false,
        })?;
        let online_after = started.elapsed();
        let mut events = Events::start(&ctx.alice_sock, &ctx.bob_sock)?;
        let rss_idle = pids.map(|p| status_bytes(p, "VmRSS").unwrap_or(0));

        eprintln!("transfer of {size} bytes alice -> bob, accepted by hand, with chat beside it");
        let dest = d.join("received");
        let single = transfer::single(
            &ctx,
            &mut events,
            &tree,
            size,
            &dest,
            (!args.no_chat).then(|| Duration::from_millis(args.chat_interval_ms)),
            Duration::from_millis(args.chat_idle_ms),
        )?;
        let hwm_single = hwm(pids);
        check_and_remove(&[(dest.join("tree/payload.bin"), size, hash)])?;

        // Where the batches land: bob's download directory when he auto-accepts, else a
        // fresh directory given to each `accept`.
        let landing = if args.auto_accept {
            let trusted = b_rpc.call(Call::Trust {
                peer: "alice".into(),
                auto_accept: true,
            })?;
            anyhow::ensure!(trusted["auto_accept"] == true, "trust answered {trusted}");
            cluster.bob.downloads.clone()
        } else {
            d.join("received-batches")
        };
        let accept_into = (!args.auto_accept).then_some(landing.as_path());
        eprintln!("1 transfer of {size} bytes");
        let batch_one =
            transfer::batch(&ctx, &mut events, &[(payload.clone(), size)], accept_into)?;
        check_and_remove(&[(landing.join("payload.bin"), size, hash)])?;
        eprintln!(
            "{} simultaneous transfers of {part_size} bytes",
            args.streams
        );
        let srcs: Vec<(PathBuf, u64)> = parts.iter().map(|(p, s, _)| (p.clone(), *s)).collect();
        let batch_many = transfer::batch(&ctx, &mut events, &srcs, accept_into)?;
        let received: Vec<(PathBuf, u64, [u8; 32])> = parts
            .iter()
            .map(|(p, s, h)| (landing.join(p.file_name().unwrap_or_default()), *s, *h))
            .collect();
        check_and_remove(&received)?;
        let hwm_end = hwm(pids);
        let resume = if args.no_resume {
            None
        } else {
            eprintln!("transfer of {size} bytes, bob SIGKILLed at half and started again");
            let dest = d.join("received-resume");
            let alice_state = bench::net::PeerFiles::under(&d, "alice").state;
            let k =
                resume::kill_at_half(&mut cluster, &mut events, &tree, size, &dest, &alice_state)?;
            check_and_remove(&[(dest.join("tree/payload.bin"), size, hash)])?;
            Some(k)
        };
        events.drain()?;
        if events.seen.lagged > 0 {
            eprintln!(
                "note: the daemons dropped {} events for lagging subscribers",
                events.seen.lagged
            );
        }
        Ok(Report {
            date: String::new(),
            cpus: cpus_online(),
            cpu: cpu_model(),
            kernel: kernel(),
            loadavg: loadavg.clone(),
            dir: d.display().to_string(),
            fs: fs.clone(),
            free,
            size,
            size_note: size_note.clone(),
            interval: (!args.no_chat).then(|| Duration::from_millis(args.chat_interval_ms)),
            write_time,
            hash_time,
            pipes: [pipe_before; 2],
            pipe_periodic: pipe_before,
            scp: scp.clone(),
            socat: socat.clone(),
            online_after,
            rss_idle,
            single,
            hwm_single,
            batch_one,
            batch_many,
            hwm_end,
            auto_accept: args.auto_accept,
            resume,
        })
    })();
    let mut report = match result {
        Ok(r) => r,
        Err(e) => {
            let e = e.context(cluster.stderr_tails());
            let _ = cluster.stop();
            // Keep the logs and state for a look, not the payloads.
            let _ = std::fs::remove_file(&payload);
            let _ = std::fs::remove_dir_all(&tree);
            let _ = std::fs::remove_dir_all(&parts_dir);
            let kept = tmp.keep();
            eprintln!("kept {} (daemon logs and state)", kept.display());
            return Err(e);
        }
    };
    eprintln!("stopping the daemons");
    cluster.stop()?;

    eprintln!("baseline again: TCP pipe + fsync");
    let pipe_after = bench::pipe::tcp_pipe(&payload, &pipe_copy, None)?;
    check_and_remove(&[(pipe_copy.clone(), size, hash)])?;
    report.pipes[1] = pipe_after;
    eprintln!(
        "diagnostic: TCP pipe with an fsync every {} MiB",
        PERIODIC_SYNC >> 20
    );
    report.pipe_periodic = bench::pipe::tcp_pipe(&payload, &pipe_copy, Some(PERIODIC_SYNC))?;
    check_and_remove(&[(pipe_copy, size, hash)])?;
    report.date = utc_now();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&to_json(&report))?);
    } else {
        print_table(&report);
    }
    Ok(())
}
