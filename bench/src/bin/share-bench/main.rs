//! share-bench: what shares cost, each figure beside a baseline measured in the same run (a
//! program, not a test).
//!
//! It makes its files in a temporary directory (removed at the end), starts a real `trackerd`
//! and two real `p2pd` (alice, who shares, and bob, granted read) on loopback, and measures:
//!
//! 1. Indexing: `share add` of `--index-files` files of 1-4 KiB in directories of 300, timed
//!    until `share_ls` shows the share ready and every file hashed; meanwhile a `status` call
//!    every 20 ms on its own connection (beside the same polling with no share, first) and
//!    alice's memory (`VmRSS` sampled, `VmHWM` and `VmRSS` at the end).
//! 2. Listing one directory of `--ls-files` empty files: bob's `ls alice:SHARE` through his
//!    control socket (new share link, `Stat`, every `List` page, one JSON answer; what
//!    `p2pctl ls` does), repeated; the first page alone (up to 1,024 entries), requested
//!    again and again on one raw `p2p-share/1` link made with bob's key; every page over that
//!    link; and beside them a local `read_dir` of the directory with each entry's metadata.
//! 3. A `--size` file moved from alice to bob by bob's `get`, by alice's `send` (bob
//!    auto-accepts) and by the fsync'd TCP pipe, after a warm-up, alternating, each copy
//!    checked and removed.
//!
//! ```text
//! cargo build --release -p bench -p p2pd -p trackerd
//! target/release/share-bench            # 100,000 files, 1 GiB
//! target/release/share-bench --quick    # 10,000 files, 64 MiB
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bench::net::Net;
use bench::payload::{parse_size, sync_all_disks, write_random};
use bench::rpc::Rpc;
use bench::sys::{cpu_model, cpus_online, fs_of, loadavg};
use bench::utc_now;
use clap::Parser;
use proto::api::Call;
use proto::share::Access;
use serde_json::{Value, json};

mod getsend;
mod indexing;
mod listing;
mod report;
mod trees;
mod wire;

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    name = "share-bench",
    about = "Share listing, indexing and get between two p2pd on loopback, beside same-run baselines"
)]
struct Args {
    /// Directory holding trackerd and p2pd (default: the directory of this program).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Where to make the temporary directory (default: the system's, usually /tmp).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// A smoke run: 10,000 files for each share, a 64 MiB file, fewer repetitions.
    #[arg(long)]
    quick: bool,
    /// Files in the listed directory (default 100,000; 10,000 with --quick).
    #[arg(long, value_name = "N")]
    ls_files: Option<usize>,
    /// Small files indexed (default 100,000; 10,000 with --quick).
    #[arg(long, value_name = "N")]
    index_files: Option<usize>,
    /// Size of the file moved: bytes, or with a binary suffix (default 1GiB; 64MiB with
    /// --quick).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    size: Option<u64>,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// How much of everything one run does.
struct Plan {
    ls_files: usize,
    index_files: usize,
    size: u64,
    /// Whole listings timed, each way.
    whole: usize,
    /// First pages timed.
    pages: usize,
    /// Rounds of get, send and pipe.
    rounds: usize,
    /// Seconds of `status` polling with no share.
    idle: Duration,
}

impl Plan {
    fn of(args: &Args) -> Plan {
        let (files, size, whole, pages, rounds, idle) = if args.quick {
            (10_000, 64 << 20, 5, 200, 2, 2)
        } else {
            (100_000, 1 << 30, 10, 500, 3, 10)
        };
        Plan {
            ls_files: args.ls_files.unwrap_or(files),
            index_files: args.index_files.unwrap_or(files),
            size: args.size.unwrap_or(size),
            whole,
            pages,
            rounds,
            idle: Duration::from_secs(idle),
        }
    }
}

fn grant_bob(alice: &mut Rpc, share: &str) -> anyhow::Result<()> {
    alice.call(Call::Grant {
        share: share.into(),
        peer: "bob".into(),
        right: Access::Read,
    })?;
    Ok(())
}

fn add_share(alice: &mut Rpc, name: &str, path: &std::path::Path) -> anyhow::Result<()> {
    alice.call(Call::ShareAdd {
        name: name.into(),
        path: path.to_str().context("share path not UTF-8")?.into(),
        keep_versions: None,
        max_version_bytes: None,
        max_version_age: None,
        quota: None,
    })?;
    Ok(())
}

fn run(
    args: &Args,
    plan: &Plan,
    d: &std::path::Path,
    bin_dir: &std::path::Path,
) -> anyhow::Result<Value> {
    eprintln!("making {} small files", plan.index_files);
    let small = d.join("small");
    let (small_bytes, _) = trees::small_files(&small, plan.index_files)?;
    eprintln!("making {} empty files in one directory", plan.ls_files);
    let flat = d.join("flat");
    trees::flat(&flat, plan.ls_files)?;
    let big = d.join("big");
    std::fs::create_dir(&big)?;
    let payload = big.join("payload.bin");
    eprintln!("writing {} random bytes", plan.size);
    let (hash, _) = write_random(&payload, plan.size)?;
    let scratch = d.join("scratch");
    std::fs::create_dir(&scratch)?;
    sync_all_disks();

    let net = Net::start(bin_dir, d, false)?;
    let mut alice_peer = net.start_peer("alice")?;
    let mut bob_peer = net.start_peer("bob")?;
    let mut tracker = net.tracker;
    let pid = alice_peer.daemon.pid();
    let result = (|| -> anyhow::Result<Value> {
        let mut alice = Rpc::connect(&alice_peer.socket)?;
        let mut bob = Rpc::connect(&bob_peer.socket)?;
        alice.wait_online("alice", "bob")?;
        bob.wait_online("bob", "alice")?;

        eprintln!("status with no share, every 20 ms for {:?}", plan.idle);
        let idle = indexing::idle_status(&alice_peer.socket, pid, plan.idle)?;
        eprintln!("indexing {} small files", plan.index_files);
        let counts = (
            plan.index_files,
            trees::dirs_for(plan.index_files),
            small_bytes,
        );
        let index =
            indexing::measure(&mut alice, &alice_peer.socket, pid, "small", &small, counts)?;
        eprintln!("indexed in {:?}, hashed in {:?}", index.ready, index.hashed);

        eprintln!("listing one directory of {} files", plan.ls_files);
        add_share(&mut alice, "flat", &flat)?;
        grant_bob(&mut alice, "flat")?;
        indexing::wait_hashed(&mut alice, "flat", plan.ls_files as u64)?;
        let bob_key = d.join("bob").join("state").join("identity.key");
        let ls = listing::measure(
            &mut bob,
            "flat",
            &flat,
            plan.ls_files,
            &bob_key,
            plan.whole,
            plan.pages,
        )?;

        eprintln!("moving {} bytes: get, send, TCP pipe", plan.size);
        add_share(&mut alice, "big", &big)?;
        grant_bob(&mut alice, "big")?;
        bob.call(Call::Trust {
            peer: "alice".into(),
            auto_accept: true,
        })?;
        indexing::wait_hashed(&mut alice, "big", 1)?;
        let mut ctx = getsend::Ctx {
            alice: &mut alice,
            bob: &mut bob,
            src: &payload,
            size: plan.size,
            hash,
            share: "big",
            downloads: &bob_peer.downloads,
            scratch: &scratch,
        };
        let rates = getsend::measure(&mut ctx, plan.rounds)?;
        Ok(json!({
            "quick": args.quick,
            "index": index.json(),
            "status_idle": idle.json(),
            "ls": ls.json(),
            "move": rates.json(),
            "size_bytes": plan.size,
        }))
    })();
    let stopped = [
        alice_peer.daemon.stop(),
        bob_peer.daemon.stop(),
        tracker.stop(),
    ];
    let v = match result {
        Ok(v) => v,
        Err(e) => {
            return Err(e.context(format!(
                "alice stderr:\n{}\nbob stderr:\n{}",
                alice_peer.daemon.stderr_tail(),
                bob_peer.daemon.stderr_tail()
            )));
        }
    };
    for s in stopped {
        s?;
    }
    Ok(v)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin_dir = bench::daemon_dir(args.bin_dir.as_deref())?;
    let plan = Plan::of(&args);
    let load = loadavg();
    let tmp = bench::temp_dir("share-bench-", args.dir.as_deref())?;
    let d = tmp.path().to_path_buf();
    let mut v = run(&args, &plan, &d, &bin_dir)?;
    v["machine"] = json!({
        "date": utc_now(), "cpus": cpus_online(), "cpu": cpu_model(), "loadavg_before": load,
        "dir": d.display().to_string(),
        "fs_type": fs_of(&d).map_or_else(|| "?".to_string(), |f| f.0),
    });
    v["goals"] = report::goals();
    drop(tmp);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        report::print(&v);
    }
    Ok(())
}
