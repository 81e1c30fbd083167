//! Names at the tracker: one name per key (binding another releases the first); a binding
//! unused for the lapse time may be taken by another key; the operator frees a name with
//! `trackerd release NAME`; a name moves to a new key with a statement signed by the old one;
//! at the connection cap the longest-idle registered peer is evicted; and the database
//! carries a schema version (an unversioned file from the first release upgrades and keeps
//! its bindings, a newer one is refused at start). The per-/64 counting is unit-tested in
//! `svc::conn_limit` and `trackerd::limits`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use p2p_tests::TestNet;
use p2p_tests::raw::{self, Client};
use proto::SecretKey;
use proto::tracker::{Refusal, TrackerMsg};

/// The statements the first release ran at every start, before schema versions existed.
const UNVERSIONED_SCHEMA: &str = "PRAGMA journal_mode = WAL;
     PRAGMA synchronous = NORMAL;
     CREATE TABLE IF NOT EXISTS names (name TEXT PRIMARY KEY, key BLOB NOT NULL, bound_at INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS seqs (key BLOB PRIMARY KEY, seq INTEGER NOT NULL);";

/// Makes `<dir>/tracker.db` as the first release would have, binding each `(name, key,
/// bound_at)` and recording seq 1 for each key.
fn unversioned_db(dir: &Path, bindings: &[(&str, &SecretKey, i64)]) {
    let db = rusqlite::Connection::open(dir.join("tracker.db")).expect("create the database");
    db.execute_batch(UNVERSIONED_SCHEMA).expect("old schema");
    for (name, key, bound_at) in bindings {
        let k = key.peer_id();
        db.execute(
            "INSERT INTO names (name, key, bound_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![name, k.as_bytes().as_slice(), bound_at],
        )
        .expect("insert a binding");
        db.execute(
            "INSERT OR REPLACE INTO seqs (key, seq) VALUES (?1, 1)",
            rusqlite::params![k.as_bytes().as_slice()],
        )
        .expect("insert a seq");
    }
}

fn user_version(dir: &Path) -> u32 {
    let db = rusqlite::Connection::open(dir.join("tracker.db")).expect("open the database");
    db.pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("user_version")
}

/// Connects as `key` and registers `name` with `seq`; returns the client and the answer.
async fn register(
    addr: std::net::SocketAddr,
    key: &SecretKey,
    name: &str,
    seq: u64,
) -> (Client, TrackerMsg) {
    let mut c = Client::connect(addr, key).await.expect("connect");
    let answer = c.register(raw::signed(key, name, seq)).await;
    (c, answer)
}

#[track_caller]
fn assert_registered(answer: &TrackerMsg) {
    assert!(
        matches!(answer, TrackerMsg::Registered { .. }),
        "expected Registered, got {answer:?}"
    );
}

#[track_caller]
fn assert_taken(answer: &TrackerMsg) {
    assert!(
        matches!(
            answer,
            TrackerMsg::Refused {
                reason: Refusal::NameTaken,
                ..
            }
        ),
        "expected NameTaken, got {answer:?}"
    );
}

#[tokio::test]
async fn an_unversioned_database_upgrades_and_keeps_its_bindings() {
    let net = TestNet::new();
    let dir = net.unique_dir("tracker");
    let (alice, bob) = (raw::random_key(), raw::random_key());
    // bob holds two names, as the first release allowed; he keeps the one bound last.
    unversioned_db(
        &dir,
        &[
            ("alice", &alice, 1_600_000_000),
            ("bob-old", &bob, 1_700_000_000),
            ("bob-new", &bob, 1_700_000_100),
        ],
    );
    assert_eq!(user_version(&dir), 0);
    let tracker = net.spawn_tracker_in(dir.clone(), None);
    assert!(user_version(&dir) >= 1, "the schema version is recorded");

    let (_c, answer) = register(tracker.addr, &raw::random_key(), "alice", 1).await;
    assert_taken(&answer);
    // The owner's seq was kept too: 1 is a replay, 2 is accepted.
    let (_c, answer) = register(tracker.addr, &alice, "alice", 1).await;
    assert!(
        matches!(
            answer,
            TrackerMsg::Refused {
                reason: Refusal::StaleSeq,
                ..
            }
        ),
        "{answer:?}"
    );
    let (_c, answer) = register(tracker.addr, &alice, "alice", 2).await;
    assert_registered(&answer);
    let (_c, answer) = register(tracker.addr, &raw::random_key(), "bob-new", 1).await;
    assert_taken(&answer);
    let (_c, answer) = register(tracker.addr, &raw::random_key(), "bob-old", 1).await;
    assert_registered(&answer);
}

#[test]
fn a_database_from_a_newer_trackerd_is_refused_at_start() {
    let net = TestNet::new();
    let dir = net.unique_dir("tracker");
    {
        let db = rusqlite::Connection::open(dir.join("tracker.db")).expect("create");
        db.pragma_update(None, "user_version", 999)
            .expect("set version");
    }
    let out = net.run(
        "trackerd",
        &[
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--state-dir".as_ref(),
            dir.as_os_str(),
        ],
    );
    assert_eq!(out.code(), Some(1), "trackerd refuses to start:\n{out}");
    assert!(
        out.stderr.contains("version 999") && out.stderr.contains("up to "),
        "the error names both versions:\n{out}"
    );
    assert!(!out.stdout.contains("listening on"), "{out}");
    assert_eq!(user_version(&dir), 999, "the file is left as it was");
}

/// A registered client subscribed to events, to see others join and leave.
async fn watcher(addr: SocketAddr) -> Client {
    let mut w = raw::register_fresh(addr, "watcher").await;
    w.send(&proto::tracker::PeerMsg::Subscribe { req: 1 }).await;
    match w.recv().await {
        TrackerMsg::Peers { req: 1, .. } => w,
        other => panic!("expected the peer list, got {other:?}"),
    }
}

/// Waits on `w` for `Left` of `key`, skipping other events.
async fn wait_left(w: &mut Client, key: &SecretKey) {
    loop {
        match w.recv().await {
            TrackerMsg::Left { key: k } if k == key.peer_id() => return,
            TrackerMsg::Joined(_) | TrackerMsg::Updated(_) | TrackerMsg::Left { .. } => {}
            other => panic!("unexpected while waiting for Left: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_key_binding_a_second_name_releases_the_first() {
    let net = TestNet::new();
    let mut tracker = net.spawn_tracker(None);
    let (a, b) = (raw::random_key(), raw::random_key());
    let (mut ca, answer) = register(tracker.addr, &a, "first", 1).await;
    assert_registered(&answer);
    let (_cb, answer) = register(tracker.addr, &b, "first", 1).await;
    assert_taken(&answer);

    assert_registered(&ca.register(raw::signed(&a, "second", 2)).await);
    let (_cb, answer) = register(tracker.addr, &b, "first", 2).await;
    assert_registered(&answer);
    // a holds "second" only; b took "first".
    assert_taken(&ca.register(raw::signed(&a, "first", 3)).await);

    // Persisted: after a restart b still holds "first" and a holds "second".
    drop((ca, _cb));
    tracker.restart();
    let (_c, answer) = register(tracker.addr, &raw::random_key(), "first", 1).await;
    assert_taken(&answer);
    let (_c, answer) = register(tracker.addr, &raw::random_key(), "second", 1).await;
    assert_taken(&answer);
}

/// The lapse time in [`a_name_unused_for_the_lapse_time_is_taken_by_another_key`].
const LAPSE_SECS: u64 = 4;

#[tokio::test]
async fn a_name_unused_for_the_lapse_time_is_taken_by_another_key() {
    let net = TestNet::new();
    let tracker = net.spawn_tracker(Some(&format!("name-lapse = \"{LAPSE_SECS}s\"\n")));
    let mut w = watcher(tracker.addr).await;
    let (a, b) = (raw::random_key(), raw::random_key());
    let (ca, answer) = register(tracker.addr, &a, "lapsing", 1).await;
    assert_registered(&answer);
    drop(ca);
    wait_left(&mut w, &a).await;
    let left_at = Instant::now();

    // Just after its owner left, the name is still held.
    let (_c, answer) = register(tracker.addr, &b, "lapsing", 1).await;
    assert!(
        left_at.elapsed() < Duration::from_secs(LAPSE_SECS - 1),
        "too slow to check the name before it lapses"
    );
    assert_taken(&answer);

    // Once the lapse time has passed, b takes it. Time is what this waits for: retry.
    let mut seq = 2;
    let taken_at = loop {
        let (_c, answer) = register(tracker.addr, &b, "lapsing", seq).await;
        seq += 1;
        match answer {
            TrackerMsg::Registered { .. } => break left_at.elapsed(),
            TrackerMsg::Refused {
                reason: Refusal::NameTaken,
                ..
            } => {}
            other => panic!("unexpected answer {other:?}"),
        }
        assert!(
            left_at.elapsed() < Duration::from_secs(LAPSE_SECS) + p2p_tests::DEADLINE,
            "the name never lapsed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Use is counted in whole seconds: the name may lapse up to a second early.
    assert!(
        taken_at >= Duration::from_secs(LAPSE_SECS - 1),
        "the name lapsed after {taken_at:?}, before {LAPSE_SECS} s"
    );
    // The old key lost it.
    let (_c, answer) = register(tracker.addr, &a, "lapsing", 2).await;
    assert_taken(&answer);
}

/// Runs `trackerd release NAME` against `tracker`: as root, finding the admin socket from
/// `--state-dir`; or under `setpriv` as another user, with `--admin-socket`.
fn release(
    net: &TestNet,
    tracker: &p2p_tests::Tracker,
    name: &str,
    as_nobody: bool,
) -> p2p_tests::CmdOutput {
    let mut cmd = if as_nobody {
        let mut c = net.isolated_command("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(net.bin("trackerd"))
            .arg("release")
            .arg("--admin-socket")
            .arg(tracker.state_dir.join("run/admin.sock"));
        c
    } else {
        let mut c = net.command("trackerd");
        c.arg("release").arg("--state-dir").arg(&tracker.state_dir);
        c
    };
    cmd.arg(name);
    p2p_tests::run_with_timeout(cmd, p2p_tests::DEADLINE)
}

#[tokio::test]
async fn the_operator_releases_a_name_and_its_connected_holder_is_dropped() {
    let net = TestNet::new();
    let mut tracker = net.spawn_tracker(None);
    let mut w = watcher(tracker.addr).await;
    let (a, b) = (raw::random_key(), raw::random_key());
    let (mut ca, answer) = register(tracker.addr, &a, "held", 1).await;
    assert_registered(&answer);

    // Only root and the tracker's own user may use the socket.
    let out = release(&net, &tracker, "held", true);
    assert_eq!(out.code(), Some(3), "another user cannot reach it:\n{out}");
    ca.ping(1).await;

    let out = release(&net, &tracker, "held", false);
    out.assert_success();
    assert_eq!(
        out.stdout.trim(),
        format!("released held (was key {})", a.peer_id()),
        "{out}"
    );
    wait_left(&mut w, &a).await;
    ca.wait_closed(p2p_tests::DEADLINE)
        .await
        .expect("the holder's connection is closed");
    let (cb, answer) = register(tracker.addr, &b, "held", 1).await;
    assert_registered(&answer);

    let out = release(&net, &tracker, "nobody-has-this", false);
    assert_eq!(out.code(), Some(1), "{out}");
    assert_eq!(out.stdout.trim(), "nobody-has-this is not bound", "{out}");

    // A killed tracker leaves its socket behind; the next start replaces it.
    drop(cb);
    tracker.proc.kill();
    let socket = tracker.state_dir.join("run/admin.sock");
    assert!(socket.exists());
    tracker.restart();
    let out = release(&net, &tracker, "held", false);
    out.assert_success();
    assert_eq!(
        out.stdout.trim(),
        format!("released held (was key {})", b.peer_id()),
        "{out}"
    );
    // A clean stop removes it.
    assert!(tracker.stop().success());
    assert!(!socket.exists(), "{} left behind", socket.display());
}

#[tokio::test]
async fn at_the_connection_cap_the_longest_idle_registered_peer_is_evicted() {
    let net = TestNet::new();
    let tracker = net.spawn_tracker(Some("[limits]\nmax-connections = 3\n"));
    let (k1, k2, k3, k4) = (
        raw::random_key(),
        raw::random_key(),
        raw::random_key(),
        raw::random_key(),
    );
    let (mut c1, answer) = register(tracker.addr, &k1, "one", 1).await;
    assert_registered(&answer);
    let (mut c2, answer) = register(tracker.addr, &k2, "two", 1).await;
    assert_registered(&answer);
    let (mut c3, answer) = register(tracker.addr, &k3, "three", 1).await;
    assert_registered(&answer);
    // c1 makes a request after the others registered: c2 is now the longest idle. Pings
    // are keepalives and do not count.
    c2.ping(1).await;
    c1.send(&proto::tracker::PeerMsg::Subscribe { req: 1 })
        .await;
    assert!(matches!(c1.recv().await, TrackerMsg::Peers { req: 1, .. }));

    let (_c4, answer) = register(tracker.addr, &k4, "four", 1).await;
    assert_registered(&answer);
    c2.wait_closed(p2p_tests::DEADLINE)
        .await
        .expect("the longest-idle connection is closed");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match c1.recv().await {
            TrackerMsg::Left { key } => seen.push(("left", key)),
            TrackerMsg::Joined(e) => seen.push(("joined", e.signed.record.key)),
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert!(seen.contains(&("left", k2.peer_id())), "{seen:?}");
    assert!(seen.contains(&("joined", k4.peer_id())), "{seen:?}");
    c3.ping(2).await;
    c1.ping(3).await;
}

#[tokio::test]
async fn a_name_moves_to_a_new_key_with_a_statement_signed_by_the_old_one() {
    use proto::tracker::{Handover, PeerMsg};
    let net = TestNet::new();
    let mut tracker = net.spawn_tracker(None);
    let mut w = watcher(tracker.addr).await;
    let (old, new) = (raw::random_key(), raw::random_key());
    let (mut c_old, answer) = register(tracker.addr, &old, "rotating", 10).await;
    assert_registered(&answer);
    let statement = |seq| {
        Handover {
            name: proto::PeerName::new("rotating").expect("name"),
            old_key: old.peer_id(),
            new_key: new.peer_id(),
            seq,
        }
        .sign(&old)
    };
    let (mut c_new, answer) = register(tracker.addr, &new, "rotating", 1).await;
    assert_taken(&answer);
    let mut handover = async |seq: u64, st| {
        c_new
            .send(&PeerMsg::RegisterHandover {
                record: raw::signed(&new, "rotating", seq),
                statement: st,
            })
            .await;
        c_new.recv().await
    };
    // A statement signed by the new key itself, or one at or below the old key's last seq:
    // refused.
    let forged = handover(2, statement(11).handover.sign(&new)).await;
    assert!(
        matches!(
            forged,
            TrackerMsg::Refused {
                reason: Refusal::BadSignature,
                ..
            }
        ),
        "{forged:?}"
    );
    let stale = handover(3, statement(10)).await;
    assert!(
        matches!(
            stale,
            TrackerMsg::Refused {
                reason: Refusal::StaleSeq,
                ..
            }
        ),
        "{stale:?}"
    );
    assert_registered(&handover(4, statement(11)).await);

    // The old holder was connected: it is dropped and others see it leave.
    wait_left(&mut w, &old).await;
    c_old
        .wait_closed(p2p_tests::DEADLINE)
        .await
        .expect("the old key's connection is closed");
    // Persisted: after a restart the old key cannot take the name back; the new key holds it.
    drop((c_new, w));
    tracker.restart();
    let (_c, answer) = register(tracker.addr, &old, "rotating", 12).await;
    assert_taken(&answer);
    let (_c, answer) = register(tracker.addr, &new, "rotating", 5).await;
    assert_registered(&answer);
}

#[tokio::test]
async fn at_the_connection_cap_a_connection_that_never_registered_goes_first() {
    let net = TestNet::new();
    let tracker = net.spawn_tracker(Some("[limits]\nmax-connections = 3\n"));
    let (k1, k2, k3) = (raw::random_key(), raw::random_key(), raw::random_key());
    let (mut c1, answer) = register(tracker.addr, &k1, "one", 1).await;
    assert_registered(&answer);
    // Past Hello, then only keepalives: it holds a slot and serves nobody.
    let mut idle = Client::connect(tracker.addr, &raw::random_key())
        .await
        .expect("connect");
    idle.ping(1).await;
    let (mut c2, answer) = register(tracker.addr, &k2, "two", 1).await;
    assert_registered(&answer);

    let (_c3, answer) = register(tracker.addr, &k3, "three", 1).await;
    assert_registered(&answer);
    idle.wait_closed(p2p_tests::DEADLINE)
        .await
        .expect("the unregistered connection is closed");
    c1.ping(2).await;
    c2.ping(3).await;
}
