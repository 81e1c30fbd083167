//! The database schema as numbered migrations, recorded in `PRAGMA user_version`.
//!
//! Version N of the schema is the result of applying `MIGRATIONS[..N]` in order to an empty
//! database. A database made before versions were kept (user_version 0, but with tables) holds
//! version 1's tables: every statement of migration 1 is `IF NOT EXISTS`, so it applies cleanly
//! over them. A database whose version is above [`LATEST`] was written by a newer p2pd and is
//! refused, never opened: an older binary would misread what it does not know.

use rusqlite::Connection;
use svc::schema::{Migration, SchemaError};

const MIGRATIONS: &[Migration] = &[
    Migration {
        what: "peers, messages and transfers",
        sql: "
CREATE TABLE IF NOT EXISTS peers (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    pinned_at INTEGER NOT NULL,
    trusted INTEGER NOT NULL DEFAULT 0,
    auto_accept INTEGER NOT NULL DEFAULT 0,
    blocked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS messages (
    n INTEGER PRIMARY KEY,
    id BLOB NOT NULL,
    peer BLOB NOT NULL,
    peer_name TEXT NOT NULL,
    direction INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    state INTEGER NOT NULL,
    sent_at INTEGER NOT NULL,
    detail TEXT,
    UNIQUE (peer, direction, id)
);
CREATE INDEX IF NOT EXISTS messages_by_peer ON messages (peer, n);
CREATE INDEX IF NOT EXISTS messages_seq ON messages (peer, direction, seq);
CREATE TABLE IF NOT EXISTS transfers (
    id BLOB PRIMARY KEY,
    peer BLOB NOT NULL,
    peer_name TEXT NOT NULL,
    direction INTEGER NOT NULL,
    state TEXT NOT NULL,
    manifest TEXT NOT NULL,
    local_path TEXT,
    error TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS transfer_files (
    id BLOB NOT NULL,
    file INTEGER NOT NULL,
    verified_chunks INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (id, file)
);
CREATE INDEX IF NOT EXISTS outbox ON messages (peer, seq) WHERE direction = 0 AND state = 0;
",
    },
    Migration {
        what: "deferred messages stay in the outbox; bytes received per peer",
        sql: "
DROP INDEX outbox;
CREATE INDEX outbox ON messages (peer, seq) WHERE direction = 0 AND state IN (0, 4);
CREATE TABLE received_bytes (
    peer BLOB PRIMARY KEY,
    bytes INTEGER NOT NULL
);
CREATE INDEX messages_by_name ON messages (peer_name, n);
INSERT INTO received_bytes (peer, bytes)
    SELECT peer, SUM(LENGTH(CAST(text AS BLOB))) FROM messages WHERE direction = 1 GROUP BY peer;
",
    },
    Migration {
        what: "the address book: the last verified address record of each pinned peer",
        sql: "
CREATE TABLE address_book (
    peer BLOB PRIMARY KEY,
    entry TEXT NOT NULL,
    seen_at INTEGER NOT NULL
);
",
    },
    Migration {
        what: "transfers move to chunk values (p2p-bulk/2): unfinished ones of p2p-bulk/1 end failed",
        // An outgoing manifest of p2p-bulk/1 holds no chunk values to send, and the chunks an
        // incoming one verified were never checked against the content id: neither can go on.
        // A transfer still `scanning` is failed at start as interrupted, as before.
        sql: "
UPDATE transfers SET state = 'failed', error = 'made by an older p2pd; send it again'
    WHERE state IN ('queued', 'offered', 'running');
",
    },
    Migration {
        what: "shares and the grants on them",
        sql: "
CREATE TABLE shares (
    name TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    keep_versions INTEGER NOT NULL,
    max_version_bytes INTEGER,
    created INTEGER NOT NULL
);
CREATE TABLE grants (
    share TEXT NOT NULL,
    peer BLOB NOT NULL,
    right INTEGER NOT NULL,
    PRIMARY KEY (share, peer)
);
",
    },
    Migration {
        what: "pulls: transfers know whether they carry one, and pulls asked for wait for their offer",
        sql: "
ALTER TABLE transfers ADD COLUMN pull INTEGER NOT NULL DEFAULT 0;
CREATE TABLE expected_pulls (
    id BLOB PRIMARY KEY,
    peer BLOB NOT NULL,
    dest TEXT NOT NULL
);
",
    },
    Migration {
        what: "the version store: kept versions, their numbers per path, and shares' age cap and write quota",
        // `version_numbers` holds the last number given for each path, so a number is never
        // given twice even once every version of the path is pruned. A version's bytes are
        // the blob named by its content id in the state directory's `versions/`.
        sql: "
ALTER TABLE shares ADD COLUMN max_version_age INTEGER;
ALTER TABLE shares ADD COLUMN write_quota INTEGER;
CREATE TABLE versions (
    share TEXT NOT NULL,
    path TEXT NOT NULL,
    number INTEGER NOT NULL,
    content BLOB NOT NULL,
    size INTEGER NOT NULL,
    replaced_at INTEGER NOT NULL,
    by BLOB,
    PRIMARY KEY (share, path, number)
);
CREATE INDEX versions_by_content ON versions (content);
CREATE INDEX versions_by_age ON versions (share, replaced_at);
CREATE TABLE version_numbers (
    share TEXT NOT NULL,
    path TEXT NOT NULL,
    last INTEGER NOT NULL,
    PRIMARY KEY (share, path)
);
",
    },
    Migration {
        what: "transfers keep when they ended, and each received file the name it landed under",
        // Both times of a transfer in milliseconds, so that transfers made in the same second
        // still list newest first. Transfers that ended before this version have no end
        // time: they show and age by when they were stored.
        sql: "
UPDATE transfers SET created_at = created_at * 1000;
ALTER TABLE transfers ADD COLUMN ended_at INTEGER;
ALTER TABLE transfer_files ADD COLUMN landed TEXT;
",
    },
    Migration {
        what: "the outbox index leads with the columns of messages_seq, so the planner takes it",
        // As (peer, seq), the partial index lost to messages_seq (peer, direction, seq), which
        // binds one more column: every outbox read then walked all our messages to the peer.
        // With the same leading columns the smaller, partial index wins.
        sql: "
DROP INDEX outbox;
CREATE INDEX outbox ON messages (peer, direction, seq) WHERE direction = 0 AND state IN (0, 4);
",
    },
    Migration {
        what: "incoming transfers keep the names their top-level directories land under",
        // A JSON object from offered name to landed name (`dir` -> `dir (1)`), chosen on
        // accept; NULL for transfers accepted before, which land as they did then.
        sql: "
ALTER TABLE transfers ADD COLUMN landing TEXT;
",
    },
    Migration {
        what: "multi-source pulls are kept, so that one a stop interrupted resumes at start",
        // One row per pull: what it fetches (content id and size, named by `owner`'s
        // `share`/`path`), where it lands (`dir`, `name`; `landed` once in place), the other
        // peers it draws from (`sources`, a JSON array of peer ids) and how it stands. `drew`
        // is each source's share once it ended (JSON). The chunks themselves are in the part
        // file, checked again on resume.
        sql: "
CREATE TABLE swarm_pulls (
    id BLOB PRIMARY KEY,
    content BLOB NOT NULL,
    size INTEGER NOT NULL,
    owner BLOB NOT NULL,
    owner_name TEXT NOT NULL,
    share TEXT NOT NULL,
    path TEXT,
    dir TEXT NOT NULL,
    name TEXT NOT NULL,
    sources TEXT NOT NULL,
    state TEXT NOT NULL,
    error TEXT,
    done_bytes INTEGER NOT NULL DEFAULT 0,
    drew TEXT,
    landed TEXT,
    created_at INTEGER NOT NULL,
    ended_at INTEGER
);
",
    },
];

/// The schema version this binary writes.
pub const LATEST: u32 = MIGRATIONS.len() as u32;

/// Brings `db` up to [`LATEST`]; returns the version it had before.
pub fn migrate(db: &mut Connection) -> Result<u32, SchemaError> {
    svc::schema::migrate(db, "p2pd", MIGRATIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema exactly as p2pd wrote it before versions were kept.
    const UNVERSIONED: &str = include_str!("unversioned_schema.sql");

    fn version(db: &Connection) -> u32 {
        svc::schema::version(db).unwrap()
    }

    #[test]
    fn a_new_database_gets_every_migration() {
        let mut db = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut db).unwrap(), 0);
        assert_eq!(version(&db), LATEST);
        assert_eq!(migrate(&mut db).unwrap(), LATEST);
    }

    #[test]
    fn an_unversioned_database_upgrades_and_keeps_its_rows() {
        let mut db = Connection::open_in_memory().unwrap();
        db.execute_batch(UNVERSIONED).unwrap();
        db.execute_batch(
            "INSERT INTO peers (id, name, pinned_at) VALUES (x'01', 'bob', 1);
             INSERT INTO messages (id, peer, peer_name, direction, seq, text, state, sent_at)
                 VALUES (x'aa', x'01', 'bob', 1, 1, 'héllo', 3, 5), (x'bb', x'01', 'bob', 0, 1, 'hi', 0, 6);",
        )
        .unwrap();
        assert_eq!(version(&db), 0);
        migrate(&mut db).unwrap();
        assert_eq!(version(&db), LATEST);
        let name: String = db
            .query_row("SELECT name FROM peers", [], |r| r.get(0))
            .unwrap();
        assert_eq!(name, "bob");
        let bytes: i64 = db
            .query_row("SELECT bytes FROM received_bytes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(bytes, 6);
    }

    #[test]
    fn unfinished_transfers_of_the_older_bulk_protocol_end_failed_and_the_others_stay() {
        let mut db = Connection::open_in_memory().unwrap();
        // A database at the schema before chunk values, as that p2pd left it.
        svc::schema::migrate(&mut db, "p2pd", &MIGRATIONS[..3]).unwrap();
        let manifest = r#"{"id":"01010101010101010101010101010101","files":[{"path":"a.bin","size":5,"hash":"0000000000000000000000000000000000000000000000000000000000000000"}]}"#;
        for (n, state, error) in [
            (1, "running", None),
            (2, "offered", None),
            (3, "queued", None),
            (4, "done", None),
            (5, "declined", Some("no")),
            (6, "scanning", None),
        ] {
            db.execute(
                "INSERT INTO transfers (id, peer, peer_name, direction, state, manifest, error, created_at)
                 VALUES (?1, x'01', 'bob', ?2, ?3, ?4, ?5, 1)",
                rusqlite::params![[n as u8; 16].as_slice(), n % 2, state, manifest, error],
            )
            .unwrap();
        }
        db.execute(
            "INSERT INTO transfer_files (id, file, verified_chunks) VALUES (?1, 0, 1)",
            [[1u8; 16].as_slice()],
        )
        .unwrap();
        assert_eq!(migrate(&mut db).unwrap(), 3);
        assert_eq!(version(&db), LATEST);
        let mut rows = db
            .prepare("SELECT state, error FROM transfers ORDER BY id")
            .unwrap()
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
            .into_iter();
        let older = || {
            (
                "failed".to_owned(),
                Some("made by an older p2pd; send it again".to_owned()),
            )
        };
        assert_eq!(rows.next(), Some(older()));
        assert_eq!(rows.next(), Some(older()));
        assert_eq!(rows.next(), Some(older()));
        assert_eq!(rows.next(), Some(("done".to_owned(), None)));
        assert_eq!(
            rows.next(),
            Some(("declined".to_owned(), Some("no".to_owned())))
        );
        assert_eq!(rows.next(), Some(("scanning".to_owned(), None)));
    }

    #[test]
    fn a_database_without_shares_gains_empty_share_tables_and_keeps_its_rows() {
        let mut db = Connection::open_in_memory().unwrap();
        svc::schema::migrate(&mut db, "p2pd", &MIGRATIONS[..4]).unwrap();
        db.execute_batch(
            "INSERT INTO peers (id, name, pinned_at) VALUES (x'01', 'bob', 1);
             INSERT INTO address_book (peer, entry, seen_at) VALUES (x'01', '{}', 2);",
        )
        .unwrap();
        assert_eq!(migrate(&mut db).unwrap(), 4);
        assert_eq!(version(&db), LATEST);
        let count = |table: &str| -> i64 {
            db.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!((count("peers"), count("address_book")), (1, 1));
        assert_eq!((count("shares"), count("grants")), (0, 0));
        db.execute_batch(
            "INSERT INTO shares (name, path, keep_versions, created) VALUES ('docs', '/d', 5, 1);
             INSERT INTO grants (share, peer, right) VALUES ('docs', x'01', 0);",
        )
        .unwrap();
    }

    #[test]
    fn transfers_of_a_database_without_pulls_stay_and_are_not_pulls() {
        let mut db = Connection::open_in_memory().unwrap();
        svc::schema::migrate(&mut db, "p2pd", &MIGRATIONS[..5]).unwrap();
        db.execute(
            "INSERT INTO transfers (id, peer, peer_name, direction, state, manifest, created_at)
             VALUES (x'01', x'02', 'bob', 1, 'running', '{}', 1)",
            [],
        )
        .unwrap();
        assert_eq!(migrate(&mut db).unwrap(), 5);
        assert_eq!(version(&db), LATEST);
        let (state, pull): (String, i64) = db
            .query_row("SELECT state, pull FROM transfers", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((state.as_str(), pull), ("running", 0));
        let expected: i64 = db
            .query_row("SELECT COUNT(*) FROM expected_pulls", [], |r| r.get(0))
            .unwrap();
        assert_eq!(expected, 0);
    }

    #[test]
    fn shares_of_a_database_without_versions_stay_with_no_age_cap_nor_quota() {
        let mut db = Connection::open_in_memory().unwrap();
        svc::schema::migrate(&mut db, "p2pd", &MIGRATIONS[..6]).unwrap();
        db.execute(
            "INSERT INTO shares (name, path, keep_versions, max_version_bytes, created)
             VALUES ('docs', '/d', 3, 100, 1)",
            [],
        )
        .unwrap();
        assert_eq!(migrate(&mut db).unwrap(), 6);
        assert_eq!(version(&db), LATEST);
        let row: (u32, Option<i64>, Option<i64>, Option<i64>) = db
            .query_row(
                "SELECT keep_versions, max_version_bytes, max_version_age, write_quota FROM shares",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(row, (3, Some(100), None, None));
        let count = |table: &str| -> i64 {
            db.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!((count("versions"), count("version_numbers")), (0, 0));
    }

    #[test]
    fn transfers_of_a_database_without_end_times_stay_with_none() {
        let mut db = Connection::open_in_memory().unwrap();
        svc::schema::migrate(&mut db, "p2pd", &MIGRATIONS[..7]).unwrap();
        db.execute_batch(
            "INSERT INTO transfers (id, peer, peer_name, direction, state, manifest, created_at)
                 VALUES (x'01', x'02', 'bob', 1, 'done', '{}', 5);
             INSERT INTO transfer_files (id, file, verified_chunks, done) VALUES (x'01', 0, 1, 1);",
        )
        .unwrap();
        assert_eq!(migrate(&mut db).unwrap(), 7);
        assert_eq!(version(&db), LATEST);
        let row: (String, i64, Option<i64>, Option<String>) = db
            .query_row(
                "SELECT state, created_at, ended_at, landed FROM transfers JOIN transfer_files USING (id)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        // Seconds become milliseconds.
        assert_eq!(row, ("done".to_owned(), 5000, None, None));
    }

    #[test]
    fn messages_of_a_database_with_the_older_outbox_index_stay_and_the_new_index_serves_the_outbox()
    {
        let mut db = Connection::open_in_memory().unwrap();
        svc::schema::migrate(&mut db, "p2pd", &MIGRATIONS[..8]).unwrap();
        db.execute_batch(
            "INSERT INTO messages (id, peer, peer_name, direction, seq, text, state, sent_at)
                 VALUES (x'aa', x'01', 'bob', 0, 1, 'queued', 0, 5),
                        (x'bb', x'01', 'bob', 0, 2, 'delivered', 3, 6),
                        (x'cc', x'01', 'bob', 1, 1, 'incoming', 3, 7);",
        )
        .unwrap();
        assert_eq!(migrate(&mut db).unwrap(), 8);
        assert_eq!(version(&db), LATEST);
        let texts: Vec<String> = db
            .prepare("SELECT text FROM messages ORDER BY sent_at")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(texts, ["queued", "delivered", "incoming"]);
        let index: String = db
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'outbox'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(index.contains("(peer, direction, seq)"), "{index}");
        let queued: Vec<String> = db
            .prepare(
                "SELECT text FROM messages INDEXED BY outbox
                 WHERE peer = x'01' AND direction = 0 AND state IN (0, 4) ORDER BY seq",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(queued, ["queued"]);
    }

    #[test]
    fn transfers_of_a_database_without_landing_names_stay_and_land_as_before() {
        let mut db = Connection::open_in_memory().unwrap();
        svc::schema::migrate(&mut db, "p2pd", &MIGRATIONS[..9]).unwrap();
        db.execute_batch(
            "INSERT INTO transfers (id, peer, peer_name, direction, state, manifest, created_at)
                 VALUES (x'01', x'02', 'bob', 1, 'running', '{}', 5000);
             INSERT INTO transfer_files (id, file, verified_chunks, done, landed)
                 VALUES (x'01', 0, 3, 0, NULL);",
        )
        .unwrap();
        assert_eq!(migrate(&mut db).unwrap(), 9);
        assert_eq!(version(&db), LATEST);
        let row: (String, i64, i64, Option<String>) = db
            .query_row(
                "SELECT state, created_at, verified_chunks, landing FROM transfers JOIN transfer_files USING (id)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(row, ("running".to_owned(), 5000, 3, None));
    }

    #[test]
    fn transfers_of_a_database_without_swarm_pulls_stay_and_none_is_a_swarm() {
        let mut db = Connection::open_in_memory().unwrap();
        svc::schema::migrate(&mut db, "p2pd", &MIGRATIONS[..10]).unwrap();
        db.execute_batch(
            r#"INSERT INTO transfers (id, peer, peer_name, direction, state, manifest, created_at, pull, landing)
                 VALUES (x'01', x'02', 'bob', 1, 'running', '{}', 5000, 1, '{"d":"d (1)"}');
             INSERT INTO transfer_files (id, file, verified_chunks, done) VALUES (x'01', 0, 3, 0);"#,
        )
        .unwrap();
        assert_eq!(migrate(&mut db).unwrap(), 10);
        assert_eq!(version(&db), LATEST);
        let row: (String, i64, Option<String>, i64) = db
            .query_row(
                "SELECT state, pull, landing, verified_chunks FROM transfers JOIN transfer_files USING (id)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(
            row,
            (
                "running".to_owned(),
                1,
                Some(r#"{"d":"d (1)"}"#.to_owned()),
                3
            )
        );
        let swarms: i64 = db
            .query_row("SELECT COUNT(*) FROM swarm_pulls", [], |r| r.get(0))
            .unwrap();
        assert_eq!(swarms, 0);
    }

    #[test]
    fn a_newer_database_is_refused_untouched() {
        let mut db = Connection::open_in_memory().unwrap();
        db.pragma_update(None, "user_version", LATEST + 1).unwrap();
        let e = migrate(&mut db).unwrap_err();
        assert!(matches!(e, SchemaError::TooNew { found, .. } if found == LATEST + 1));
        assert!(e.to_string().contains("newer than this p2pd"), "{e}");
        assert_eq!(version(&db), LATEST + 1);
    }
}
