//! What `p2pctl transfers` shows, between two real daemons: a file renamed on arrival is
//! listed (table and JSON) under the name it landed under, with its start and end times;
//! waiting offers come first and the newest first within each group; `transfers clear`
//! forgets the finished transfers (records and chunk records) and leaves a waiting offer,
//! which still goes through; a transfer that ended more than a week ago is listed only with
//! `--all`; a running transfer whose receiver went away shows no rate and no ETA.

use std::path::Path;
use std::time::Duration;

use p2p_tests::chat::{self, Pair};
use p2p_tests::sys::NetNs;
use p2p_tests::transfer::{
    TRANSFER_DEADLINE, accept, get, id_of, list, send_files, send_until_progress, wait_state,
    wait_transfer, write_pattern,
};
use p2p_tests::{DEADLINE, P2pd, TestNet, poll};
use proto::timefmt::parse_ms;
use serde_json::Value;

/// alice sends `path` to bob, bob accepts into his download directory; returns the id once
/// both sides are `done`.
#[track_caller]
fn send_done(p: &Pair, path: &Path) -> String {
    let id = id_of(&send_files(&p.alice, "bob", path));
    wait_state(&p.bob, &id, "offered", DEADLINE);
    accept(&p.bob, &id, None);
    wait_state(&p.bob, &id, "done", TRANSFER_DEADLINE);
    wait_state(&p.alice, &id, "done", DEADLINE);
    id
}

/// `p2pctl --json transfers ARGS` on `p`, parsed.
#[track_caller]
fn ctl_list(net: &TestNet, p: &P2pd, args: &[&str]) -> Vec<Value> {
    let mut argv = vec!["--json", "transfers"];
    argv.extend_from_slice(args);
    let out = net.ctl(p, &argv);
    out.assert_success();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn ids(list: &[Value]) -> Vec<&str> {
    list.iter()
        .map(|t| t["id"].as_str().unwrap_or(""))
        .collect()
}

/// The table's row of the transfer whose id starts `id`, and its index among the lines.
#[track_caller]
fn row<'a>(table: &'a str, id: &str) -> (usize, &'a str) {
    table
        .lines()
        .enumerate()
        .find(|(_, l)| l.starts_with(&id[..8]))
        .unwrap_or_else(|| panic!("no row for {id} in\n{table}"))
}

#[test]
fn a_renamed_file_is_listed_as_landed_newest_first_and_clear_keeps_a_waiting_offer() {
    let net = TestNet::new();
    let p = chat::pair(&net);
    let dl = p.bob.download_dir().to_owned();
    std::fs::write(dl.join("big.bin"), b"already here").expect("write");
    let src = net.unique_dir("src");
    write_pattern(&src.join("big.bin"), 70_000, 1);
    write_pattern(&src.join("notes.txt"), 1000, 2);
    let renamed = send_done(&p, &src.join("big.bin"));
    let later = send_done(&p, &src.join("notes.txt"));

    // JSON: the landed name, both times, the newer finished transfer first.
    let listed = ctl_list(&net, &p.bob, &[]);
    assert_eq!(
        ids(&listed),
        [later.as_str(), renamed.as_str()],
        "{listed:#?}"
    );
    let t = &listed[1];
    assert_eq!(t["landed"], serde_json::json!(["big (1).bin"]), "{t:#}");
    assert_eq!(t["sample"], serde_json::json!(["big.bin"]), "{t:#}");
    let created = t["created_at"].as_str().and_then(parse_ms);
    let ended = t["ended_at"].as_str().and_then(parse_ms);
    assert!(
        matches!((created, ended), (Some(c), Some(e)) if c <= e),
        "{t:#}"
    );
    // The sender knows the file by its own name.
    let at_alice = list(&p.alice);
    let sent = at_alice.iter().find(|t| t["id"] == renamed.as_str());
    assert_eq!(
        sent.map(|t| &t["landed"]),
        Some(&serde_json::json!([])),
        "{at_alice:#?}"
    );

    // A waiting offer: listed first, before both finished ones.
    let waiting = id_of(&send_files(&p.alice, "bob", &src.join("notes.txt")));
    wait_state(&p.bob, &waiting, "offered", DEADLINE);
    let out = net.ctl(&p.bob, &["transfers"]);
    out.assert_success();
    let (w, _) = row(&out.stdout, &waiting);
    let (l, _) = row(&out.stdout, &later);
    let (r, renamed_row) = row(&out.stdout, &renamed);
    assert!(w < l && l < r, "{out}");
    assert!(renamed_row.ends_with("  big (1).bin"), "{out}");
    assert!(
        out.stdout
            .lines()
            .next()
            .is_some_and(|h| h.contains("TIME")),
        "{out}"
    );

    // Clear: both finished transfers are forgotten, with their chunk records; the offer stays.
    let out = net.ctl(&p.bob, &["transfers", "clear"]);
    out.assert_success();
    assert_eq!(out.stdout, "forgot 2 finished transfers\n", "{out}");
    assert_eq!(ids(&ctl_list(&net, &p.bob, &["--all"])), [waiting.as_str()]);
    let db = rusqlite::Connection::open(p.bob.state_dir.join("p2pd.db")).expect("open db");
    let rows: i64 = db
        .query_row("SELECT COUNT(*) FROM transfer_files", [], |r| r.get(0))
        .expect("count");
    assert_eq!(rows, 0, "chunk records of forgotten transfers");
    drop(db);
    let out = net.ctl(&p.bob, &["transfers", "clear"]);
    assert_eq!(out.stdout, "forgot 0 finished transfers\n", "{out}");
    // The sender's list is its own.
    assert_eq!(list(&p.alice).len(), 3);

    // The waiting offer still goes through, and lands under the next free name.
    accept(&p.bob, &waiting, None);
    let done = wait_state(&p.bob, &waiting, "done", TRANSFER_DEADLINE);
    assert_eq!(
        done["landed"],
        serde_json::json!(["notes (1).txt"]),
        "{done:#}"
    );
}

#[test]
fn a_transfer_that_ended_over_a_week_ago_is_listed_only_with_all() {
    const DAY_MS: i64 = 86_400_000;
    let net = TestNet::new();
    let mut p = chat::pair(&net);
    let src = net.unique_dir("src");
    write_pattern(&src.join("old.bin"), 5000, 3);
    write_pattern(&src.join("new.bin"), 5000, 4);
    let old = send_done(&p, &src.join("old.bin"));
    let new = send_done(&p, &src.join("new.bin"));

    // As if `old` had been sent and finished eight days ago.
    p.bob.stop();
    let db = rusqlite::Connection::open(p.bob.state_dir.join("p2pd.db")).expect("open db");
    let changed = db
        .execute(
            "UPDATE transfers SET created_at = created_at - ?1, ended_at = ended_at - ?1
             WHERE id = ?2",
            rusqlite::params![8 * DAY_MS, hex_id(&old)],
        )
        .expect("age the transfer");
    assert_eq!(changed, 1);
    drop(db);
    p.bob.restart();

    assert_eq!(ids(&ctl_list(&net, &p.bob, &[])), [new.as_str()]);
    assert_eq!(
        ids(&ctl_list(&net, &p.bob, &["--all"])),
        [new.as_str(), old.as_str()]
    );
    let out = net.ctl(&p.bob, &["transfers"]);
    out.assert_success();
    assert!(!out.stdout.contains(&old[..8]), "{out}");
    let out = net.ctl(&p.bob, &["transfers", "--all"]);
    out.assert_success();
    let (_, old_row) = row(&out.stdout, &old);
    // Shown with its day (`Nov 28 14:03`, or `2025-11-28` across a new year), not as a
    // time of today.
    let months = [
        "Jan ", "Feb ", "Mar ", "Apr ", "May ", "Jun ", "Jul ", "Aug ", "Sep ", "Oct ", "Nov ",
        "Dec ",
    ];
    let dated = old_row.split_whitespace().any(|w| {
        let b = w.as_bytes();
        b.len() == 10 && b[4] == b'-' && b[7] == b'-'
    });
    assert!(dated || months.iter().any(|m| old_row.contains(m)), "{out}");
}

/// The 16 bytes of a transfer id given as hex.
fn hex_id(id: &str) -> Vec<u8> {
    (0..id.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&id[i..i + 2], 16).expect("hex id"))
        .collect()
}

#[test]
fn a_running_transfer_whose_receiver_went_away_shows_no_rate_nor_eta() {
    const MIB: u64 = 1 << 20;
    const SIZE: u64 = 48 * MIB;
    // 64 Mbit/s: the transfer takes several seconds, so it is under way when bob stops.
    let ns = NetNs::rate_limited(64);
    let net = TestNet::in_netns(&ns);
    let mut p = chat::pair(&net);
    let file = net.unique_dir("src").join("disk.img");
    write_pattern(&file, SIZE as usize, 5);
    let (id, _) = send_until_progress(&p.alice, &p.bob, &file, SIZE / 8);
    let moving = wait_transfer(&p.alice, &id, "measured", TRANSFER_DEADLINE, |t| {
        t["rate"].as_u64().is_some_and(|r| r > 0)
    });
    assert_eq!(moving["state"], "running", "{moving:#}");
    assert!(moving["eta_secs"].is_u64(), "{moving:#}");

    let status = p.bob.stop();
    assert!(status.success(), "bob did not stop cleanly: {status}");
    // Nothing moves any more: the rate and the ETA go, not frozen at their last figures.
    let idle = poll(DEADLINE, Duration::from_millis(100), || {
        let t = get(&p.alice, &id).ok_or_else(|| format!("alice no longer lists {id}"))?;
        if t["rate"] == 0 && t["eta_secs"].is_null() {
            Ok(t)
        } else {
            Err(format!("alice still shows a rate: {t:#}"))
        }
    });
    assert_eq!(idle["state"], "running", "{idle:#}");
    let out = net.ctl(&p.alice, &["transfers"]);
    out.assert_success();
    let (_, shown) = row(&out.stdout, &id);
    assert!(!shown.contains("/s"), "{out}");

    // Back, it goes on to the end.
    p.bob.restart();
    wait_state(&p.alice, &id, "done", TRANSFER_DEADLINE * 2);
}
