//! Watching a share: `notify` (inotify on Linux), whose events are sorted on arrival (reads
//! and opens change nothing and are dropped at once: hashing opens every file, and the hasher
//! would otherwise fill memory with its own events), and a thread that hands the worker each
//! changed path once it has been quiet for the debounce time, a burst at a time. Symlinks are
//! not followed. The watch is recursive from the root, so it covers ignored directories too
//! (their events lead to walks that find nothing to serve).
//!
//! A watch is a help, not a promise: inotify drops events when its queue overflows (the worker
//! then walks the whole share), and a tree with more directories than the watch limit
//! (`fs.inotify.max_user_watches`) is only partly watched (a warning says so, and the
//! periodic rescan keeps the rest fresh).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use proto::transfer::RelPath;

use super::tree::split;
use super::worker::Msg;
use super::{IGNORE_FILE, lock};

/// Changed paths not yet handed to the worker.
#[derive(Default)]
struct Pending {
    /// Each path with the time of its last event.
    paths: HashMap<PathBuf, Instant>,
    /// Events were lost: walk the whole share.
    rescan: bool,
    /// The watch is stopping.
    stopped: bool,
}

/// What the notify thread and the hand-over thread share.
#[derive(Default)]
pub(super) struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
}

impl Shared {
    /// Notes `paths` as changed now (and, with `rescan`, that events were lost), waking the
    /// hand-over thread if it was idle.
    pub fn note(&self, paths: Vec<PathBuf>, rescan: bool) {
        if !rescan && paths.is_empty() {
            return;
        }
        let mut p = lock(&self.pending);
        let was_idle = p.paths.is_empty() && !p.rescan;
        p.rescan |= rescan;
        let now = Instant::now();
        for path in paths {
            p.paths.insert(path, now);
        }
        if was_idle || rescan {
            self.wake.notify_one();
        }
    }

    /// Tells the hand-over thread to end.
    pub fn stop(&self) {
        lock(&self.pending).stopped = true;
        self.wake.notify_all();
    }
}

/// A running watch; [`Watcher::stop`] ends it.
pub(super) struct Watcher {
    watcher: RecommendedWatcher,
    shared: Arc<Shared>,
    thread: JoinHandle<()>,
}

impl Watcher {
    /// Stops watching and waits for the hand-over thread (paths still pending are dropped).
    pub fn stop(self) {
        drop(self.watcher);
        self.shared.stop();
        let _ = self.thread.join();
    }
}

/// Starts watching `root`, reporting to `worker` each changed path once no event has come for
/// it for `debounce`. `None` (with a warning) if no watch can be set at all; a watch that
/// covers only part of the tree is kept (with a warning).
pub(super) fn start_watcher(
    root: &Path,
    debounce: Duration,
    worker: Sender<Msg>,
) -> Option<Watcher> {
    let shown = root.display().to_string();
    let warned = AtomicBool::new(false);
    let shared = Arc::new(Shared::default());
    let sink = shared.clone();
    let handler = move |result: notify::Result<Event>| match result {
        Ok(event) => {
            let (paths, rescan) = changed_paths(std::slice::from_ref(&event));
            sink.note(paths, rescan);
        }
        Err(e) => {
            if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
                if !warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(root = %shown, "{}", limit_warning());
                }
            } else {
                tracing::debug!(root = %shown, "share watch: {e}");
            }
        }
    };
    let config = notify::Config::default().with_follow_symlinks(false);
    let mut watcher = match RecommendedWatcher::new(handler, config) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(root = %root.display(), "cannot watch a share ({e}); changes are noticed by its periodic rescan only");
            return None;
        }
    };
    if let Err(e) = watcher.watch(root, RecursiveMode::Recursive) {
        if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
            tracing::warn!(root = %root.display(), "{}", limit_warning());
        } else {
            tracing::warn!(root = %root.display(), "cannot watch all of a share ({e}); changes are noticed by its periodic rescan");
        }
    }
    let s = shared.clone();
    let thread = std::thread::Builder::new()
        .name("p2pd-index-watch".into())
        .spawn(move || hand_over(&s, debounce, &worker));
    match thread {
        Ok(thread) => Some(Watcher {
            watcher,
            shared,
            thread,
        }),
        Err(e) => {
            tracing::warn!(root = %root.display(), "cannot watch a share ({e}); changes are noticed by its periodic rescan only");
            None
        }
    }
}

/// Hands the worker, every quarter of `debounce` while paths are pending, those quiet for
/// `debounce` (and at once, a lost-events rescan), until the watch stops or the worker is
/// gone.
pub(super) fn hand_over(shared: &Shared, debounce: Duration, worker: &Sender<Msg>) {
    let tick = (debounce / 4).max(Duration::from_millis(5));
    let mut p = lock(&shared.pending);
    loop {
        if p.stopped {
            return;
        }
        let now = Instant::now();
        let mut quiet = Vec::new();
        p.paths.retain(|path, last| {
            let keep = now.duration_since(*last) < debounce;
            if !keep {
                quiet.push(path.clone());
            }
            keep
        });
        let rescan = std::mem::take(&mut p.rescan);
        if rescan || !quiet.is_empty() {
            drop(p);
            if worker
                .send(Msg::Watched {
                    paths: quiet,
                    rescan,
                })
                .is_err()
            {
                return;
            }
            p = lock(&shared.pending);
            continue;
        }
        p = if p.paths.is_empty() {
            shared.wake.wait(p).unwrap_or_else(|e| e.into_inner())
        } else {
            shared
                .wake
                .wait_timeout(p, tick)
                .unwrap_or_else(|e| e.into_inner())
                .0
        };
    }
}

fn limit_warning() -> &'static str {
    "the file watch limit is reached (fs.inotify.max_user_watches): part of this share is not \
     watched, and changes there are noticed by its periodic rescan only"
}

/// The paths events name, and whether events were lost. Reads and opens change nothing and
/// are left out (hashing opens files).
pub(super) fn changed_paths(events: &[Event]) -> (Vec<PathBuf>, bool) {
    let mut paths = Vec::new();
    let mut rescan = false;
    for e in events {
        if e.need_rescan() {
            rescan = true;
            continue;
        }
        let only_read = matches!(
            e.kind,
            EventKind::Access(
                AccessKind::Read
                    | AccessKind::Open(_)
                    | AccessKind::Close(AccessMode::Read | AccessMode::Execute)
            )
        );
        if !only_read {
            paths.extend(e.paths.iter().cloned());
        }
    }
    (paths, rescan)
}

/// What a changed path asks the worker to walk.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Target {
    /// The whole share.
    Root,
    /// The entry at this tree path, with everything under it.
    Path(String),
}

/// What to walk for a change at `path` (absolute). A change to an ignore file is a change to
/// its whole directory. `None` for a path outside the root or one that cannot be served (an
/// entry renamed to such a name is reported under its old name too).
pub(super) fn target_of(root: &Path, path: &Path) -> Option<Target> {
    let rel = path.strip_prefix(root).ok()?;
    if rel.as_os_str().is_empty() {
        return Some(Target::Root);
    }
    let rel = RelPath::new(rel.to_str()?).ok()?;
    if super::is_staging(std::ffi::OsStr::new(rel.file_name())) {
        return None;
    }
    if rel.file_name() == IGNORE_FILE {
        return Some(match split(rel.as_str()).0 {
            "" => Target::Root,
            dir => Target::Path(dir.to_owned()),
        });
    }
    Some(Target::Path(rel.as_str().to_owned()))
}
