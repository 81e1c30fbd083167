//! bench-report: runs every benchmark program in one go and writes `docs/benchmarks.md`.
//!
//! It runs `transfer-throughput` (in a full run, again with 4 GiB and no chat), `chat-latency`
//! (unpinned and pinned), `tracker-load`,
//! `share-bench`, `reach-bench` and `dht-lookup` one after the other, each with `--json` (their progress goes to this program's stderr),
//! and renders one table per benchmark: each figure beside the baseline measured in the same
//! run, the ratio, the goal and the verdict, with the machine the run was on. The programs'
//! raw JSON is kept beside the report when `--raw-dir` is given.
//!
//! ```text
//! cargo build --release -p bench -p p2pd -p trackerd -p dht-testnet
//! target/release/bench-report                     # writes docs/benchmarks.md
//! target/release/bench-report --quick --out -     # a smaller run, to stdout
//! ```
//!
//! `scripts/bench` does both steps.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use bench::exe_dir;
use clap::Parser;
use serde_json::Value;

mod reach;
mod render;
mod shares;

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    name = "bench-report",
    about = "Run every benchmark and write their figures, baselines and goals as Markdown"
)]
struct Args {
    /// Directory holding the benchmark programs, trackerd and p2pd (default: this program's).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Where to write the report (`-` for stdout).
    #[arg(long, value_name = "FILE", default_value = "docs/benchmarks.md")]
    out: PathBuf,
    /// Also write each program's JSON output into this directory.
    #[arg(long, value_name = "DIR")]
    raw_dir: Option<PathBuf>,
    /// A smaller run (256 MiB transfer, 500 chat messages, 1,000 tracker peers, share-bench
    /// `--quick`): minutes less, noisier figures.
    #[arg(long)]
    quick: bool,
    /// Where transfer-throughput and share-bench make their temporary directories (default:
    /// the system's).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// One benchmark program's run: its name, the arguments and the JSON it printed.
pub struct Run {
    /// Program name.
    pub program: &'static str,
    /// Arguments after the program name, as the report prints them.
    pub args: Vec<String>,
    /// Its `--json` output.
    pub json: Value,
}

fn run(bin_dir: &Path, program: &'static str, args: Vec<String>) -> anyhow::Result<Run> {
    let path = bin_dir.join(program);
    if !path.is_file() {
        bail!(
            "no {} (build: cargo build --release -p bench -p p2pd -p trackerd -p dht-testnet, or pass --bin-dir DIR)",
            path.display()
        );
    }
    eprintln!("\n=== {program} {}", args.join(" "));
    let out = Command::new(&path)
        .args(&args)
        .arg("--json")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", path.display()))?;
    if !out.status.success() {
        bail!("{program} failed: {}", out.status);
    }
    let json = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{program} printed no JSON report"))?;
    Ok(Run {
        program,
        args,
        json,
    })
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(ToString::to_string).collect()
}

/// `git describe` of the working tree, if this runs inside a checkout.
fn revision() -> Option<String> {
    let out = Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=10"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin_dir = match &args.bin_dir {
        Some(d) => d.clone(),
        None => exe_dir()?,
    };
    let mut transfer = strings(&["--bin-dir"]);
    transfer.push(bin_dir.display().to_string());
    if let Some(d) = &args.dir {
        transfer.extend(["--dir".to_string(), d.display().to_string()]);
    }
    let mut chat = vec!["--bin-dir".to_string(), bin_dir.display().to_string()];
    let mut tracker = vec![
        "--trackerd".to_string(),
        bin_dir.join("trackerd").display().to_string(),
    ];
    let mut shares = vec!["--bin-dir".to_string(), bin_dir.display().to_string()];
    if let Some(d) = &args.dir {
        shares.extend(["--dir".to_string(), d.display().to_string()]);
    }
    if args.quick {
        shares.push("--quick".to_string());
        transfer.extend(strings(&["--size", "256MiB"]));
        chat.extend(strings(&["--messages", "500"]));
        tracker.extend(strings(&["--peers", "1000"]));
    }
    let mut reach = vec!["--bin-dir".to_string(), bin_dir.display().to_string()];
    let mut lookup = Vec::new();
    if args.quick {
        reach.extend(strings(&["--rounds", "3"]));
        lookup.extend(strings(&["--records", "5"]));
    }
    // In a full run, 4 GiB as well (without chat): does the rate hold, and the memory?
    let transfer_4g = (!args.quick).then(|| {
        let mut t = transfer.clone();
        t.extend(strings(&[
            "--size",
            "4GiB",
            "--no-chat",
            "--chat-idle-ms",
            "0",
            "--no-resume",
        ]));
        t
    });
    let mut chat_pinned = chat.clone();
    chat_pinned.push("--pin".to_string());
    let mut chat_history = chat.clone();
    let history = if args.quick { "10000" } else { "100000" };
    chat_history.extend(strings(&["--history", history]));

    let started = bench::utc_now();
    let load_before = bench::sys::loadavg();
    let mut runs = vec![run(&bin_dir, "transfer-throughput", transfer)?];
    if let Some(t) = transfer_4g {
        runs.push(run(&bin_dir, "transfer-throughput", t)?);
    }
    runs.extend([
        run(&bin_dir, "chat-latency", chat)?,
        run(&bin_dir, "chat-latency", chat_pinned)?,
        run(&bin_dir, "chat-latency", chat_history)?,
        run(&bin_dir, "tracker-load", tracker)?,
        run(&bin_dir, "share-bench", shares)?,
        run(&bin_dir, "reach-bench", reach)?,
        run(&bin_dir, "dht-lookup", lookup)?,
    ]);
    if let Some(dir) = &args.raw_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (i, r) in runs.iter().enumerate() {
            let path = dir.join(format!("{i}-{}.json", r.program));
            std::fs::write(&path, serde_json::to_string_pretty(&r.json)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    let machine = render::Machine {
        started,
        cpus: bench::sys::cpus_online(),
        cpu_model: bench::sys::cpu_model(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        memory: bench::sys::mem_total_bytes(),
        load_before,
        revision: revision(),
        quick: args.quick,
    };
    let text = render::report(&machine, &runs);
    if args.out.as_os_str() == "-" {
        std::io::stdout().write_all(text.as_bytes())?;
    } else {
        std::fs::write(&args.out, text)
            .with_context(|| format!("writing {}", args.out.display()))?;
        eprintln!("\nwrote {}", args.out.display());
    }
    Ok(())
}
