//! Multi-source `get --from` over real links: the tracker, bob and the seeders alice (the
//! owner), carol and dave each run in their own network namespace on one switch (see
//! `p2p_tests::netns`), every seeder's link capped by a `tbf` qdisc, bob's not. The seeders
//! share one directory holding the file and grant bob read; bob runs `get alice:rel/f
//! --from carol,dave`.
//!
//! - With the three links capped alike, every source serves a fair share of the bytes (at
//!   least [`FAIR_SHARE`] each, from what `transfers --json` lists), and the file is right.
//! - carol's cable is pulled once bob's progress shows she has served something: the
//!   download completes from alice and dave, the file is right, and carol is listed with
//!   only what she served before the cut (give or take the chunks on their way), the
//!   chunks she held having gone to the others. (It ends in the endgame, every missing
//!   chunk asked of several sources, well before carol's silence counts as a stall, so
//!   she is not listed as dropped.)
//!
//! Namespaces need root: elsewhere the tests print `skipped: REASON` and pass, except in CI
//! as root (`CI=true`), where a lab that cannot be made fails the test.

use std::path::PathBuf;
use std::time::Duration;

use p2p_tests::netns::{Host, Lab};
use p2p_tests::swarm::{finish_ok, listed, sources, start_get};
use p2p_tests::transfer::{TRANSFER_DEADLINE, assert_content, write_pattern};
use p2p_tests::{DEADLINE, P2pd, TestNet, Tracker, poll};
use serde_json::Value;

const MIB: usize = 1 << 20;
/// The least share of the bytes each of three equal sources must serve.
const FAIR_SHARE: f64 = 0.15;
/// The seeders' order in a pull's `sources`: the owner first, then `--from`'s.
const SEEDERS: [&str; 3] = ["alice", "carol", "dave"];
/// What a source cut off may still deliver: the chunks on their way to bob when its cable
/// is pulled, or verified meanwhile.
const CUT_SLACK: u64 = 4 * proto::content::CHUNK;

/// The lab and its daemons. Fields drop in order: the daemons, the tracker, the test
/// directory, then the namespaces.
struct World {
    bob: P2pd,
    /// alice, carol and dave, with their hosts.
    seeders: Vec<(P2pd, Host)>,
    _tracker: Tracker,
    /// The bytes of the seeders' file.
    data: Vec<u8>,
    net: TestNet,
    _lab: Lab,
}

/// Builds the lab (or `None`, having printed why it cannot be made here), starts the
/// daemons in their hosts, caps each seeder's link at `mbit`, has each share a file of
/// `len` bytes as `rel/f` and grant bob read, and returns once bob sees every copy hashed.
fn world(len: usize, mbit: u32) -> Option<World> {
    let mut lab = Lab::or_skip(&["tc"])?;
    let t = lab.host("tracker");
    let b = lab.host("bob");
    let net = TestNet::new();
    let tracker = t.spawn_tracker(&net);
    let bob = b.spawn_p2pd(&net, "bob", &tracker);
    let dir = net.unique_dir("rel");
    let data = write_pattern(&dir.join("f"), len, 7);
    let dir = dir.to_str().expect("a UTF-8 temporary directory");
    let mut seeders = Vec::new();
    for name in SEEDERS {
        let h = lab.host(name);
        h.limit_rate(mbit);
        let s = h.spawn_p2pd(&net, name, &tracker);
        s.wait_peer("bob", true, DEADLINE);
        bob.wait_peer(name, true, DEADLINE);
        net.ctl(&s, &["share", "add", "rel", dir]).assert_success();
        net.ctl(&s, &["grant", "rel", "bob", "read"])
            .assert_success();
        seeders.push((s, h));
    }
    for name in SEEDERS {
        let target = format!("{name}:rel");
        poll(TRANSFER_DEADLINE, Duration::from_millis(50), || {
            let out = net.ctl(&bob, &["--json", "ls", &target, "-l"]);
            out.assert_success();
            let l = out.json();
            match l["entries"][0]["id"].as_str() {
                Some(_) => Ok(()),
                None => Err(format!("{target} not hashed yet: {l}")),
            }
        });
    }
    Some(World {
        bob,
        seeders,
        _tracker: tracker,
        data,
        net,
        _lab: lab,
    })
}

impl World {
    /// A fresh destination directory for bob's `get`.
    fn dest(&self) -> PathBuf {
        self.net.unique_dir("dest")
    }
}

/// The bytes `name` served by `t`'s `sources` (0 while it lists none).
fn served(t: &Value, name: &str) -> u64 {
    t["sources"]
        .as_array()
        .and_then(|l| l.iter().find(|s| s["peer"] == name))
        .and_then(|s| s["bytes"].as_u64())
        .unwrap_or(0)
}

#[test]
fn three_capped_seeders_each_serve_a_fair_share() {
    let Some(w) = world(32 * MIB, 60) else {
        return;
    };
    let dest = w.dest();
    let t = finish_ok(start_get(
        &w.net,
        &w.bob,
        "alice:rel/f",
        &dest,
        "carol,dave",
    ));
    assert_content(&dest.join("f"), &w.data);
    assert_eq!(t["state"], "done", "{t}");
    // Every source's share as `transfers` lists it, each chunk counted once.
    let t = listed(&w.net, &w.bob, &t);
    let got = sources(&t);
    let names: Vec<&str> = got.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, SEEDERS, "{t}");
    let total: u64 = got.iter().map(|(_, b, _)| b).sum();
    assert_eq!(total, w.data.len() as u64, "{t}");
    for (name, bytes, dropped) in &got {
        let share = *bytes as f64 / total as f64;
        assert!(
            share >= FAIR_SHARE,
            "{name} served {:.1} % of the bytes, less than {:.0} %: {t}",
            share * 100.0,
            FAIR_SHARE * 100.0
        );
        assert_eq!(*dropped, None, "{t}");
    }
}

#[test]
fn a_seeder_cut_off_mid_download_leaves_the_rest_to_the_others() {
    let Some(w) = world(48 * MIB, 40) else {
        return;
    };
    let (carol, carol_host) = &w.seeders[1];
    assert_eq!(carol.name, "carol");
    let mut events = w.bob.rpc();
    events.subscribe();
    let dest = w.dest();
    let child = start_get(&w.net, &w.bob, "alice:rel/f", &dest, "carol,dave");
    // Pull the cable once carol has served something, and before the end.
    let seen = events.wait_event(
        "progress with bytes from carol",
        |ev| {
            ev["type"] == "transfer_progress"
                && ev["transfer"]["kind"] == "pull"
                && served(&ev["transfer"], "carol") > 0
        },
        TRANSFER_DEADLINE,
    );
    carol_host.set_link(false);
    let before = served(&seen["transfer"], "carol");
    assert!(
        seen["transfer"]["done_bytes"].as_u64() < Some(w.data.len() as u64 / 2),
        "half the file was there before carol served anything: {seen}"
    );

    let t = finish_ok(child);
    assert_content(&dest.join("f"), &w.data);
    assert_eq!(t["state"], "done", "{t}");
    let t = listed(&w.net, &w.bob, &t);
    let total: u64 = sources(&t).iter().map(|(_, b, _)| b).sum();
    assert_eq!(total, w.data.len() as u64, "{t}");
    // Past the cut carol adds at most the chunks already on their way to bob (uncut, she
    // would serve about a third of the file); what she held went to alice and dave.
    let after = served(&t, "carol");
    assert!(
        (before..=before + CUT_SLACK).contains(&after),
        "carol served {before} bytes before the cut and {after} in all: {t}"
    );
    for name in ["alice", "dave"] {
        assert!(
            served(&t, name) > w.data.len() as u64 / 3,
            "{name} served less than a third: {t}"
        );
    }
}
