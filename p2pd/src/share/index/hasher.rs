//! Hashing the files of a share, one at a time, on one low-priority thread: files asked for
//! first, in the order asked, then every file without a hash in listing order.
//!
//! The background order costs no memory per file: it is a sweep of the tree, the hasher
//! holding only the last path it took and asking the tree for the next file without a hash
//! after it. A file changed behind the sweep makes it go round once more. The directory of the
//! last file opened is kept open for the next one, so a directory's files cost one open each
//! (and the share's watch one event each, not one per directory on the way).
//!
//! A hash is kept only for the file the index lists: the file is opened below the root one
//! component at a time with no symlink followed, its size and modification time must be those
//! the index holds, and its size, times, inode and length read must be the same after the
//! read as before. A file that changed is not given a hash: the worker looks at it again
//! and queues it once more.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::SystemTime;

use proto::transfer::RelPath;
use tokio::sync::oneshot;

use crate::fsx::{self, DirHandle};

use super::tree::{Body, Change};
use super::worker::Msg;
use super::{IndexError, Shared, lock, read, write};

/// Bytes read at a time.
pub(super) const READ_BUF: usize = 256 * 1024;

/// Hashes tried for a file someone waits for before telling them it keeps changing.
pub(super) const MAX_ATTEMPTS: u8 = 3;

/// Where the answer to an on-demand hash goes.
pub(super) type Reply = oneshot::Sender<Result<[u8; 32], IndexError>>;

/// Who waits for a file's hash.
struct Waiting {
    replies: Vec<Reply>,
    /// Hashes of it that found it changing.
    attempts: u8,
}

/// Where the background sweep stands.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Sweep {
    /// The tree may hold files without a hash: sweep it.
    wanted: bool,
    /// Start again from the first file (the hasher forgets where it was).
    restart: bool,
    /// A file changed during this sweep: once it ends, go round once more.
    again: bool,
}

#[derive(Default)]
struct Inner {
    /// Files someone waits for, first come first served.
    urgent: VecDeque<RelPath>,
    in_urgent: HashSet<RelPath>,
    /// The sweep for every other file.
    sweep: Sweep,
    waiters: HashMap<RelPath, Waiting>,
    stopped: bool,
}

/// What the hasher does next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Job {
    /// Hash this file, someone waits for it.
    Asked(RelPath),
    /// Hash the next file of the sweep, from the first one if `restart`.
    Sweep {
        /// Forget where the sweep was.
        restart: bool,
    },
}

/// The files to hash, and who waits for which.
#[derive(Default)]
pub(super) struct Queue {
    inner: Mutex<Inner>,
    wake: Condvar,
}

impl Queue {
    /// Sweeps the tree from its first file for every file without a hash.
    pub fn sweep(&self) {
        let mut q = lock(&self.inner);
        q.sweep = Sweep {
            wanted: true,
            restart: true,
            again: false,
        };
        self.wake.notify_one();
    }

    /// Queues `path` again: ahead of the others if someone waits for it, else, if
    /// `background`, for the sweep (which goes round once more if it is under way).
    pub fn requeue(&self, path: &RelPath, background: bool) {
        let mut q = lock(&self.inner);
        if q.waiters.contains_key(path) {
            push_urgent(&mut q, path);
        } else if background {
            if q.sweep.wanted {
                q.sweep.again = true;
            } else {
                q.sweep = Sweep {
                    wanted: true,
                    restart: true,
                    again: false,
                };
            }
        }
        self.wake.notify_one();
    }

    /// The sweep found no file without a hash after where it stood: it ends, unless a file
    /// changed meanwhile (then it starts again from the first file).
    fn sweep_done(&self) {
        let mut q = lock(&self.inner);
        q.sweep = if q.sweep.again {
            Sweep {
                wanted: true,
                restart: true,
                again: false,
            }
        } else {
            Sweep::default()
        };
    }

    /// Queues `path` ahead of the others, `reply` to be told its hash.
    pub fn wait_for(&self, path: &RelPath, reply: Reply) {
        let mut q = lock(&self.inner);
        if q.stopped {
            return;
        }
        q.waiters
            .entry(path.clone())
            .or_insert_with(|| Waiting {
                replies: Vec::new(),
                attempts: 0,
            })
            .replies
            .push(reply);
        push_urgent(&mut q, path);
        self.wake.notify_one();
    }

    /// Tells everyone waiting for `path` the result `make` gives.
    pub fn answer(&self, path: &RelPath, make: impl Fn() -> Result<[u8; 32], IndexError>) {
        let waiting = lock(&self.inner).waiters.remove(path);
        for reply in waiting.into_iter().flat_map(|w| w.replies) {
            let _ = reply.send(make());
        }
    }

    /// Counts a hash of `path` that found it changing; after [`MAX_ATTEMPTS`] its waiters are
    /// told it keeps changing. Returns whether anyone still waits for it.
    fn changed(&self, path: &RelPath) -> bool {
        let mut q = lock(&self.inner);
        let Some(w) = q.waiters.get_mut(path) else {
            return false;
        };
        w.attempts += 1;
        if w.attempts < MAX_ATTEMPTS {
            return true;
        }
        let replies = q.waiters.remove(path).map(|w| w.replies);
        drop(q);
        for reply in replies.into_iter().flatten() {
            let _ = reply.send(Err(IndexError::Changing {
                path: path.to_string(),
            }));
        }
        false
    }

    /// What to hash next; `None` once stopped.
    fn next(&self) -> Option<Job> {
        let mut q = lock(&self.inner);
        loop {
            if q.stopped {
                return None;
            }
            if let Some(p) = q.urgent.pop_front() {
                q.in_urgent.remove(&p);
                return Some(Job::Asked(p));
            }
            if q.sweep.wanted {
                let restart = std::mem::take(&mut q.sweep.restart);
                return Some(Job::Sweep { restart });
            }
            q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// What to hash next, as the hashing thread would be told (waits while there is nothing).
    #[cfg(test)]
    pub fn next_job(&self) -> Option<Job> {
        self.next()
    }

    /// Ends the sweep as the hashing thread does when it finds no more files.
    #[cfg(test)]
    pub fn end_sweep(&self) {
        self.sweep_done();
    }

    /// Whether a sweep is wanted.
    #[cfg(test)]
    pub fn sweeping(&self) -> bool {
        lock(&self.inner).sweep.wanted
    }

    /// Stops the hashing thread and drops every waiter (who then learns the index stopped).
    pub fn stop(&self) {
        let mut q = lock(&self.inner);
        q.stopped = true;
        q.waiters.clear();
        q.urgent.clear();
        q.sweep = Sweep::default();
        self.wake.notify_all();
    }
}

fn push_urgent(q: &mut Inner, path: &RelPath) {
    if q.in_urgent.insert(path.clone()) {
        q.urgent.push_back(path.clone());
    }
}

/// The hashing thread: hashes the files asked for and those the sweep finds until the queue
/// stops.
pub(super) fn run(shared: &Shared) {
    let mut buf = vec![0u8; READ_BUF];
    let mut dirs = DirCache::default();
    // The last file the sweep took (the tree is read, never held, between files).
    let mut swept: Option<RelPath> = None;
    while let Some(job) = shared.queue.next() {
        let path = match job {
            Job::Asked(path) => path,
            Job::Sweep { restart } => {
                if restart {
                    swept = None;
                }
                let next = read(&shared.tree).next_unhashed(swept.as_ref().map(RelPath::as_str));
                match next {
                    Some(path) => {
                        swept = Some(path.clone());
                        path
                    }
                    None => {
                        shared.queue.sweep_done();
                        continue;
                    }
                }
            }
        };
        hash_one(shared, &path, &mut buf, &mut dirs);
    }
}

/// What the index holds for a file to hash.
struct Listed {
    disk: std::path::PathBuf,
    size: u64,
    mtime: SystemTime,
}

fn hash_one(shared: &Shared, path: &RelPath, buf: &mut [u8], dirs: &mut DirCache) {
    let Some(listed) = listed(shared, path) else {
        return;
    };
    let refresh = || {
        let _ = shared.to_worker.send(Msg::Refresh(path.clone()));
    };
    let mut after_read = || {
        #[cfg(test)]
        if let Some(hook) = lock(&shared.hook).as_mut() {
            hook(path);
        }
    };
    let hashed = dirs
        .open(&shared.root, &listed.disk)
        .map_err(|e| {
            if gone(&e) {
                Unhashed::Changed
            } else {
                Unhashed::Io(e)
            }
        })
        .and_then(|file| {
            hash_unchanged(
                &file,
                listed.size,
                listed.mtime,
                &shared.stop,
                buf,
                &mut after_read,
            )
        });
    let hash = match hashed {
        Ok(h) => h,
        Err(Unhashed::Stopped) => return,
        Err(Unhashed::Changed) => {
            // The listing is behind the disk, or the file changed while it was read: the
            // worker looks again and queues it once more.
            if shared.queue.changed(path) || shared.options.hash_in_background {
                refresh();
            }
            return;
        }
        Err(Unhashed::Io(e)) => {
            tracing::debug!(path = %path, "cannot hash a shared file: {e}");
            let (kind, msg) = (e.kind(), e.to_string());
            shared.queue.answer(path, || {
                Err(IndexError::Read {
                    path: path.to_string(),
                    source: io::Error::new(kind, msg.clone()),
                })
            });
            return;
        }
    };
    let stored = {
        let _writer = lock(&shared.writer);
        let mut tree = write(&shared.tree);
        match tree.node_mut(path.as_str()) {
            Some(node) if node.mtime == listed.mtime => match &mut node.body {
                Body::File { size, hash: slot } if *size == listed.size => {
                    *slot = Some(hash);
                    shared.ids.note(hash, path.as_str());
                    true
                }
                _ => false,
            },
            _ => false,
        }
    };
    // Otherwise the worker changed the entry meanwhile, and queued it again.
    if stored {
        let _ = shared.changes.send(vec![Change::Hashed {
            path: path.clone(),
            hash,
        }]);
        shared.queue.answer(path, || Ok(hash));
    }
}

/// What the index holds for the file at `path`; `None` (its waiters answered) when there is
/// nothing to hash.
fn listed(shared: &Shared, path: &RelPath) -> Option<Listed> {
    let answer: Result<[u8; 32], fn(&RelPath) -> IndexError> = {
        let tree = read(&shared.tree);
        match tree.node(path.as_str()).map(|n| (n, &n.body)) {
            Some((node, Body::File { size, hash: None })) => {
                return Some(Listed {
                    disk: tree.disk_path(path.as_str())?,
                    size: *size,
                    mtime: node.mtime,
                });
            }
            Some((_, Body::File { hash: Some(h), .. })) => Ok(*h),
            Some((_, Body::Dir(_))) => Err(|p| IndexError::NotAFile {
                path: p.to_string(),
            }),
            None => Err(|p| IndexError::NotFound {
                path: p.to_string(),
            }),
        }
    };
    shared
        .queue
        .answer(path, || answer.map_err(|make| make(path)));
    None
}

/// Why a file was not given a hash.
#[derive(Debug)]
pub(super) enum Unhashed {
    /// It is not what the index lists, or it changed while it was read.
    Changed,
    /// The index is stopping.
    Stopped,
    /// It cannot be read.
    Io(io::Error),
}

/// What identifies a version of a file: if any of it differs, the content may differ.
#[derive(Debug, PartialEq, Eq)]
struct Version {
    size: u64,
    mtime: SystemTime,
    ctime: (i64, i64),
    inode: (u64, u64),
}

impl Version {
    fn of(file: &File) -> io::Result<Version> {
        let m = file.metadata()?;
        Ok(Version {
            size: m.len(),
            mtime: m.modified()?,
            ctime: fsx::ctime(&m),
            inode: fsx::inode(&m),
        })
    }
}

/// The BLAKE3 hash of `file`, which must have `size` bytes and the modification time `mtime`
/// (what the index lists) and must not change while it is read. `after_read` runs after each
/// read (tests change the file there). Stops early once `stop` is set.
pub(super) fn hash_unchanged(
    file: &File,
    size: u64,
    mtime: SystemTime,
    stop: &AtomicBool,
    buf: &mut [u8],
    after_read: &mut dyn FnMut(),
) -> Result<[u8; 32], Unhashed> {
    let before = Version::of(file).map_err(Unhashed::Io)?;
    if before.size != size || before.mtime != mtime {
        return Err(Unhashed::Changed);
    }
    let mut hasher = blake3::Hasher::new();
    let mut read = 0u64;
    let mut reader = file;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(Unhashed::Stopped);
        }
        let n = match reader.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Unhashed::Io(e)),
        };
        hasher.update(&buf[..n]);
        read += n as u64;
        after_read();
    }
    let after = Version::of(file).map_err(Unhashed::Io)?;
    if after != before || read != size {
        return Err(Unhashed::Changed);
    }
    Ok(*hasher.finalize().as_bytes())
}

/// Whether an open failed because the disk no longer holds what the index lists there (gone,
/// or now a symlink, or a directory on the way is now something else).
fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
        || fsx::is_other_kind(e)
        || e.kind() == io::ErrorKind::InvalidData
}

/// The last component of `rel` and those before it; only plain names are accepted.
fn split_components(rel: &Path) -> io::Result<(&OsStr, Vec<&OsStr>)> {
    let mut names = rel
        .components()
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => Err(io::Error::from(io::ErrorKind::InvalidInput)),
        })
        .collect::<io::Result<Vec<&OsStr>>>()?;
    let last = names.pop().ok_or(io::ErrorKind::InvalidInput)?;
    Ok((last, names))
}

/// Opens the regular file at `rel` below `root`, one component at a time, following no
/// symlink; a special file is refused with [`io::ErrorKind::InvalidData`].
pub(super) fn open_beneath(root: &Path, rel: &Path) -> io::Result<File> {
    let (last, parents) = split_components(rel)?;
    open_file(&open_dirs(root, &parents)?, last)
}

/// Opens the directory `names` below `root`, one component at a time, following no symlink.
fn open_dirs(root: &Path, names: &[&OsStr]) -> io::Result<DirHandle> {
    let mut dir = fsx::open_dir_path(root)?;
    for name in names {
        dir = fsx::open_dir_at(&dir, name)?;
    }
    Ok(dir)
}

/// Opens the regular file `name` in `dir`, following no symlink, non-blocking.
fn open_file(dir: &DirHandle, name: &OsStr) -> io::Result<File> {
    let file = fsx::open_read_nonblocking_at(dir, name)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// Opens files below the root one component at a time, following no symlink: nothing outside
/// the root can be reached, whatever was put on disk since the walk; a special file is refused
/// with [`io::ErrorKind::InvalidData`] (and never blocks: opened non-blocking). The directory
/// of the last file opened is kept open for the next file in it (the background sweep takes a
/// directory's files one after the other). Should it be renamed meanwhile, a file read through it is
/// still the one the index listed (its size and modification time are checked, and the
/// worker walks the moved paths on the watch's word).
#[derive(Default)]
pub(super) struct DirCache {
    /// The directory's path below the root (on disk), and the open directory.
    last: Option<(PathBuf, DirHandle)>,
}

impl DirCache {
    /// Opens the regular file at `rel` below `root`, through the directory kept from the
    /// last call when it is the same one. A failure through the kept
    /// directory is tried again from the root.
    pub fn open(&mut self, root: &Path, rel: &Path) -> io::Result<File> {
        let (last, parents) = split_components(rel)?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        if let Some((path, dir)) = &self.last
            && path == parent
        {
            match open_file(dir, last) {
                Ok(file) => return Ok(file),
                Err(_) => self.last = None,
            }
        }
        let dir = open_dirs(root, &parents)?;
        let file = open_file(&dir, last);
        self.last = Some((parent.to_owned(), dir));
        file
    }
}
