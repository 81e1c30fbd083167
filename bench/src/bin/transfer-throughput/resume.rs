//! The resume run: one transfer of the payload, bob SIGKILLed once he reports half of it
//! verified, started again on the same state, and the bytes alice's link sessions moved
//! beyond the file's size (what was sent again) read from her activity log.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use bench::rpc::Rpc;
use proto::api::Call;
use serde_json::Value;

use crate::daemons::Cluster;
use crate::events::Events;

/// What the kill at half cost.
#[derive(Debug, Clone)]
pub struct Resume {
    /// The file's size.
    pub bytes: u64,
    /// bob's last reported verified bytes before the kill.
    pub killed_at: u64,
    /// alice's link sessions of the transfer, oldest first: (verified bytes at the receiver
    /// when the session started, bytes it moved).
    pub sessions: Vec<(u64, u64)>,
    /// Bytes the sessions moved beyond the file's size: sent again after the kill.
    pub again: u64,
    /// SIGKILL -> bob started again (listening, control socket up).
    pub restart: Duration,
    /// bob started again -> alice `done`.
    pub rest: Duration,
}

/// Sends `tree` (holding one file of `size` bytes), accepted into `dest`, kills bob at half
/// and lets the transfer finish after his restart. `alice_state` is alice's state
/// directory (her activity log).
pub fn kill_at_half(
    cluster: &mut Cluster,
    events: &mut Events,
    tree: &Path,
    size: u64,
    dest: &Path,
    alice_state: &Path,
) -> anyhow::Result<Resume> {
    let mut alice = Rpc::connect(&cluster.alice.socket)?;
    let mut bob = Rpc::connect(&cluster.bob.socket)?;
    events.drain()?;
    let info = alice.call(Call::SendFiles {
        peer: "bob".into(),
        path: tree.to_str().context("payload path not UTF-8")?.into(),
        paths: Vec::new(),
    })?;
    let id = info["id"]
        .as_str()
        .with_context(|| format!("no transfer id in {info}"))?
        .to_string();
    let patience = Duration::from_secs(120 + size / 20_000_000);
    events.wait_until("the offer at bob", patience, |s| {
        s.offered_in.contains_key(&id)
    })?;
    bob.call(Call::Accept {
        id: id.clone(),
        to: Some(dest.to_str().context("destination not UTF-8")?.into()),
        mkdir: true,
    })?;
    drop(bob);
    let half = size / 2;
    let verified = |s: &crate::events::Seen| {
        s.progress_in
            .iter()
            .filter(|(_, i, _)| *i == id)
            .map(|(_, _, b)| *b)
            .max()
            .unwrap_or(0)
    };
    events.wait_until("half the file verified at bob", patience, |s| {
        verified(s) >= half
    })?;
    let killed_at = verified(&events.seen);
    let killed = Instant::now();
    cluster.kill_and_restart_bob()?;
    let restarted = Instant::now();
    events.wait_until("alice done after bob's restart", patience, |s| {
        s.done_out.contains_key(&id)
    })?;
    let rest = restarted.elapsed();
    let sessions = sessions(alice_state, &id, size, patience)?;
    let moved: u64 = sessions.iter().map(|s| s.1).sum();
    Ok(Resume {
        bytes: size,
        killed_at,
        again: moved.saturating_sub(size),
        sessions,
        restart: restarted - killed,
        rest,
    })
}

/// The ended link sessions of transfer `id` in the activity log under `state`, once the
/// one that reached the end (`from + bytes == size`) is written (a background thread
/// writes the log, so this polls the files until `patience` has passed).
fn sessions(
    state: &Path,
    id: &str,
    size: u64,
    patience: Duration,
) -> anyhow::Result<Vec<(u64, u64)>> {
    let deadline = Instant::now() + patience;
    loop {
        let found = read_sessions(state, id)?;
        if found.iter().any(|(from, bytes)| from + bytes == size) {
            return Ok(found);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no session of {id} reaching the end in alice's activity log: {found:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `(from, bytes)` of each `session-end` record of transfer `id` in the `activity.log.*`
/// files under `state`, oldest first.
fn read_sessions(state: &Path, id: &str) -> anyhow::Result<Vec<(u64, u64)>> {
    let mut files: Vec<_> = std::fs::read_dir(state)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("activity.log."))
        })
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        for line in std::fs::read_to_string(&f)?.lines() {
            let Ok(rec) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if rec["op"] == "session-end" && rec["id"] == id {
                out.push((
                    rec["from"].as_u64().unwrap_or(0),
                    rec["bytes"].as_u64().unwrap_or(0),
                ));
            }
        }
    }
    Ok(out)
}
