//! A full disk at the receiver, on a real tmpfs (the tests run as root): an offer larger than
//! the free space (less a 64 MiB reserve) is refused when accepted, before anything is
//! written; a disk that fills while a transfer runs (bob is paused at his first progress
//! report, the tmpfs filled to the last byte, bob resumed) fails the transfer with an error
//! that says the disk is full, at bob, in alice's `p2pctl send` (exit 1) and in both
//! activity logs. Either way no file appears under its final name and the `.part` file is
//! removed (a failed transfer does not resume), and bob keeps serving: once space is freed a
//! new transfer into the same directory arrives intact.

use std::path::Path;
use std::process::ExitStatus;

use p2p_tests::chat::{self, Pair};
use p2p_tests::sys::{NetNs, Tmpfs};
use p2p_tests::transfer::{
    TRANSFER_DEADLINE, accept, assert_content, entries, id_of, progress, send_files, wait_no_parts,
    wait_offer, wait_state, write_pattern,
};
use p2p_tests::{DEADLINE, P2pd, Proc, TestNet};

const MIB: usize = 1 << 20;

/// `p2pctl send FILE bob` on alice, running until it exits.
fn p2pctl_send(net: &TestNet, alice: &P2pd, file: &Path) -> Proc {
    let socket = alice.socket.to_str().expect("UTF-8 path");
    let file = file.to_str().expect("UTF-8 path");
    net.spawn(
        "p2pctl send",
        "p2pctl",
        &["--socket", socket, "send", file, "bob"],
    )
}

/// Waits for `p2pctl send` to fail: exit 1 with `needle` in its error message.
#[track_caller]
fn assert_send_failed(send: &mut Proc, needle: &str) -> String {
    let line = send.wait_stderr_line(needle, TRANSFER_DEADLINE);
    let status: ExitStatus = send.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(1), "p2pctl send: {status}; said {line}");
    line
}

/// The transfer failed at both ends with an error holding `needle` (alice's error is bob's
/// reason), which both activity logs record.
#[track_caller]
fn assert_failed_both_ways(p: &Pair, id: &str, needle: &str) -> String {
    let at_bob = wait_state(&p.bob, id, "failed", TRANSFER_DEADLINE);
    let at_alice = wait_state(&p.alice, id, "failed", DEADLINE);
    let error = at_bob["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.contains(needle), "bob's error: {at_bob:#}");
    assert_eq!(
        at_alice["error"],
        error.as_str(),
        "alice's error: {at_alice:#}"
    );
    for node in [&p.alice, &p.bob] {
        node.wait_activity("recording the failure", 1, DEADLINE, |l| {
            l.contains(id) && l.contains("Failed") && l.contains(needle)
        });
    }
    error
}

/// alice sends a small file, bob accepts it into `dir`, it arrives intact.
fn small_transfer_into(net: &TestNet, p: &Pair, dir: &Path, seed: u64) {
    let file = net.unique_dir("src").join(format!("after-{seed}.bin"));
    let data = write_pattern(&file, 2 * MIB + 17, seed);
    let id = id_of(&send_files(&p.alice, "bob", &file));
    wait_offer(&p.bob, DEADLINE);
    accept(&p.bob, &id, Some(dir));
    wait_state(&p.bob, &id, "done", TRANSFER_DEADLINE);
    wait_state(&p.alice, &id, "done", DEADLINE);
    assert_content(&dir.join(format!("after-{seed}.bin")), &data);
}

#[test]
fn an_offer_larger_than_the_free_space_is_refused_before_anything_is_written() {
    let net = TestNet::new();
    let small = Tmpfs::mount(&net.unique_dir("small"), 8);
    let p = chat::pair(&net);
    let file = net.unique_dir("src").join("big.bin");
    write_pattern(&file, 12 * MIB, 1);

    let mut send = p2pctl_send(&net, &p.alice, &file);
    let id = id_of(&wait_offer(&p.bob, DEADLINE));
    accept(&p.bob, &id, Some(small.path()));
    let said = assert_send_failed(&mut send, "not enough free space");
    let error = assert_failed_both_ways(&p, &id, "not enough free space");
    assert!(
        error.contains("64 MiB reserve") && error.contains(&(12 * MIB).to_string()),
        "{error}"
    );
    assert_eq!(
        entries(small.path()),
        Vec::<String>::new(),
        "written anyway"
    );
    eprintln!("p2pctl send said: {said}");

    small_transfer_into(&net, &p, p.bob.download_dir(), 2);
}

#[test]
fn a_disk_that_fills_during_receive_fails_the_transfer_cleanly_and_bob_runs_on() {
    // 64 Mbit/s: the 24 MiB take seconds, so bob is caught early on.
    let ns = NetNs::rate_limited(64);
    let net = TestNet::in_netns(&ns);
    // 24 MiB plus the 64 MiB reserve fit in 96 MiB, so the offer passes the free-space check.
    let disk = Tmpfs::mount(&net.unique_dir("disk"), 96);
    let mut p = chat::pair(&net);
    let file = net.unique_dir("src").join("video.bin");
    write_pattern(&file, 24 * MIB, 3);

    let mut events = p.bob.rpc();
    events.subscribe();
    let mut send = p2pctl_send(&net, &p.alice, &file);
    let id = id_of(&wait_offer(&p.bob, DEADLINE));
    accept(&p.bob, &id, Some(disk.path()));
    let at =
        events.wait_event("bob's first progress", progress(&id, 0), TRANSFER_DEADLINE)["transfer"]
            ["done_bytes"]
            .as_u64()
            .expect("done_bytes");
    drop(events);
    p.bob.proc.signal("STOP");
    let filled = disk.fill("filler");
    p.bob.proc.signal("CONT");

    let said = assert_send_failed(&mut send, "the disk is full");
    let error = assert_failed_both_ways(&p, &id, "the disk is full");
    // The part file is removed (a failed transfer is over; it does not resume), and nothing
    // reached a final name.
    wait_no_parts(disk.path(), DEADLINE);
    assert_eq!(entries(disk.path()), ["filler"]);
    assert!(p.bob.proc.is_running(), "bob died");
    eprintln!(
        "bob paused at {at} bytes; filler {filled} bytes; bob's error: {error}; \
         p2pctl send said: {said}"
    );

    std::fs::remove_file(disk.path().join("filler")).expect("free the space");
    small_transfer_into(&net, &p, disk.path(), 4);
    chat::send(&p.bob, "alice", "still here");
    chat::wait_delivered(&p.bob, "alice", 1, DEADLINE);
}
