//! Hashing the files of a share, one at a time, on one low-priority thread: files asked for
//! first, in the order asked, then every file without a hash in listing order.
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
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::SystemTime;

use proto::transfer::RelPath;
use rustix::fs::{Mode, OFlags};
use tokio::sync::oneshot;

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

#[derive(Default)]
struct Inner {
    /// Files someone waits for, first come first served.
    urgent: VecDeque<RelPath>,
    in_urgent: HashSet<RelPath>,
    /// Every other file to hash.
    background: VecDeque<RelPath>,
    in_background: HashSet<RelPath>,
    waiters: HashMap<RelPath, Waiting>,
    stopped: bool,
}

/// The files to hash, and who waits for which.
#[derive(Default)]
pub(super) struct Queue {
    inner: Mutex<Inner>,
    wake: Condvar,
}

impl Queue {
    /// Queues `paths` behind every other file (those already queued stay where they are).
    pub fn background(&self, paths: impl IntoIterator<Item = RelPath>) {
        let mut q = lock(&self.inner);
        for p in paths {
            if q.in_background.insert(p.clone()) {
                q.background.push_back(p);
            }
        }
        self.wake.notify_one();
    }

    /// Queues `path` again: ahead of the others if someone waits for it, else behind them if
    /// `background`.
    pub fn requeue(&self, path: &RelPath, background: bool) {
        let mut q = lock(&self.inner);
        if q.waiters.contains_key(path) {
            push_urgent(&mut q, path);
        } else if background && q.in_background.insert(path.clone()) {
            q.background.push_back(path.clone());
        }
        self.wake.notify_one();
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

    /// The next file to hash; `None` once stopped.
    fn next(&self) -> Option<RelPath> {
        let mut q = lock(&self.inner);
        loop {
            if q.stopped {
                return None;
            }
            if let Some(p) = q.urgent.pop_front() {
                q.in_urgent.remove(&p);
                return Some(p);
            }
            if let Some(p) = q.background.pop_front() {
                q.in_background.remove(&p);
                return Some(p);
            }
            q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Stops the hashing thread and drops every waiter (who then learns the index stopped).
    pub fn stop(&self) {
        let mut q = lock(&self.inner);
        q.stopped = true;
        q.waiters.clear();
        q.urgent.clear();
        q.background.clear();
        self.wake.notify_all();
    }
}

fn push_urgent(q: &mut Inner, path: &RelPath) {
    if q.in_urgent.insert(path.clone()) {
        q.urgent.push_back(path.clone());
    }
}

/// The hashing thread: hashes queued files until the queue stops.
pub(super) fn run(shared: &Shared) {
    let mut buf = vec![0u8; READ_BUF];
    while let Some(path) = shared.queue.next() {
        hash_one(shared, &path, &mut buf);
    }
}

/// What the index holds for a file to hash.
struct Listed {
    disk: std::path::PathBuf,
    size: u64,
    mtime: SystemTime,
}

fn hash_one(shared: &Shared, path: &RelPath, buf: &mut [u8]) {
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
    let hashed = open_beneath(&shared.root, &listed.disk)
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
            ctime: (m.ctime(), m.ctime_nsec()),
            inode: (m.dev(), m.ino()),
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
    use rustix::io::Errno;
    e.kind() == io::ErrorKind::NotFound
        || [Errno::LOOP, Errno::NOTDIR, Errno::ISDIR]
            .iter()
            .any(|errno| e.raw_os_error() == Some(errno.raw_os_error()))
        || e.kind() == io::ErrorKind::InvalidData
}

/// Opens the regular file at `rel` below `root`, one component at a time, following no
/// symlink: nothing outside the root can be reached, whatever was put on disk since the walk.
/// A special file is refused with [`io::ErrorKind::InvalidData`] (and never blocks: opened
/// non-blocking).
pub(super) fn open_beneath(root: &Path, rel: &Path) -> io::Result<File> {
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let names = rel
        .components()
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => Err(io::Error::from(io::ErrorKind::InvalidInput)),
        })
        .collect::<io::Result<Vec<&OsStr>>>()?;
    let Some((last, parents)) = names.split_last() else {
        return Err(io::ErrorKind::InvalidInput.into());
    };
    let mut dir = rustix::fs::open(root, dir_flags, Mode::empty())?;
    for name in parents {
        dir = rustix::fs::openat(&dir, *name, dir_flags, Mode::empty())?;
    }
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let file = File::from(rustix::fs::openat(&dir, *last, flags, Mode::empty())?);
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    Ok(file)
}
