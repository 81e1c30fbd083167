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
//!
//! Group commit: writes made through [`Db::call_grouped`] that are queued together (they
//! arrived while the worker waited for an earlier fsync) run in one transaction, each in a
//! savepoint of its own, and share its one fsync. Each caller is answered only after that
//! commit, so "stored before answered" holds as for [`Db::call`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use rusqlite::Connection;

use super::{StoreError, migrations, private_files};

/// How long a write waits for another process's write lock before it fails.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Most grouped jobs committed in one transaction.
const GROUP_MAX: usize = 256;

/// One job for the worker.
enum Job {
    /// Runs alone (in its own transactions, if it makes any).
    Alone(Box<dyn FnOnce(&mut Connection) + Send>),
    /// Runs inside the transaction of its group (given `Err` when that could not begin) and
    /// returns what answers its caller once the group's commit is known.
    Grouped(GroupJob),
}

/// A grouped job: given the group's connection, or the error that kept it from beginning.
type GroupJob = Box<dyn FnOnce(Result<&Connection, &rusqlite::Error>) -> Answer + Send>;

/// Answers a grouped job's caller: given `None` once its group committed, else the error.
type Answer = Box<dyn FnOnce(Option<&rusqlite::Error>) + Send>;

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
                run(&mut conn, &inbox);
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
        let job = Job::Alone(Box::new(move |conn| {
            reply(f(conn).map_err(|source| StoreError::Sql {
                path: path.to_path_buf(),
                source,
            }));
        }));
        self.jobs.send(job).map_err(|_| StoreError::Stopped)
    }

    /// Runs `f` on the worker inside a transaction it may share with the grouped jobs queued
    /// beside it (see the module's doc), in a savepoint of its own: its error undoes its own
    /// writes only. The result comes once the transaction is committed. `f` must not begin
    /// or end transactions. The job is queued when this is called, not when it is awaited,
    /// so calls made in turn run in turn.
    pub fn call_grouped<T, F>(
        &self,
        f: F,
    ) -> impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let path = self.path.clone();
        let job = Job::Grouped(Box::new(move |conn| {
            let result = match conn {
                Ok(c) => in_savepoint(c, f),
                Err(e) => Err(copy_error(e)),
            };
            Box::new(move |committed: Option<&rusqlite::Error>| {
                let result = match committed {
                    Some(e) => Err(copy_error(e)),
                    None => result,
                };
                let _ = tx.send(result.map_err(|source| StoreError::Sql {
                    path: path.to_path_buf(),
                    source,
                }));
            })
        }));
        let sent = self.jobs.send(job).map_err(|_| StoreError::Stopped);
        async move {
            sent?;
            rx.await.map_err(|_| StoreError::Stopped)?
        }
    }
}

/// The worker's loop: jobs in order; grouped jobs queued one after another share a commit.
fn run(conn: &mut Connection, inbox: &mpsc::Receiver<Job>) {
    let mut next = inbox.recv().ok();
    while let Some(job) = next.take() {
        match job {
            Job::Alone(f) => f(conn),
            Job::Grouped(first) => {
                let mut group = vec![first];
                while group.len() < GROUP_MAX {
                    match inbox.try_recv() {
                        Ok(Job::Grouped(g)) => group.push(g),
                        Ok(alone) => {
                            next = Some(alone);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                commit_group(conn, group);
            }
        }
        if next.is_none() {
            next = inbox.recv().ok();
        }
    }
}

/// Runs `group` in one transaction and answers each job after its commit (or failure).
fn commit_group(conn: &mut Connection, group: Vec<GroupJob>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        for job in group {
            job(Err(&e))(Some(&e));
        }
        return;
    }
    let answers: Vec<Answer> = group.into_iter().map(|job| job(Ok(conn))).collect();
    let committed = conn.execute_batch("COMMIT").err();
    if committed.is_some() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for answer in answers {
        answer(committed.as_ref());
    }
}

/// Runs `f` in a savepoint: kept if it succeeds, undone if it fails.
fn in_savepoint<T>(
    c: &Connection,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    if c.is_autocommit() {
        // An earlier job's failure ended the group's transaction: run nothing outside it.
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
            Some("the group's transaction was rolled back".into()),
        ));
    }
    c.execute_batch("SAVEPOINT job")?;
    let result = f(c);
    if result.is_err() {
        c.execute_batch("ROLLBACK TO job")?;
    }
    c.execute_batch("RELEASE job")?;
    result
}

/// A copy of `e` for each caller of a group (errors are not `Clone`).
fn copy_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, msg) => {
            rusqlite::Error::SqliteFailure(*code, msg.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
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

    #[tokio::test]
    async fn grouped_jobs_queued_together_share_one_commit_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).await.unwrap();
        db.call(|c| c.execute_batch("CREATE TABLE t (n INTEGER)"))
            .await
            .unwrap();
        // Hold the worker so that the grouped jobs queue up behind it.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, holds) = tokio::sync::oneshot::channel();
        let worker = db.clone();
        let holding = tokio::spawn(async move {
            worker
                .call(move |_| {
                    let _ = started.send(());
                    let _ = held.recv();
                    Ok(())
                })
                .await
        });
        holds.await.unwrap();
        let path = db.path().to_owned();
        let insert = |n: i64| move |c: &Connection| c.execute("INSERT INTO t VALUES (?1)", [n]);
        let first = db.call_grouped(insert(1));
        let failing = db.call_grouped(|c| {
            c.execute("INSERT INTO t VALUES (2)", [])?;
            c.execute_batch("SELECT * FROM missing")
        });
        // Sees the group's rows so far; another connection sees none of them yet.
        let third = db.call_grouped(move |c| {
            c.execute("INSERT INTO t VALUES (3)", [])?;
            let mine: i64 = c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?;
            let other = Connection::open(&path)?;
            let theirs: i64 = other.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?;
            Ok((mine, theirs))
        });
        release.send(()).unwrap();
        holding.await.unwrap().unwrap();
        first.await.unwrap();
        assert!(failing.await.is_err());
        assert_eq!(third.await.unwrap(), (2, 0));
        let all: Vec<i64> = db
            .call(|c| {
                let mut s = c.prepare("SELECT n FROM t ORDER BY rowid")?;
                s.query_map([], |r| r.get(0))?.collect()
            })
            .await
            .unwrap();
        assert_eq!(
            all,
            [1, 3],
            "the failed job's row is undone, the others kept"
        );
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
