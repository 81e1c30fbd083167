//! Every change to the peer table reaches `watch`: trusting, untrusting, blocking,
//! unblocking and forgetting a key each publish `peer_updated` with the peer as it now is.

use p2p_tests::chat;
use p2p_tests::{DEADLINE, TestNet, events};
use serde_json::Value;

/// A peer's (trusted, auto_accept, blocked).
type Flags = (bool, bool, bool);

/// The flags of the peer in a `peer_updated` event.
fn flags(ev: &Value) -> Flags {
    let peer = &ev["peer"];
    let flag = |name: &str| peer[name].as_bool().unwrap_or(false);
    (flag("trusted"), flag("auto_accept"), flag("blocked"))
}

#[test]
fn watch_shows_peer_updated_for_each_flag_change_and_forgotten_key() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let bob_id = p.bob.id();
    let mut watch = net.watch(&p.alice);

    let steps: [(&[&str], Flags); 4] = [
        (&["trust", "bob", "--auto-accept"], (true, true, false)),
        (&["block", "bob"], (true, true, true)),
        (&["unblock", "bob"], (true, true, false)),
        (&["untrust", "bob"], (false, false, false)),
    ];
    for (args, want) in steps {
        watch.mark();
        net.ctl(&p.alice, args).assert_success();
        let ev = watch.wait_for(&args.join(" "), events::peer_updated("bob"), DEADLINE);
        assert_eq!(ev["peer"]["id"], bob_id.as_str(), "{ev}");
        assert_eq!(ev["peer"]["online"], true, "{ev}");
        assert_eq!(flags(&ev), want, "after {args:?}: {ev}");
    }

    // Forgetting the pinned key clears the flags, and says so.
    net.ctl(&p.alice, &["trust", "bob"]).assert_success();
    watch.wait_for(
        "trust again",
        |ev| events::peer_updated("bob")(ev) && flags(ev).0,
        DEADLINE,
    );
    watch.mark();
    net.ctl(&p.alice, &["forget-key", "bob", "--force"])
        .assert_success();
    let ev = watch.wait_for("forget-key", events::peer_updated("bob"), DEADLINE);
    assert_eq!(flags(&ev), (false, false, false), "{ev}");
}
