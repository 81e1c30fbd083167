//! One large file moved three ways in alternation, after a warm-up: bob's `get` of it from
//! alice's share, alice's `send` of it to bob (who auto-accepts), and the fsync'd TCP pipe
//! ([`bench::pipe`]). Each transfer is timed from its call being written until bob's
//! `transfers` shows it done (the file verified, synced and under its name at bob), polled
//! every [`POLL_EVERY`]; every copy is checked (size and BLAKE3) and removed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bench::payload::{sync_all_disks, verify, write_random};
use bench::pipe::tcp_pipe;
use bench::rpc::Rpc;
use proto::api::Call;
use serde_json::{Value, json};

/// How often bob's `transfers` is read while a transfer runs.
const POLL_EVERY: Duration = Duration::from_millis(10);

/// The three ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// bob's `get` from alice's share.
    Get,
    /// alice's `send` to bob.
    Send,
    /// The TCP pipe with an fsync at the end.
    Pipe,
}

/// What the runs need.
pub struct Ctx<'a> {
    /// alice's control connection.
    pub alice: &'a mut Rpc,
    /// bob's control connection.
    pub bob: &'a mut Rpc,
    /// The file (in alice's share `share`, at `name` below its root).
    pub src: &'a Path,
    /// Its size.
    pub size: u64,
    /// Its BLAKE3 hash.
    pub hash: [u8; 32],
    /// The share holding it.
    pub share: &'a str,
    /// bob's download directory (where `send` lands).
    pub downloads: &'a Path,
    /// Scratch space for the copies.
    pub scratch: &'a Path,
}

/// Rates of each way, in MB/s, in the order measured.
#[derive(Debug, Default, Clone)]
pub struct Rates {
    /// `get`.
    pub get: Vec<f64>,
    /// `send`.
    pub send: Vec<f64>,
    /// The pipe.
    pub pipe: Vec<f64>,
}

/// The median of `v` (0 for none).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_unstable_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

impl Rates {
    /// The rates and their medians as JSON.
    pub fn json(&self) -> Value {
        json!({
            "get_mb_per_s": self.get, "send_mb_per_s": self.send, "pipe_mb_per_s": self.pipe,
            "get_median": median(&self.get), "send_median": median(&self.send),
            "pipe_median": median(&self.pipe),
        })
    }
}

/// Polls bob's `transfers` until transfer `id` is done there; returns when that was seen.
fn wait_done(bob: &mut Rpc, id: &str, patience: Duration) -> anyhow::Result<Instant> {
    let started = Instant::now();
    loop {
        let list = bob.call(Call::Transfers { all: false })?;
        let t = list
            .as_array()
            .and_then(|a| a.iter().find(|t| t["id"] == id));
        match t.and_then(|t| t["state"].as_str()) {
            Some("done") => return Ok(Instant::now()),
            Some(s @ ("failed" | "cancelled" | "declined" | "expired")) => {
                bail!(
                    "transfer {id} {s} at bob: {}",
                    t.map_or(&Value::Null, |t| &t["error"])
                )
            }
            _ => {}
        }
        if started.elapsed() > patience {
            bail!("transfer {id} is not done at bob after {patience:?}");
        }
        std::thread::sleep(POLL_EVERY);
    }
}

fn id_of(info: &Value) -> anyhow::Result<String> {
    info["id"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("no transfer id in {info}"))
}

/// Checks and removes `path` (a copy of the source), then syncs so that its write-back does
/// not land in the next timing.
fn check_and_remove(ctx: &Ctx<'_>, path: &Path) -> anyhow::Result<()> {
    verify(path, ctx.size, &ctx.hash)?;
    std::fs::remove_file(path)?;
    sync_all_disks();
    Ok(())
}

/// Moves the file once `way`; returns the rate in MB/s.
fn once(ctx: &mut Ctx<'_>, way: Way, round: usize) -> anyhow::Result<f64> {
    let patience = Duration::from_secs(60 + ctx.size / 20_000_000);
    let name = ctx.src.file_name().context("no file name")?.to_owned();
    let (took, copy): (Duration, PathBuf) = match way {
        Way::Pipe => {
            let copy = ctx.scratch.join(format!("pipe-{round}.bin"));
            (tcp_pipe(ctx.src, &copy, None)?.total, copy)
        }
        Way::Send => {
            let path = ctx.src.to_str().context("source path not UTF-8")?;
            let timed = ctx.alice.timed_call(Call::SendFiles {
                peer: "bob".into(),
                path: path.into(),
                paths: Vec::new(),
            })?;
            let id = id_of(&timed.result.context("no result")?)?;
            let done = wait_done(ctx.bob, &id, patience)?;
            (done - timed.sent, ctx.downloads.join(&name))
        }
        Way::Get => {
            let dest = ctx.scratch.join(format!("get-{round}"));
            std::fs::create_dir(&dest)?;
            let timed = ctx.bob.timed_call(Call::Get {
                peer: "alice".into(),
                share: ctx.share.into(),
                path: Some(name.to_str().context("file name not UTF-8")?.into()),
                dest: Some(dest.to_str().context("scratch path not UTF-8")?.into()),
                from: Vec::new(),
            })?;
            let id = id_of(&timed.result.context("no result")?)?;
            let done = wait_done(ctx.bob, &id, patience)?;
            (done - timed.sent, dest.join(&name))
        }
    };
    check_and_remove(ctx, &copy)?;
    Ok(ctx.size as f64 / took.as_secs_f64() / 1e6)
}

/// Warms memory (a file of twice the size written and removed, then one untimed move each
/// way), then moves the file `rounds` times each way, the order turning each round.
pub fn measure(ctx: &mut Ctx<'_>, rounds: usize) -> anyhow::Result<Rates> {
    eprintln!("warm-up: writing and removing {} bytes", 2 * ctx.size);
    let warm = ctx.scratch.join("warm.bin");
    write_random(&warm, 2 * ctx.size)?;
    std::fs::remove_file(&warm)?;
    sync_all_disks();
    let ways = [Way::Get, Way::Send, Way::Pipe];
    for way in ways {
        eprintln!("warm-up: one {way:?}");
        once(ctx, way, 0)?;
    }
    let mut rates = Rates::default();
    for round in 1..=rounds {
        for k in 0..ways.len() {
            let way = ways[(round + k) % ways.len()];
            let r = once(ctx, way, round)?;
            eprintln!("round {round}: {way:?} {r:.0} MB/s");
            match way {
                Way::Get => rates.get.push(r),
                Way::Send => rates.send.push(r),
                Way::Pipe => rates.pipe.push(r),
            }
        }
    }
    Ok(rates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
