//! `send_files` answers at once with the transfer `scanning` while p2pd hashes the files as a
//! job: progress events count the bytes hashed, then the transfer goes on as usual; a tree
//! that cannot be offered ends `failed` with the reason (and `p2pctl send` exits 1); a
//! transfer can be cancelled while it is hashed; a daemon stopped while hashing fails the
//! transfer at its next start.

use std::fs::File;
use std::path::Path;

use p2p_tests::chat::{self, Pair};
use p2p_tests::transfer::{
    TRANSFER_DEADLINE, accept, assert_content, cancel, get, id_of, list, start_send, wait_offer,
    wait_state, write_pattern,
};
use p2p_tests::{DEADLINE, P2pd, RpcClient, TestNet};
use serde_json::Value;

const MIB: usize = 1 << 20;

/// A sparse file so large that hashing it outlasts any test by far (it takes no disk).
fn endless(path: &Path) {
    File::create(path)
        .and_then(|f| f.set_len(1 << 40))
        .expect("sparse file");
}

/// The first `transfer_progress` event of `id` while it is hashed.
#[track_caller]
fn hashing_progress(events: &mut RpcClient, id: &str) -> Value {
    events.wait_event(
        "a hashing progress event",
        |ev| {
            ev["type"] == "transfer_progress"
                && ev["transfer"]["id"] == id
                && ev["transfer"]["state"] == "scanning"
        },
        DEADLINE,
    )["transfer"]
        .clone()
}

/// Transfer `id` as `p` lists it.
#[track_caller]
fn listed(p: &P2pd, id: &str) -> Value {
    get(p, id).unwrap_or_else(|| panic!("{} does not list {id}", p.name))
}

#[test]
fn a_directory_is_hashed_after_the_answer_then_sent_as_before() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let tree = net.unique_dir("src").join("album");
    let a = write_pattern(&tree.join("a.bin"), 3 * MIB + 5, 1);
    let b = write_pattern(&tree.join("sub/b.bin"), 100_000, 2);
    let total = a.len() + b.len();
    let mut events = p.alice.rpc();
    events.subscribe();

    let t = start_send(&p.alice, "bob", &tree);
    let id = id_of(&t);
    assert_eq!(t["local_path"], tree.to_str().expect("UTF-8"), "{t:#}");
    // The listing comes first: files and size are known while the bytes are hashed.
    let hashing = hashing_progress(&mut events, &id);
    assert_eq!(
        (hashing["files"].as_u64(), hashing["total_bytes"].as_u64()),
        (Some(2), Some(total as u64)),
        "{hashing:#}"
    );

    let offer = wait_offer(&p.bob, DEADLINE);
    assert_eq!(offer["id"], id.as_str(), "{offer:#}");
    assert_eq!(offer["total_bytes"], total, "{offer:#}");
    accept(&p.bob, &id, None);
    wait_state(&p.bob, &id, "done", TRANSFER_DEADLINE);
    wait_state(&p.alice, &id, "done", DEADLINE);
    assert_content(&p.bob.download_dir().join("album/a.bin"), &a);
    assert_content(&p.bob.download_dir().join("album/sub/b.bin"), &b);
}

#[test]
fn a_tree_that_cannot_be_offered_fails_with_the_reason() {
    let net = TestNet::new();
    let Pair { alice, bob, .. } = chat::pair(&net);
    let tree = net.unique_dir("src").join("mixed");
    write_pattern(&tree.join("fine.txt"), 1000, 3);
    write_pattern(&tree.join("back\\slash.txt"), 10, 4);
    let shown = tree.to_str().expect("UTF-8");

    let sent = net.ctl(&alice, &["send", shown, "bob"]);
    assert_eq!(sent.status.code(), Some(1), "{sent:?}");
    assert!(
        sent.stderr.contains(&format!("hashing {shown}")),
        "{sent:?}"
    );
    assert!(sent.stderr.contains("holds a backslash"), "{sent:?}");

    let failed: Vec<Value> = list(&alice)
        .into_iter()
        .filter(|t| t["state"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    let why = failed[0]["error"].as_str().unwrap_or_default();
    assert!(why.contains("back\\slash.txt"), "{why}");
    assert!(list(&bob).is_empty(), "bob was offered a tree that failed");
}

#[test]
fn hashing_can_be_cancelled_and_a_stop_while_hashing_fails_the_transfer() {
    let net = TestNet::new();
    let Pair { mut alice, bob, .. } = chat::pair(&net);
    let src = net.unique_dir("src");
    let (first, second) = (src.join("first.img"), src.join("second.img"));
    endless(&first);
    endless(&second);
    let mut events = alice.rpc();
    events.subscribe();

    let cancelled = id_of(&start_send(&alice, "bob", &first));
    let stopped = id_of(&start_send(&alice, "bob", &second));
    for id in [&cancelled, &stopped] {
        let t = hashing_progress(&mut events, id);
        assert_eq!(t["total_bytes"], 1u64 << 40, "{t:#}");
    }
    let t = cancel(&alice, &cancelled);
    assert_eq!(t["state"], "cancelled", "{t:#}");
    assert_eq!(listed(&alice, &cancelled)["state"], "cancelled");

    // The hashing threads stop with the daemon, which fails what it was hashing when it
    // comes back.
    alice.restart();
    let t = wait_state(&alice, &stopped, "failed", DEADLINE);
    assert_eq!(
        t["error"], "interrupted while hashing; send it again",
        "{t:#}"
    );
    assert_eq!(listed(&alice, &cancelled)["state"], "cancelled");
    assert!(list(&bob).is_empty(), "bob was offered a tree never hashed");
}
