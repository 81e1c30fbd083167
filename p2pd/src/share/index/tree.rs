//! The served entries of one share, in memory: a tree of directories whose children are kept
//! sorted by name, so a page of a listing is a range of one map and a stat is one lookup per
//! path component. Nothing here touches the disk.
//!
//! Paths inside the tree are the text of a [`RelPath`] (Unicode NFC, every rule of
//! `proto::transfer::path` met); `""` is the share's root.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::ops::Bound;
use std::path::PathBuf;
use std::time::SystemTime;

use proto::transfer::RelPath;

use super::IndexError;

/// What an entry is. Symlinks and special files are never entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// One entry as the index serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's name (NFC), `""` for the share's root.
    pub name: String,
    /// File or directory.
    pub kind: Kind,
    /// A file's size in bytes; for a directory, the number of entries it lists.
    pub size: u64,
    /// Last modification time, as the disk reported it when the entry was last seen.
    pub mtime: SystemTime,
    /// A file's BLAKE3 hash (what `b3sum` prints) when known; `None` for directories and for
    /// files not hashed since they last changed.
    pub hash: Option<[u8; 32]>,
}

/// One page of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Entries sorted by name (bytes of the NFC name).
    pub entries: Vec<Entry>,
    /// The cursor for the next page (the last name given) when more entries follow.
    pub next: Option<String>,
}

/// A change the index noticed, in the order it applied them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new entry (every entry of a new directory is reported too).
    Added {
        /// Where.
        path: RelPath,
        /// What.
        kind: Kind,
    },
    /// A file whose size or modification time changed; its hash was cleared.
    Modified {
        /// Where.
        path: RelPath,
    },
    /// An entry gone, or no longer served (now ignored, now a symlink); every entry of a
    /// removed directory is reported too.
    Removed {
        /// Where.
        path: RelPath,
        /// What it was.
        kind: Kind,
    },
    /// A file's hash became known.
    Hashed {
        /// Where.
        path: RelPath,
        /// Its BLAKE3 hash.
        hash: [u8; 32],
    },
}

impl Change {
    /// The path the change is about.
    pub fn path(&self) -> &RelPath {
        match self {
            Change::Added { path, .. }
            | Change::Modified { path }
            | Change::Removed { path, .. }
            | Change::Hashed { path, .. } => path,
        }
    }
}

/// A directory's entries by NFC name.
pub(super) type Children = BTreeMap<Box<str>, Node>;

/// One entry of the tree.
#[derive(Debug)]
pub(super) struct Node {
    /// The name on disk when it is not the served (NFC) name, to open the entry again.
    pub disk: Option<Box<OsStr>>,
    /// Last modification time.
    pub mtime: SystemTime,
    /// File or directory.
    pub body: Body,
}

/// What a node holds.
#[derive(Debug)]
pub(super) enum Body {
    /// A regular file.
    File {
        /// Bytes, as listed.
        size: u64,
        /// Its BLAKE3 hash, only while `size` and the node's `mtime` are those it was
        /// computed for.
        hash: Option<[u8; 32]>,
    },
    /// A directory.
    Dir(Children),
}

impl Node {
    /// An empty directory.
    pub fn dir(mtime: SystemTime) -> Node {
        Node {
            disk: None,
            mtime,
            body: Body::Dir(Children::new()),
        }
    }

    /// File or directory.
    pub fn kind(&self) -> Kind {
        match self.body {
            Body::File { .. } => Kind::File,
            Body::Dir(_) => Kind::Dir,
        }
    }

    /// The entry as served under `name`.
    fn entry(&self, name: &str) -> Entry {
        let (size, hash) = match &self.body {
            Body::File { size, hash } => (*size, *hash),
            Body::Dir(children) => (children.len() as u64, None),
        };
        Entry {
            name: name.to_owned(),
            kind: self.kind(),
            size,
            mtime: self.mtime,
            hash,
        }
    }
}

/// `path` split into its parent's path and its name (`""` is the root's path).
pub(super) fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// The path of `name` in the directory at `dir`.
pub(super) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// What [`Tree::attach`] did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Attach {
    /// The node is in the tree.
    Done,
    /// The parent is not a directory of the tree.
    NoParent,
    /// The name is taken (two spellings on disk with one NFC form): the first one stays.
    Taken,
}

/// Counts of a tree's entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Regular files listed.
    pub files: u64,
    /// Directories listed (the root not included).
    pub dirs: u64,
    /// Bytes in the files listed.
    pub bytes: u64,
    /// Files whose hash is known.
    pub hashed: u64,
}

/// The tree of one share, its root a directory.
#[derive(Debug)]
pub(super) struct Tree {
    /// The share's root.
    pub root: Node,
}

impl Tree {
    /// A tree holding only its root.
    pub fn new(mtime: SystemTime) -> Tree {
        Tree {
            root: Node::dir(mtime),
        }
    }

    /// The node at `path`.
    pub fn node(&self, path: &str) -> Option<&Node> {
        let mut cur = &self.root;
        if path.is_empty() {
            return Some(cur);
        }
        for c in path.split('/') {
            match &cur.body {
                Body::Dir(children) => cur = children.get(c)?,
                Body::File { .. } => return None,
            }
        }
        Some(cur)
    }

    /// The node at `path`, to change in place.
    pub fn node_mut(&mut self, path: &str) -> Option<&mut Node> {
        let mut cur = &mut self.root;
        if path.is_empty() {
            return Some(cur);
        }
        for c in path.split('/') {
            match &mut cur.body {
                Body::Dir(children) => cur = children.get_mut(c)?,
                Body::File { .. } => return None,
            }
        }
        Some(cur)
    }

    /// The children of the directory at `path`.
    fn children_mut(&mut self, path: &str) -> Option<&mut Children> {
        match &mut self.node_mut(path)?.body {
            Body::Dir(children) => Some(children),
            Body::File { .. } => None,
        }
    }

    /// Adds `node` at `path` (not the root), whose parent must already be a directory here.
    pub fn attach(&mut self, path: &str, node: Node) -> Attach {
        let (parent, name) = split(path);
        let Some(children) = self.children_mut(parent) else {
            return Attach::NoParent;
        };
        if children.contains_key(name) {
            return Attach::Taken;
        }
        children.insert(name.into(), node);
        Attach::Done
    }

    /// Puts `node` at `path` in place of what was there (`None` removes it), and returns what
    /// was there. The root is replaced only by a node. The parent must be a directory here.
    pub fn put(&mut self, path: &str, node: Option<Node>) -> Option<Node> {
        if path.is_empty() {
            return node.map(|n| std::mem::replace(&mut self.root, n));
        }
        let (parent, name) = split(path);
        let children = self.children_mut(parent)?;
        match node {
            Some(n) => children.insert(name.into(), n),
            None => children.remove(name),
        }
    }

    /// The path of the entry at `path` as it is on disk, relative to the root.
    pub fn disk_path(&self, path: &str) -> Option<PathBuf> {
        let mut out = PathBuf::new();
        let mut cur = &self.root;
        for c in path.split('/').filter(|c| !c.is_empty()) {
            let Body::Dir(children) = &cur.body else {
                return None;
            };
            cur = children.get(c)?;
            match &cur.disk {
                Some(disk) => out.push(&**disk),
                None => out.push(c),
            }
        }
        Some(out)
    }

    /// The entry at `path`.
    pub fn stat(&self, path: &str) -> Result<Entry, IndexError> {
        let node = self.node(path).ok_or_else(|| not_found(path))?;
        Ok(node.entry(split(path).1))
    }

    /// Up to `limit` entries of the directory at `dir`, sorted by name, from the first name
    /// after `after`.
    pub fn list(&self, dir: &str, after: Option<&str>, limit: usize) -> Result<Page, IndexError> {
        let node = self.node(dir).ok_or_else(|| not_found(dir))?;
        let Body::Dir(children) = &node.body else {
            return Err(IndexError::NotADirectory {
                path: dir.to_owned(),
            });
        };
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut range = children.range::<str, _>((start, Bound::Unbounded));
        let entries: Vec<Entry> = range
            .by_ref()
            .take(limit)
            .map(|(name, n)| n.entry(name))
            .collect();
        let next = match (range.next(), entries.last()) {
            (Some(_), Some(last)) => Some(last.name.clone()),
            _ => None,
        };
        Ok(Page { entries, next })
    }

    /// Counts every entry.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        let mut stack = vec![&self.root];
        while let Some(node) = stack.pop() {
            match &node.body {
                Body::File { size, hash } => {
                    t.files += 1;
                    t.bytes += size;
                    t.hashed += u64::from(hash.is_some());
                }
                Body::Dir(children) => {
                    t.dirs += 1;
                    stack.extend(children.values());
                }
            }
        }
        t.dirs -= 1;
        t
    }

    /// The first file without a hash after the file at `after` in listing order (depth
    /// first, each directory's entries by name), from the first file when `after` is `None`.
    /// `after` need not be in the tree any more.
    pub fn next_unhashed(&self, after: Option<&str>) -> Option<RelPath> {
        let after: Vec<&str> = after.map(|a| a.split('/').collect()).unwrap_or_default();
        let mut path = String::new();
        next_unhashed_in(&self.root, &mut path, &after)
    }
}

/// The first file without a hash under `node` (whose path is `path`) after `after`, the
/// components of a path below `node` (empty: from the first).
fn next_unhashed_in(node: &Node, path: &mut String, after: &[&str]) -> Option<RelPath> {
    let Body::Dir(children) = &node.body else {
        return None;
    };
    let (start, first, rest) = match after.split_first() {
        Some((first, rest)) => (Bound::Included(*first), Some(*first), rest),
        None => (Bound::Unbounded, None, &[][..]),
    };
    for (name, child) in children.range::<str, _>((start, Bound::Unbounded)) {
        let on_the_way = first == Some(&**name);
        let len = path.len();
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(name);
        let found = match &child.body {
            // The entry `after` names, or a file where a directory on its way was: both come
            // before what is wanted.
            Body::File { .. } if on_the_way => None,
            Body::File { hash: None, .. } => RelPath::new(path).ok(),
            Body::File { .. } => None,
            Body::Dir(_) => next_unhashed_in(child, path, if on_the_way { rest } else { &[] }),
        };
        if found.is_some() {
            return found;
        }
        path.truncate(len);
    }
    None
}

fn not_found(path: &str) -> IndexError {
    IndexError::NotFound {
        path: path.to_owned(),
    }
}

/// Compares what was at `path` (`old`) with what is there now (`new`), appending the changes
/// to `out`, parents before children. A file whose size and modification time are unchanged
/// keeps its hash: it is copied into `new`.
pub(super) fn diff(path: &str, old: Option<&Node>, new: Option<&mut Node>, out: &mut Vec<Change>) {
    match (old, new) {
        (None, None) => {}
        (Some(o), None) => report_all(path, o, out, &|path, kind| Change::Removed { path, kind }),
        (None, Some(n)) => report_all(path, n, out, &|path, kind| Change::Added { path, kind }),
        (Some(o), Some(n)) => {
            let n_mtime = n.mtime;
            match (&o.body, &mut n.body) {
                (Body::File { size: os, hash: oh }, Body::File { size: ns, hash: nh }) => {
                    if os == ns && o.mtime == n_mtime {
                        *nh = *oh;
                    } else {
                        out.extend(rel(path).map(|path| Change::Modified { path }));
                    }
                }
                (Body::Dir(oc), Body::Dir(nc)) => diff_children(path, oc, nc, out),
                _ => {
                    report_all(path, o, out, &|path, kind| Change::Removed { path, kind });
                    report_all(path, n, out, &|path, kind| Change::Added { path, kind });
                }
            }
        }
    }
}

/// [`diff`] over two sorted sets of children.
fn diff_children(path: &str, old: &Children, new: &mut Children, out: &mut Vec<Change>) {
    let mut o = old.iter().peekable();
    let mut n = new.iter_mut().peekable();
    loop {
        let order = match (o.peek(), n.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((a, _)), Some((b, _))) => a.cmp(b),
        };
        match order {
            std::cmp::Ordering::Less => {
                if let Some((name, node)) = o.next() {
                    diff(&join(path, name), Some(node), None, out);
                }
            }
            std::cmp::Ordering::Greater => {
                if let Some((name, node)) = n.next() {
                    diff(&join(path, name), None, Some(node), out);
                }
            }
            std::cmp::Ordering::Equal => {
                if let (Some((name, a)), Some((_, b))) = (o.next(), n.next()) {
                    diff(&join(path, name), Some(a), Some(b), out);
                }
            }
        }
    }
}

/// Reports `node` at `path` and everything under it with `make`, parents first.
fn report_all(
    path: &str,
    node: &Node,
    out: &mut Vec<Change>,
    make: &dyn Fn(RelPath, Kind) -> Change,
) {
    out.extend(rel(path).map(|p| make(p, node.kind())));
    if let Body::Dir(children) = &node.body {
        for (name, child) in children {
            report_all(&join(path, name), child, out, make);
        }
    }
}

/// The tree's paths were validated when their nodes were made; the root is not an entry.
fn rel(path: &str) -> Option<RelPath> {
    RelPath::new(path).ok()
}
