//! The database schema as numbered migrations, tracked in `PRAGMA user_version`.
//!
//! Version `n` is reached by running `MIGRATIONS[n - 1]` on a database at version `n - 1`,
//! each in its own transaction together with the new `user_version`. Version 1 is the schema
//! of the first release, which did not set `user_version`: its statements are idempotent, so
//! an unversioned database made by that release (version 0 with its tables) and a new empty
//! file both reach version 1 the same way. Never edit a released migration; append one.

use rusqlite::Connection;
use svc::schema::{Migration, SchemaError};

/// Each version's step, in order: `MIGRATIONS[0]` makes version 1.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        what: "name bindings and the last seq per key",
        sql: "CREATE TABLE IF NOT EXISTS names (name TEXT PRIMARY KEY, key BLOB NOT NULL, bound_at INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS seqs (key BLOB PRIMARY KEY, seq INTEGER NOT NULL);",
    },
    // The first schema kept no use times: a key that held several names keeps the one bound
    // most recently, and every binding counts as used at the upgrade, so none lapses before
    // it could be used.
    Migration {
        what: "one name per key, and when each binding was last used",
        sql: "ALTER TABLE names ADD COLUMN last_used INTEGER NOT NULL DEFAULT 0;
     UPDATE names SET last_used = CAST(strftime('%s', 'now') AS INTEGER);
     DELETE FROM names WHERE rowid <> (
         SELECT n.rowid FROM names AS n WHERE n.key = names.key
         ORDER BY n.bound_at DESC, n.rowid DESC LIMIT 1);
     CREATE UNIQUE INDEX names_by_key ON names (key);",
    },
    // Served to peers that pinned an old key, so they can follow the name to its new key.
    Migration {
        what: "the handover statements accepted per name",
        sql: "CREATE TABLE handovers (
         n INTEGER PRIMARY KEY,
         name TEXT NOT NULL,
         old_key BLOB NOT NULL,
         new_key BLOB NOT NULL,
         seq INTEGER NOT NULL,
         sig BLOB NOT NULL,
         accepted_at INTEGER NOT NULL);
     CREATE INDEX handovers_by_name ON handovers (name, n);",
    },
];

/// The schema version this binary writes.
pub const LATEST: u32 = MIGRATIONS.len() as u32;

/// Brings `db` up to [`LATEST`]; returns the version it had before.
pub fn migrate(db: &mut Connection) -> Result<u32, SchemaError> {
    svc::schema::migrate(db, "trackerd", MIGRATIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(db: &Connection) -> u32 {
        db.pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn an_empty_file_reaches_the_latest_version_once() {
        let mut db = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut db).unwrap(), 0);
        assert_eq!(version(&db), LATEST);
        assert_eq!(migrate(&mut db).unwrap(), LATEST);
    }

    #[test]
    fn a_newer_file_is_refused_and_left_alone() {
        let mut db = Connection::open_in_memory().unwrap();
        db.pragma_update(None, "user_version", LATEST + 1).unwrap();
        let err = migrate(&mut db).unwrap_err();
        assert!(matches!(err, SchemaError::TooNew { found, .. } if found == LATEST + 1));
        let msg = err.to_string();
        assert!(msg.contains(&(LATEST + 1).to_string()) && msg.contains(&LATEST.to_string()));
        assert_eq!(version(&db), LATEST + 1);
    }

    #[test]
    fn version_2_keeps_the_most_recently_bound_name_of_each_key() {
        let mut db = Connection::open_in_memory().unwrap();
        db.execute_batch(MIGRATIONS[0].sql).unwrap();
        db.execute_batch(
            "INSERT INTO names VALUES ('a1', x'01', 10), ('a2', x'01', 30), ('a3', x'01', 20),
                                      ('b1', x'02', 5);",
        )
        .unwrap();
        migrate(&mut db).unwrap();
        let mut stmt = db
            .prepare("SELECT name, last_used FROM names ORDER BY name")
            .unwrap();
        let rows: Vec<(String, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a2", "b1"]);
        let now = i64::try_from(svc::unix_now()).unwrap();
        assert!(
            rows.iter().all(|&(_, t)| (now - 5..=now + 5).contains(&t)),
            "{rows:?}"
        );
        // One name per key from now on.
        assert!(
            db.execute("INSERT INTO names VALUES ('a4', x'01', 40, 40)", [])
                .is_err()
        );
    }
}
