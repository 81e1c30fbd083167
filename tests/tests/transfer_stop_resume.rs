//! A daemon stopped the ordinary way (SIGTERM) in the middle of a transfer: stopping is not
//! cancelling. The loopback is rate-limited so the stop lands mid-file; once the stopped
//! daemon is started again the transfer resumes by itself and the file arrives whole, with
//! no part left, whichever side was stopped.

use p2p_tests::chat;
use p2p_tests::sys::NetNs;
use p2p_tests::transfer::{send_until_progress, wait_arrived, write_pattern};
use p2p_tests::{P2pd, TestNet};

const MIB: u64 = 1 << 20;
const SIZE: u64 = 48 * MIB;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Victim {
    Receiver,
    Sender,
}

fn stop_mid_transfer_and_resume(victim: Victim) {
    let ns = NetNs::rate_limited(256);
    let net = TestNet::in_netns(&ns);
    let mut p = chat::pair(&net);
    let file = net.unique_dir("src").join("disk.img");
    let data = write_pattern(&file, SIZE as usize, 7);
    let (id, _) = send_until_progress(&p.alice, &p.bob, &file, SIZE / 4);
    let stopped: &mut P2pd = match victim {
        Victim::Receiver => &mut p.bob,
        Victim::Sender => &mut p.alice,
    };
    let status = stopped.stop();
    assert!(
        status.success(),
        "{victim:?} did not stop cleanly: {status}"
    );
    stopped.restart();

    wait_arrived(&p.alice, &p.bob, &id, "disk.img", &data);
}

#[test]
fn a_receiver_stopped_mid_transfer_resumes_after_restart() {
    stop_mid_transfer_and_resume(Victim::Receiver);
}

#[test]
fn a_sender_stopped_mid_transfer_resumes_after_restart() {
    stop_mid_transfer_and_resume(Victim::Sender);
}
