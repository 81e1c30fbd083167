//! `status` reports each discovery source: the tracker (registered, then down once it is
//! killed), the open peer links and the address book, in `p2pctl --json status` and in the
//! human block, one line each.

use p2p_tests::chat::{self, wait_delivered};
use p2p_tests::{DEADLINE, P2pd, TestNet};
use serde_json::{Value, json};

/// `p2pctl --json status` of `p`.
#[track_caller]
fn status(net: &TestNet, p: &P2pd) -> Value {
    let out = net.ctl(p, &["--json", "status"]);
    out.assert_success();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("status is JSON ({e}):\n{out}"))
}

/// The entry of source `kind` in a status.
#[track_caller]
fn source<'a>(status: &'a Value, kind: &str) -> &'a Value {
    let sources = status["sources"].as_array().expect("status has sources");
    let mut of_kind = sources.iter().filter(|s| s["kind"] == kind);
    let found = of_kind
        .next()
        .unwrap_or_else(|| panic!("no {kind} source: {status:#}"));
    assert!(of_kind.next().is_none(), "one {kind} source: {status:#}");
    found
}

#[test]
fn status_shows_the_tracker_the_links_and_the_book_by_source() {
    let net = TestNet::new();
    let mut p = chat::pair(&net);

    let s = status(&net, &p.alice);
    let tracker = source(&s, "tracker");
    assert_eq!(tracker["state"], "registered", "{s:#}");
    assert_eq!(tracker["addr"], json!(p.tracker.addr_string()), "{s:#}");
    assert_eq!(tracker["key"], json!(p.tracker.key), "{s:#}");
    assert_eq!(tracker["peers"], 1, "the tracker sees bob: {s:#}");
    assert_eq!(source(&s, "link")["peers"], 0, "no link yet: {s:#}");
    assert_eq!(source(&s, "book")["peers"], 0, "nobody pinned yet: {s:#}");
    assert_eq!(s["tracker"]["state"], "registered", "the old field stays");

    // A message opens the link (alice has adopted it before it carries anything) and pins bob
    // with the address the tracker gave.
    chat::send(&p.alice, "bob", "hello");
    wait_delivered(&p.alice, "bob", 1, DEADLINE);
    let s = status(&net, &p.alice);
    assert_eq!(source(&s, "link")["peers"], 1, "{s:#}");
    assert_eq!(source(&s, "book")["peers"], 1, "{s:#}");

    p.tracker.proc.kill();
    p.alice.wait_until("tracker down", DEADLINE, |rpc| {
        let s = rpc.call("status", json!({}));
        (source(&s, "tracker")["state"] == "down").then_some(())
    });
    let s = status(&net, &p.alice);
    let tracker = source(&s, "tracker");
    assert_eq!(tracker["state"], "down", "{s:#}");
    assert!(
        tracker["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "down says why: {s:#}"
    );
    assert_eq!(tracker["peers"], 0, "{s:#}");
    assert_eq!(
        source(&s, "link")["peers"],
        1,
        "the link outlives the tracker: {s:#}"
    );
    assert_eq!(
        s["tracker"]["state"], "connecting",
        "the old field keeps its words"
    );

    let out = net.ctl(&p.alice, &["status"]);
    out.assert_success();
    let line = |key: &str| {
        out.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no {key} line:\n{out}"))
            .to_owned()
    };
    let tracker_line = line("tracker");
    assert!(
        tracker_line.contains(&p.tracker.addr_string()) && tracker_line.contains(" down "),
        "{out}"
    );
    assert!(line("link").ends_with("1 peer linked"), "{out}");
    assert!(line("book").ends_with("1 address kept"), "{out}");
}
