//! LAN discovery between real daemons with no tracker: each daemon runs in its own host (a
//! network namespace of `p2p_tests::netns`) on one switch, listening on `0.0.0.0`, with LAN
//! discovery on and no tracker at all (carol: a tracker address where nothing listens). mDNS crosses the bridge and
//! never leaves the namespaces the test made.
//!
//! - alice, bob and carol (on `--lan-interface eth0` only) find each other by mDNS (the time
//!   is printed), and `status` shows the LAN source with the peers it hears; alice shows bob
//!   with `lan` among his sources, unverified, under the name he claims, at his host's
//!   address; once pinned (`trust`) he is verified; they chat and send a file; carol stopping
//!   (her goodbye) takes her offline at alice.
//! - A stranger's host announces, with a raw mDNS responder: a valid record of its own key
//!   claiming the name bob (pinned by alice to bob's key): reported as a conflict on bob (the
//!   activity log, `watch`), never adopted, `msg bob` still reaches bob; records with a bad
//!   signature, of another key than the instance's, or expired: ignored (the activity log
//!   says so), the keys unknown to `msg`, and nobody dials the port they announce.
//! - With `--no-lan` (the harness's default) `status` shows the LAN source `off`.
//!
//! Namespaces need root: elsewhere the tests print `skipped: REASON` and pass, except in CI
//! as root (`CI=true`), where a lab that cannot be made fails the test.

use std::time::{Duration, Instant};

use p2p_tests::chat::{self, texts, wait_delivered};
use p2p_tests::netns::{Host, Lab};
use p2p_tests::transfer::{accept, id_of, offered_in, send_files, wait_arrived, write_pattern};
use p2p_tests::{DEADLINE, P2pd, Proc, TestNet};
use proto::SecretKey;
use proto::addr_record::{AddrRecord, SignedAddrRecord};
use serde_json::Value;

/// How long discovery may take on a loaded machine (the goal is under 2 s).
const DISCOVERY: Duration = Duration::from_secs(30);
/// The port the stranger's announcer listens on and announces.
const STRANGER_PORT: u16 = 4040;

/// Starts `name` in `host` with LAN discovery on and no tracker at all.
fn spawn(net: &TestNet, name: &str, host: &Host) -> P2pd {
    net.p2pd(name)
        .no_tracker()
        .listen("0.0.0.0:0")
        .prefix(host.prefix())
        .lan()
        .spawn()
}

/// Waits until `p` lists `peer` online with `lan` among its sources; returns the entry.
#[track_caller]
fn wait_lan_peer(p: &P2pd, peer: &P2pd) -> Value {
    let id = peer.id();
    p.wait_until(
        &format!("{} heard on the LAN", peer.name),
        DISCOVERY,
        |rpc| {
            let peers = rpc.call("peers", serde_json::json!({}));
            peers
                .as_array()?
                .iter()
                .find(|e| e["id"] == id.as_str() && e["online"] == true && has_source(e, "lan"))
                .cloned()
        },
    )
}

fn has_source(entry: &Value, source: &str) -> bool {
    entry["sources"]
        .as_array()
        .is_some_and(|s| s.iter().any(|x| x == source))
}

/// The `lan` entry of `p`'s status.
#[track_caller]
fn lan_source(p: &P2pd) -> Value {
    let s = p.status();
    let mut lan = s["sources"]
        .as_array()
        .expect("status has sources")
        .iter()
        .filter(|x| x["kind"] == "lan");
    let found = lan.next().cloned();
    assert!(lan.next().is_none(), "one lan source: {s:#}");
    found.unwrap_or_else(|| panic!("status has a lan source: {s:#}"))
}

#[test]
fn with_no_lan_the_lan_source_is_off_in_status() {
    let net = TestNet::new();
    let p = net.p2pd("alice").spawn();
    let lan = lan_source(&p);
    assert_eq!(lan["state"], "off", "{lan:#}");
    assert_eq!(lan["peers"], 0, "{lan:#}");
    let out = net.ctl(&p, &["status"]);
    out.assert_success();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("lan") && l.contains("off")),
        "{out}"
    );
}

/// `p`'s entry for the peer with id `id`, if listed.
fn entry(p: &P2pd, id: &str) -> Option<Value> {
    p.peers().into_iter().find(|e| e["id"] == id)
}

/// A lab of three hosts, alice, bob and `third`, on one switch, and the test's directory;
/// `None` (having said why) where namespaces cannot be made. Bind the lab first, so that it
/// drops after the daemons running in it.
fn three_hosts(third: &str) -> Option<(Lab, [Host; 3], TestNet)> {
    let mut lab = Lab::or_skip(&[])?;
    let hosts = [lab.host("alice"), lab.host("bob"), lab.host(third)];
    Some((lab, hosts, TestNet::new()))
}

#[test]
fn peers_on_one_lan_find_each_other_chat_and_send_files_without_a_tracker() {
    let Some((_lab, [a, b, c], net)) = three_hosts("carol") else {
        return;
    };
    let alice = spawn(&net, "alice", &a);
    let started = Instant::now();
    let bob = spawn(&net, "bob", &b);
    let mut carol = net
        .p2pd("carol")
        .listen("0.0.0.0:0")
        .prefix(c.prefix())
        .lan()
        .args(["--lan-interface", "eth0"])
        .spawn();

    let seen = wait_lan_peer(&alice, &bob);
    eprintln!(
        "alice heard bob on the LAN {} ms after his start",
        started.elapsed().as_millis()
    );
    assert_eq!(seen["name"], "bob", "the name bob claims: {seen:#}");
    assert_eq!(
        seen["verified"], false,
        "a LAN claim binds no name: {seen:#}"
    );
    let at = b.socket_addr(bob.listen.port()).to_string();
    assert!(
        seen["addrs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == at.as_str()),
        "alice dials bob at his host's address {at}: {seen:#}"
    );
    for (p, peer) in [
        (&bob, &alice),
        (&carol, &alice),
        (&carol, &bob),
        (&alice, &carol),
    ] {
        wait_lan_peer(p, peer);
    }
    let lan = lan_source(&alice);
    assert_eq!(lan["state"], "up", "{lan:#}");
    assert_eq!(lan["addr"], "all interfaces", "{lan:#}");
    assert_eq!(lan["peers"], 2, "alice hears bob and carol: {lan:#}");
    assert_eq!(lan_source(&carol)["addr"], "eth0", "carol's one interface");

    // Pinned, bob is verified; alice pinned by bob too, they chat and send a file.
    net.ctl(&alice, &["trust", "bob"]).assert_success();
    net.ctl(&bob, &["trust", "alice"]).assert_success();
    let bob_id = bob.id();
    let pinned = entry(&alice, &bob_id).expect("bob listed");
    assert_eq!(pinned["verified"], true, "{pinned:#}");

    chat::send(&alice, "bob", "hello over the LAN");
    wait_delivered(&alice, "bob", 1, DISCOVERY);
    assert_eq!(
        texts(&chat::history(&bob, "alice"), "in"),
        ["hello over the LAN"]
    );
    let mut watch = net.watch(&bob);
    let dir = net.unique_dir("send");
    let data = write_pattern(&dir.join("notes.bin"), 300_000, 7);
    let t = send_files(&alice, "bob", &dir.join("notes.bin"));
    let id = id_of(&t);
    watch.wait_for("the offer", offered_in, DISCOVERY);
    accept(&bob, &id, None);
    wait_arrived(&alice, &bob, &id, "notes.bin", &data);

    // carol leaves (a goodbye on the LAN): alice no longer hears her.
    let carol_id = carol.id();
    carol.stop();
    alice.wait_until("carol gone from the LAN", DISCOVERY, |_| {
        entry(&alice, &carol_id).filter(|e| e["online"] == false)
    });
}

/// A record of `key` at `addrs` expiring at `expiry`, seq 1, signed by `signer`.
fn record(key: &SecretKey, signer: &SecretKey, expiry: u64) -> SignedAddrRecord {
    AddrRecord {
        key: key.peer_id(),
        seq: 1,
        addrs: vec![format!("0.0.0.0:{STRANGER_PORT}").parse().unwrap()],
        expiry,
    }
    .sign(signer)
}

fn key(seed: u8) -> SecretKey {
    SecretKey::from_seed([seed; 32])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A raw mDNS responder in `host` announcing `instance` with the TXT record `v=1`, `n=NAME`,
/// `r0=RECORD` at [`STRANGER_PORT`] + `port_offset`.
fn announce(net: &TestNet, host: &Host, instance: &str, name: &str, rec: &[u8], n: u16) -> Proc {
    let mut cmd = std::process::Command::new("ip");
    cmd.args(["netns", "exec", &host.ns])
        .arg(env!("CARGO_BIN_EXE_mdns-announce"))
        .arg(instance)
        .arg((STRANGER_PORT + n).to_string())
        .arg(format!("v={}", hex(b"1")))
        .arg(format!("n={}", hex(name.as_bytes())))
        .arg(format!("r0={}", hex(rec)));
    let dir = net.unique_dir("announce");
    let mut p = Proc::spawn(
        &format!("mdns-announce {instance}"),
        cmd,
        &dir.join("stderr"),
    );
    p.wait_line("announced", DEADLINE);
    p
}

#[test]
fn forged_or_conflicting_lan_announcements_are_never_adopted() {
    let Some((_lab, [a, b, m], net)) = three_hosts("mallory") else {
        return;
    };
    let alice = spawn(&net, "alice", &a);
    let bob = spawn(&net, "bob", &b);
    wait_lan_peer(&alice, &bob);
    wait_lan_peer(&bob, &alice);
    net.ctl(&alice, &["trust", "bob"]).assert_success();
    net.ctl(&bob, &["trust", "alice"]).assert_success();
    let bob_id = bob.id();

    let now = svc::unix_now();
    let (bad_sig, other, expired, claimer) = (key(1), key(2), key(3), key(4));
    let mut forged = record(&bad_sig, &bad_sig, now + 3600).encode();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let cases = [
        (bad_sig.peer_id(), forged),
        (
            other.peer_id(),
            record(&key(5), &key(5), now + 3600).encode(),
        ),
        (
            expired.peer_id(),
            record(&expired, &expired, now - 10).encode(),
        ),
    ];
    let mut forgers = Vec::new();
    for (n, (id, rec)) in cases.iter().enumerate() {
        let n = u16::try_from(n).unwrap();
        forgers.push(announce(
            &net,
            &m,
            &id.to_string(),
            &format!("eve{n}"),
            rec,
            n,
        ));
    }
    let mut claim = announce(
        &net,
        &m,
        &claimer.peer_id().to_string(),
        "bob",
        &record(&claimer, &claimer, now + 3600).encode(),
        9,
    );

    // The claim of bob's name is reported as a conflict on bob, and adopted nowhere: bob
    // keeps his key, and nothing sent to him is held.
    let claimer_id = claimer.peer_id().to_string();
    alice.wait_activity("of the claim of bob", 1, DISCOVERY, |l| {
        l.contains("\"op\":\"link-error\"") && l.contains(&claimer_id) && l.contains("bob")
    });
    let bob_now = entry(&alice, &bob_id).expect("bob listed");
    assert_eq!(bob_now["key_conflict"], Value::Null, "{bob_now:#}");
    let peers = alice.peers();
    let bobs: Vec<&Value> = peers.iter().filter(|e| e["name"] == "bob").collect();
    assert_eq!(bobs.len(), 1, "one bob: {peers:#?}");
    assert_eq!(bobs[0]["id"], bob_id.as_str(), "{peers:#?}");
    assert!(entry(&alice, &claimer_id).is_none(), "{peers:#?}");

    // Each forged record is ignored, and said to be.
    for (id, _) in &cases {
        let id = id.to_string();
        alice.wait_activity("of an ignored LAN record", 1, DISCOVERY, |l| {
            l.contains("\"op\":\"lan\"") && l.contains("ignored") && l.contains(&id)
        });
        assert!(entry(&alice, &id).is_none(), "{id} is not a peer");
        let out = net.ctl(&alice, &["msg", &id[..12], "hi"]);
        assert_eq!(out.code(), Some(1), "nobody to send to: {out}");
    }

    // `msg bob` still goes to bob, and nobody dialled the stranger.
    chat::send(&alice, "bob", "still you");
    wait_delivered(&alice, "bob", 1, DISCOVERY);
    for p in forgers.iter_mut().chain([&mut claim]) {
        assert_eq!(
            p.next_line(Duration::ZERO),
            None,
            "{} was dialled",
            p.label()
        );
    }
}
