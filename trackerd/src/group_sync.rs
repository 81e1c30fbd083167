//! Group commit of the name bindings: each registration commits its own small transaction
//! without a sync (SQLite WAL, `synchronous = NORMAL`), then waits until the write-ahead log
//! has been synced past its commit. The first waiter syncs for everyone committed so far;
//! registrations that commit while that sync runs share the next one. So a burst of new
//! names costs one `fdatasync` per batch instead of one per name, and each `Registered`
//! still goes out only once its binding is on disk.

use std::io;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use tokio::sync::Notify;

/// Commits numbered in order, and how far the log is known to be on disk.
#[derive(Debug, Default)]
struct Progress {
    /// The ticket of the latest commit that needs a sync.
    committed: u64,
    /// Every commit up to this ticket is on disk.
    synced: u64,
    /// A sync is running.
    syncing: bool,
}

/// The sync of one database's write-ahead log, shared by the registrations waiting on it.
#[derive(Debug)]
pub struct GroupSync {
    /// The write-ahead log file (`tracker.db-wal`).
    wal: PathBuf,
    progress: Mutex<Progress>,
    done: Notify,
}

impl GroupSync {
    /// For the database whose write-ahead log is `wal`.
    pub fn new(wal: PathBuf) -> GroupSync {
        GroupSync {
            wal,
            progress: Mutex::new(Progress::default()),
            done: Notify::new(),
        }
    }

    /// A commit that must reach the disk was made; returns its ticket. Called in commit
    /// order (under the lock the commits are made under).
    pub fn committed(&self) -> u64 {
        let mut p = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        p.committed += 1;
        p.committed
    }

    /// Returns once the commit of `ticket` is on disk, syncing the log if no one else is.
    pub async fn durable(&self, ticket: u64) -> io::Result<()> {
        loop {
            let notified = self.done.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let upto = {
                let mut p = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
                if p.synced >= ticket {
                    return Ok(());
                }
                if p.syncing {
                    None
                } else {
                    p.syncing = true;
                    Some(p.committed)
                }
            };
            let Some(upto) = upto else {
                notified.await;
                continue;
            };
            let wal = self.wal.clone();
            let result = tokio::task::spawn_blocking(move || {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&wal)?
                    .sync_data()
            })
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)));
            {
                let mut p = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
                p.syncing = false;
                if result.is_ok() {
                    p.synced = p.synced.max(upto);
                }
            }
            self.done.notify_waiters();
            result?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_ticket_is_covered_by_a_sync_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("x-wal");
        std::fs::write(&wal, b"log").unwrap();
        let g = std::sync::Arc::new(GroupSync::new(wal));
        let tickets: Vec<u64> = (0..8).map(|_| g.committed()).collect();
        assert_eq!(tickets, (1..=8).collect::<Vec<_>>());
        let waits = tickets.iter().map(|&t| {
            let g = g.clone();
            tokio::spawn(async move { g.durable(t).await })
        });
        for w in waits.collect::<Vec<_>>() {
            w.await.unwrap().unwrap();
        }
        assert_eq!(g.progress.lock().unwrap().synced, 8);
        // A sync that fails leaves the ticket waiting: the error reaches the caller.
        let gone = GroupSync::new(dir.path().join("missing"));
        let t = gone.committed();
        assert!(gone.durable(t).await.is_err());
    }
}
