//! A receiver that dies after a received file got its final name but before it recorded the
//! file as done. The receiver links the whole, verified part to its final name, records the
//! file as done, and only then removes the part; a kill between the link and the record
//! leaves the part and the final name on one inode while the store still says "not done".
//!
//! The test makes that state for real: bob is SIGKILLed mid-transfer (the loopback is
//! rate-limited so the kill lands mid-file), the rest of the file is put into his part file
//! and the part is hard-linked to its final name, as the receiver's own finish does. When
//! bob is back and alice re-offers, bob must recognise the file as received: the transfer
//! ends done with the one file, no `disk (1).img` copy and no part left.

use std::fs;

use p2p_tests::TestNet;
use p2p_tests::chat;
use p2p_tests::sys::NetNs;
use p2p_tests::transfer::{entries, send_until_progress, sigkill, wait_arrived, write_pattern};

const MIB: u64 = 1 << 20;
const SIZE: u64 = 48 * MIB;

#[test]
fn a_receiver_killed_between_naming_a_file_and_recording_it_keeps_one_copy() {
    let ns = NetNs::rate_limited(256);
    let net = TestNet::in_netns(&ns);
    let mut p = chat::pair(&net);
    let file = net.unique_dir("src").join("disk.img");
    let data = write_pattern(&file, SIZE as usize, 48);
    let (id, _) = send_until_progress(&p.alice, &p.bob, &file, SIZE / 4);
    sigkill(&mut p.bob);
    let dl = p.bob.download_dir().to_owned();
    let part = dl.join(format!(".disk.img.{id}.part"));
    assert_eq!(
        entries(&dl),
        [format!(".disk.img.{id}.part")],
        "bob's destination at the kill"
    );
    // What the receiver's finish leaves when it dies right after the link.
    fs::write(&part, &data).expect("complete the part");
    fs::File::open(&part)
        .and_then(|f| f.sync_all())
        .expect("sync the part");
    fs::hard_link(&part, dl.join("disk.img")).expect("link the part to its final name");
    p.bob.restart();

    wait_arrived(&p.alice, &p.bob, &id, "disk.img", &data);
}
