//! `p2pctl log` between two real daemons: alice and bob exchange messages and a file, and bob
//! lists alice's shares; alice's log shows the messages (never their text), the transfer and
//! the share listing; `log bob` keeps bob's records only; `--since` takes a duration or an
//! RFC 3339 time (a bad one is a usage error); `--json` prints one record a line; `--follow`
//! prints a record written after it started.

use std::time::{Duration, Instant};

use p2p_tests::chat::{self, Pair};
use p2p_tests::{CmdOutput, DEADLINE, TestNet};
use serde_json::Value;

const TO_BOB: &str = "the first secret for bob";
const TO_ALICE: &str = "the second secret for alice";
/// What [`exchange`] leaves in alice's log, each with bob as the peer.
const OPS: [&str; 6] = [
    "share-denied",
    "message-in",
    "message-out",
    "offer-out",
    "session-end",
    "share-list",
];

#[track_caller]
fn ok(net: &TestNet, who: &p2p_tests::P2pd, args: &[&str]) -> CmdOutput {
    let out = net.ctl(who, args);
    out.assert_success();
    out
}

/// The peer column of a human `log` line (`DATE TIME  PEER  OP ...`).
fn peer_of(line: &str) -> &str {
    line.split("  ").nth(1).unwrap_or("").trim()
}

/// Messages both ways, a file from alice to bob, and bob listing alice's shares; returns
/// once alice's activity file holds each of their records.
fn exchange(net: &TestNet, p: &Pair) {
    ok(net, &p.bob, &["trust", "alice", "--auto-accept"]);
    let out = ok(net, &p.alice, &["msg", "bob", TO_BOB]);
    assert_eq!(out.stdout, "delivered to bob\n", "{out}");
    ok(net, &p.bob, &["msg", "alice", TO_ALICE]);
    let src = net.unique_dir("src").join("report.pdf");
    std::fs::write(&src, vec![3u8; 300_000]).unwrap();
    ok(net, &p.alice, &["send", src.to_str().unwrap(), "bob"]);
    let docs = net.unique_dir("docs");
    std::fs::write(docs.join("a.txt"), "hello").unwrap();
    ok(
        net,
        &p.alice,
        &["share", "add", "docs", docs.to_str().unwrap()],
    );
    let denied = net.ctl(&p.bob, &["ls", "alice:docs"]);
    assert_eq!(denied.code(), Some(1), "{denied}");
    ok(net, &p.alice, &["grant", "docs", "bob", "read"]);
    ok(net, &p.bob, &["ls", "alice:docs"]);
    // The log is written by a background thread: wait until the file has every record.
    for op in OPS {
        let tag = format!(r#""op":"{op}""#);
        p.alice
            .wait_activity(op, 1, DEADLINE, |l| l.contains(&tag) && l.contains("bob"));
    }
}

#[test]
fn the_log_shows_messages_transfers_and_share_listings_by_peer_and_time() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    exchange(&net, &p);

    let all = ok(&net, &p.alice, &["log"]).stdout;
    for op in OPS {
        assert!(
            all.lines().any(|l| l.contains(op) && peer_of(l) == "bob"),
            "no {op} record with bob:\n{all}"
        );
    }
    assert!(all.contains("share=docs"), "{all}");
    for text in [TO_BOB, TO_ALICE] {
        assert!(!all.contains(text), "a message body is in the log:\n{all}");
        let raw = p.alice.activity_log().join("\n");
        assert!(!raw.contains(text), "a message body is in the file:\n{raw}");
    }
    assert!(
        all.lines()
            .any(|l| l.contains("register") && peer_of(l) == "-"),
        "the tracker registration (no peer) is in the whole log:\n{all}"
    );

    let bobs = ok(&net, &p.alice, &["log", "bob"]).stdout;
    assert!(bobs.contains("message-in"), "{bobs}");
    assert!(
        bobs.lines().all(|l| peer_of(l) == "bob"),
        "`log bob` shows only bob's records:\n{bobs}"
    );
    let by_id = ok(&net, &p.alice, &["log", &p.bob.id()[..12]]).stdout;
    assert_eq!(by_id.lines().count(), bobs.lines().count(), "{by_id}");

    let recent = ok(&net, &p.alice, &["log", "--since", "1h"]).stdout;
    assert!(recent.contains("message-out"), "{recent}");
    let future = ok(&net, &p.alice, &["log", "--since", "2099-01-01T00:00:00Z"]);
    assert_eq!(future.stdout, "", "{future}");
    let bad = net.ctl(&p.alice, &["log", "--since", "yesterday"]);
    assert_eq!(bad.code(), Some(2), "{bad}");
    assert!(bad.stderr.contains("2026-12-05T10:00:00Z"), "{bad}");
    let unknown = net.ctl(&p.alice, &["log", "nobody"]);
    assert_eq!(unknown.code(), Some(1), "{unknown}");

    let limited = ok(&net, &p.alice, &["--json", "log", "--limit", "3"]).stdout;
    assert_eq!(limited.lines().count(), 3, "{limited}");
    let json = ok(&net, &p.alice, &["--json", "log", "bob"]).stdout;
    let records: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let incoming = records
        .iter()
        .find(|r| r["op"] == "message-in")
        .unwrap_or_else(|| panic!("no message-in record: {json}"));
    assert_eq!(incoming["peer"], "bob", "{incoming}");
    assert_eq!(incoming["fields"]["bytes"], TO_ALICE.len(), "{incoming}");
    assert!(
        incoming["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{incoming}"
    );
}

#[test]
fn follow_prints_records_written_after_it_started() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let socket = p.alice.socket.as_os_str();
    let args = [
        "--socket".as_ref(),
        socket,
        "--json".as_ref(),
        "log".as_ref(),
    ];
    let more = [
        "bob".as_ref(),
        "--follow".as_ref(),
        "--limit".as_ref(),
        "1".as_ref(),
    ];
    let mut follow = net.spawn(
        "p2pctl log --follow",
        "p2pctl",
        &[&args[..], &more[..]].concat(),
    );
    follow.wait_stderr_line("following the activity log", DEADLINE);
    ok(&net, &p.bob, &["msg", "alice", "hello again"]);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = follow
            .next_line(left.max(Duration::from_millis(1)))
            .unwrap_or_else(|| panic!("no message-in record streamed within {DEADLINE:?}"));
        let record: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(record["peer"], "bob", "only bob's records: {record}");
        if record["op"] == "message-in" {
            assert!(!line.contains("hello again"), "{line}");
            break;
        }
    }
}
