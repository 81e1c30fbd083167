//! A PEER argument that names nobody fails the same way in `msg`, `send` and `chat` (exit 1,
//! the same message, a hint to `p2pctl peers`), and the message says what was wrong: a close
//! name, a key prefix too short, or one's own name. `msg` and `send` hear it from p2pd,
//! `chat` finds it itself: the rule is one.

use std::time::Duration;

use p2p_tests::{CmdOutput, TestNet, chat};

/// What each of `msg`, `send` and `chat` says for `peer`, after checking they agree.
#[track_caller]
fn refusal(net: &TestNet, p: &p2p_tests::P2pd, peer: &str) -> String {
    let file = net.write_file("note.txt", "hello\n");
    let file = file.to_str().expect("utf-8 path");
    let runs: [CmdOutput; 3] = [
        net.ctl(p, &["msg", peer, "hello"]),
        net.ctl(p, &["send", "--no-wait", file, peer]),
        net.ctl_with_input(p, &["chat", peer], b"hello\n", Duration::from_secs(30)),
    ];
    for out in &runs {
        out.assert_code(1);
        assert!(out.stdout.is_empty(), "nothing on stdout:\n{out}");
        assert!(
            out.stderr
                .ends_with("\nhint: 'p2pctl peers' lists the peers you know, by name and id\n"),
            "{out}"
        );
        assert_eq!(
            out.stderr, runs[0].stderr,
            "the same words:\n{out}\n{}",
            runs[0]
        );
    }
    runs[0].stderr.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn msg_send_and_chat_refuse_a_bad_peer_alike_and_say_why() {
    let net = TestNet::new();
    let p = chat::pair(&net);

    assert_eq!(
        refusal(&net, &p.alice, "bobb"),
        "p2pctl: unknown peer 'bobb': did you mean 'bob'?"
    );
    assert_eq!(
        refusal(&net, &p.alice, "Alice"),
        "p2pctl: 'Alice' is you: name another peer"
    );
    // Seven characters of bob's id: too short, and too far from any name to be a typo.
    let id = p.bob.id();
    let short = &id[..7];
    assert_eq!(
        refusal(&net, &p.alice, short),
        format!("p2pctl: '{short}' is too short for a key prefix: give at least 8 characters")
    );
    // Nothing was sent or offered.
    assert!(chat::history(&p.alice, "bob").is_empty());
    let transfers = net.ctl(&p.alice, &["--json", "transfers"]);
    transfers.assert_success();
    assert_eq!(transfers.stdout.trim(), "[]", "{transfers}");
}
