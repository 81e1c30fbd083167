//! Reading a share from disk into a [`Tree`] (blocking), with the `ignore` crate: no symlink
//! followed, `.p2pignore` files (gitignore syntax) honoured at every level, hidden files
//! included, nothing read above the root (no parent directory's ignore file, no global or git
//! ignore file).
//!
//! A walk covers the whole share, or only some paths: then it still enters every directory on
//! the way to them from the root, so their ignore files apply as in a whole walk, but lists
//! nothing else.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use ignore::gitignore::GitignoreBuilder;
use ignore::{DirEntry, Match, WalkBuilder};
use proto::transfer::RelPath;

use super::IGNORE_FILE;
use super::tree::{Attach, Body, Node, Tree};

/// What a walk found.
#[derive(Debug)]
pub(super) struct Walked {
    /// The entries served.
    pub tree: Tree,
    /// What it left out.
    pub skipped: Skipped,
}

/// Entries a walk saw and does not serve (ignored entries are not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Entries whose name cannot be served (not UTF-8, or breaking a rule of relative paths:
    /// control characters, Windows-reserved names, a second Unicode spelling of a name already
    /// listed, ...), and everything under such a directory.
    pub names: u64,
    /// Symlinks (never followed, never listed).
    pub symlinks: u64,
    /// Other special files (sockets, FIFOs, devices).
    pub other: u64,
}

/// The paths a partial walk covers (NFC, as in the tree; never the root).
#[derive(Debug, Default)]
pub(super) struct Targets {
    /// The paths themselves: each with everything under it.
    exact: HashSet<String>,
    /// Every directory above them (the root excluded).
    above: HashSet<String>,
}

impl Targets {
    /// Targets for `paths`.
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a str>) -> Targets {
        let mut t = Targets::default();
        for p in paths {
            for (i, _) in p.match_indices('/') {
                t.above.insert(p[..i].to_owned());
            }
            t.exact.insert(p.to_owned());
        }
        t
    }

    /// Whether a partial walk enters or lists the entry at `path`.
    fn wants(&self, path: &str) -> bool {
        self.exact.contains(path)
            || self.above.contains(path)
            || path
                .match_indices('/')
                .any(|(i, _)| self.exact.contains(&path[..i]))
    }
}

/// The served path of `path` below `root`, if it can be served.
fn served(root: &Path, path: &Path) -> Option<RelPath> {
    RelPath::new(path.strip_prefix(root).ok()?.to_str()?).ok()
}

/// Walks `root`, all of it (`targets` `None`) or only what `targets` covers. Returns `None`
/// once `stop` is set.
pub(super) fn walk(
    root: &Path,
    targets: Option<Arc<Targets>>,
    stop: &AtomicBool,
) -> Option<Walked> {
    let mut builder = WalkBuilder::new(root);
    builder
        .standard_filters(false)
        .follow_links(false)
        .add_custom_ignore_filename(IGNORE_FILE)
        .sort_by_file_name(|a, b| a.cmp(b));
    if let Some(targets) = targets {
        let root = root.to_owned();
        builder.filter_entry(move |e: &DirEntry| {
            served(&root, e.path()).is_some_and(|p| targets.wants(p.as_str()))
        });
    }
    let mut tree = Tree::new(UNIX_EPOCH);
    let mut skipped = Skipped::default();
    // A directory left out, with everything under it (entries come depth first).
    let mut leaving: Option<PathBuf> = None;
    for item in builder.build() {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        let entry = match item {
            Ok(e) => e,
            Err(err) => {
                tracing::debug!(root = %root.display(), "share walk: {err}");
                continue;
            }
        };
        if let Some(err) = entry.error() {
            tracing::warn!(path = %entry.path().display(), "share walk: a {IGNORE_FILE} rule cannot be used: {err}");
        }
        if entry.depth() == 0 {
            match entry.metadata() {
                Ok(m) if m.is_dir() => tree.root.mtime = mtime(&m),
                _ => tracing::warn!(root = %root.display(), "the share's root is not a directory"),
            }
            continue;
        }
        if let Some(dir) = &leaving {
            if entry.path().starts_with(dir) {
                skipped.names += 1;
                continue;
            }
            leaving = None;
        }
        let Some(ft) = entry.file_type() else {
            continue;
        };
        if ft.is_symlink() {
            skipped.symlinks += 1;
            continue;
        }
        let is_dir = ft.is_dir();
        let leave = |leaving: &mut Option<PathBuf>| {
            if is_dir {
                *leaving = Some(entry.path().to_owned());
            }
        };
        if entry.file_name() == IGNORE_FILE {
            leave(&mut leaving);
            continue;
        }
        if !is_dir && super::is_staging(entry.file_name()) {
            continue;
        }
        if !is_dir && !ft.is_file() {
            skipped.other += 1;
            continue;
        }
        let Some(path) = served(root, entry.path()) else {
            skipped.names += 1;
            leave(&mut leaving);
            continue;
        };
        let Ok(meta) = entry.metadata() else {
            // Gone since it was listed.
            leave(&mut leaving);
            continue;
        };
        let name = entry.file_name();
        let node = Node {
            disk: (name != path.file_name()).then(|| name.into()),
            mtime: mtime(&meta),
            body: if is_dir {
                Body::Dir(Default::default())
            } else {
                Body::File {
                    size: meta.len(),
                    hash: None,
                }
            },
        };
        match tree.attach(path.as_str(), node) {
            Attach::Done => {}
            Attach::Taken => {
                skipped.names += 1;
                leave(&mut leaving);
            }
            Attach::NoParent => leave(&mut leaving),
        }
    }
    Some(Walked { tree, skipped })
}

/// A modification time as the index keeps it.
pub(super) fn mtime(meta: &std::fs::Metadata) -> SystemTime {
    meta.modified().unwrap_or(UNIX_EPOCH)
}

/// Whether the `.p2pignore` files of the share at `root` leave out a file `name` in its
/// directory `dir` (at or below `root`): each ignore file from `dir` up to the root is asked
/// in turn, the first (deepest) one with a matching rule deciding. An ignore file itself is
/// always left out, and so is anything outside `root`.
pub(super) fn ignores_file(root: &Path, dir: &Path, name: &str) -> bool {
    if name == IGNORE_FILE {
        return true;
    }
    let Ok(rel) = dir.strip_prefix(root) else {
        return true;
    };
    let path = dir.join(name);
    let mut dirs = vec![root.to_owned()];
    for c in rel.components() {
        let next = dirs[dirs.len() - 1].join(c);
        dirs.push(next);
    }
    for d in dirs.iter().rev() {
        let file = d.join(IGNORE_FILE);
        if !file.is_file() {
            continue;
        }
        let mut builder = GitignoreBuilder::new(d);
        if let Some(err) = builder.add(&file) {
            tracing::debug!(file = %file.display(), "a {IGNORE_FILE} rule cannot be used: {err}");
        }
        let Ok(rules) = builder.build() else {
            continue;
        };
        match rules.matched(&path, false) {
            Match::Ignore(_) => return true,
            Match::Whitelist(_) => return false,
            Match::None => {}
        }
    }
    false
}
