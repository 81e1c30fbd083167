//! A daemon that goes away in the middle of a transfer and comes back: the transfer resumes
//! by itself and the file arrives whole, once, with no part left. The loopback is
//! rate-limited so the interruption lands mid-file.
//!
//! - Stopped the ordinary way (SIGTERM), either side: stopping is not cancelling.
//! - The receiver killed between giving a file its final name and recording it as done. The
//!   receiver links the whole, verified part to its final name, records the file as done, and
//!   only then removes the part; a kill between the link and the record leaves the part and
//!   the final name on one inode while the store still says "not done". The test makes that
//!   state for real: bob is SIGKILLed mid-file, the rest of the file is put into his part and
//!   the part is hard-linked to its final name, as the receiver's own finish does. When alice
//!   re-offers, bob must take the file as received: no `disk (1).img` copy.

use std::fs;
use std::path::Path;

use p2p_tests::chat::{self, Pair};
use p2p_tests::sys::NetNs;
use p2p_tests::transfer::{entries, send_until_progress, sigkill, wait_arrived, write_pattern};
use p2p_tests::{P2pd, TestNet};

const MIB: u64 = 1 << 20;
const SIZE: u64 = 48 * MIB;

/// Starts a transfer of `SIZE` bytes from alice to bob in a rate-limited network, lets
/// `interrupt` act once bob holds a quarter of it (given the pair, the transfer id and the
/// data), then waits until the file has arrived whole at bob.
fn interrupt_mid_transfer(seed: u64, interrupt: impl FnOnce(&mut Pair, &str, &[u8])) {
    let ns = NetNs::rate_limited(256);
    let net = TestNet::in_netns(&ns);
    let mut p = chat::pair(&net);
    let file = net.unique_dir("src").join("disk.img");
    let data = write_pattern(&file, SIZE as usize, seed);
    let (id, _) = send_until_progress(&p.alice, &p.bob, &file, SIZE / 4);
    interrupt(&mut p, &id, &data);
    wait_arrived(&p.alice, &p.bob, &id, "disk.img", &data);
}

/// Stops `p` with SIGTERM, checks it exited cleanly, and starts it again.
fn stop_and_restart(p: &mut P2pd) {
    let status = p.stop();
    assert!(
        status.success(),
        "{} did not stop cleanly: {status}",
        p.name
    );
    p.restart();
}

#[test]
fn a_receiver_stopped_mid_transfer_resumes_after_restart() {
    interrupt_mid_transfer(7, |p, _, _| stop_and_restart(&mut p.bob));
}

#[test]
fn a_sender_stopped_mid_transfer_resumes_after_restart() {
    interrupt_mid_transfer(8, |p, _, _| stop_and_restart(&mut p.alice));
}

#[test]
fn a_receiver_killed_between_naming_a_file_and_recording_it_keeps_one_copy() {
    interrupt_mid_transfer(48, |p, id, data| {
        sigkill(&mut p.bob);
        let dl = p.bob.download_dir().to_owned();
        let part_name = format!(".disk.img.{id}.part");
        assert_eq!(
            entries(&dl),
            [part_name.as_str()],
            "bob's destination at the kill"
        );
        link_as_finished(&dl.join(part_name), &dl.join("disk.img"), data);
        p.bob.restart();
    });
}

/// What the receiver's finish leaves when it dies right after the link: the part, whole
/// and synced, and the final name on the same file.
fn link_as_finished(part: &Path, final_name: &Path, data: &[u8]) {
    fs::write(part, data).expect("complete the part");
    fs::File::open(part)
        .and_then(|f| f.sync_all())
        .expect("sync the part");
    fs::hard_link(part, final_name).expect("link the part to its final name");
}
