//! `p2pctl chat` on a terminal (a pseudo-terminal): the line editor keeps a half-typed line
//! intact while the conversation prints above it, edits with arrows and ctrl-a/ctrl-e and
//! recalls the session's lines with the up arrow; chat opens with the recent conversation,
//! shows the peer's offers, leaves on ctrl-d and ctrl-c with the terminal restored, and says
//! that p2pd stopped (not that the peer left) when the local daemon goes away.

use p2p_tests::chat::{self, texts};
use p2p_tests::pty::PtyProc;
use p2p_tests::{DEADLINE, P2pd, TestNet};

/// `p2pctl chat PEER` of `p2pd` on a new terminal.
fn open_chat(net: &TestNet, p2pd: &P2pd, peer: &str) -> PtyProc {
    let mut cmd = net.command("p2pctl");
    cmd.arg("--socket").arg(&p2pd.socket).args(["chat", peer]);
    PtyProc::spawn(&format!("p2pctl chat {peer}"), cmd)
}

/// Waits until bob's conversation with alice holds exactly `want` from her.
fn bob_received(p: &chat::Pair, want: &[&str]) {
    chat::wait_history(
        &p.bob,
        "alice",
        &format!("{want:?} at bob"),
        DEADLINE,
        |h| (texts(h, "in") == want).then_some(()),
    );
}

#[test]
fn a_half_typed_line_survives_incoming_messages_and_offers_show_in_the_conversation() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    net.ctl(&p.alice, &["msg", "bob", "from before"])
        .assert_success();

    let mut tty = open_chat(&net, &p.alice, "bob");
    // The recent conversation comes first, then the prompt.
    tty.wait_text(0, "bob> ", DEADLINE);
    let opening = tty.text_from(0);
    assert!(opening.contains("chatting with bob (online)"), "{opening}");
    let before = opening.find("you: from before").expect("history shown");
    assert!(before < opening.find("bob> ").expect("prompt"), "{opening}");

    // A half-typed line, then a message from bob while it is pending.
    tty.type_keys(b"half typed");
    let typed = tty.wait_text(0, "bob> half typed", DEADLINE);
    net.ctl(&p.bob, &["msg", "alice", "hello from bob"])
        .assert_success();
    tty.wait_until(typed, "the message, then the half line", DEADLINE, |t| {
        t.find("bob: hello from bob")
            .is_some_and(|i| t[i..].contains("bob> half typed"))
    });
    let after = tty.text_from(typed);
    let i = after.find("bob: hello from bob").expect("shown");
    assert!(
        !after[..i].contains("half typed"),
        "the message is not glued to the typed text: {after:?}"
    );

    // Enter sends exactly what was typed.
    tty.type_keys(b"\r");
    bob_received(&p, &["from before", "half typed"]);

    // Editing keys: ctrl-a, ctrl-e and the left arrow move in the line.
    let mark = tty.len();
    tty.type_keys(b"bc\x01a\x05d\x1b[DX\r");
    bob_received(&p, &["from before", "half typed", "abcXd"]);
    assert!(!tty.text_from(mark).contains("^["), "{}", tty.dump());
    // The up arrow brings back the line sent last.
    tty.type_keys(b"\x1b[A\r");
    bob_received(&p, &["from before", "half typed", "abcXd", "abcXd"]);

    // An offer from bob, with the command that takes it.
    let file = net.write_file("report.txt", "twelve bytes");
    let mark = tty.len();
    net.ctl(
        &p.bob,
        &[
            "send",
            file.to_str().expect("utf-8 path"),
            "alice",
            "--no-wait",
        ],
    )
    .assert_success();
    tty.wait_until(mark, "the offer line", DEADLINE, |t| {
        t.lines()
            .any(|l| l.contains("bob offers report.txt (12 B): p2pctl accept ") && l.len() > 40)
    });

    // ctrl-d on an empty line leaves, status 0, the terminal as it was.
    tty.type_keys(b"\x04");
    let status = tty.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0), "{}", tty.dump());
    assert!(tty.is_cooked(), "terminal left in raw mode");
}

#[test]
fn ctrl_c_leaves_and_a_stopped_daemon_is_not_the_peer_going_offline() {
    let net = TestNet::new();
    let mut p = chat::pair(&net);

    let mut tty = open_chat(&net, &p.alice, "bob");
    tty.wait_text(0, "bob> ", DEADLINE);
    tty.type_keys(b"never sent");
    tty.wait_text(0, "bob> never sent", DEADLINE);
    tty.type_keys(b"\x03");
    let status = tty.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0), "{}", tty.dump());
    assert!(tty.is_cooked(), "terminal left in raw mode");

    let mut tty = open_chat(&net, &p.alice, "bob");
    let ready = tty.wait_text(0, "bob> ", DEADLINE);
    tty.type_keys(b"half");
    tty.wait_text(0, "bob> half", DEADLINE);
    p.alice.stop();
    tty.wait_text(ready, "p2pd stopped; chat ended", DEADLINE);
    let status = tty.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(3), "{}", tty.dump());
    let shown = tty.text_from(ready);
    assert!(!shown.contains("offline"), "{shown}");
    assert!(tty.is_cooked(), "terminal left in raw mode");
    // bob got nothing of what was typed.
    bob_received(&p, &[]);
}
