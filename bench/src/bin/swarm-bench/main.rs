//! swarm-bench: one download drawn from several seeders at once (`get --from`), in network
//! namespaces with each seeder's link capped by a `tbf` qdisc (a program, not a test).
//!
//! It makes a lab of namespaces (needs root, `ip` and `tc`; see `p2p_tests::netns`): a
//! tracker, bob (uncapped) and the seeders alice, carol and dave, which share one directory
//! holding the file and grant bob read. Then, after warming memory:
//!
//! - even: every seeder at 200 Mbit/s; bob's `get alice:rel/f --from alice` (one source)
//!   against `--from carol,dave` (three): the ratio of rates (goal >= 2.7) and the
//!   three-source rate against the sum of the caps (goal >= 0.9);
//! - uneven: alice 400, carol 100, dave 25 Mbit/s: the time against the ideal, the size
//!   over the sum of the rates (goal: within 15 %), and the endgame's share of it (from
//!   bob's activity log: every missing chunk in flight);
//! - corrupt: mallory, a hostile source run here in its own host at 200 Mbit/s (it claims
//!   every chunk and sends wrong bytes), with alice and carol at 200: the time against the
//!   ideal of the two honest ones, and the bytes bob received and threw away.
//!
//! Times are the wall clock of `p2pctl get`, manifest included.
//!
//! ```text
//! cargo build --release -p bench -p p2pd -p p2pctl -p trackerd
//! sudo target/release/swarm-bench --size 256
//! ```

mod mallory;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bench::{exe_dir, utc_now};
use clap::Parser;
use p2p_tests::netns::{Host, Lab};
use p2p_tests::transfer::write_pattern;
use p2p_tests::{DEADLINE, P2pd, TestNet, poll};
use serde_json::json;

const MIB: u64 = 1 << 20;
/// Goals from the design: three seeders against one, and against the sum of the caps.
const GOAL_SPEEDUP: f64 = 2.7;
const GOAL_OF_CAPS: f64 = 0.9;
/// Uneven seeders: time at most this much over the ideal.
const GOAL_UNEVEN_OVER: f64 = 0.15;

#[derive(Debug, Parser)]
#[command(
    name = "swarm-bench",
    about = "Multi-source get from seeders with capped links, in network namespaces"
)]
struct Args {
    /// Directory holding p2pd, p2pctl and trackerd (default: the directory of this program).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Size of the file in MiB.
    #[arg(long, default_value_t = 256)]
    size: u64,
    /// Also print the result as one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

/// The lab and its daemons. Fields drop in order: daemons, test directory, namespaces.
struct World {
    bob: P2pd,
    seeders: Vec<(P2pd, Host)>,
    tracker: p2p_tests::Tracker,
    /// The seeders' file.
    file: PathBuf,
    lab: Lab,
    net: TestNet,
}

/// What one `get` took, and what bob's activity log said of it.
#[derive(Debug, Default, Clone, Copy)]
struct Run {
    secs: f64,
    took_ms: u64,
    endgame_ms: u64,
    wasted: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin_dir = match args.bin_dir {
        Some(d) => d,
        None => exe_dir()?,
    };
    for bin in ["p2pd", "p2pctl", "trackerd"] {
        if !bin_dir.join(bin).is_file() {
            bail!(
                "no {bin} in {} (build: cargo build --release -p p2pd -p p2pctl -p trackerd, \
                 or pass --bin-dir DIR)",
                bin_dir.display()
            );
        }
    }
    let size = args.size * MIB;
    let lab = Lab::new(&["tc"]).map_err(anyhow::Error::msg)?;
    let mut w = world(lab, TestNet::with_bin_dir(bin_dir), size)?;
    warm(&w.net, size)?;
    let bits = size as f64 * 8.0;

    caps(&w, [200, 200, 200]);
    let one = get(&w, "alice")?;
    let three = get(&w, "carol,dave")?;
    let speedup = one.secs / three.secs;
    let three_mbit = bits / three.secs / 1e6;
    let of_caps = three_mbit / 600.0;

    caps(&w, [400, 100, 25]);
    let uneven = get(&w, "carol,dave")?;
    let ideal = bits / 525e6;
    let over = uneven.secs / ideal - 1.0;
    let endgame_share = uneven.endgame_ms as f64 / uneven.took_ms.max(1) as f64;

    caps(&w, [200, 200, 200]);
    let mal = mallory::start(&mut w.lab, &w.tracker, size)?;
    w.bob.wait_peer("mallory", true, DEADLINE);
    let corrupt = get(&w, "carol,mallory")?;
    let asked = mal.stop();
    let ideal2 = bits / 400e6;

    let mbit = |r: &Run| bits / r.secs / 1e6;
    println!(
        "swarm-bench {} ({} MiB, seeders capped by tbf, bob uncapped)",
        utc_now(),
        args.size
    );
    println!(
        "  even 3 x 200 Mbit/s: one seeder {:.2} s ({:.0} Mbit/s), three {:.2} s ({:.0} Mbit/s)",
        one.secs,
        mbit(&one),
        three.secs,
        mbit(&three)
    );
    println!(
        "    three/one {speedup:.2}x (goal >= {GOAL_SPEEDUP}x: {}), of the caps' sum {of_caps:.2}x \
         (goal >= {GOAL_OF_CAPS}x: {})",
        bench::stats::verdict(speedup >= GOAL_SPEEDUP),
        bench::stats::verdict(of_caps >= GOAL_OF_CAPS)
    );
    println!(
        "  uneven 400/100/25 Mbit/s: {:.2} s against an ideal {ideal:.2} s: {:+.1} % \
         (goal within {:.0} %: {}); endgame {} ms of {} ms ({:.1} %)",
        uneven.secs,
        over * 100.0,
        GOAL_UNEVEN_OVER * 100.0,
        bench::stats::verdict(over <= GOAL_UNEVEN_OVER),
        uneven.endgame_ms,
        uneven.took_ms,
        endgame_share * 100.0
    );
    println!(
        "  one corrupt among three (alice, carol at 200 Mbit/s, mallory): {:.2} s against {ideal2:.2} s \
         for the two honest ones; {} bytes wasted ({} chunks asked of mallory)",
        corrupt.secs, corrupt.wasted, asked
    );
    if args.json {
        let out = json!({
            "bench": "swarm", "size": size,
            "one_secs": one.secs, "three_secs": three.secs, "speedup": speedup,
            "of_caps": of_caps, "uneven_secs": uneven.secs, "uneven_ideal_secs": ideal,
            "uneven_endgame_ms": uneven.endgame_ms, "uneven_took_ms": uneven.took_ms,
            "corrupt_secs": corrupt.secs, "corrupt_ideal_secs": ideal2,
            "corrupt_wasted": corrupt.wasted, "mallory_asked": asked,
        });
        println!("{out}");
    }
    drop(w);
    Ok(())
}

/// Makes the hosts, starts the daemons, writes the file, has each seeder share it and
/// grant bob read, and returns once bob sees every copy hashed.
fn world(mut lab: Lab, net: TestNet, size: u64) -> anyhow::Result<World> {
    let t = lab.host("tracker");
    let b = lab.host("bob");
    let tracker = t.spawn_tracker(&net);
    let spawn = |name: &str, host: &Host| host.spawn_p2pd(&net, name, &tracker);
    let bob = spawn("bob", &b);
    let dir = net.unique_dir("rel");
    let file = dir.join("f");
    write_pattern(&file, size as usize, 7);
    let dir = dir
        .to_str()
        .context("a UTF-8 temporary directory")?
        .to_owned();
    let mut seeders = Vec::new();
    for name in ["alice", "carol", "dave"] {
        let h = lab.host(name);
        let s = spawn(name, &h);
        s.wait_peer("bob", true, DEADLINE);
        bob.wait_peer(name, true, DEADLINE);
        ctl(&net, &s, &["share", "add", "rel", &dir])?;
        ctl(&net, &s, &["grant", "rel", "bob", "read"])?;
        seeders.push((s, h));
    }
    for (s, _) in &seeders {
        let target = format!("{}:rel", s.name);
        poll(Duration::from_secs(120), Duration::from_millis(50), || {
            let out = net.ctl(&bob, &["--json", "ls", &target, "-l"]);
            match out.json()["entries"][0]["id"].as_str() {
                Some(_) => Ok(()),
                None => Err(format!("{target} not hashed yet")),
            }
        });
    }
    Ok(World {
        bob,
        seeders,
        tracker,
        file,
        lab,
        net,
    })
}

/// Writes and deletes a file of twice the size, so no timed run pays for fresh memory.
fn warm(net: &TestNet, size: u64) -> anyhow::Result<()> {
    let path = net.unique_dir("warm").join("w");
    write_pattern(&path, (2 * size) as usize, 1);
    std::fs::remove_file(&path).context("remove the warm-up file")
}

/// Caps alice's, carol's and dave's links at these Mbit/s.
fn caps(w: &World, mbit: [u32; 3]) {
    for ((_, h), m) in w.seeders.iter().zip(mbit) {
        h.limit_rate(m);
    }
}

/// `p2pctl ARGS` at `who`, failing with its output.
fn ctl(net: &TestNet, who: &P2pd, args: &[&str]) -> anyhow::Result<()> {
    let out = net.ctl(who, args);
    if !out.status.success() {
        bail!("p2pctl {}: {}", args.join(" "), out.stderr);
    }
    Ok(())
}

/// bob's `get alice:rel/f DEST --from FROM`, timed; the file is checked and removed.
fn get(w: &World, from: &str) -> anyhow::Result<Run> {
    let dest = w.net.unique_dir("dest");
    let before = done_lines(&w.bob).len();
    let mut cmd = w.net.command("p2pctl");
    cmd.arg("--socket")
        .arg(&w.bob.socket)
        .args(["--json", "get", "alice:rel/f"])
        .arg(&dest)
        .args(["--from", from]);
    let t0 = Instant::now();
    let out = cmd.output().context("run p2pctl get")?;
    let secs = t0.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "get --from {from} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let got = dest.join("f");
    check_same(&got, &w.file)?;
    std::fs::remove_file(&got).context("remove the download")?;
    let line = poll(DEADLINE, Duration::from_millis(20), || {
        let lines = done_lines(&w.bob);
        lines
            .get(before)
            .cloned()
            .ok_or_else(|| "no `multi-source get done` line yet".to_owned())
    });
    let field = |k: &str| field(&line, k).unwrap_or(0);
    let run = Run {
        secs,
        took_ms: field("took_ms"),
        endgame_ms: field("endgame_ms"),
        wasted: field("wasted"),
    };
    eprintln!("get --from {from}: {secs:.2} s, {line}");
    Ok(run)
}

/// bob's activity log lines for finished multi-source gets.
fn done_lines(bob: &P2pd) -> Vec<String> {
    bob.activity_log()
        .into_iter()
        .filter(|l| l.contains("multi-source get done"))
        .collect()
}

/// The number after `key=` (or `"key":`) in a log line.
fn field(line: &str, key: &str) -> Option<u64> {
    for pat in [format!("{key}="), format!("\"{key}\":")] {
        if let Some(at) = line.find(&pat) {
            let rest = &line[at + pat.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            return digits.parse().ok();
        }
    }
    None
}

/// Fails unless the files at `a` and `b` hash alike.
fn check_same(a: &Path, b: &Path) -> anyhow::Result<()> {
    let hash = |p: &Path| -> anyhow::Result<blake3::Hash> {
        let mut h = blake3::Hasher::new();
        let mut f = std::fs::File::open(p).with_context(|| format!("open {}", p.display()))?;
        std::io::copy(&mut f, &mut h).with_context(|| format!("read {}", p.display()))?;
        Ok(h.finalize())
    };
    if hash(a)? != hash(b)? {
        bail!("{} differs from the seeders' file", a.display());
    }
    Ok(())
}
