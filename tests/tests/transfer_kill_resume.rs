//! SIGKILL at about half of a large file, between two real daemons, and what it costs: a
//! 96 MiB transfer runs in a network namespace whose loopback is capped at 256 Mbit/s (so it
//! takes seconds and progress reports come every few MiB); when bob has reported more than
//! half, the receiver (bob) or, in the other test, the sender (alice) is SIGKILLed and
//! started again. The transfer completes by itself, the file matches byte for byte, and the
//! daemon that stayed up shows in its activity log, per link session, where the session
//! started and how many bytes it moved: the bytes moved twice (sent again, or received
//! again) are what the sessions moved beyond the file's size, and must stay under a quarter
//! of it. A killed receiver resumes from what its part file holds (the page cache survives a
//! SIGKILL; the part is hashed against the chunk values before it is trusted), so only what
//! was in flight comes again: the third test holds it under a tenth of the file.

use std::time::Instant;

use p2p_tests::chat;
use p2p_tests::sys::NetNs;
use p2p_tests::transfer::{entries, send_until_progress, sigkill, wait_arrived, write_pattern};
use p2p_tests::{DEADLINE, P2pd, TestNet};

const MIB: u64 = 1 << 20;
const SIZE: u64 = 96 * MIB;
/// The kill comes once bob reports more than this.
const KILL_AFTER: u64 = SIZE / 2;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Victim {
    Receiver,
    Sender,
}

/// One link session as the activity log records it when the session ends.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Session {
    /// Where it started: bytes already verified at the receiver.
    from: u64,
    /// Bytes it moved.
    bytes: u64,
}

/// The number in field `key` of an activity-log line (one JSON object).
fn field(line: &str, key: &str) -> Option<u64> {
    let record: serde_json::Value = serde_json::from_str(line).ok()?;
    record.get(key)?.as_u64()
}

/// The ended sessions of transfer `id` in `node`'s activity log, oldest first. Call it once
/// the transfer is done at both ends: its last session has then ended (the log is written by
/// a background thread, so this waits for the line of the session that reached the end).
fn sessions(node: &P2pd, id: &str) -> Vec<Session> {
    let tag = format!(r#""id":"{id}""#);
    let parse = |l: &str| {
        Some(Session {
            from: field(l, "from")?,
            bytes: field(l, "bytes")?,
        })
        .filter(|_| l.contains("session-end") && l.contains(&tag))
    };
    node.wait_activity(
        "ending the session that completed the file",
        1,
        DEADLINE,
        |l| parse(l).is_some_and(|s| s.from + s.bytes == SIZE),
    );
    let log = node.activity_log();
    for l in log.iter().filter(|l| l.contains(&tag)) {
        eprintln!("{}: {l}", node.name);
    }
    log.iter().filter_map(|l| parse(l)).collect()
}

/// Kills `victim` at half, and checks the bytes moved again stay at most `most_again`.
fn kill_at_half_and_resume(victim: Victim, most_again: u64) {
    let ns = NetNs::rate_limited(256);
    let net = TestNet::in_netns(&ns);
    let mut p = chat::pair(&net);
    let file = net.unique_dir("src").join("disk.img");
    let data = write_pattern(&file, SIZE as usize, 96);
    let started = Instant::now();
    let (id, at) = send_until_progress(&p.alice, &p.bob, &file, KILL_AFTER);
    let dl = p.bob.download_dir().to_owned();
    let killed: &mut P2pd = match victim {
        Victim::Receiver => &mut p.bob,
        Victim::Sender => &mut p.alice,
    };
    sigkill(killed);
    let killed_after = started.elapsed();
    assert!(
        !entries(&dl).iter().any(|e| e == "disk.img"),
        "the file was complete before the kill: {:?}",
        entries(&dl)
    );
    killed.restart();

    wait_arrived(&p.alice, &p.bob, &id, "disk.img", &data);

    let survivor = match victim {
        Victim::Receiver => &p.alice,
        Victim::Sender => &p.bob,
    };
    let sessions = sessions(survivor, &id);
    assert!(
        sessions.len() >= 2,
        "the kill did not interrupt a session: {sessions:?}"
    );
    assert_eq!(sessions[0].from, 0, "{sessions:?}");
    let moved: u64 = sessions.iter().map(|s| s.bytes).sum();
    let again = moved.saturating_sub(SIZE);
    eprintln!(
        "{victim:?} killed at {at} bytes at bob ({killed_after:?} in); {}'s \
         sessions: {sessions:?}; {again} bytes ({:.1}% of the file) moved again; done after \
         {:?}",
        survivor.name,
        again as f64 * 100.0 / SIZE as f64,
        started.elapsed()
    );
    let resumed = sessions[sessions.len() - 1];
    assert!(
        resumed.from > 0,
        "the last session started from scratch: {sessions:?}"
    );
    assert!(
        again <= most_again,
        "{again} bytes moved again, over {most_again} of {SIZE}: {sessions:?}"
    );
}

#[test]
fn a_receiver_killed_at_half_resumes_and_little_is_sent_again() {
    kill_at_half_and_resume(Victim::Receiver, SIZE / 4);
}

#[test]
fn a_sender_killed_at_half_resumes_and_little_is_received_again() {
    kill_at_half_and_resume(Victim::Sender, SIZE / 4);
}

#[test]
fn a_killed_receiver_keeps_what_it_wrote_without_syncing_it() {
    kill_at_half_and_resume(Victim::Receiver, SIZE / 10);
}
