//! Volume both ways at once: two piped `p2pctl chat` sessions, alice→bob and bob→alice, each
//! sending 1,000 lines back to back while the other does the same. Both report every message
//! delivered, and each side's history holds exactly the other's 1,000 lines, once each, in
//! the order they were typed.

use std::time::{Duration, Instant};

use p2p_tests::chat::{self, assert_unique_ids, texts};
use p2p_tests::{CmdOutput, TestNet, run_with_input};

const N: usize = 1000;
/// Generous: the `chat` drain alone may take 30 s before it gives up.
const CHAT_TIMEOUT: Duration = Duration::from_secs(60);

fn lines(from: &str) -> Vec<String> {
    (1..=N).map(|i| format!("{from} {i}")).collect()
}

#[track_caller]
fn assert_all_delivered(who: &str, out: &CmdOutput) {
    out.assert_success();
    assert!(
        out.stderr.contains(&format!("{N} delivered, 0 queued")),
        "{who}'s chat did not report {N} delivered:\n{out}"
    );
}

#[test]
fn a_thousand_messages_each_way_at_once_arrive_complete_and_in_order() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let to_bob = lines("a2b");
    let to_alice = lines("b2a");
    let start = Instant::now();
    let (a_out, b_out) = std::thread::scope(|s| {
        let input = |l: &[String]| l.iter().map(|l| format!("{l}\n")).collect::<String>();
        let a_in = input(&to_bob);
        let b_in = input(&to_alice);
        let chat = |from: &p2p_tests::P2pd, to: &str| {
            let mut cmd = net.command("p2pctl");
            cmd.arg("--socket").arg(&from.socket).args(["chat", to]);
            cmd
        };
        let (a_cmd, b_cmd) = (chat(&p.alice, "bob"), chat(&p.bob, "alice"));
        let a = s.spawn(|| run_with_input(a_cmd, Some(a_in.into_bytes()), CHAT_TIMEOUT));
        let b = s.spawn(|| run_with_input(b_cmd, Some(b_in.into_bytes()), CHAT_TIMEOUT));
        (
            a.join().expect("alice's chat thread"),
            b.join().expect("bob's chat thread"),
        )
    });
    eprintln!("{N} messages each way in {:?}", start.elapsed());
    assert_all_delivered("alice", &a_out);
    assert_all_delivered("bob", &b_out);

    for (who, other, daemon, want_in, want_out) in [
        ("alice", "bob", &p.alice, &to_alice, &to_bob),
        ("bob", "alice", &p.bob, &to_bob, &to_alice),
    ] {
        let h = net
            .ctl(daemon, &["--json", "history", other, "--limit", "5000"])
            .assert_success()
            .json();
        let h = h.as_array().expect("history --json is an array");
        assert_eq!(h.len(), 2 * N, "{who}: {N} each way");
        assert_unique_ids(h);
        let got = texts(h, "in");
        assert_eq!(got.len(), N, "{who} received");
        if &got != want_in {
            let first = got
                .iter()
                .zip(want_in.iter())
                .position(|(g, w)| g != w)
                .unwrap_or(0);
            panic!(
                "{who} received {other}'s lines out of order from index {first}: got {:?}, want {:?}",
                &got[first..(first + 5).min(N)],
                &want_in[first..(first + 5).min(N)]
            );
        }
        assert!(
            h.iter()
                .filter(|m| m["direction"] == "in")
                .all(|m| m["state"] == "received"),
            "{who}"
        );
        let seqs: Vec<u64> = h
            .iter()
            .filter(|m| m["direction"] == "in")
            .map(|m| m["seq"].as_u64().expect("seq"))
            .collect();
        assert!(
            seqs.iter().zip(1..).all(|(s, i)| *s == i),
            "{who}: seqs 1..={N} in order"
        );
        let sent = texts(h, "out");
        assert_eq!(&sent, want_out, "{who}'s own lines, in order");
        assert!(
            h.iter()
                .filter(|m| m["direction"] == "out")
                .all(|m| m["state"] == "delivered"),
            "{who}: all delivered"
        );
    }
}
