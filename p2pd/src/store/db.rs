//! The database worker: one OS thread owns the SQLite connection and runs, one at a time and
//! in the order they were sent, the closures the services hand it.
//!
//! Why a thread of its own: the database runs with `synchronous = FULL`, so every commit
//! waits for an fsync, which can take milliseconds (far more on a loaded disk). Run on a
//! tokio worker, that wait would stall every task scheduled there: links, timers, control
//! calls. Here async callers await a reply ([`Db::call`]) while the worker thread waits for
//! the disk, and code already on a std thread (the transfer sink's durability thread) waits
//! in place ([`Db::call_blocking`]).
//!
//! Why one worker for every service: SQLite allows one writer at a time; one connection
//! serialises the writes without `SQLITE_BUSY` retries and keeps each statement cache warm,
//! and WAL lets that single writer commit without rewriting the main file each time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use rusqlite::Connection;

use super::{StoreError, migrations, private_files};

/// How long a write waits for another process's write lock before it fails.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// One job for the worker.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A handle on the database worker; cheap to clone. The worker thread ends when the last
/// handle is dropped, after the jobs already sent.
#[derive(Clone)]
pub struct Db {
    jobs: mpsc::Sender<Job>,
    path: Arc<PathBuf>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

impl Db {
    /// Opens (creating if needed) `<state_dir>/p2pd.db` on a new worker thread: WAL,
    /// `synchronous = FULL`, the schema brought up to date by [`migrations`] (a database
    /// written by a newer p2pd is refused), the file and its WAL companions 0600 whatever the
    /// umask. Returns once the database is ready.
    pub async fn open(state_dir: &Path) -> Result<Db, StoreError> {
        let (db, ready) = Self::spawn(state_dir)?;
        ready.await.unwrap_or(Err(StoreError::Stopped))?;
        Ok(db)
    }

    /// [`open`](Self::open), waiting in place: for tests and std threads.
    pub fn open_blocking(state_dir: &Path) -> Result<Db, StoreError> {
        let (db, ready) = Self::spawn(state_dir)?;
        ready.blocking_recv().unwrap_or(Err(StoreError::Stopped))?;
        Ok(db)
    }

    fn spawn(
        state_dir: &Path,
    ) -> Result<(Db, tokio::sync::oneshot::Receiver<Result<(), StoreError>>), StoreError> {
        let path = state_dir.join("p2pd.db");
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready_tx, ready) = tokio::sync::oneshot::channel();
        let thread_path = path.clone();
        std::thread::Builder::new()
            .name("p2pd-db".into())
            .spawn(move || {
                let mut conn = match open_connection(&thread_path) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                for job in inbox {
                    job(&mut conn);
                }
            })
            .map_err(|source| StoreError::Thread {
                path: path.clone(),
                source,
            })?;
        Ok((
            Db {
                jobs,
                path: Arc::new(path),
            },
            ready,
        ))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the worker and awaits its result. Jobs run in the order they were sent,
    /// each to its end: a caller that stops awaiting does not undo a write.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(f, move |r| {
            let _ = tx.send(r);
        })?;
        rx.await.map_err(|_| StoreError::Stopped)?
    }

    /// Runs `f` on the worker and waits for its result on this thread. Only for std threads
    /// (the transfer sink's durability thread); async code uses [`call`](Self::call).
    pub fn call_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(f, move |r| {
            let _ = tx.send(r);
        })?;
        rx.recv().map_err(|_| StoreError::Stopped)?
    }

    fn send<T, F>(
        &self,
        f: F,
        reply: impl FnOnce(Result<T, StoreError>) + Send + 'static,
    ) -> Result<(), StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let path = self.path.clone();
        let job: Job = Box::new(move |conn| {
            reply(f(conn).map_err(|source| StoreError::Sql {
                path: path.to_path_buf(),
                source,
            }));
        });
        self.jobs.send(job).map_err(|_| StoreError::Stopped)
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    private_files(path)?;
    let sql = |source| StoreError::Sql {
        path: path.to_owned(),
        source,
    };
    let mut conn = Connection::open(path).map_err(sql)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
        .map_err(sql)?;
    // Another process holding the write lock (a backup, the sqlite3 shell) delays a write
    // rather than failing it.
    conn.busy_timeout(BUSY_WAIT).map_err(sql)?;
    migrations::migrate(&mut conn).map_err(|source| StoreError::Migrate {
        path: path.to_owned(),
        source,
    })?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_in_order_off_the_runtime_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).await.unwrap();
        let here = std::thread::current().id();
        let there = db.call(|_| Ok(std::thread::current().id())).await.unwrap();
        assert_ne!(here, there, "the job ran on the worker thread");
        db.call(|c| c.execute_batch("CREATE TABLE t (n INTEGER)"))
            .await
            .unwrap();
        for n in 0..3 {
            db.call(move |c| c.execute("INSERT INTO t VALUES (?1)", [n]))
                .await
                .unwrap();
        }
        let all: Vec<i64> = db
            .call_blocking(|c| {
                let mut s = c.prepare("SELECT n FROM t ORDER BY rowid")?;
                s.query_map([], |r| r.get(0))?.collect()
            })
            .unwrap();
        assert_eq!(all, [0, 1, 2]);
        let e = db
            .call(|c| c.execute_batch("SELECT * FROM missing"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("p2pd.db"), "{e}");
    }

    #[test]
    fn a_newer_database_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("p2pd.db")).unwrap();
        conn.pragma_update(None, "user_version", migrations::LATEST + 1)
            .unwrap();
        drop(conn);
        let e = Db::open_blocking(dir.path()).unwrap_err();
        assert!(matches!(e, StoreError::Migrate { .. }), "{e}");
    }
}
