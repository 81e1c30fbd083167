//! Names at the tracker: the database carries a schema version (an unversioned file from the
//! first release upgrades and keeps its bindings; a newer one is refused at start).

use std::path::Path;

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
    let alice = raw::random_key();
    unversioned_db(&dir, &[("alice", &alice, 1_700_000_000)]);
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
