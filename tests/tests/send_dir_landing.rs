//! A directory sent to a receiver that already has one of that name lands beside it as
//! `dir (1)`, never merged into it: the same directory sent twice arrives as `dir` and
//! `dir (1)` with identical content, and a receiver SIGKILLed in the middle of the second
//! one resumes into the same `dir (1)` (chosen when it accepted, kept with the transfer),
//! not into a `dir (2)`, and the empty directory it carries is made there when the resumed
//! transfer finishes.

use std::path::Path;

use p2p_tests::chat;
use p2p_tests::sys::NetNs;
use p2p_tests::transfer::{
    TRANSFER_DEADLINE, accept, assert_content, entries, id_of, send_files, send_until_progress,
    sigkill, wait_no_parts, wait_offer, wait_state, write_pattern,
};
use p2p_tests::{DEADLINE, P2pd, TestNet};

const MIB: usize = 1 << 20;

/// alice sends `dir` to bob, bob accepts into his download directory; waits until both
/// ends have it done.
fn send_and_accept(alice: &P2pd, bob: &P2pd, dir: &Path) {
    let id = id_of(&send_files(alice, &bob.name, dir));
    wait_offer(bob, DEADLINE);
    accept(bob, &id, None);
    for p in [bob, alice] {
        wait_state(p, &id, "done", TRANSFER_DEADLINE);
    }
}

#[test]
fn the_same_directory_sent_twice_lands_as_dir_and_dir_1() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let src = net.unique_dir("src").join("album");
    let a = write_pattern(&src.join("a.jpg"), 300_000, 1);
    let b = write_pattern(&src.join("sub/b.raw"), 2 * MIB, 2);
    send_and_accept(&p.alice, &p.bob, &src);
    send_and_accept(&p.alice, &p.bob, &src);
    let dl = p.bob.download_dir();
    wait_no_parts(dl, DEADLINE);
    assert_eq!(
        entries(dl),
        [
            "album (1)/",
            "album (1)/a.jpg",
            "album (1)/sub/",
            "album (1)/sub/b.raw",
            "album/",
            "album/a.jpg",
            "album/sub/",
            "album/sub/b.raw",
        ]
    );
    for top in ["album", "album (1)"] {
        assert_content(&dl.join(top).join("a.jpg"), &a);
        assert_content(&dl.join(top).join("sub/b.raw"), &b);
    }
}

#[test]
fn a_receiver_killed_mid_directory_resumes_into_the_same_dir_1() {
    let ns = NetNs::rate_limited(256);
    let net = TestNet::in_netns(&ns);
    let mut p = chat::pair(&net);
    let src = net.unique_dir("src").join("backup");
    let small = write_pattern(&src.join("notes.txt"), 1000, 3);
    send_and_accept(&p.alice, &p.bob, &src);

    let big = write_pattern(&src.join("disk.img"), 64 * MIB, 4);
    std::fs::create_dir_all(src.join("empty/inner")).expect("mkdir");
    let (id, _) = send_until_progress(&p.alice, &p.bob, &src, 32 * MIB as u64);
    let dl = p.bob.download_dir().to_owned();
    sigkill(&mut p.bob);
    assert!(
        !dl.join("backup (1)/disk.img").exists() && !dl.join("backup (1)/empty").exists(),
        "the transfer was complete before the kill: {:?}",
        entries(&dl)
    );
    p.bob.restart();
    for node in [&p.bob, &p.alice] {
        wait_state(node, &id, "done", TRANSFER_DEADLINE);
    }
    wait_no_parts(&dl, DEADLINE);
    assert_eq!(
        entries(&dl),
        [
            "backup (1)/",
            "backup (1)/disk.img",
            "backup (1)/empty/",
            "backup (1)/empty/inner/",
            "backup (1)/notes.txt",
            "backup/",
            "backup/notes.txt",
        ]
    );
    assert_content(&dl.join("backup/notes.txt"), &small);
    assert_content(&dl.join("backup (1)/notes.txt"), &small);
    assert_content(&dl.join("backup (1)/disk.img"), &big);
}
