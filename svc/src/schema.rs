//! Numbered schema migrations for a daemon's SQLite database, recorded in
//! `PRAGMA user_version`.
//!
//! Version `n` is reached by running the `n`-th migration on a database at version `n - 1`,
//! each in its own transaction together with the new `user_version`, so a crash leaves the
//! file at one version or the next. A daemon's first schema did not set `user_version`: its
//! statements are written to be idempotent (`IF NOT EXISTS`), so an unversioned database made
//! by that release (version 0 with its tables) and a new empty file both reach version 1 the
//! same way. A file whose version is above what the binary knows was written by a newer one
//! and is refused, untouched. Never edit a released migration; append one.

use rusqlite::Connection;

/// One step of a schema.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// What it does, for errors and the log.
    pub what: &'static str,
    /// The statements.
    pub sql: &'static str,
}

/// Why a schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The file was written by a newer version of the program.
    #[error(
        "database schema version {found} is newer than this {program} knows (up to {latest}); \
         run a {program} at least as new as the one that wrote it, or move the file aside"
    )]
    TooNew {
        /// The program (`p2pd`, `trackerd`).
        program: &'static str,
        /// The version found in the file.
        found: u32,
        /// The newest version this binary knows.
        latest: u32,
    },
    /// A migration failed; the file stays at the version before it.
    #[error("migration to schema version {version} ({what}) failed: {source}")]
    Step {
        /// The version it was to make.
        version: u32,
        /// What that migration does.
        what: &'static str,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The version could not be read.
    #[error("cannot read the schema version: {0}")]
    Version(#[source] rusqlite::Error),
}

/// The schema version recorded in `db`.
pub fn version(db: &Connection) -> Result<u32, SchemaError> {
    db.pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(SchemaError::Version)
}

/// Brings `db` up to `migrations.len()`; returns the version it had before.
pub fn migrate(
    db: &mut Connection,
    program: &'static str,
    migrations: &[Migration],
) -> Result<u32, SchemaError> {
    let latest = u32::try_from(migrations.len()).unwrap_or(u32::MAX);
    let found = version(db)?;
    if found > latest {
        return Err(SchemaError::TooNew {
            program,
            found,
            latest,
        });
    }
    for (version, m) in (1..=latest).zip(migrations).skip(found as usize) {
        let step = |source| SchemaError::Step {
            version,
            what: m.what,
            source,
        };
        let tx = db.transaction().map_err(step)?;
        tx.execute_batch(m.sql).map_err(step)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(step)?;
        tx.commit().map_err(step)?;
    }
    if found != latest {
        tracing::info!(
            program,
            from = found,
            to = latest,
            "database schema upgraded"
        );
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: &[Migration] = &[
        Migration {
            what: "a table",
            sql: "CREATE TABLE IF NOT EXISTS t (a INTEGER);",
        },
        Migration {
            what: "a column",
            sql: "ALTER TABLE t ADD COLUMN b INTEGER NOT NULL DEFAULT 7;",
        },
    ];

    #[test]
    fn an_empty_file_reaches_the_latest_version_once() {
        let mut db = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut db, "test", STEPS).unwrap(), 0);
        assert_eq!(version(&db).unwrap(), 2);
        assert_eq!(migrate(&mut db, "test", STEPS).unwrap(), 2);
    }

    #[test]
    fn an_unversioned_first_schema_upgrades_and_keeps_its_rows() {
        let mut db = Connection::open_in_memory().unwrap();
        db.execute_batch("CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1);")
            .unwrap();
        assert_eq!(migrate(&mut db, "test", STEPS).unwrap(), 0);
        let b: i64 = db
            .query_row("SELECT b FROM t WHERE a = 1", [], |r| r.get(0))
            .unwrap();
        assert_eq!(b, 7);
    }

    #[test]
    fn a_failed_step_leaves_the_version_before_it() {
        let mut db = Connection::open_in_memory().unwrap();
        let bad = [
            STEPS[0],
            Migration {
                what: "broken",
                sql: "CREATE TABLE u (x); SELECT nothing FROM nowhere;",
            },
        ];
        let e = migrate(&mut db, "test", &bad).unwrap_err();
        assert!(matches!(e, SchemaError::Step { version: 2, .. }), "{e}");
        assert_eq!(version(&db).unwrap(), 1);
        // The failed step's own statements were rolled back too.
        assert!(db.execute_batch("CREATE TABLE u (x);").is_ok());
    }

    #[test]
    fn a_newer_file_is_refused_and_left_alone() {
        let mut db = Connection::open_in_memory().unwrap();
        db.pragma_update(None, "user_version", 3).unwrap();
        let e = migrate(&mut db, "p2pd", STEPS).unwrap_err();
        assert!(matches!(
            e,
            SchemaError::TooNew {
                found: 3,
                latest: 2,
                ..
            }
        ));
        assert!(
            e.to_string()
                .contains("newer than this p2pd knows (up to 2)"),
            "{e}"
        );
        assert_eq!(version(&db).unwrap(), 3);
    }
}
