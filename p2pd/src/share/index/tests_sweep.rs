//! The background sweep of the hasher (the tree's next file without a hash, the queue's
//! states) and the directory kept open between files.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::time::UNIX_EPOCH;

use super::hasher::{DirCache, Job, Queue};
use super::tests::rel;
use super::tree::{Body, Node, Tree};

fn file(hash: Option<[u8; 32]>) -> Node {
    Node {
        disk: None,
        mtime: UNIX_EPOCH,
        body: Body::File { size: 1, hash },
    }
}

/// a/ (x hashed, y), b, c/ (d/ (e), f hashed), g
fn tree() -> Tree {
    let mut t = Tree::new(UNIX_EPOCH);
    for (path, node) in [
        ("a", Node::dir(UNIX_EPOCH)),
        ("a/x", file(Some([1; 32]))),
        ("a/y", file(None)),
        ("b", file(None)),
        ("c", Node::dir(UNIX_EPOCH)),
        ("c/d", Node::dir(UNIX_EPOCH)),
        ("c/d/e", file(None)),
        ("c/f", file(Some([2; 32]))),
        ("g", file(None)),
    ] {
        t.attach(path, node);
    }
    t
}

fn sweep_all(t: &Tree) -> Vec<String> {
    let mut out = Vec::new();
    let mut at: Option<String> = None;
    while let Some(p) = t.next_unhashed(at.as_deref()) {
        out.push(p.to_string());
        at = Some(p.to_string());
    }
    out
}

#[test]
fn the_sweep_takes_files_without_a_hash_in_listing_order() {
    let t = tree();
    assert_eq!(sweep_all(&t), ["a/y", "b", "c/d/e", "g"]);
    // From a directory: its files come next.
    assert_eq!(t.next_unhashed(Some("c")).unwrap().as_str(), "c/d/e");
    // From a path gone from the tree: the next one after where it was.
    assert_eq!(t.next_unhashed(Some("a/z")).unwrap().as_str(), "b");
    assert_eq!(t.next_unhashed(Some("c/d/a")).unwrap().as_str(), "c/d/e");
    assert_eq!(t.next_unhashed(Some("bb")).unwrap().as_str(), "c/d/e");
    // A file where the sweep's path had a directory comes before it.
    assert_eq!(t.next_unhashed(Some("b/old")).unwrap().as_str(), "c/d/e");
    assert_eq!(t.next_unhashed(Some("g")), None);
    assert_eq!(t.next_unhashed(Some("zzz")), None);
    assert_eq!(Tree::new(UNIX_EPOCH).next_unhashed(None), None);
}

#[test]
fn the_queue_serves_files_asked_for_before_the_sweep_and_sweeps_again_after_a_change() {
    let q = Queue::default();
    q.sweep();
    let (tx, _rx) = tokio::sync::oneshot::channel();
    q.wait_for(&rel("wanted"), tx);
    assert_eq!(q.next_job(), Some(Job::Asked(rel("wanted"))));
    assert_eq!(q.next_job(), Some(Job::Sweep { restart: true }));
    assert_eq!(q.next_job(), Some(Job::Sweep { restart: false }));
    // A change during the sweep: once it ends it starts again from the first file.
    q.requeue(&rel("changed"), true);
    assert_eq!(q.next_job(), Some(Job::Sweep { restart: false }));
    q.end_sweep();
    assert_eq!(q.next_job(), Some(Job::Sweep { restart: true }));
    q.end_sweep();
    assert!(!q.sweeping());
    // A change once it is over starts a new one; without background hashing nothing does.
    q.requeue(&rel("changed"), false);
    assert!(!q.sweeping());
    q.requeue(&rel("changed"), true);
    assert_eq!(q.next_job(), Some(Job::Sweep { restart: true }));
    q.stop();
    assert_eq!(q.next_job(), None);
}

fn read_all(mut f: fs::File) -> String {
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    s
}

#[test]
fn the_kept_directory_serves_its_files_and_a_replaced_one_is_opened_again() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("f1"), "outside").unwrap();
    fs::create_dir(root.join("a")).unwrap();
    fs::write(root.join("a/f1"), "one").unwrap();
    fs::write(root.join("a/f2"), "two").unwrap();
    fs::write(root.join("top"), "top").unwrap();
    let mut dirs = DirCache::default();
    assert_eq!(read_all(dirs.open(root, Path::new("a/f1")).unwrap()), "one");
    assert_eq!(read_all(dirs.open(root, Path::new("a/f2")).unwrap()), "two");
    assert_eq!(read_all(dirs.open(root, Path::new("top")).unwrap()), "top");
    assert_eq!(read_all(dirs.open(root, Path::new("a/f1")).unwrap()), "one");
    // The kept directory is deleted and another made in its place: opened again from the root.
    fs::remove_dir_all(root.join("a")).unwrap();
    fs::create_dir(root.join("a")).unwrap();
    fs::write(root.join("a/f2"), "new two").unwrap();
    assert_eq!(
        read_all(dirs.open(root, Path::new("a/f2")).unwrap()),
        "new two"
    );
    // A symlink on the way is never followed, kept directory or not.
    fs::remove_dir_all(root.join("a")).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("a")).unwrap();
    assert!(dirs.open(root, Path::new("a/f1")).is_err());
    assert!(dirs.open(root, Path::new("../f1")).is_err());
}
