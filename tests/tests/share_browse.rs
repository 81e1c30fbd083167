//! Browsing a peer's shares from the command line, between two real daemons: alice shares a
//! directory, bob sees nothing of it (and is told `permission denied`, exactly as for a share
//! that does not exist) until alice grants him read; then he lists her shares, a directory
//! with sizes, a subdirectory and the whole tree; `share ls` at alice shows the grant and
//! the counts; a path with `..` is refused; after a revoke bob's next listing is denied.

use std::time::Duration;

use p2p_tests::chat::{self, Pair};
use p2p_tests::{CmdOutput, DEADLINE, TestNet, poll};
use serde_json::Value;

/// Runs `p2pctl ARGS` against `who`'s daemon and asserts it succeeded.
#[track_caller]
fn ok(net: &TestNet, who: &p2p_tests::P2pd, args: &[&str]) -> CmdOutput {
    let out = net.ctl(who, args);
    out.assert_success();
    out
}

/// Asserts bob's `ls TARGET` is refused with exit 1 and the contract's words.
#[track_caller]
fn assert_denied(net: &TestNet, p: &Pair, target: &str, share: &str) {
    let out = net.ctl(&p.bob, &["ls", target]);
    assert_eq!(out.code(), Some(1), "{out}");
    let want = format!("permission denied: {share} on alice (ask alice for read)");
    assert!(out.stderr.contains(&want), "expected {want:?}:\n{out}");
    assert!(out.stdout.is_empty(), "{out}");
}

fn paths(listing: &Value) -> Vec<String> {
    listing["entries"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["path"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn bob_browses_alices_share_only_while_granted() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let dir = net.unique_dir("docs");
    std::fs::write(dir.join("a.txt"), "hello").unwrap();
    std::fs::write(dir.join("b.bin"), vec![7u8; 1000]).unwrap();
    std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
    std::fs::write(dir.join("sub/c.txt"), "c").unwrap();
    std::fs::write(dir.join("sub/deeper/d.txt"), "dd").unwrap();
    let dir_arg = dir.to_str().unwrap();

    let added = ok(&net, &p.alice, &["--json", "share", "add", "docs", dir_arg]).json();
    assert_eq!(added["name"], "docs", "{added}");
    assert_eq!(added["keep_versions"], 5, "{added}");
    let again = net.ctl(&p.alice, &["share", "add", "docs", dir_arg]);
    assert_eq!(again.code(), Some(1), "{again}");
    assert!(again.stderr.contains("exists already"), "{again}");

    // Before any grant: no shares, and the share reads like one that does not exist.
    let none = ok(&net, &p.bob, &["--json", "ls", "alice"]).json();
    assert_eq!(none["peer"], "alice", "{none}");
    assert!(none.get("shares").is_none(), "{none}");
    let text = ok(&net, &p.bob, &["ls", "alice"]);
    assert_eq!(text.stdout, "alice shares nothing with you\n", "{text}");
    assert_denied(&net, &p, "alice:docs", "docs");
    assert_denied(&net, &p, "alice:nothing-here", "nothing-here");

    let granted = ok(&net, &p.alice, &["--json", "grant", "docs", "bob", "read"]).json();
    assert_eq!(granted["right"], "read", "{granted}");
    let missing = net.ctl(&p.alice, &["grant", "nope", "bob", "read"]);
    assert_eq!(missing.code(), Some(1), "{missing}");
    assert!(missing.stderr.contains("no share named nope"), "{missing}");

    let shares = ok(&net, &p.bob, &["--json", "ls", "alice"]).json();
    assert_eq!(
        shares["shares"],
        serde_json::json!([{"name": "docs", "access": "read"}]),
        "{shares}"
    );

    let top = ok(&net, &p.bob, &["--json", "ls", "alice:docs", "-l"]).json();
    let entries = top["entries"].as_array().expect("entries");
    let brief: Vec<(&str, &str, u64)> = entries
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap(),
                e["kind"].as_str().unwrap(),
                e["size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        brief,
        [
            ("a.txt", "file", 5),
            ("b.bin", "file", 1000),
            ("sub", "dir", 0)
        ],
        "{top}"
    );
    assert!(
        entries.iter().all(|e| e["mtime"].as_u64() > Some(0)),
        "{top}"
    );

    let sub = ok(&net, &p.bob, &["ls", "alice:docs/sub"]);
    assert_eq!(sub.stdout, "c.txt\ndeeper/\n", "{sub}");
    let file = ok(&net, &p.bob, &["--json", "ls", "alice:docs/sub/c.txt"]).json();
    assert_eq!(paths(&file), ["c.txt"], "{file}");

    let all = ok(&net, &p.bob, &["--json", "ls", "alice:docs", "-R"]).json();
    assert_eq!(
        paths(&all),
        [
            "a.txt",
            "b.bin",
            "sub",
            "sub/c.txt",
            "sub/deeper",
            "sub/deeper/d.txt"
        ],
        "{all}"
    );
    assert!(all.get("truncated").is_none(), "{all}");

    for bad in ["alice:docs/../docs", "alice:docs/sub/../../x"] {
        let out = net.ctl(&p.bob, &["ls", bad]);
        assert_eq!(out.code(), Some(1), "{out}");
        assert!(out.stderr.contains("bad path"), "{out}");
    }
    let gone = net.ctl(&p.bob, &["ls", "alice:docs/nope"]);
    assert_eq!(gone.code(), Some(1), "{gone}");
    assert!(gone.stderr.contains("no such file or directory"), "{gone}");

    // The owner's view: counts once the first walk is done, and the grant by name.
    let listed = poll(DEADLINE, Duration::from_millis(50), || {
        let v = ok(&net, &p.alice, &["--json", "share", "ls"]).json();
        if v[0]["ready"] == true {
            Ok(v)
        } else {
            Err(format!("share not indexed yet: {v}"))
        }
    });
    assert_eq!(listed[0]["name"], "docs", "{listed}");
    assert_eq!(listed[0]["files"], 4, "{listed}");
    assert_eq!(listed[0]["bytes"], 5 + 1000 + 1 + 2, "{listed}");
    assert_eq!(listed[0]["grants"][0]["peer"], "bob", "{listed}");
    assert_eq!(listed[0]["grants"][0]["right"], "read", "{listed}");
    let table = ok(&net, &p.alice, &["share", "ls"]);
    assert!(table.stdout.contains("bob read"), "{table}");

    let revoked = ok(&net, &p.alice, &["--json", "revoke", "docs", "bob"]).json();
    assert_eq!(revoked["revoked"], true, "{revoked}");
    assert_denied(&net, &p, "alice:docs", "docs");
    let none = ok(&net, &p.bob, &["--json", "ls", "alice"]).json();
    assert!(none.get("shares").is_none(), "{none}");

    let removed = ok(&net, &p.alice, &["--json", "share", "rm", "docs"]).json();
    assert_eq!(removed["name"], "docs", "{removed}");
    let empty = ok(&net, &p.alice, &["--json", "share", "ls"]).json();
    assert_eq!(empty, serde_json::json!([]), "{empty}");
}

#[test]
fn a_share_must_be_an_existing_directory_with_a_plain_name() {
    let net = TestNet::new();
    let tracker = net.spawn_tracker(None);
    let alice = net.spawn_p2pd("alice", &tracker.addr_string(), &[]);
    let file = net.write_file("notes.txt", "x");
    let dir = net.unique_dir("d");
    let cases: [(&str, &str, &str); 3] = [
        ("notes", file.to_str().unwrap(), "not a directory"),
        ("gone", "/nonexistent/p2p-share-dir", "cannot share"),
        ("../up", dir.to_str().unwrap(), "bad share name"),
    ];
    for (name, path, needle) in cases {
        let out = net.ctl(&alice, &["share", "add", name, path]);
        assert_eq!(out.code(), Some(1), "{out}");
        assert!(out.stderr.contains(needle), "expected {needle:?}:\n{out}");
    }
    let out = net.ctl(&alice, &["--json", "share", "ls"]);
    out.assert_success();
    assert_eq!(out.json(), serde_json::json!([]), "{out}");
}
