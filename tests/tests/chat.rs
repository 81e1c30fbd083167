//! Chat between two daemons, as users see it: `p2pctl msg` delivers and says so, the
//! receiver's events and both histories (human and `--json`) show the message with its state;
//! hostile text is stored intact but shown neutralised; blocking refuses messages (before a
//! link exists and on an existing link) until unblocked; trust flags show in `peers`; and
//! `forget-key` lets a peer's new key in after the tracker showed it as changed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use p2p_tests::chat::{self, history, texts};
use p2p_tests::{DEADLINE, TestNet, events};
use serde_json::Value;

fn now_ms() -> u64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    u64::try_from(d.as_millis()).expect("fits")
}

/// `HH:MM:SS` followed by `rest`.
fn is_clock_then(line: &str, rest: &str) -> bool {
    let b = line.as_bytes();
    line.len() > 8
        && b[2] == b':'
        && b[5] == b':'
        && [0, 1, 3, 4, 6, 7].iter().all(|&i| b[i].is_ascii_digit())
        && &line[8..] == rest
}

fn peer<'a>(peers: &'a Value, name: &str) -> &'a Value {
    peers
        .as_array()
        .expect("peers --json prints an array")
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} not listed in {peers:#}"))
}

#[test]
fn msg_is_delivered_and_shows_in_both_histories() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let (alice_id, bob_id) = (p.alice.id(), p.bob.id());
    let mut bob_watch = net.watch(&p.bob);
    let before = now_ms();

    let out = net.ctl(&p.alice, &["msg", "bob", "hi"]);
    out.assert_success();
    assert_eq!(out.stdout, "delivered to bob\n", "{out}");
    let after = now_ms();

    // Bob's event stream shows it, from alice.
    let ev = bob_watch.wait_for("hi received", events::message_received("hi"), DEADLINE);
    let m = &ev["message"];
    assert_eq!(m["peer"], alice_id.as_str(), "{ev}");
    assert_eq!(m["peer_name"], "alice", "{ev}");
    assert_eq!(m["direction"], "in", "{ev}");
    assert_eq!(m["state"], "received", "{ev}");

    // Human history on both sides.
    let out = net.ctl(&p.alice, &["history", "bob"]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(is_clock_then(lines[0], "  you  hi  [delivered]"), "{out}");
    let out = net.ctl(&p.bob, &["history", "alice"]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(is_clock_then(lines[0], "  alice  hi"), "{out}");

    // `--json history`: every field, on both sides, for the same message.
    let sent = net
        .ctl(&p.alice, &["--json", "history", "bob"])
        .assert_success()
        .json();
    let got = net
        .ctl(&p.bob, &["--json", "history", "alice"])
        .assert_success()
        .json();
    let (sent, got) = (&sent[0], &got[0]);
    let id = sent["id"].as_str().expect("id is a string");
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "id is 32 hex characters: {sent}"
    );
    assert_eq!(sent["peer"], bob_id.as_str(), "{sent}");
    assert_eq!(sent["peer_name"], "bob", "{sent}");
    assert_eq!(sent["direction"], "out", "{sent}");
    assert_eq!(sent["seq"], 1, "{sent}");
    assert_eq!(sent["text"], "hi", "{sent}");
    assert_eq!(sent["state"], "delivered", "{sent}");
    let at = sent["sent_at"].as_u64().expect("sent_at is a number");
    assert!(
        (before..=after).contains(&at),
        "sent_at {at} is Unix ms within the send ({before}..={after}): {sent}"
    );
    assert!(
        sent.get("detail").is_none(),
        "no detail unless refused: {sent}"
    );
    assert_eq!(got["id"], id, "the receiver keeps the sender's id: {got}");
    assert_eq!(got["peer"], alice_id.as_str(), "{got}");
    assert_eq!(got["peer_name"], "alice", "{got}");
    assert_eq!(got["direction"], "in", "{got}");
    assert_eq!(got["seq"], 1, "{got}");
    assert_eq!(got["text"], "hi", "{got}");
    assert_eq!(got["state"], "received", "{got}");
    assert_eq!(got["sent_at"], at, "{got}");
    assert_eq!(got, &ev["message"], "the event carries the stored message");

    // `msg --json` prints the message in its final state; the conversation's seq goes on.
    let m = net
        .ctl(&p.alice, &["--json", "msg", "bob", "second"])
        .assert_success()
        .json();
    assert_eq!(
        (&m["state"], &m["seq"]),
        (&"delivered".into(), &2.into()),
        "{m}"
    );
    // A reply the other way, with an id prefix instead of a name.
    let out = net.ctl(&p.bob, &["msg", &alice_id[..10], "hello", "back"]);
    out.assert_success();
    assert_eq!(out.stdout, "delivered to alice\n", "{out}");
    let h = history(&p.alice, "bob");
    assert_eq!(texts(&h, "out"), ["hi", "second"]);
    assert_eq!(texts(&h, "in"), ["hello back"], "{h:#?}");
    assert_eq!(h[2]["seq"], 1, "bob's own conversation seq: {h:#?}");
    assert_eq!(history(&p.bob, "alice").len(), 3);

    // `--limit` keeps the latest.
    let last = net
        .ctl(&p.alice, &["--json", "history", "bob", "--limit", "1"])
        .assert_success()
        .json();
    assert_eq!(texts(last.as_array().expect("array"), "in"), ["hello back"]);
    assert_eq!(last.as_array().map(Vec::len), Some(1));
}

/// Clears the screen, sets the clipboard (OSC 52), reverses the text direction.
const HOSTILE: &str = "clear\u{1b}[2J clip\u{1b}]52;c;aGk=\u{7} bidi\u{202e}txet";

/// What the hostile text must look like on a terminal.
const SHOWN: &str = "clear\\e[2J clip\\e]52;c;aGk=\\u{7} bidi\\u{202e}txet";

#[track_caller]
fn assert_neutralised(what: &str, text: &str) {
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{202e}') && !text.contains('\u{7}'),
        "{what} lets escape, bell or bidi characters through: {text:?}"
    );
    assert!(
        text.contains(SHOWN),
        "{what} does not show the escapes visibly: {text:?}"
    );
}

#[test]
fn escape_sequences_are_stored_intact_and_shown_neutralised() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    // Bob follows along twice: `watch` (human) and a piped `chat alice` (kept open).
    let mut watch = net.spawn(
        "p2pctl watch (human)",
        "p2pctl",
        &[
            "--socket".as_ref(),
            p.bob.socket.as_os_str(),
            "watch".as_ref(),
        ],
    );
    watch.wait_stderr_line("watching p2pd at", DEADLINE);
    let mut bob_chat = net.spawn_with_stdin(
        "p2pctl chat alice",
        "p2pctl",
        &[
            "--socket".as_ref(),
            p.bob.socket.as_os_str(),
            "chat".as_ref(),
            "alice".as_ref(),
        ],
    );
    // Bob's chat subscribes before it reads input: once its first line reached alice, it
    // sees everything alice sends.
    bob_chat.write_stdin(b"ready\n");
    chat::wait_history(&p.alice, "bob", "bob's chat ready", DEADLINE, |h| {
        (texts(h, "in") == ["ready"]).then_some(())
    });

    let out = net.ctl(&p.alice, &["msg", "bob", HOSTILE]);
    out.assert_success();
    assert_eq!(out.stdout, "delivered to bob\n", "{out}");

    // Stored and served exactly as sent, on both sides.
    for (who, h) in [
        ("alice", history(&p.alice, "bob")),
        ("bob", history(&p.bob, "alice")),
    ] {
        let stored: Vec<&Value> = h.iter().filter(|m| m["text"] != "ready").collect();
        assert_eq!(stored.len(), 1, "{who}: {h:#?}");
        assert_eq!(stored[0]["text"], HOSTILE, "{who} altered the text");
    }
    let json = net
        .ctl(&p.bob, &["--json", "history", "alice"])
        .assert_success()
        .json();
    assert_eq!(texts(json.as_array().expect("array"), "in"), [HOSTILE]);

    // Shown neutralised: human history on both sides.
    let out = net.ctl(&p.alice, &["history", "bob"]);
    out.assert_success();
    assert_neutralised("alice's history", &out.stdout);
    let out = net.ctl(&p.bob, &["history", "alice"]);
    out.assert_success();
    assert_neutralised("bob's history", &out.stdout);

    // `watch` on bob (earlier events, such as the delivery of "ready", come first).
    let line = loop {
        let l = watch.wait_line("", DEADLINE);
        if l.contains("message from alice: clear") {
            break l;
        }
    };
    assert_neutralised("watch", &line);

    // Bob's chat shows the incoming line neutralised, then ends cleanly at end of input.
    let line = loop {
        let l = bob_chat.wait_line("", DEADLINE);
        if l.contains(" alice: ") {
            break l;
        }
    };
    assert_neutralised("chat (incoming)", &line);
    bob_chat.close_stdin();
    let status = bob_chat.wait_exit(DEADLINE);
    assert!(status.success(), "bob's chat exited with {status}");

    // Alice's piped chat echoes what she sends, neutralised too.
    let out = net.ctl_with_input(
        &p.alice,
        &["chat", "bob"],
        format!("{HOSTILE}\n").as_bytes(),
        DEADLINE,
    );
    out.assert_success();
    assert_neutralised("chat (echo)", &out.stdout);
    assert!(out.stderr.contains("1 delivered, 0 queued"), "{out}");
    assert!(!out.stderr.contains('\u{1b}'), "{out}");
    let h = history(&p.bob, "alice");
    assert_eq!(texts(&h, "in"), [HOSTILE, HOSTILE]);
}

#[test]
fn a_blocked_peer_is_refused_until_unblocked_and_trust_shows_in_peers() {
    let net = TestNet::new();
    let mut p = chat::pair(&net);
    // A link exists: one message went through.
    net.ctl(&p.alice, &["msg", "bob", "before"])
        .assert_success();

    let out = net.ctl(&p.bob, &["block", "alice"]);
    out.assert_success();
    assert!(out.stdout.contains("alice is blocked"), "{out}");
    let peers = net
        .ctl(&p.bob, &["--json", "peers"])
        .assert_success()
        .json();
    assert_eq!(peer(&peers, "alice")["blocked"], true, "{peers:#}");

    // On the existing link: the message is refused, and msg says so with exit 1.
    let out = net.ctl(&p.alice, &["msg", "bob", "while blocked"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("bob refused the message") && out.stderr.contains("blocked"),
        "{out}"
    );
    // The block outlives bob's restart, and a new link is refused as a whole.
    let mut watch = net.watch(&p.alice);
    p.bob.restart();
    watch.wait_for("bob back", events::peer_joined("bob"), DEADLINE);
    let out = net.ctl(&p.alice, &["msg", "bob", "after restart"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("bob refused the message") && out.stderr.contains("blocked"),
        "{out}"
    );
    let h = history(&p.alice, "bob");
    let refused: Vec<&Value> = h.iter().filter(|m| m["state"] == "refused").collect();
    assert_eq!(refused.len(), 2, "{h:#?}");
    assert!(
        refused
            .iter()
            .all(|m| m["detail"].as_str().is_some_and(|d| d.contains("blocked"))),
        "{h:#?}"
    );
    let out = net.ctl(&p.alice, &["history", "bob"]);
    assert!(out.stdout.contains("[refused: "), "{out}");
    assert_eq!(
        texts(&history(&p.bob, "alice"), "in"),
        ["before"],
        "bob stored nothing from alice while she was blocked"
    );

    // Unblocked: the next message goes through; refused ones stay refused (not retried).
    let out = net.ctl(&p.bob, &["unblock", "alice"]);
    out.assert_success();
    assert!(out.stdout.contains("alice is no longer blocked"), "{out}");
    let out = net.ctl(&p.alice, &["msg", "bob", "after unblock"]);
    out.assert_success();
    assert_eq!(out.stdout, "delivered to bob\n", "{out}");
    assert_eq!(
        texts(&history(&p.bob, "alice"), "in"),
        ["before", "after unblock"]
    );

    // Trust with auto-accept, as `peers --json` shows it; untrust clears both.
    let out = net.ctl(&p.alice, &["trust", "bob", "--auto-accept"]);
    out.assert_success();
    assert_eq!(out.stdout, "bob is trusted (auto-accept on)\n", "{out}");
    let peers = net
        .ctl(&p.alice, &["--json", "peers"])
        .assert_success()
        .json();
    let b = peer(&peers, "bob");
    assert_eq!(
        (&b["trusted"], &b["auto_accept"]),
        (&true.into(), &true.into()),
        "{b}"
    );
    assert_eq!(b["blocked"], false, "{b}");
    net.ctl(&p.alice, &["untrust", "bob"]).assert_success();
    let peers = net
        .ctl(&p.alice, &["--json", "peers"])
        .assert_success()
        .json();
    let b = peer(&peers, "bob");
    assert_eq!(
        (&b["trusted"], &b["auto_accept"]),
        (&false.into(), &false.into()),
        "{b}"
    );
    // Unknown peers are an error (exit 1), not a usage error.
    net.ctl(&p.alice, &["block", "nobody"]).assert_code(1);
    net.ctl(&p.alice, &["msg", "nobody", "x"]).assert_code(1);
}

#[test]
fn a_refused_link_is_not_redialled_in_a_loop() {
    let net = TestNet::new();
    let mut p = chat::pair(&net);
    net.ctl(&p.bob, &["block", "alice"]).assert_success();
    // Bob restarts, so no link is left over: alice must dial him, and he refuses the link.
    let mut watch = net.watch(&p.alice);
    p.bob.restart();
    watch.wait_for("bob back", events::peer_joined("bob"), DEADLINE);
    net.ctl(&p.alice, &["msg", "bob", "refused"]).assert_code(1);
    watch.wait_for("the refusal", events::link_error("blocked"), DEADLINE);
    // Nothing is left to send, and bob said no: alice may try again later, with backoff,
    // but must not hammer bob with handshakes.
    let window = Duration::from_secs(2);
    let errors = watch
        .collect_for(window)
        .into_iter()
        .filter(|e| e["type"] == "link_error")
        .count();
    assert!(
        errors <= 3,
        "alice redialled bob {errors} times within {window:?} after he refused the link"
    );
    // Still fine once unblocked.
    net.ctl(&p.bob, &["unblock", "alice"]).assert_success();
    net.ctl(&p.alice, &["msg", "bob", "accepted"])
        .assert_success();
    assert_eq!(texts(&history(&p.bob, "alice"), "in"), ["accepted"]);
}

#[test]
fn forget_key_lets_a_changed_key_in() {
    let net = TestNet::new();
    let mut p = chat::pair(&net);
    let old_bob = p.bob.id();

    net.ctl(&p.alice, &["msg", "bob", "to the old key"])
        .assert_success();

    // Bob loses his key: he goes away, the tracker is reset (it forgets who owns which name
    // but keeps its own key), and a new bob, with a new key, registers the name.
    let mut watch = net.watch(&p.alice);
    p.bob.stop();
    p.alice.wait_peer("bob", false, DEADLINE);
    p.tracker.stop();
    for f in ["tracker.db", "tracker.db-wal", "tracker.db-shm"] {
        let path = p.tracker.state_dir.join(f);
        if path.exists() {
            std::fs::remove_file(&path).expect("remove the tracker's name database");
        }
    }
    p.tracker.restart();
    let new_bob = net.spawn_p2pd("bob", &p.tracker.addr_string(), &[]);
    let new_id = new_bob.id();
    assert_ne!(new_id, old_bob);

    // Alice refuses the new key and says so.
    watch.wait_for(
        "the changed key reported",
        |ev| {
            events::link_error("forget-key")(ev)
                && ev["detail"].as_str().is_some_and(|d| d.contains(&new_id))
        },
        DEADLINE,
    );
    let b = p
        .alice
        .wait_until("bob's key conflict listed", DEADLINE, |rpc| {
            let peers = rpc.call("peers", serde_json::json!({}));
            peers
                .as_array()?
                .iter()
                .find(|b| b["name"] == "bob")
                .cloned()
                .filter(|b| b["key_conflict"] == new_id.as_str())
        });
    assert_eq!(b["id"], old_bob.as_str(), "the old key stays pinned: {b}");
    let out = net.ctl(&p.alice, &["peers"]);
    out.assert_success();
    assert!(out.stdout.contains("KEY CHANGED"), "{out}");
    // A message to "bob" now is for the pinned (old) key: it waits, and never reaches the
    // new key.
    let out = net.ctl(&p.alice, &["msg", "bob", "for the old key only"]);
    out.assert_success();
    assert!(out.stdout.starts_with("queued for bob"), "{out}");

    // The user accepts the new key; a block on the name stays in place, trust does not move.
    net.ctl(&p.alice, &["trust", "bob"]).assert_success();
    net.ctl(&p.alice, &["block", "bob"]).assert_success();
    let out = net.ctl(&p.alice, &["forget-key", "bob"]);
    out.assert_success();
    assert!(out.stdout.contains("is now pinned to key"), "{out}");
    let peers = net
        .ctl(&p.alice, &["--json", "peers"])
        .assert_success()
        .json();
    let b = peer(&peers, "bob");
    assert_eq!(b["id"], new_id.as_str(), "{peers:#}");
    assert_eq!(b["online"], true, "{peers:#}");
    assert!(b.get("key_conflict").is_none(), "{peers:#}");
    assert_eq!(
        (&b["blocked"], &b["trusted"]),
        (&true.into(), &false.into()),
        "{b}"
    );
    net.ctl(&p.alice, &["unblock", "bob"]).assert_success();
    let out = net.ctl(&p.alice, &["msg", "bob", "hello new bob"]);
    out.assert_success();
    assert_eq!(out.stdout, "delivered to bob\n", "{out}");
    let got = history(&new_bob, "alice");
    assert_eq!(
        texts(&got, "in"),
        ["hello new bob"],
        "the new key gets only what was sent to it"
    );
    // The conversation stays reachable by the name: what went to the old key, then the new.
    let h = history(&p.alice, "bob");
    assert_eq!(
        texts(&h, "out").last().map(String::as_str),
        Some("hello new bob"),
        "{h:#?}"
    );
    assert!(
        texts(&h, "out").iter().any(|t| t == "for the old key only"),
        "{h:#?}"
    );

    // With no conflict, forget-key is refused and changes nothing: peers still lists bob
    // with his key, and messages still go through.
    let out = net.ctl(&p.alice, &["forget-key", "bob"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("no other key is shown for bob"),
        "{out}"
    );
    let peers = net
        .ctl(&p.alice, &["--json", "peers"])
        .assert_success()
        .json();
    assert_eq!(peer(&peers, "bob")["id"], new_id.as_str(), "{peers:#}");
    net.ctl(&p.alice, &["msg", "bob", "still there"])
        .assert_success();
    assert_eq!(
        texts(&history(&new_bob, "alice"), "in"),
        ["hello new bob", "still there"]
    );
    net.ctl(&p.alice, &["forget-key", "nobody"]).assert_code(1);
}
