//! Changing a peer's share and the versions kept of what is replaced or removed, between
//! three real daemons: alice shares `docs`, carol holds `write`, bob `read`. carol makes a
//! directory, moves a file into it (never over an existing entry), removes it; the removed
//! file is listed by `versions` on both sides (carol over a share link, alice locally) and
//! `restore --version N` brings its bytes back identical; what a restore replaces is a
//! version in turn. Every listing right after a change shows it. bob's `rm`, `mv`, `mkdir`
//! and `restore` are refused with the contract's words and change nothing; a path with `..`
//! or an absolute one is refused; removing a symlink that points out of the share touches
//! nothing; alice's activity log records each change and each refusal. A version flood
//! keeps at most N versions per path, holds the byte cap (the blob directory's size
//! checked), and never gives a number twice; a peer's restore may not pass the quota.

use std::path::{Path, PathBuf};

use p2p_tests::{CmdOutput, DEADLINE, P2pd, TestNet};
use serde_json::Value;

/// Runs `p2pctl ARGS` against `who`'s daemon and asserts it succeeded.
#[track_caller]
fn ok(net: &TestNet, who: &P2pd, args: &[&str]) -> CmdOutput {
    let out = net.ctl(who, args);
    out.assert_success();
    out
}

/// Asserts `p2pctl ARGS` at `who` fails with exit 1 and says `want`.
#[track_caller]
fn refused(net: &TestNet, who: &P2pd, args: &[&str], want: &str) {
    let out = net.ctl(who, args);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains(want), "expected {want:?}:\n{out}");
    assert!(out.stdout.is_empty(), "{out}");
}

struct Three {
    alice: P2pd,
    bob: P2pd,
    carol: P2pd,
    _tracker: p2p_tests::Tracker,
}

fn three(net: &TestNet) -> Three {
    let tracker = net.spawn_tracker(None);
    let alice = net.spawn_p2pd("alice", &tracker.addr_string(), &[]);
    let bob = net.spawn_p2pd("bob", &tracker.addr_string(), &[]);
    let carol = net.spawn_p2pd("carol", &tracker.addr_string(), &[]);
    for (who, other) in [
        (&alice, "bob"),
        (&alice, "carol"),
        (&bob, "alice"),
        (&carol, "alice"),
    ] {
        who.wait_peer(other, true, DEADLINE);
    }
    Three {
        alice,
        bob,
        carol,
        _tracker: tracker,
    }
}

/// alice shares a new directory as `name`, filled by `fill` first, with `args` added;
/// returns the directory as p2pd resolved it.
fn share(
    net: &TestNet,
    alice: &P2pd,
    name: &str,
    args: &[&str],
    fill: impl FnOnce(&Path),
) -> PathBuf {
    let dir = net.unique_dir(name);
    fill(&dir);
    let mut all = vec!["--json", "share", "add", name, dir.to_str().unwrap()];
    all.extend_from_slice(args);
    let added = ok(net, alice, &all).json();
    PathBuf::from(added["path"].as_str().expect("path"))
}

/// Every entry under `dir` (directories end in `/`), sorted, with each file's bytes.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            let kind = e.file_type().unwrap();
            if kind.is_dir() {
                todo.push(e.path());
                found.push((format!("{rel}/"), Vec::new()));
            } else if kind.is_symlink() {
                found.push((format!("{rel}@"), Vec::new()));
            } else {
                found.push((rel, std::fs::read(e.path()).unwrap()));
            }
        }
    }
    found.sort();
    found
}

/// The names `ls --json` lists (directories end in `/`).
fn listed(net: &TestNet, who: &P2pd, target: &str) -> Vec<String> {
    let l = ok(net, who, &["--json", "ls", target]).json();
    l["entries"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    let p = e["path"].as_str().unwrap_or_default();
                    if e["kind"] == "dir" {
                        format!("{p}/")
                    } else {
                        p.to_owned()
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

fn versions(net: &TestNet, who: &P2pd, target: &str) -> Vec<Value> {
    let v = ok(net, who, &["--json", "versions", target]).json();
    v["versions"].as_array().cloned().unwrap_or_default()
}

fn numbers(vs: &[Value]) -> Vec<u64> {
    vs.iter().map(|v| v["number"].as_u64().unwrap()).collect()
}

fn id_of(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

#[test]
fn a_writer_changes_a_share_and_what_it_removes_or_replaces_is_kept() {
    let net = TestNet::new();
    let t = three(&net);
    let outside = net.unique_dir("outside").join("secret.txt");
    std::fs::write(&outside, "not for carol").unwrap();
    let docs = share(&net, &t.alice, "docs", &[], |dir| {
        std::fs::write(dir.join("a.txt"), "first bytes").unwrap();
        std::fs::write(dir.join("b.txt"), "in the way").unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();
    });
    ok(&net, &t.alice, &["grant", "docs", "carol", "write"]);
    ok(&net, &t.alice, &["grant", "docs", "bob", "read"]);

    // mkdir, seen at once by a listing.
    let made = ok(&net, &t.carol, &["mkdir", "alice:docs/new"]);
    assert_eq!(made.stdout, "made directory docs/new on alice\n", "{made}");
    assert!(docs.join("new").is_dir());
    assert_eq!(
        listed(&net, &t.carol, "alice:docs"),
        ["a.txt", "b.txt", "new/"]
    );

    // mv into it, seen at once; never over an existing entry.
    let moved = ok(
        &net,
        &t.carol,
        &["mv", "alice:docs/a.txt", "docs/new/a.txt"],
    );
    assert_eq!(
        moved.stdout,
        "moved docs/a.txt on alice to docs/new/a.txt\n"
    );
    assert_eq!(listed(&net, &t.carol, "alice:docs/new"), ["a.txt"]);
    let before = tree(&docs);
    refused(
        &net,
        &t.carol,
        &["mv", "alice:docs/b.txt", "docs/new/a.txt"],
        "docs/new/a.txt exists already",
    );
    assert_eq!(tree(&docs), before, "nothing lost");

    // rm of a file: kept as version 1, listed alike on both sides.
    let json = ok(&net, &t.carol, &["--json", "rm", "alice:docs/new/a.txt"]).json();
    assert_eq!(json["path"], "new/a.txt", "{json}");
    assert!(!docs.join("new/a.txt").exists());
    assert!(listed(&net, &t.carol, "alice:docs/new").is_empty());
    let remote = versions(&net, &t.carol, "alice:docs/new/a.txt");
    assert_eq!(numbers(&remote), [1], "{remote:?}");
    assert_eq!(remote[0]["id"], id_of(b"first bytes"));
    assert_eq!(remote[0]["size"], 11);
    let local = versions(&net, &t.alice, "docs/new/a.txt");
    assert_eq!(numbers(&local), [1]);
    assert_eq!(local[0]["id"], remote[0]["id"]);
    assert_eq!(local[0]["by"], "carol", "{local:?}");
    let table = ok(&net, &t.alice, &["versions", "docs/new/a.txt"]).stdout;
    assert!(table.starts_with("NUMBER"), "{table}");
    assert!(table.contains("carol") && table.contains(&id_of(b"first bytes")));

    // restore brings the bytes back identical.
    let back = ok(
        &net,
        &t.carol,
        &["restore", "alice:docs/new/a.txt", "--version", "1"],
    );
    assert!(
        back.stdout
            .starts_with("restored version 1 of docs/new/a.txt on alice")
    );
    assert_eq!(
        std::fs::read(docs.join("new/a.txt")).unwrap(),
        b"first bytes"
    );
    assert_eq!(listed(&net, &t.carol, "alice:docs/new"), ["a.txt"]);

    // What a restore replaces is a version in turn (here the owner's edit).
    std::fs::write(docs.join("new/a.txt"), "edited by alice").unwrap();
    ok(
        &net,
        &t.alice,
        &["restore", "docs/new/a.txt", "--version", "1"],
    );
    assert_eq!(
        std::fs::read(docs.join("new/a.txt")).unwrap(),
        b"first bytes"
    );
    let after = versions(&net, &t.carol, "alice:docs/new/a.txt");
    assert_eq!(numbers(&after), [1, 2], "{after:?}");
    assert_eq!(after[1]["id"], id_of(b"edited by alice"));
    assert!(
        after[1].get("by").is_none(),
        "the owner's restore: {after:?}"
    );

    // A directory goes only when empty.
    refused(
        &net,
        &t.carol,
        &["rm", "alice:docs/new"],
        "docs/new is a directory that is not empty",
    );
    ok(&net, &t.carol, &["mkdir", "alice:docs/empty"]);
    ok(&net, &t.carol, &["rm", "alice:docs/empty"]);
    assert!(!docs.join("empty").exists());

    // Paths that leave the share, a symlink, and what is not there.
    let before = tree(&docs);
    for bad in [
        "alice:docs/../x",
        "alice:docs//etc/passwd",
        "alice:docs/new/../../x",
    ] {
        refused(&net, &t.carol, &["rm", bad], "bad path");
    }
    refused(
        &net,
        &t.carol,
        &["rm", "alice:docs/link"],
        "no such file: docs/link on alice",
    );
    refused(
        &net,
        &t.carol,
        &["mv", "alice:docs/link", "docs/moved"],
        "no such file: docs/link on alice",
    );
    assert_eq!(std::fs::read(&outside).unwrap(), b"not for carol");
    refused(
        &net,
        &t.carol,
        &["rm", "alice:docs/nope.txt"],
        "no such file: docs/nope.txt on alice",
    );
    refused(
        &net,
        &t.carol,
        &["restore", "alice:docs/new/a.txt", "--version", "9"],
        "alice: no version 9 of docs/new/a.txt is kept",
    );
    refused(
        &net,
        &t.carol,
        &["mkdir", "alice:docs/no/such"],
        "no such file: docs/no/such on alice",
    );
    assert_eq!(tree(&docs), before, "nothing changed");

    // A reader may list versions but change nothing.
    assert_eq!(
        numbers(&versions(&net, &t.bob, "alice:docs/new/a.txt")),
        [1, 2]
    );
    let denied = "permission denied: docs on alice (ask alice for write)";
    for args in [
        &["rm", "alice:docs/b.txt"][..],
        &["mv", "alice:docs/b.txt", "docs/c.txt"],
        &["mkdir", "alice:docs/bobs"],
        &["restore", "alice:docs/new/a.txt", "--version", "2"],
    ] {
        refused(&net, &t.bob, args, denied);
    }
    assert_eq!(tree(&docs), before, "nothing changed");
    assert_eq!(numbers(&versions(&net, &t.alice, "docs/new/a.txt")), [1, 2]);

    // alice's activity log has a line for each change carol made, and bob's refusals.
    for op in ["share-mkdir", "share-mv", "share-rm", "share-restore"] {
        let tag = format!(r#""op":"{op}""#);
        t.alice
            .wait_activity(op, 1, DEADLINE, |l| l.contains(&tag) && l.contains("carol"));
    }
    t.alice.wait_activity("share-denied", 4, DEADLINE, |l| {
        l.contains(r#""op":"share-denied""#) && l.contains("bob")
    });
}

#[test]
fn a_version_flood_keeps_n_holds_the_byte_cap_and_never_reuses_a_number() {
    let net = TestNet::new();
    let t = three(&net);
    let counted = share(&net, &t.alice, "counted", &["--keep-versions", "3"], |_| {});
    let capped = share(
        &net,
        &t.alice,
        "capped",
        &["--keep-versions", "100", "--max-version-bytes", "7K"],
        |_| {},
    );
    let listed_share = ok(&net, &t.alice, &["--json", "share", "ls"]).json();
    let capped_row = listed_share
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "capped")
        .cloned()
        .unwrap();
    assert_eq!(capped_row["max_version_bytes"], 7 * 1024, "{capped_row}");
    let quota = share(&net, &t.alice, "quota", &["--quota", "5K"], |dir| {
        std::fs::write(dir.join("a.bin"), vec![1u8; 3000]).unwrap();
        std::fs::write(dir.join("b.bin"), vec![2u8; 3000]).unwrap();
    });
    for s in ["counted", "capped", "quota"] {
        ok(&net, &t.alice, &["grant", s, "carol", "write"]);
    }
    let blobs = t.alice.state_dir.join("versions");

    for round in 0..8u8 {
        std::fs::write(counted.join("f.txt"), format!("round {round}")).unwrap();
        ok(&net, &t.carol, &["rm", "alice:counted/f.txt"]);
    }
    let kept = versions(&net, &t.carol, "alice:counted/f.txt");
    assert_eq!(numbers(&kept), [6, 7, 8], "{kept:?}");
    assert_eq!(kept[2]["id"], id_of(b"round 7"));

    for round in 0..10u8 {
        std::fs::write(capped.join("big.bin"), vec![round; 3000]).unwrap();
        ok(&net, &t.carol, &["rm", "alice:capped/big.bin"]);
        let at = versions(&net, &t.alice, "capped/big.bin");
        let bytes: u64 = at.iter().map(|v| v["size"].as_u64().unwrap()).sum();
        assert!(bytes <= 7 * 1024, "round {round}: {at:?}");
    }
    assert_eq!(
        numbers(&versions(&net, &t.alice, "capped/big.bin")),
        [9, 10]
    );
    // The blobs: counted's three small ones and capped's two.
    assert!(
        dir_bytes(&blobs) <= 7 * 1024 + 3 * 16,
        "{} bytes of blobs",
        dir_bytes(&blobs)
    );
    assert_eq!(std::fs::read_dir(&blobs).unwrap().count(), 5);

    // Restored and removed again: the next number, never an old one.
    ok(
        &net,
        &t.carol,
        &["restore", "alice:capped/big.bin", "--version", "10"],
    );
    assert_eq!(
        std::fs::read(capped.join("big.bin")).unwrap(),
        vec![9u8; 3000]
    );
    ok(&net, &t.carol, &["rm", "alice:capped/big.bin"]);
    let last = versions(&net, &t.carol, "alice:capped/big.bin");
    assert_eq!(numbers(&last), [10, 11], "{last:?}");
    assert_eq!(last[0]["id"], last[1]["id"], "the same bytes, stored once");
    assert_eq!(std::fs::read_dir(&blobs).unwrap().count(), 4);

    // A peer's restore may not take a share over its quota.
    ok(&net, &t.carol, &["rm", "alice:quota/b.bin"]);
    refused(
        &net,
        &t.carol,
        &["restore", "alice:quota/b.bin", "--version", "1"],
        "alice: quota would be over its quota of 5120 bytes",
    );
    assert!(!quota.join("b.bin").exists());
    ok(&net, &t.carol, &["rm", "alice:quota/a.bin"]);
    ok(
        &net,
        &t.carol,
        &["restore", "alice:quota/b.bin", "--version", "1"],
    );
    assert_eq!(std::fs::read(quota.join("b.bin")).unwrap(), vec![2u8; 3000]);
}
