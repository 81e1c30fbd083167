//! Pulling from a peer's share with `p2pctl get`, between two real daemons: alice shares a
//! directory holding a file and a subdirectory; without a grant bob is refused and nothing
//! is written; with `read` he gets the file and the whole subdirectory, each verified and
//! identical, into an existing directory; `transfers --json` shows them as pulls; a share
//! path that is a symlink to a file outside the share is refused and nothing of that file
//! leaves; an entry that does not exist is named in the error; alice's activity log has a
//! line for each pull served and each refused. A pull whose receiver is
//! SIGKILLed at its first progress resumes after the restart, still a pull. A DEST that does
//! not exist names the result as `cp -r` does (a file lands as DEST, a directory's content
//! in a new directory DEST); an existing file or a missing parent is refused.

use std::path::Path;

use p2p_tests::chat::{self, Pair};
use p2p_tests::sys::NetNs;
use p2p_tests::transfer::{TRANSFER_DEADLINE, get, progress, sigkill, wait_arrived, write_pattern};
use p2p_tests::{CmdOutput, DEADLINE, TestNet};

/// Runs `p2pctl ARGS` against `who`'s daemon and asserts it succeeded.
#[track_caller]
fn ok(net: &TestNet, who: &p2p_tests::P2pd, args: &[&str]) -> CmdOutput {
    let out = net.ctl(who, args);
    out.assert_success();
    out
}

/// Every file under `dir`, as relative paths, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                found.push(rel);
            }
        }
    }
    found.sort();
    found
}

/// alice shares `docs`: `file.txt`, `sub/a.bin` (300 KiB), `sub/deeper/b.txt`, and `link`,
/// a symlink to a file outside the share.
fn share_docs(net: &TestNet, p: &Pair) {
    let dir = net.unique_dir("docs");
    std::fs::write(dir.join("file.txt"), "hello pull").unwrap();
    std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
    let big: Vec<u8> = (0..300 * 1024).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("sub/a.bin"), &big).unwrap();
    std::fs::write(dir.join("sub/deeper/b.txt"), "bb").unwrap();
    let outside = net.unique_dir("outside").join("secret.txt");
    std::fs::write(&outside, "not for bob").unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();
    ok(
        net,
        &p.alice,
        &["share", "add", "docs", dir.to_str().unwrap()],
    );
}

#[test]
fn bob_gets_a_file_and_a_directory_only_when_granted() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    share_docs(&net, &p);
    let source = {
        let shares = ok(&net, &p.alice, &["--json", "share", "ls"]).json();
        std::path::PathBuf::from(shares[0]["path"].as_str().expect("path"))
    };

    // No grant: refused as for a share that does not exist; nothing written.
    let dest = net.unique_dir("dest");
    let d = dest.to_str().unwrap();
    let denied = net.ctl(&p.bob, &["get", "alice:docs/file.txt", d]);
    assert_eq!(denied.code(), Some(1), "{denied}");
    let want = "permission denied: docs on alice (ask alice for read)";
    assert!(denied.stderr.contains(want), "expected {want:?}:\n{denied}");
    assert!(files(&dest).is_empty(), "{:?}", files(&dest));

    ok(&net, &p.alice, &["grant", "docs", "bob", "read"]);

    // One file, into an existing directory.
    let got = ok(&net, &p.bob, &["get", "alice:docs/file.txt", d]);
    let said = format!("got 1 file (10 B) from alice, verified, in {d}\n");
    assert_eq!(got.stdout, said, "{got}");
    assert_eq!(
        std::fs::read(dest.join("file.txt")).unwrap(),
        b"hello pull",
        "{got}"
    );

    // A whole directory.
    let into = net.unique_dir("into");
    ok(
        &net,
        &p.bob,
        &["get", "alice:docs/sub", into.to_str().unwrap()],
    );
    assert_eq!(files(&into), ["sub/a.bin", "sub/deeper/b.txt"]);
    for rel in ["sub/a.bin", "sub/deeper/b.txt"] {
        assert_eq!(
            std::fs::read(into.join(rel)).unwrap(),
            std::fs::read(source.join(rel)).unwrap(),
            "{rel}"
        );
    }

    // Both are pulls at bob, and sends at alice.
    let list = ok(&net, &p.bob, &["--json", "transfers"]).json();
    let pulls: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "pull" && t["direction"] == "in" && t["state"] == "done")
        .collect();
    assert_eq!(pulls.len(), 2, "{list}");
    let sent = ok(&net, &p.alice, &["--json", "transfers"]).json();
    assert!(
        sent.as_array().unwrap().iter().all(|t| t["kind"] == "send"),
        "{sent}"
    );

    // A symlink in the share is as if absent, and nothing of its target leaves.
    let other = net.unique_dir("other");
    let link = net.ctl(&p.bob, &["get", "alice:docs/link", other.to_str().unwrap()]);
    assert_eq!(link.code(), Some(1), "{link}");
    assert!(
        link.stderr.contains("no such file: docs/link on alice"),
        "{link}"
    );
    let missing = net.ctl(&p.bob, &["get", "alice:docs/nope.txt", d]);
    assert_eq!(missing.code(), Some(1), "{missing}");
    assert!(
        missing
            .stderr
            .contains("no such file: docs/nope.txt on alice"),
        "{missing}"
    );
    assert!(files(&other).is_empty(), "{:?}", files(&other));
    let after = ok(&net, &p.alice, &["--json", "transfers"]).json();
    assert_eq!(after.as_array().unwrap().len(), 2, "{after}");

    // alice's activity log: each pull served, and each refused (no grant, the symlink, the
    // missing file), naming bob.
    let served = |l: &str| l.contains("pull served") && l.contains("bob");
    let refused = |l: &str| l.contains("pull refused") && l.contains("bob");
    let lines = p
        .alice
        .wait_activity("the pulls served", 2, DEADLINE, served);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let lines = p
        .alice
        .wait_activity("the pulls refused", 3, DEADLINE, refused);
    assert_eq!(lines.len(), 3, "{lines:#?}");
}

#[test]
fn a_pull_resumes_after_the_receiver_is_killed() {
    // A capped link, so that the pull is still running at its first progress report.
    let ns = NetNs::rate_limited(256);
    let net = TestNet::in_netns(&ns);
    let mut p = chat::pair(&net);
    let dir = net.unique_dir("docs");
    let data = write_pattern(&dir.join("disk.img"), 32 << 20, 7);
    ok(
        &net,
        &p.alice,
        &["share", "add", "docs", dir.to_str().unwrap()],
    );
    ok(&net, &p.alice, &["grant", "docs", "bob", "read"]);

    let mut events = p.bob.rpc();
    events.subscribe();
    let asked = ok(
        &net,
        &p.bob,
        &["--json", "get", "alice:docs/disk.img", "--no-wait"],
    )
    .json();
    assert_eq!(asked["kind"], "pull", "{asked}");
    let id = asked["id"].as_str().expect("id").to_owned();
    events.wait_event("bob's first progress", progress(&id, 0), TRANSFER_DEADLINE);
    sigkill(&mut p.bob);
    p.bob.restart();

    wait_arrived(&p.alice, &p.bob, &id, "disk.img", &data);
    let t = get(&p.bob, &id).expect("the pull at bob");
    assert_eq!(t["kind"], "pull", "{t}");
}

#[test]
fn get_names_a_new_destination_as_cp_r_does() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    share_docs(&net, &p);
    ok(&net, &p.alice, &["grant", "docs", "bob", "read"]);
    let base = net.unique_dir("base");
    let at = |rel: &str| base.join(rel).to_str().unwrap().to_owned();

    // A file into a path that does not exist lands as that path.
    let got = ok(
        &net,
        &p.bob,
        &["get", "alice:docs/file.txt", &at("renamed.txt")],
    );
    assert_eq!(
        std::fs::read(base.join("renamed.txt")).unwrap(),
        b"hello pull",
        "{got}"
    );
    // A directory's content lands in a new directory of that name.
    ok(&net, &p.bob, &["get", "alice:docs/sub", &at("copy")]);
    assert_eq!(files(&base.join("copy")), ["a.bin", "deeper/b.txt"]);
    // An existing directory receives the entry inside it, as before.
    ok(&net, &p.bob, &["get", "alice:docs/sub", &at("copy")]);
    assert_eq!(
        files(&base.join("copy")),
        ["a.bin", "deeper/b.txt", "sub/a.bin", "sub/deeper/b.txt"]
    );

    // An existing file is never replaced; a missing parent is named.
    let refused = net.ctl(&p.bob, &["get", "alice:docs/file.txt", &at("renamed.txt")]);
    assert_eq!(refused.code(), Some(1), "{refused}");
    assert!(
        refused.stderr.contains("exists and is not a directory"),
        "{refused}"
    );
    let missing = net.ctl(&p.bob, &["get", "alice:docs/file.txt", &at("no/such/x")]);
    assert_eq!(missing.code(), Some(1), "{missing}");
    let want = format!("{} does not exist", at("no/such"));
    assert!(
        missing.stderr.contains(&want),
        "expected {want:?}:\n{missing}"
    );
    assert_eq!(
        files(&base),
        [
            "copy/a.bin",
            "copy/deeper/b.txt",
            "copy/sub/a.bin",
            "copy/sub/deeper/b.txt",
            "renamed.txt"
        ]
    );
}
