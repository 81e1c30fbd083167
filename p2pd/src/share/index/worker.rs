//! The index's worker thread: the only one that changes the tree's shape. It walks the share
//! once, then applies what the watcher reports (a walk of just the paths it names), a full
//! walk on each periodic or forced rescan and whenever the watcher lost events, and looks
//! again at the files the hasher found changed. Each walk runs without holding the tree's
//! lock: the tree is locked only to compare and to swap in what the walk found, so listings
//! never wait for the disk.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Instant;

use proto::transfer::RelPath;
use tokio::sync::oneshot;

use super::tree::{Body, Change, Kind, Node, Tree, diff};
use super::walk::{Targets, walk};
use super::watch::{Target, start_watcher, target_of};
use super::{IndexError, Shared, lock, read, write};

/// What the worker is told.
pub(super) enum Msg {
    /// The watcher saw these absolute paths change; `rescan` if it lost events.
    Watched {
        /// Paths below the root.
        paths: Vec<PathBuf>,
        /// Whether to walk the whole share.
        rescan: bool,
    },
    /// The hasher found the file different from what the index lists.
    Refresh(RelPath),
    /// Walk the whole share now, and tell what changed.
    Rescan(oneshot::Sender<Vec<Change>>),
    /// Walk these paths now (the daemon changed them), and tell what changed.
    Update(Vec<RelPath>, oneshot::Sender<Vec<Change>>),
    /// Stop.
    Stop,
}

/// Everything the worker was told since it last looked.
#[derive(Default)]
struct Batch {
    /// Walk the whole share.
    full: bool,
    /// Paths to walk (tree paths).
    paths: Vec<String>,
    /// Files the hasher wants looked at again.
    refreshed: Vec<RelPath>,
    /// Who waits for a full walk.
    replies: Vec<oneshot::Sender<Vec<Change>>>,
}

impl Batch {
    /// Adds `msg`; false for [`Msg::Stop`].
    fn add(&mut self, shared: &Shared, msg: Msg) -> bool {
        match msg {
            Msg::Watched { paths, rescan } => {
                self.full |= rescan;
                for p in paths {
                    match target_of(&shared.root, &p) {
                        Some(Target::Root) => self.full = true,
                        Some(Target::Path(t)) => self.paths.push(t),
                        None => {}
                    }
                }
            }
            Msg::Refresh(p) => {
                self.paths.push(p.as_str().to_owned());
                self.refreshed.push(p);
            }
            Msg::Rescan(reply) => {
                self.full = true;
                self.replies.push(reply);
            }
            Msg::Update(paths, reply) => {
                self.paths
                    .extend(paths.iter().map(|p| p.as_str().to_owned()));
                self.replies.push(reply);
            }
            Msg::Stop => return false,
        }
        true
    }
}

/// Runs the worker until it is told to stop.
pub(super) fn run(shared: Arc<Shared>, inbox: Receiver<Msg>) {
    // Watch first, so nothing that changes during the first walk is missed.
    let watcher = shared
        .options
        .watch
        .then(|| {
            start_watcher(
                &shared.root,
                shared.options.debounce,
                shared.to_worker.clone(),
            )
        })
        .flatten();
    // The first walk is the baseline: it reports no change.
    if let Some(walked) = walk(&shared.root, None, &shared.stop) {
        {
            let _writer = lock(&shared.writer);
            let mut tree = write(&shared.tree);
            *tree = walked.tree;
            shared.ids.forget();
            drop(tree);
            *lock(&shared.skipped) = walked.skipped;
        }
        shared.ready.send_replace(true);
        if shared.options.hash_in_background {
            shared.queue.sweep();
        }
        serve(&shared, &inbox);
    }
    if let Some(w) = watcher {
        w.stop();
    }
}

fn serve(shared: &Shared, inbox: &Receiver<Msg>) {
    let every = shared.options.rescan_every;
    let mut next_full = Instant::now() + every;
    loop {
        let mut batch = Batch::default();
        match inbox.recv_timeout(next_full.saturating_duration_since(Instant::now())) {
            Ok(msg) => {
                if !batch.add(shared, msg) {
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => batch.full = true,
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let periodic = batch.full && batch.replies.is_empty();
        while let Ok(msg) = inbox.try_recv() {
            if !batch.add(shared, msg) {
                return;
            }
        }
        if batch.full {
            next_full = Instant::now() + every;
        }
        let Some(changes) = apply(shared, &batch) else {
            return;
        };
        if periodic && shared.options.watch && !changes.is_empty() {
            tracing::info!(
                root = %shared.root.display(),
                changes = changes.len(),
                "a rescan of a share found changes its watch had not reported"
            );
        }
        for reply in batch.replies {
            let _ = reply.send(changes.clone());
        }
    }
}

/// Walks what `batch` names and puts what it found in the tree. Returns the changes (also
/// published), `None` once stopping.
fn apply(shared: &Shared, batch: &Batch) -> Option<Vec<Change>> {
    let mut changes = Vec::new();
    if batch.full {
        let walked = walk(&shared.root, None, &shared.stop)?;
        let mut new = walked.tree;
        let writer = lock(&shared.writer);
        diff(
            "",
            Some(&read(&shared.tree).root),
            Some(&mut new.root),
            &mut changes,
        );
        let old = {
            let mut tree = write(&shared.tree);
            shared.ids.forget();
            std::mem::replace(&mut *tree, new)
        };
        *lock(&shared.skipped) = walked.skipped;
        drop(writer);
        drop(old);
    } else {
        let targets = anchored(&read(&shared.tree), &batch.paths);
        if !targets.is_empty() {
            let covered = Arc::new(Targets::new(targets.iter().map(String::as_str)));
            let mut built = walk(&shared.root, Some(covered), &shared.stop)?.tree;
            let mut found: Vec<(String, Option<Node>)> = targets
                .into_iter()
                .map(|t| {
                    let node = built.put(&t, None);
                    (t, node)
                })
                .collect();
            let writer = lock(&shared.writer);
            {
                let tree = read(&shared.tree);
                for (path, node) in &mut found {
                    diff(path, tree.node(path), node.as_mut(), &mut changes);
                }
            }
            let old: Vec<Option<Node>> = {
                let mut tree = write(&shared.tree);
                shared.ids.forget();
                found.into_iter().map(|(p, n)| tree.put(&p, n)).collect()
            };
            drop(writer);
            drop(old);
        }
    }
    // Published before the files are queued, so a file's change comes before its hash.
    if !changes.is_empty() {
        tracing::debug!(root = %shared.root.display(), changes = changes.len(), "share index updated");
        let _ = shared.changes.send(changes.clone());
    }
    after(shared, batch, &changes);
    Some(changes)
}

/// Queues for hashing what changed, and answers who waited for files now gone.
fn after(shared: &Shared, batch: &Batch, changes: &[Change]) {
    let background = shared.options.hash_in_background;
    for c in changes {
        match c {
            Change::Added {
                path,
                kind: Kind::File,
            }
            | Change::Modified { path } => shared.queue.requeue(path, background),
            Change::Removed {
                path,
                kind: Kind::File,
            } => shared.queue.answer(path, || {
                Err(IndexError::NotFound {
                    path: path.to_string(),
                })
            }),
            _ => {}
        }
    }
    let tree = read(&shared.tree);
    for path in &batch.refreshed {
        match tree.node(path.as_str()).map(|n| &n.body) {
            Some(Body::File { hash: None, .. }) => shared.queue.requeue(path, background),
            Some(Body::File { hash: Some(h), .. }) => {
                let h = *h;
                shared.queue.answer(path, || Ok(h));
            }
            Some(Body::Dir(_)) => shared.queue.answer(path, || {
                Err(IndexError::NotAFile {
                    path: path.to_string(),
                })
            }),
            None => shared.queue.answer(path, || {
                Err(IndexError::NotFound {
                    path: path.to_string(),
                })
            }),
        }
    }
}

/// The paths to walk for `paths`, none under another. A path whose parent is not a directory
/// of the tree is replaced by the first path on its way that the tree lacks (or holds as a
/// file), so that what a walk finds there always has a place to go.
pub(super) fn anchored(tree: &Tree, paths: &[String]) -> Vec<String> {
    let mut wanted: Vec<String> = paths.iter().map(|p| anchor(tree, p)).collect();
    wanted.sort();
    wanted.dedup();
    let mut kept: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    for p in &wanted {
        let under_kept = p.match_indices('/').any(|(i, _)| kept.contains(&p[..i]));
        if !under_kept {
            kept.insert(p);
            out.push(p.clone());
        }
    }
    out
}

fn anchor(tree: &Tree, path: &str) -> String {
    let mut cur = &tree.root;
    let mut at = 0;
    for c in path.split('/') {
        let end = if at == 0 { c.len() } else { at + 1 + c.len() };
        match &cur.body {
            Body::Dir(children) => match children.get(c) {
                Some(n) => {
                    cur = n;
                    at = end;
                }
                None => return path[..end].to_owned(),
            },
            Body::File { .. } => return path[..at].to_owned(),
        }
    }
    path.to_owned()
}
