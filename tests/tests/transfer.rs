//! File transfers between two real daemons, driven through the control socket (`send_files`,
//! `accept`, `decline`, `cancel`, `trust`): a file and a directory arrive byte for byte, and
//! a symlink in the shared tree stays home; declines and cancels (pending, and mid-transfer
//! by the receiver) end the transfer on both sides and leave nothing behind; a peer trusted
//! with auto-accept needs no `accept`; a taken name gets `name (1).ext`; a symlink in the
//! destination is never written through; an offer to an offline peer waits and goes out
//! when it returns; a file swapped for a symlink or resized after the scan fails the
//! transfer naming it, and nothing of it arrives.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use p2p_tests::chat::{self, Pair};
use p2p_tests::transfer::{
    self as xfer, TRANSFER_DEADLINE, accept, assert_content, entries, id_of, offered_in,
    send_files, updated, wait_no_parts, wait_offer, wait_state, write_pattern,
};
use p2p_tests::{DEADLINE, RpcClient, TestNet};
use serde_json::Value;

const MIB: usize = 1 << 20;

/// Subscribed control connections to alice and bob, opened before anything is sent.
fn subscribe(p: &Pair) -> (RpcClient, RpcClient) {
    let mut a = p.alice.rpc();
    a.subscribe();
    let mut b = p.bob.rpc();
    b.subscribe();
    (a, b)
}

/// Waits on `events` until transfer `id` ends, and returns the end (`transfer_updated`) and
/// the last `transfer_progress` of `id` before it.
#[track_caller]
fn until_end(events: &mut RpcClient, id: &str, timeout: Duration) -> (Value, Option<Value>) {
    let deadline = Instant::now() + timeout;
    let mut last_progress = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(ev) = events.next_event(left) else {
            panic!("transfer {id} did not end within {timeout:?}; last progress {last_progress:#?}")
        };
        if ev["transfer"]["id"] != id {
            continue;
        }
        if ev["type"] == "transfer_progress" {
            last_progress = Some(ev["transfer"].clone());
        } else if xfer::ended(id)(&ev) {
            return (ev["transfer"].clone(), last_progress);
        }
    }
}

/// The incoming offer of `id` on bob's event stream.
#[track_caller]
fn offer_event(bob: &mut RpcClient, id: &str) -> Value {
    bob.wait_event(
        "the offer at bob",
        |ev| offered_in(ev) && ev["transfer"]["id"] == id,
        DEADLINE,
    )["transfer"]
        .clone()
}

#[track_caller]
fn assert_state(t: &Value, state: &str) {
    assert_eq!(t["state"], state, "{t:#}");
}

#[test]
fn a_file_and_a_directory_arrive_intact_and_a_symlink_out_of_the_tree_stays_home() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let src = net.unique_dir("src");
    let big = write_pattern(&src.join("big.bin"), 3 * MIB + 17, 1);
    let tree = src.join("photos");
    let a = write_pattern(&tree.join("a.jpg"), MIB, 2);
    let b = write_pattern(&tree.join("sub/b.raw"), 200_000, 3);
    let empty = write_pattern(&tree.join("sub/empty"), 0, 4);
    let secret = write_pattern(&src.join("secret.txt"), 100, 5);
    // Symlinks inside the shared tree, to a file and to a directory outside it.
    symlink(src.join("secret.txt"), tree.join("link-out")).expect("symlink");
    let outside = net.unique_dir("outside");
    write_pattern(&outside.join("private.key"), 64, 6);
    symlink(&outside, tree.join("dir-out")).expect("symlink");

    let (mut a_ev, mut b_ev) = subscribe(&p);
    let dest = net.unique_dir("dest");
    let started = Instant::now();
    for (path, files, total) in [
        (src.join("big.bin"), vec!["big.bin"], big.len()),
        (
            tree.clone(),
            vec!["photos/a.jpg", "photos/sub/b.raw", "photos/sub/empty"],
            a.len() + b.len() + empty.len(),
        ),
    ] {
        let t = send_files(&p.alice, "bob", &path);
        let id = id_of(&t);
        assert_eq!(
            (&t["direction"], &t["peer_name"], t["total_bytes"].as_u64()),
            (&"out".into(), &"bob".into(), Some(total as u64)),
            "{t:#}"
        );
        let offer = offer_event(&mut b_ev, &id);
        assert_state(&offer, "offered");
        assert_eq!(offer["sample"], serde_json::json!(files), "{offer:#}");
        assert_eq!(offer["files"], files.len(), "{offer:#}");
        assert_eq!(offer["total_bytes"], total, "{offer:#}");
        assert_eq!(offer["peer_name"], "alice", "{offer:#}");

        let accepted = accept(&p.bob, &id, Some(&dest));
        assert_eq!(accepted["id"], id.as_str(), "{accepted:#}");
        let (b_end, _) = until_end(&mut b_ev, &id, TRANSFER_DEADLINE);
        assert_state(&b_end, "done");
        assert_eq!(b_end["local_path"], dest.to_str().unwrap(), "{b_end:#}");
        let (a_end, a_last) = until_end(&mut a_ev, &id, TRANSFER_DEADLINE);
        assert_state(&a_end, "done");
        assert_eq!(a_end["done_bytes"], a_end["total_bytes"], "{a_end:#}");
        assert_eq!(a_end["error"], Value::Null, "{a_end:#}");
        // The sender's own count (its last progress report) reached the whole size.
        let a_last = a_last.expect("the sender reported progress");
        assert_eq!(a_last["done_bytes"], total, "{a_last:#}");
        // Both sides list it done.
        for (who, d) in [(&p.alice, "out"), (&p.bob, "in")] {
            let t = xfer::get(who, &id).expect("listed");
            assert_eq!((&t["state"], &t["direction"]), (&"done".into(), &d.into()));
        }
    }
    eprintln!(
        "two transfers ({} bytes) in {:?}",
        big.len() + a.len() + b.len(),
        started.elapsed()
    );

    assert_eq!(
        entries(&dest),
        [
            "big.bin",
            "photos/",
            "photos/a.jpg",
            "photos/sub/",
            "photos/sub/b.raw",
            "photos/sub/empty"
        ],
        "exactly the regular files arrive: no symlink, nothing from outside the tree"
    );
    assert_content(&dest.join("big.bin"), &big);
    assert_content(&dest.join("photos/a.jpg"), &a);
    assert_content(&dest.join("photos/sub/b.raw"), &b);
    assert_content(&dest.join("photos/sub/empty"), &empty);
    assert_content(&src.join("secret.txt"), &secret);
    assert_eq!(
        entries(p.bob.download_dir()),
        Vec::<String>::new(),
        "accepted elsewhere"
    );
}

#[test]
fn a_declined_offer_writes_nothing_and_the_sender_is_told() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let file = net.unique_dir("src").join("notes.txt");
    write_pattern(&file, 5000, 7);
    let (mut a_ev, mut b_ev) = subscribe(&p);
    let id = id_of(&send_files(&p.alice, "bob", &file));
    offer_event(&mut b_ev, &id);

    let t = xfer::decline(&p.bob, &id);
    assert_state(&t, "declined");
    let (a_end, _) = until_end(&mut a_ev, &id, DEADLINE);
    assert_state(&a_end, "declined");
    let why = a_end["error"].as_str().unwrap_or_default();
    assert!(why.contains("declined"), "the sender hears why: {a_end:#}");
    assert_state(&wait_state(&p.bob, &id, "declined", DEADLINE), "declined");
    // Once declined, it cannot be accepted any more.
    let resp = p
        .bob
        .rpc()
        .request("accept", serde_json::json!({"id": id.as_str(), "to": null}));
    assert!(resp.get("error").is_some(), "{resp}");
    assert_eq!(entries(p.bob.download_dir()), Vec::<String>::new());
}

#[test]
fn a_sender_cancelling_a_pending_offer_cancels_it_at_the_receiver() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let file = net.unique_dir("src").join("draft.txt");
    write_pattern(&file, 5000, 8);
    let (mut a_ev, mut b_ev) = subscribe(&p);
    let id = id_of(&send_files(&p.alice, "bob", &file));
    offer_event(&mut b_ev, &id);
    // The sender's offer went out (so its link waits for bob's answer).
    a_ev.wait_event("alice's offer sent", updated(&id, "offered"), DEADLINE);

    let t = xfer::cancel(&p.alice, &id);
    assert_state(&t, "cancelled");
    let (b_end, _) = until_end(&mut b_ev, &id, DEADLINE);
    assert_state(&b_end, "cancelled");
    assert!(
        b_end["error"]
            .as_str()
            .is_some_and(|e| e.contains("cancelled by the sender")),
        "the receiver hears who cancelled: {b_end:#}"
    );
    // Too late to accept.
    let resp = p
        .bob
        .rpc()
        .request("accept", serde_json::json!({"id": id.as_str()}));
    assert!(resp.get("error").is_some(), "{resp}");
    assert_eq!(entries(p.bob.download_dir()), Vec::<String>::new());
}

#[test]
fn a_receiver_cancelling_mid_transfer_ends_it_on_both_sides_and_leaves_nothing() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let file = net.unique_dir("src").join("movie.mkv");
    write_pattern(&file, 50 * MIB, 9);
    let (mut a_ev, mut b_ev) = subscribe(&p);
    let id = id_of(&send_files(&p.alice, "bob", &file));
    offer_event(&mut b_ev, &id);
    accept(&p.bob, &id, None);
    let first = b_ev.wait_event("bob's first progress", xfer::progress(&id, 0), DEADLINE);
    let at = first["transfer"]["done_bytes"].as_u64().unwrap_or_default();

    let t = xfer::cancel(&p.bob, &id);
    assert_state(&t, "cancelled");
    let (a_end, a_last) = until_end(&mut a_ev, &id, DEADLINE);
    assert_state(&a_end, "cancelled");
    eprintln!(
        "cancelled at bob after {at} bytes; alice's last progress: {:?} bytes; alice's end: {:#}",
        a_last.map(|t| t["done_bytes"].clone()),
        a_end
    );
    assert!(
        a_end["error"]
            .as_str()
            .is_some_and(|e| e.contains("cancelled by the receiver")),
        "the sender hears who cancelled: {a_end:#}"
    );
    assert_state(&wait_state(&p.bob, &id, "cancelled", DEADLINE), "cancelled");
    let dl = p.bob.download_dir();
    wait_no_parts(dl, DEADLINE);
    assert_eq!(entries(dl), Vec::<String>::new(), "no final file, no part");
    // Cancelling again is refused: it has ended.
    let resp = p
        .bob
        .rpc()
        .request("cancel", serde_json::json!({"id": id.as_str()}));
    assert!(resp.get("error").is_some(), "{resp}");
}

#[test]
fn an_auto_accepted_peer_needs_no_accept() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let peer = xfer::trust_auto_accept(&p.bob, "alice");
    assert_eq!(
        (&peer["trusted"], &peer["auto_accept"]),
        (&true.into(), &true.into()),
        "{peer:#}"
    );
    let file = net.unique_dir("src").join("holiday.jpg");
    let data = write_pattern(&file, 2 * MIB + 5, 10);
    let (mut a_ev, mut b_ev) = subscribe(&p);
    let id = id_of(&send_files(&p.alice, "bob", &file));
    let (a_end, _) = until_end(&mut a_ev, &id, TRANSFER_DEADLINE);
    assert_state(&a_end, "done");
    let (b_end, _) = until_end(&mut b_ev, &id, DEADLINE);
    assert_state(&b_end, "done");
    let dl = p.bob.download_dir();
    assert_eq!(b_end["local_path"], dl.to_str().unwrap(), "{b_end:#}");
    assert_eq!(entries(dl), ["holiday.jpg"]);
    assert_content(&dl.join("holiday.jpg"), &data);
}

/// Sends `path` from alice to bob, bob accepts into his download directory, and waits until
/// both sides end; returns bob's view of the end.
fn send_and_accept(p: &Pair, path: &Path) -> Value {
    let (mut a_ev, mut b_ev) = subscribe(p);
    let id = id_of(&send_files(&p.alice, "bob", path));
    offer_event(&mut b_ev, &id);
    accept(&p.bob, &id, None);
    let (b_end, _) = until_end(&mut b_ev, &id, TRANSFER_DEADLINE);
    until_end(&mut a_ev, &id, TRANSFER_DEADLINE);
    b_end
}

#[test]
fn a_taken_name_gets_a_numbered_copy_and_the_old_file_is_kept() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let dl = p.bob.download_dir().to_owned();
    std::fs::write(dl.join("report.pdf"), b"the old report").expect("write");
    let src = net.unique_dir("src");
    let first = write_pattern(&src.join("report.pdf"), 70_000, 11);
    assert_state(&send_and_accept(&p, &src.join("report.pdf")), "done");
    assert_eq!(entries(&dl), ["report (1).pdf", "report.pdf"]);
    assert_content(&dl.join("report.pdf"), b"the old report");
    assert_content(&dl.join("report (1).pdf"), &first);

    // Again, with different content and the name in another case: the next free number,
    // the names compared without regard to case.
    let src2 = net.unique_dir("src");
    let second = write_pattern(&src2.join("REPORT.pdf"), 1000, 12);
    assert_state(&send_and_accept(&p, &src2.join("REPORT.pdf")), "done");
    assert_eq!(
        entries(&dl),
        ["REPORT (2).pdf", "report (1).pdf", "report.pdf"]
    );
    assert_content(&dl.join("report.pdf"), b"the old report");
    assert_content(&dl.join("report (1).pdf"), &first);
    assert_content(&dl.join("REPORT (2).pdf"), &second);
}

#[test]
fn a_symlink_in_the_destination_is_never_written_through() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let dl = p.bob.download_dir().to_owned();
    // x.bin in bob's downloads is a symlink to a file outside; photos/ a symlink to a
    // directory outside.
    let outside = net.unique_dir("outside");
    std::fs::write(outside.join("target.bin"), b"precious").expect("write");
    symlink(outside.join("target.bin"), dl.join("x.bin")).expect("symlink");
    let outside_dir = net.unique_dir("outside-dir");
    symlink(&outside_dir, dl.join("photos")).expect("symlink");
    let before = entries(&dl);

    let src = net.unique_dir("src");
    let data = write_pattern(&src.join("x.bin"), 300_000, 13);
    let end = send_and_accept(&p, &src.join("x.bin"));
    eprintln!("x.bin over a symlink: {end:#}");
    assert_content(&outside.join("target.bin"), b"precious");
    assert_eq!(
        std::fs::read_link(dl.join("x.bin")).expect("still a symlink"),
        outside.join("target.bin")
    );
    match end["state"].as_str() {
        Some("failed") => {
            let why = end["error"].as_str().unwrap_or_default();
            assert!(why.contains("symlink"), "the error says why: {end:#}");
            assert_eq!(entries(&dl), before, "nothing new in the destination");
        }
        Some("done") => {
            assert_content(&dl.join("x (1).bin"), &data);
        }
        _ => panic!("unexpected end: {end:#}"),
    }
    wait_no_parts(&dl, DEADLINE);

    // A directory of the offer is a symlink in the destination: the name is taken, so the
    // directory lands beside it as `photos (1)`, and the symlink is left as it was.
    let photos = write_pattern(&src.join("photos/a.jpg"), 1000, 14);
    let end = send_and_accept(&p, &src.join("photos"));
    eprintln!("photos/ over a symlinked directory: {end:#}");
    assert_eq!(
        entries(&outside_dir),
        Vec::<String>::new(),
        "written through"
    );
    assert_state(&end, "done");
    assert_content(&dl.join("photos (1)/a.jpg"), &photos);
    assert_eq!(
        std::fs::read_link(dl.join("photos")).expect("still a symlink"),
        outside_dir
    );
    wait_no_parts(&dl, DEADLINE);
    assert_content(&outside.join("target.bin"), b"precious");
}

#[test]
fn an_offer_to_an_offline_peer_waits_and_goes_out_when_it_returns() {
    let net = TestNet::new();
    let Pair {
        alice,
        mut bob,
        tracker: _tracker,
    } = chat::pair(&net);
    bob.stop();
    alice.wait_peer("bob", false, DEADLINE);

    let file = net.unique_dir("src").join("later.bin");
    let data = write_pattern(&file, MIB + 3, 15);
    let t = send_files(&alice, "bob", &file);
    let id = id_of(&t);
    assert_state(&t, "queued");
    assert_state(&xfer::get(&alice, &id).expect("listed"), "queued");

    bob.restart();
    let offer = wait_offer(&bob, DEADLINE);
    assert_eq!(offer["id"], id.as_str(), "{offer:#}");
    accept(&bob, &id, None);
    assert_state(&wait_state(&bob, &id, "done", TRANSFER_DEADLINE), "done");
    assert_state(&wait_state(&alice, &id, "done", DEADLINE), "done");
    assert_content(&bob.download_dir().join("later.bin"), &data);
}

/// Sends `file` from alice to bob, runs `change` once bob holds the offer (after the scan,
/// before a byte is read to send), accepts, and returns both ends, which must be `failed`.
fn send_changed_after_the_scan(p: &Pair, file: &Path, change: impl FnOnce()) -> (Value, Value) {
    let (mut a_ev, mut b_ev) = subscribe(p);
    let id = id_of(&send_files(&p.alice, "bob", file));
    offer_event(&mut b_ev, &id);
    change();
    accept(&p.bob, &id, None);
    let (a_end, _) = until_end(&mut a_ev, &id, TRANSFER_DEADLINE);
    let (b_end, _) = until_end(&mut b_ev, &id, TRANSFER_DEADLINE);
    assert_state(&a_end, "failed");
    assert_state(&b_end, "failed");
    (a_end, b_end)
}

#[test]
fn a_file_swapped_for_a_symlink_or_resized_after_the_scan_fails_the_transfer_naming_it() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let src = net.unique_dir("src");
    let secret = net.unique_dir("private").join("secret.txt");
    write_pattern(&secret, 5000, 21);
    let file = src.join("notes.txt");
    write_pattern(&file, 5000, 22);

    // Replaced by a symlink of the same size to a file outside the shared tree.
    let (a_end, b_end) = send_changed_after_the_scan(&p, &file, || {
        std::fs::remove_file(&file).expect("remove");
        symlink(&secret, &file).expect("symlink");
    });
    for end in [&a_end, &b_end] {
        let why = end["error"].as_str().unwrap_or_default();
        assert!(
            why.contains("symlink") && why.contains("notes.txt"),
            "the reason names the file: {end:#}"
        );
    }

    // Grown since the scan.
    let grown = src.join("grows.txt");
    write_pattern(&grown, 3000, 23);
    let (a_end, b_end) = send_changed_after_the_scan(&p, &grown, || {
        write_pattern(&grown, 4000, 23);
    });
    for end in [&a_end, &b_end] {
        let why = end["error"].as_str().unwrap_or_default();
        assert!(
            why.contains("grows.txt") && why.contains("changed since it was scanned"),
            "the reason names the file: {end:#}"
        );
    }
    // Nothing of either arrived.
    wait_no_parts(p.bob.download_dir(), DEADLINE);
    assert_eq!(entries(p.bob.download_dir()), Vec::<String>::new());
}

#[test]
fn a_file_rewritten_after_the_scan_fails_the_transfer_naming_it() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let src = net.unique_dir("src");
    let file = src.join("draft.txt");
    write_pattern(&file, 2 * MIB + 100, 24);
    // The same size, other bytes in its second chunk, and a modification time that moved
    // (set, so that a coarse clock cannot hide the rewrite).
    let (a_end, b_end) = send_changed_after_the_scan(&p, &file, || {
        let mut other = xfer::pattern(2 * MIB + 100, 24);
        other[MIB + 5] ^= 1;
        std::fs::write(&file, &other).expect("rewrite");
        let f = std::fs::File::options()
            .write(true)
            .open(&file)
            .expect("open");
        let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        f.set_modified(hour_ago).expect("set the modification time");
    });
    for end in [&a_end, &b_end] {
        let why = end["error"].as_str().unwrap_or_default();
        assert!(
            why.contains("draft.txt") && why.contains("changed since it was scanned"),
            "the reason names the file: {end:#}"
        );
    }
    wait_no_parts(p.bob.download_dir(), DEADLINE);
    assert!(!p.bob.download_dir().join("draft.txt").exists());
}

#[test]
fn a_received_files_content_id_is_what_b3sum_prints() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let src = net.unique_dir("ids");
    // No chunk, one chunk, one full chunk, several chunks with a short last one.
    let files = [
        ("empty", write_pattern(&src.join("empty"), 0, 31)),
        ("small.txt", write_pattern(&src.join("small.txt"), 5000, 32)),
        ("one.bin", write_pattern(&src.join("one.bin"), MIB, 33)),
        (
            "many.bin",
            write_pattern(&src.join("many.bin"), 3 * MIB + 17, 34),
        ),
    ];
    let end = send_and_accept(&p, &src);
    assert_state(&end, "done");
    for (name, data) in &files {
        // b3sum's output: 64 lowercase hex digits of the BLAKE3 hash.
        let b3sum = blake3::hash(data).to_hex().to_string();
        let line = format!(r#""content_id":"{b3sum}""#);
        p.bob
            .wait_activity(&format!("receiving {name}"), 1, DEADLINE, |l| {
                l.contains("file-received") && l.contains(name) && l.contains(&line)
            });
        let dir = src.file_name().expect("a directory name");
        assert_content(&p.bob.download_dir().join(dir).join(name), data);
    }
}
