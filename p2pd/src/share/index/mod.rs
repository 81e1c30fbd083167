//! The index of one share: what the share serves, in memory, kept fresh while the daemon
//! runs. Listings and stats are answered from it, paged, never by walking the disk per
//! request.
//!
//! What is served: regular files and directories below the root whose path is a valid
//! [`RelPath`] (Unicode NFC; a name that breaks a rule, is not UTF-8, or is a second spelling
//! of a name already listed is skipped and counted in [`Skipped`]). Symlinks are not followed
//! and not listed: a symlink in a share is served as nothing, so nothing outside the root is
//! ever read. Hidden files (names starting with `.`) are served like any other; the owner
//! leaves things out with `.p2pignore` files (gitignore syntax, at any level, a deeper file
//! taking precedence), which are not served themselves. No other ignore file is read
//! (`.gitignore`, git's global excludes, anything above the root).
//!
//! Threads (both below the runtime's CPU priority): the worker (`worker.rs`), which walks the
//! share and applies what the watch (`watch.rs`) reports, plus a full walk periodically and on
//! demand; the hasher (`hasher.rs`), which computes BLAKE3 hashes one file at a time, files
//! asked for first. A file whose size or modification time changes loses its hash and is
//! queued again. Every change is published to subscribers ([`ShareIndex::subscribe`]).
//!
//! The index holds nothing on disk and speaks no protocol: the share service owns one per share
//! and serves it.

mod hasher;
mod ids;
mod tree;
mod walk;
mod watch;
mod worker;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fresh;
#[cfg(test)]
mod tests_sweep;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use proto::transfer::RelPath;
use tokio::sync::{broadcast, oneshot, watch as tokio_watch};

pub use tree::{Change, Entry, Kind, Page, Totals};
pub use walk::Skipped;

use tree::{Body, Tree};
use worker::Msg;

/// The name of the files that say what a share leaves out (gitignore syntax).
pub const IGNORE_FILE: &str = ".p2pignore";

/// Names of the staging files of puts being received (`.p2p-put-<random>.part`, beside
/// their target): never served, never hashed.
pub const STAGING_PREFIX: &str = ".p2p-put-";

/// Whether a file named `name` is a put's staging file, or the part file of a multi-source
/// download (`.<name>.swarm-<16 hex digits>.part`, served by id while it runs, chunk by
/// verified chunk, never as a file).
pub fn is_staging(name: &std::ffi::OsStr) -> bool {
    let b = name.as_encoded_bytes();
    let Some(stem) = b.strip_suffix(b".part") else {
        return false;
    };
    if b.starts_with(STAGING_PREFIX.as_bytes()) {
        return true;
    }
    let Some(tag) = stem.len().checked_sub(16).map(|at| stem.split_at(at)) else {
        return false;
    };
    b.starts_with(b".")
        && tag.0.ends_with(b".swarm-")
        && tag
            .1
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// The most entries one page of a listing holds.
pub const MAX_PAGE: usize = 1000;

/// Batches of changes a subscriber may fall behind by before it is told it lagged.
const CHANGE_BACKLOG: usize = 256;

/// How an index keeps itself fresh.
#[derive(Debug, Clone)]
pub struct IndexOptions {
    /// Watch the share for changes (inotify); without it only rescans notice them.
    pub watch: bool,
    /// How long the watch waits for a burst of events on a path to end before reporting it.
    pub debounce: Duration,
    /// How often the whole share is walked again (the watch can miss changes).
    pub rescan_every: Duration,
    /// Hash every file in the background; without it only files asked for are hashed.
    pub hash_in_background: bool,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            watch: true,
            debounce: Duration::from_millis(500),
            rescan_every: Duration::from_secs(600),
            hash_in_background: true,
        }
    }
}

/// Why the index cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The share's root cannot be indexed.
    #[error("cannot index {}: {source}", root.display())]
    Root {
        /// The root as given.
        root: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start the {name} thread: {source}")]
    Spawn {
        /// The thread's name.
        name: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The first walk of the share has not finished.
    #[error("the share is still being indexed; try again shortly")]
    NotReady,
    /// No such entry is served.
    #[error("{path}: no such file or directory")]
    NotFound {
        /// The path asked for.
        path: String,
    },
    /// A listing of a file.
    #[error("{path} is not a directory")]
    NotADirectory {
        /// The path asked for.
        path: String,
    },
    /// A hash of a directory.
    #[error("{path} is not a file")]
    NotAFile {
        /// The path asked for.
        path: String,
    },
    /// The file changed every time it was hashed.
    #[error("{path} kept changing while it was hashed; try again once it is written")]
    Changing {
        /// The file.
        path: String,
    },
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The index was stopped.
    #[error("the share's index is stopped")]
    Stopped,
}

/// Counts of what an index serves and what it leaves out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// What it serves now.
    pub totals: Totals,
    /// What the last full walk left out.
    pub skipped: Skipped,
}

/// What tests run after each read of a file being hashed.
#[cfg(test)]
type Hook = Box<dyn FnMut(&RelPath) + Send>;

/// What the index's threads share.
struct Shared {
    /// The share's root, canonical.
    root: PathBuf,
    options: IndexOptions,
    /// What is served; readers hold it only to look up.
    tree: RwLock<Tree>,
    /// Held by whoever changes the tree, from the comparison that finds changes to the swap.
    writer: Mutex<()>,
    skipped: Mutex<Skipped>,
    queue: hasher::Queue,
    /// Content id to path, built on demand.
    ids: ids::Ids,
    changes: broadcast::Sender<Vec<Change>>,
    /// Whether the first walk is done.
    ready: tokio_watch::Sender<bool>,
    stop: AtomicBool,
    to_worker: mpsc::Sender<Msg>,
    /// Runs after each read of a file being hashed.
    #[cfg(test)]
    hook: Mutex<Option<Hook>>,
}

/// A file found by content id ([`ShareIndex::find`]), as the index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// Its path in the share.
    pub path: RelPath,
    /// Its path below the root as named on disk (to open with [`ShareIndex::open_file`]).
    pub disk: PathBuf,
    /// Its size when hashed.
    pub size: u64,
    /// Its modification time when hashed.
    pub mtime: std::time::SystemTime,
}

/// The index of one share, with its threads; stopping or dropping it stops them.
pub struct ShareIndex {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl ShareIndex {
    /// Starts indexing the directory `root`. Returns at once; the first walk runs on the
    /// index's thread ([`ShareIndex::ready`]).
    pub fn open(root: &Path, options: IndexOptions) -> Result<ShareIndex, IndexError> {
        let root_err = |source| IndexError::Root {
            root: root.to_owned(),
            source,
        };
        let canonical = root.canonicalize().map_err(root_err)?;
        if !canonical.is_dir() {
            return Err(root_err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            )));
        }
        let (to_worker, inbox) = mpsc::channel();
        let shared = Arc::new(Shared {
            root: canonical,
            options,
            tree: RwLock::new(Tree::new(std::time::UNIX_EPOCH)),
            writer: Mutex::new(()),
            skipped: Mutex::new(Skipped::default()),
            queue: hasher::Queue::default(),
            ids: ids::Ids::default(),
            changes: broadcast::channel(CHANGE_BACKLOG).0,
            ready: tokio_watch::channel(false).0,
            stop: AtomicBool::new(false),
            to_worker,
            #[cfg(test)]
            hook: Mutex::new(None),
        });
        let mut index = ShareIndex {
            shared: shared.clone(),
            threads: Vec::new(),
        };
        let s = shared.clone();
        index
            .threads
            .push(spawn("p2pd-index", move || worker::run(s, inbox))?);
        let s = shared;
        index
            .threads
            .push(spawn("p2pd-index-hash", move || hasher::run(&s))?);
        Ok(index)
    }

    /// The share's root (canonical).
    pub fn root(&self) -> &Path {
        &self.shared.root
    }

    /// Resolves once the first walk is done (at once if it is).
    pub fn ready(&self) -> impl Future<Output = Result<(), IndexError>> + Send + 'static {
        let mut rx = self.shared.ready.subscribe();
        async move {
            rx.wait_for(|ready| *ready)
                .await
                .map(|_| ())
                .map_err(|_| IndexError::Stopped)
        }
    }

    /// Whether the first walk is done.
    pub fn is_ready(&self) -> bool {
        *self.shared.ready.borrow()
    }

    fn check_ready(&self) -> Result<(), IndexError> {
        if self.is_ready() {
            Ok(())
        } else {
            Err(IndexError::NotReady)
        }
    }

    /// Whether the share's `.p2pignore` files leave out a file `name` in the directory `dir`
    /// (a path at or below the root), were it there (reads the ignore files on the way).
    pub fn ignores_file(&self, dir: &Path, name: &str) -> bool {
        walk::ignores_file(self.root(), dir, name)
    }

    /// The entry at `path` (`None`: the root).
    pub fn stat(&self, path: Option<&RelPath>) -> Result<Entry, IndexError> {
        self.check_ready()?;
        read(&self.shared.tree).stat(path.map_or("", RelPath::as_str))
    }

    /// Up to `limit` (at least 1, at most [`MAX_PAGE`]) entries of the directory at `dir`
    /// (`None`: the root), sorted by name, from the first name after `after`; give the
    /// [`Page::next`] of a page as `after` for the next one.
    pub fn list(
        &self,
        dir: Option<&RelPath>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, IndexError> {
        self.check_ready()?;
        read(&self.shared.tree).list(
            dir.map_or("", RelPath::as_str),
            after,
            limit.clamp(1, MAX_PAGE),
        )
    }

    /// The changes from now on, a batch at a time, in the order they were applied. A
    /// subscriber more than a few hundred batches behind is told it lagged
    /// (`RecvError::Lagged`): it missed changes and should read again what it needs.
    pub fn subscribe(&self) -> broadcast::Receiver<Vec<Change>> {
        self.shared.changes.subscribe()
    }

    /// Walks the whole share now; resolves with the changes found (also published).
    pub fn rescan(&self) -> impl Future<Output = Result<Vec<Change>, IndexError>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let _ = self.shared.to_worker.send(Msg::Rescan(tx));
        async move { rx.await.map_err(|_| IndexError::Stopped) }
    }

    /// Looks at `paths` again now (each with what is below it; a path gone is dropped, with
    /// its parent's listing updated); resolves once the index shows them as they are on
    /// disk, with the changes found (also published). For whoever changed them: an `ls` or
    /// `stat` after it sees the change, without waiting for the watch.
    pub fn refresh(
        &self,
        paths: &[RelPath],
    ) -> impl Future<Output = Result<Vec<Change>, IndexError>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let _ = self.shared.to_worker.send(Msg::Update(paths.to_vec(), tx));
        async move { rx.await.map_err(|_| IndexError::Stopped) }
    }

    /// The BLAKE3 hash of the file at `path`: at once if known, else once the file is hashed,
    /// ahead of the files hashed in the background.
    pub fn hash(
        &self,
        path: &RelPath,
    ) -> impl Future<Output = Result<[u8; 32], IndexError>> + Send + 'static {
        let known = self.known_hash(path);
        let (tx, rx) = oneshot::channel();
        if let Ok(None) = known {
            self.shared.queue.wait_for(path, tx);
        }
        async move {
            match known? {
                Some(h) => Ok(h),
                None => rx.await.unwrap_or(Err(IndexError::Stopped)),
            }
        }
    }

    fn known_hash(&self, path: &RelPath) -> Result<Option<[u8; 32]>, IndexError> {
        self.check_ready()?;
        match read(&self.shared.tree).node(path.as_str()).map(|n| &n.body) {
            Some(Body::File { hash, .. }) => Ok(*hash),
            Some(Body::Dir(_)) => Err(IndexError::NotAFile {
                path: path.to_string(),
            }),
            None => Err(IndexError::NotFound {
                path: path.to_string(),
            }),
        }
    }

    /// A file served with content id `id`, if the index knows one (no disk I/O; the first
    /// lookup after a change reads the whole tree once).
    pub fn find(&self, id: &[u8; 32]) -> Option<Located> {
        if !self.is_ready() {
            return None;
        }
        let tree = read(&self.shared.tree);
        let path = self.shared.ids.find(&tree, id)?;
        let node = tree.node(&path)?;
        match node.body {
            Body::File {
                size,
                hash: Some(hash),
            } if hash == *id => Some(Located {
                disk: tree.disk_path(&path)?,
                path: RelPath::new(&path).ok()?,
                size,
                mtime: node.mtime,
            }),
            _ => None,
        }
    }

    /// Opens the regular file at `disk` (a [`Located::disk`]) below the root, one component at
    /// a time, following no symlink: nothing outside the share can be opened.
    pub fn open_file(&self, disk: &Path) -> io::Result<std::fs::File> {
        hasher::open_beneath(&self.shared.root, disk)
    }

    /// What the index serves and leaves out.
    pub fn stats(&self) -> Stats {
        Stats {
            totals: read(&self.shared.tree).totals(),
            skipped: *lock(&self.shared.skipped),
        }
    }

    /// Stops the threads and waits for them (a walk stops at its next entry, a hash at its
    /// next read). Callers waiting for a hash or a rescan get [`IndexError::Stopped`].
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let _ = self.shared.to_worker.send(Msg::Stop);
        self.shared.queue.stop();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// Runs `hook` after each read of a file being hashed.
    #[cfg(test)]
    fn set_hook(&self, hook: impl FnMut(&RelPath) + Send + 'static) {
        *lock(&self.shared.hook) = Some(Box::new(hook));
    }
}

impl Drop for ShareIndex {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts a named thread at the background priority ([`crate::background`]).
fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, IndexError> {
    crate::background::spawn(name, f).map_err(|source| IndexError::Spawn {
        name: name.into(),
        source,
    })
}

/// Locks `m`; a panic elsewhere leaves the data usable.
fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}
