//! Resume after SIGKILL: a 40 MiB transfer between two daemons loses its receiver, or its
//! sender, to SIGKILL at the receiver's first progress report; once the killed daemon is
//! started again the transfer completes by itself (the sender re-offers, the receiver answers
//! with what it holds verified), the file arrives byte for byte, and no part file is left.
//! Where the resumed transfer started is printed. Between debug builds on one machine 40 MiB
//! takes a few hundred milliseconds, less than two progress reports apart, so a hand-driven
//! sender paces the last test: bob, killed after more than 16 chunks (the interval at which
//! it records that a part is worth keeping), asks on the next offer for the rest only.

use std::time::{Duration, Instant};

use p2p_tests::chat::{self, Pair};
use p2p_tests::transfer::{
    TRANSFER_DEADLINE, accept, assert_content, entries, progress, send_until_progress, sigkill,
    wait_arrived, wait_no_parts, wait_state, write_pattern,
};
use p2p_tests::{DEADLINE, P2pd, RpcClient, TestNet};

const MIB: u64 = 1 << 20;
const SIZE: u64 = 40 * MIB;
/// The receiver records its progress (not synced) every this many chunks.
const SYNC_CHUNKS: u64 = 16;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Victim {
    Receiver,
    Sender,
}

/// The first `transfer_progress` of `id` on `events`, or `None` if the transfer ends (or
/// nothing comes) first.
fn first_progress(events: &mut RpcClient, id: &str, timeout: Duration) -> Option<u64> {
    let deadline = Instant::now() + timeout;
    loop {
        let ev = events.next_event(deadline.saturating_duration_since(Instant::now()))?;
        if ev["transfer"]["id"] != id {
            continue;
        }
        match ev["type"].as_str() {
            Some("transfer_progress") => return ev["transfer"]["done_bytes"].as_u64(),
            Some("transfer_updated") if ev["transfer"]["state"] != "running" => return None,
            _ => {}
        }
    }
}

/// Sends 40 MiB from alice to bob, SIGKILLs `victim` at bob's first progress report
/// (some data verified), starts it again, and checks the transfer completes by
/// itself. Prints the bytes at bob when killed and the restarted daemon's first progress.
fn resume_after_kill(victim: Victim) {
    let net = TestNet::new();
    let Pair {
        mut alice,
        mut bob,
        tracker: _tracker,
    } = chat::pair(&net);
    let file = net.unique_dir("src").join("disk.img");
    let data = write_pattern(&file, SIZE as usize, 40);
    let started = Instant::now();
    let (id, at) = send_until_progress(&alice, &bob, &file, 0);
    assert!(at < SIZE, "the transfer ended before the kill");
    sigkill(match victim {
        Victim::Receiver => &mut bob,
        Victim::Sender => &mut alice,
    });
    let killed_at = started.elapsed();
    let dl = bob.download_dir().to_owned();
    let parts_after_kill = entries(&dl);
    assert!(
        !parts_after_kill.iter().any(|e| e == "disk.img"),
        "the file was complete before the kill: {parts_after_kill:?}"
    );

    let restarted: &mut P2pd = match victim {
        Victim::Receiver => &mut bob,
        Victim::Sender => &mut alice,
    };
    restarted.restart();
    let mut ev = restarted.rpc();
    ev.subscribe();
    let resumed = first_progress(&mut ev, &id, TRANSFER_DEADLINE);

    wait_arrived(&alice, &bob, &id, "disk.img", &data);
    eprintln!(
        "{victim:?} killed at {at} bytes at bob ({killed_at:?} in; then in the downloads: \
         {parts_after_kill:?}); first progress of the restarted {victim:?}: {resumed:?} bytes; \
         done after {:?}",
        started.elapsed()
    );
}

#[test]
fn a_receiver_killed_at_its_first_progress_resumes_after_restart() {
    resume_after_kill(Victim::Receiver);
}

#[test]
fn a_sender_killed_at_the_receivers_first_progress_resumes_after_restart() {
    resume_after_kill(Victim::Sender);
}

/// The receiver's side of resume, exactly: a hand-driven sender sends chunks until bob
/// reports more than 16 chunks verified, bob is SIGKILLed and started again, and the same
/// offer made again is accepted with `verified_chunks` at least what bob reported before the
/// kill (his part file, unsynced but in the page cache, is checked against the values and
/// kept, not only the 16 chunks recorded) and at most what was sent; the sender sends only
/// the rest, and the file arrives whole.
#[tokio::test]
async fn a_killed_receiver_asks_only_for_what_it_had_not_verified() {
    use p2p_tests::raw;
    use p2p_tests::transfer::{BulkSender, offer, pattern, random_id, register_raw, wait_transfer};
    use proto::transfer::{CHUNK, TransferFrame};

    let net = TestNet::new();
    let Pair {
        alice: _alice,
        mut bob,
        tracker,
    } = chat::pair(&net);
    let key = raw::random_key();
    let _registration = register_raw(&tracker, &key, "mallory").await;
    bob.wait_peer("mallory", true, DEADLINE);
    let chunks = 24u64;
    let data = pattern((chunks * CHUNK) as usize - 7, 41);
    let hash = *blake3::hash(&data).as_bytes();
    let chunk =
        |i: u64| &data[(i * CHUNK) as usize..((i + 1) * CHUNK).min(data.len() as u64) as usize];

    let mut s = BulkSender::connect(bob.listen, &key, "mallory")
        .await
        .expect("bulk link to bob");
    let id = random_id();
    let ids = id.to_string();
    let the_offer = offer(id, "resumed.bin", data.len() as u64, hash);
    s.send(&the_offer).await.expect("offer");
    wait_transfer(&bob, &ids, "offered", DEADLINE, |t| t["state"] == "offered");
    let mut events = bob.rpc();
    events.subscribe();
    accept(&bob, &ids, None);
    match s.recv(DEADLINE).await.expect("bob's answer") {
        Some(TransferFrame::Accept { .. }) => {}
        other => panic!("expected Accept, got {other:?}"),
    }
    // Send the first 17 chunks, then one more at a time until bob reports more than 16
    // chunks verified (progress events come at most every 250 ms, so a chunk sent after a
    // quiet spell always brings one).
    let mut sent = 0u64;
    s.send_values(id, 0, &data).await.expect("values");
    let at = loop {
        let upto = if sent == 0 { SYNC_CHUNKS + 1 } else { sent + 1 };
        assert!(upto < chunks, "bob reported no progress past 16 chunks");
        while sent < upto {
            s.send_chunk(id, 0, sent, chunk(sent)).await.expect("chunk");
            sent += 1;
        }
        if let Some(ev) = wait_progress(
            &mut events,
            &ids,
            SYNC_CHUNKS * CHUNK,
            Duration::from_millis(400),
        ) {
            break ev;
        }
    };
    drop(events);
    bob.kill();
    let parts = entries(bob.download_dir());
    bob.restart();
    let t = wait_transfer(&bob, &ids, "listed after the restart", DEADLINE, |_| true);
    assert_eq!(t["state"], "running", "{t:#}");
    bob.wait_peer("mallory", true, DEADLINE);

    // The same offer again, as a sender does after a drop.
    let mut s = BulkSender::connect(bob.listen, &key, "mallory")
        .await
        .expect("bulk link to bob again");
    s.send(&the_offer).await.expect("offer again");
    let resume = match s.recv(DEADLINE).await.expect("bob's answer") {
        Some(TransferFrame::Accept { id: got, resume }) => {
            assert_eq!(got, id);
            resume
        }
        other => panic!("expected Accept, got {other:?}"),
    };
    eprintln!(
        "sent {sent} chunks; bob reported {at} bytes; killed (downloads then: {parts:?}); \
         after the restart bob asks to resume from {resume:?}"
    );
    let from = match resume.as_slice() {
        [r] if r.file == 0 => r.verified_chunks,
        other => panic!("one resume entry for file 0 expected: {other:?}"),
    };
    assert!(
        at / CHUNK <= from && from <= sent,
        "bob reported {at} bytes verified and was sent {sent} chunks, but resumes from {from}"
    );
    s.send_values(id, 0, &data).await.expect("values");
    for i in from..chunks {
        s.send_chunk(id, 0, i, chunk(i)).await.expect("chunk");
    }
    s.send(&TransferFrame::FileDone { id, file: 0 })
        .await
        .expect("FileDone");
    s.send(&TransferFrame::Done { id }).await.expect("Done");
    match s.recv(DEADLINE).await.expect("bob's answer") {
        Some(TransferFrame::Done { id: got }) => assert_eq!(got, id),
        other => panic!("expected Done, got {other:?}"),
    }
    let t = wait_state(&bob, &ids, "done", DEADLINE);
    assert_eq!(t["done_bytes"], data.len(), "{t:#}");
    let dl = bob.download_dir();
    assert_content(&dl.join("resumed.bin"), &data);
    wait_no_parts(dl, DEADLINE);
    assert_eq!(entries(dl), ["resumed.bin"]);
}

/// The done_bytes of the first `transfer_progress` of `id` above `min` within `timeout`.
fn wait_progress(events: &mut RpcClient, id: &str, min: u64, timeout: Duration) -> Option<u64> {
    let deadline = Instant::now() + timeout;
    loop {
        let ev = events.next_event(deadline.saturating_duration_since(Instant::now()))?;
        if progress(id, min)(&ev) {
            return ev["transfer"]["done_bytes"].as_u64();
        }
    }
}
