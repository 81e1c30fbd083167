//! Watching a share: `notify` (inotify on Linux) behind `notify-debouncer-full`, which hands
//! the worker the paths that changed, a burst at a time. Symlinks are not followed. The watch
//! is recursive from the root, so it covers ignored directories too (their events lead to
//! walks that find nothing to serve).
//!
//! A watch is a help, not a promise: inotify drops events when its queue overflows (the worker
//! then walks the whole share), and a tree with more directories than the watch limit
//! (`fs.inotify.max_user_watches`) is only partly watched (a warning says so, and the
//! periodic rescan keeps the rest fresh).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{
    DebounceEventResult, DebouncedEvent, Debouncer, RecommendedCache, new_debouncer_opt,
};
use proto::transfer::RelPath;

use super::IGNORE_FILE;
use super::tree::split;
use super::worker::Msg;

/// A running watch; stop it with [`Debouncer::stop`].
pub(super) type Watcher = Debouncer<RecommendedWatcher, RecommendedCache>;

/// Starts watching `root`, reporting to `worker`. `None` (with a warning) if no watch can be
/// set at all; a watch that covers only part of the tree is kept (with a warning).
pub(super) fn start_watcher(
    root: &Path,
    debounce: Duration,
    worker: Sender<Msg>,
) -> Option<Watcher> {
    let shown = root.display().to_string();
    let warned = AtomicBool::new(false);
    let handler = move |result: DebounceEventResult| match result {
        Ok(events) => {
            let (paths, rescan) = changed_paths(&events);
            if rescan || !paths.is_empty() {
                let _ = worker.send(Msg::Watched { paths, rescan });
            }
        }
        Err(errors) => {
            for e in errors {
                if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
                    if !warned.swap(true, Ordering::Relaxed) {
                        tracing::warn!(root = %shown, "{}", limit_warning());
                    }
                } else {
                    tracing::debug!(root = %shown, "share watch: {e}");
                }
            }
        }
    };
    let config = notify::Config::default().with_follow_symlinks(false);
    let mut debouncer = match new_debouncer_opt::<_, RecommendedWatcher, RecommendedCache>(
        debounce,
        None,
        handler,
        RecommendedCache::new(),
        config,
    ) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(root = %root.display(), "cannot watch a share ({e}); changes are noticed by its periodic rescan only");
            return None;
        }
    };
    if let Err(e) = debouncer.watch(root, RecursiveMode::Recursive) {
        if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) {
            tracing::warn!(root = %root.display(), "{}", limit_warning());
        } else {
            tracing::warn!(root = %root.display(), "cannot watch all of a share ({e}); changes are noticed by its periodic rescan");
        }
    }
    Some(debouncer)
}

fn limit_warning() -> &'static str {
    "the file watch limit is reached (fs.inotify.max_user_watches): part of this share is not \
     watched, and changes there are noticed by its periodic rescan only"
}

/// The paths a burst of events names, and whether events were lost. Reads and opens change
/// nothing and are left out (hashing opens files).
pub(super) fn changed_paths(events: &[DebouncedEvent]) -> (Vec<PathBuf>, bool) {
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
