//! The index as a walk gives it: listings, paging, ignore files, symlinks, names, hashing.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, CreateKind, Event, EventKind, Flag};
use tokio::sync::broadcast;
use tokio::time::timeout;

use super::hasher::{DirCache, Unhashed, hash_unchanged};
use super::tree::{Body, Node, Tree};
use super::watch::{Target, changed_paths, target_of};
use super::worker::anchored;
use super::*;

/// How long a test waits for something the index does (generous: a loaded 2-core machine).
pub(super) const WAIT: Duration = Duration::from_secs(60);

pub(super) fn options(watch: bool, background: bool) -> IndexOptions {
    IndexOptions {
        watch,
        debounce: Duration::from_millis(50),
        rescan_every: Duration::from_secs(3600),
        hash_in_background: background,
    }
}

pub(super) async fn open(root: &Path, options: IndexOptions) -> ShareIndex {
    let index = ShareIndex::open(root, options).unwrap();
    timeout(WAIT, index.ready()).await.unwrap().unwrap();
    index
}

/// Opens `rel` below `root` as the hasher does, with no directory kept from before.
fn open_beneath(root: &Path, rel: &Path) -> std::io::Result<fs::File> {
    DirCache::default().open(root, rel)
}

pub(super) fn rel(p: &str) -> RelPath {
    RelPath::new(p).unwrap()
}

/// Every name in the directory `dir`, a page of `limit` at a time.
pub(super) fn all_names(index: &ShareIndex, dir: Option<&RelPath>, limit: usize) -> Vec<String> {
    let mut names = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = index.list(dir, after.as_deref(), limit).unwrap();
        assert!(page.entries.len() <= limit);
        names.extend(page.entries.into_iter().map(|e| e.name));
        match page.next {
            Some(next) => after = Some(next),
            None => return names,
        }
    }
}

/// Waits for a change that `wanted` accepts, among the batches `changes` receives.
pub(super) async fn wait_for(
    changes: &mut broadcast::Receiver<Vec<Change>>,
    wanted: impl Fn(&Change) -> bool,
) -> Change {
    let found = timeout(WAIT, async {
        loop {
            let batch = changes.recv().await.unwrap();
            if let Some(c) = batch.into_iter().find(|c| wanted(c)) {
                return c;
            }
        }
    });
    found
        .await
        .expect("the index did not report the change in time")
}

/// Waits until every change of `expected` has been reported, in any order or batch.
pub(super) async fn wait_for_all(
    changes: &mut broadcast::Receiver<Vec<Change>>,
    mut expected: Vec<Change>,
) {
    let all = timeout(WAIT, async {
        while !expected.is_empty() {
            let batch = changes.recv().await.unwrap();
            expected.retain(|c| !batch.contains(c));
        }
    });
    all.await
        .expect("the index did not report the changes in time")
}

#[tokio::test]
async fn lists_sorted_pages_from_the_index_with_hidden_files_and_stats() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for i in 0..25 {
        fs::write(root.join(format!("f{i:02}")), vec![b'x'; i]).unwrap();
    }
    fs::create_dir(root.join("d")).unwrap();
    fs::write(root.join("d/inner"), b"12345").unwrap();
    fs::write(root.join(".hidden"), b"h").unwrap();
    fs::write(root.join(IGNORE_FILE), b"").unwrap();
    let index = open(root, options(false, false)).await;

    let mut expected: Vec<String> = (0..25).map(|i| format!("f{i:02}")).collect();
    expected.extend([".hidden".into(), "d".into()]);
    expected.sort();
    assert_eq!(all_names(&index, None, 10), expected);
    assert_eq!(all_names(&index, None, MAX_PAGE), expected);
    let first = index.list(None, None, 10).unwrap();
    assert_eq!(first.next.as_deref(), Some("f07"));
    let second = index.list(None, Some("f07"), 2).unwrap();
    let names: Vec<&str> = second.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["f08", "f09"]);
    // A cursor need not be a name listed.
    let from = index.list(None, Some("f235"), 10).unwrap();
    assert_eq!(from.entries[0].name, "f24");
    assert_eq!(from.next, None);

    let f = index.stat(Some(&rel("f03"))).unwrap();
    assert_eq!(
        (f.name.as_str(), f.kind, f.size, f.hash),
        ("f03", Kind::File, 3, None)
    );
    assert_eq!(
        f.mtime,
        fs::metadata(root.join("f03")).unwrap().modified().unwrap()
    );
    let d = index.stat(Some(&rel("d"))).unwrap();
    assert_eq!((d.kind, d.size), (Kind::Dir, 1));
    assert_eq!(index.stat(None).unwrap().size, 27);
    assert_eq!(all_names(&index, Some(&rel("d")), 5), ["inner"]);
    assert!(matches!(
        index.list(Some(&rel("f01")), None, 5),
        Err(IndexError::NotADirectory { .. })
    ));
    assert!(matches!(
        index.stat(Some(&rel("nope"))),
        Err(IndexError::NotFound { .. })
    ));
    assert!(matches!(
        index.list(Some(&rel("d/inner/x")), None, 5),
        Err(IndexError::NotFound { .. })
    ));
    let stats = index.stats();
    assert_eq!(stats.totals.files, 27);
    assert_eq!(stats.totals.dirs, 1);
    assert_eq!(stats.totals.bytes, (0..25).sum::<u64>() + 5 + 1);
    assert_eq!(stats.skipped, Skipped::default());
}

#[tokio::test]
async fn p2pignore_files_apply_at_two_levels_and_are_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("build")).unwrap();
    fs::create_dir_all(root.join("sub/deeper")).unwrap();
    fs::write(root.join(IGNORE_FILE), "*.log\nbuild/\n").unwrap();
    fs::write(
        root.join("sub").join(IGNORE_FILE),
        "secret.txt\n!keep.log\n",
    )
    .unwrap();
    for f in [
        "a.log",
        "a.txt",
        "secret.txt",
        "build/out.bin",
        "sub/secret.txt",
        "sub/keep.log",
        "sub/b.txt",
        "sub/deeper/c.log",
        "sub/deeper/secret.txt",
        "sub/deeper/d.txt",
    ] {
        fs::write(root.join(f), f).unwrap();
    }
    let index = open(root, options(false, false)).await;
    assert_eq!(all_names(&index, None, 10), ["a.txt", "secret.txt", "sub"]);
    assert_eq!(
        all_names(&index, Some(&rel("sub")), 10),
        ["b.txt", "deeper", "keep.log"]
    );
    assert_eq!(all_names(&index, Some(&rel("sub/deeper")), 10), ["d.txt"]);
    assert!(matches!(
        index.stat(Some(&rel("sub/.p2pignore"))),
        Err(IndexError::NotFound { .. })
    ));
    assert!(matches!(
        index.hash(&rel(".p2pignore")).await,
        Err(IndexError::NotFound { .. })
    ));
}

#[tokio::test]
async fn symlinks_are_not_listed_followed_or_opened() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"not shared").unwrap();
    let root = dir.path().join("share");
    fs::create_dir(&root).unwrap();
    fs::write(root.join("real"), b"shared").unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), root.join("link")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("linkdir")).unwrap();
    std::os::unix::fs::symlink("real", root.join("inside")).unwrap();
    let index = open(&root, options(true, true)).await;
    assert_eq!(all_names(&index, None, 10), ["real"]);
    assert_eq!(index.stats().skipped.symlinks, 3);
    for p in ["link", "linkdir", "linkdir/secret", "inside"] {
        assert!(matches!(
            index.hash(&rel(p)).await,
            Err(IndexError::NotFound { .. })
        ));
    }
    // Even asked for directly, the file opener follows no symlink on the way.
    for p in ["linkdir/secret", "link"] {
        let err = open_beneath(index.root(), Path::new(p)).unwrap_err();
        let refused =
            [rustix::io::Errno::LOOP, rustix::io::Errno::NOTDIR].map(|e| Some(e.raw_os_error()));
        assert!(refused.contains(&err.raw_os_error()), "{p}: {err}");
    }
    assert_eq!(
        index.hash(&rel("real")).await.unwrap(),
        *blake3::hash(b"shared").as_bytes()
    );
}

#[tokio::test]
async fn names_that_cannot_be_served_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::write(root.join("aux.txt"), b"windows device").unwrap();
    fs::write(root.join("bad\u{202e}txt.exe"), b"bidi").unwrap();
    fs::write(root.join(OsStr::from_bytes(b"\xff.bin")), b"not utf-8").unwrap();
    fs::create_dir(root.join("con")).unwrap();
    fs::write(root.join("con/inner"), b"under a reserved name").unwrap();
    // Two spellings of one name: the first in byte order (the decomposed one) is served.
    fs::write(root.join("cafe\u{301}"), b"decomposed").unwrap();
    fs::write(root.join("caf\u{e9}"), b"composed").unwrap();
    fs::write(root.join("fine"), b"ok").unwrap();
    let index = open(root, options(false, false)).await;
    assert_eq!(all_names(&index, None, 10), ["caf\u{e9}", "fine"]);
    assert_eq!(index.stats().skipped.names, 6);
    assert_eq!(
        index.hash(&rel("caf\u{e9}")).await.unwrap(),
        *blake3::hash(b"decomposed").as_bytes()
    );
}

#[tokio::test]
async fn hashes_match_blake3_in_the_background_and_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let big: Vec<u8> = (0..3 * hasher::READ_BUF + 7)
        .map(|i| (i % 251) as u8)
        .collect();
    fs::create_dir(root.join("d")).unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join("small"), b"hello").unwrap();
    fs::write(root.join("d/big"), &big).unwrap();
    let files = [
        ("empty", &b""[..]),
        ("small", &b"hello"[..]),
        ("d/big", &big[..]),
    ];
    let index = ShareIndex::open(root, options(false, true)).unwrap();
    let mut changes = index.subscribe();
    timeout(WAIT, index.ready()).await.unwrap().unwrap();
    for (path, _) in files {
        if index.stat(Some(&rel(path))).unwrap().hash.is_none() {
            wait_for(
                &mut changes,
                |c| matches!(c, Change::Hashed { path: p, .. } if p.as_str() == path),
            )
            .await;
        }
    }
    for (path, content) in files {
        let expected = *blake3::hash(content).as_bytes();
        assert_eq!(index.stat(Some(&rel(path))).unwrap().hash, Some(expected));
        assert_eq!(index.hash(&rel(path)).await.unwrap(), expected);
    }
    assert_eq!(index.stats().totals.hashed, 3);
    assert!(matches!(
        index.hash(&rel("d")).await,
        Err(IndexError::NotAFile { .. })
    ));
}

#[tokio::test]
async fn a_file_changed_while_hashed_gets_no_stale_hash() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::write(root.join("f"), b"first version").unwrap();
    let index = open(root, options(false, false)).await;
    let mut changes = index.subscribe();
    let file = root.join("f");
    let once = AtomicBool::new(false);
    index.set_hook(move |path| {
        if path.as_str() == "f" && !once.swap(true, Ordering::Relaxed) {
            use std::io::Write;
            let mut f = fs::OpenOptions::new().append(true).open(&file).unwrap();
            f.write_all(b", then more").unwrap();
        }
    });
    let hash = timeout(WAIT, index.hash(&rel("f"))).await.unwrap().unwrap();
    let now = *blake3::hash(b"first version, then more").as_bytes();
    assert_eq!(hash, now);
    // The first read saw the change: the index looked again, then hashed the new version.
    let mut seen = Vec::new();
    while let Ok(batch) = changes.try_recv() {
        seen.extend(batch);
    }
    assert_eq!(
        seen,
        [
            Change::Modified { path: rel("f") },
            Change::Hashed {
                path: rel("f"),
                hash: now
            }
        ]
    );
    assert_eq!(index.stat(Some(&rel("f"))).unwrap().hash, Some(now));
}

#[test]
fn hashing_checks_the_listed_size_and_time_and_that_nothing_changed_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    fs::write(&path, vec![7u8; 2 * hasher::READ_BUF]).unwrap();
    let meta = fs::metadata(&path).unwrap();
    let (size, mtime) = (meta.len(), meta.modified().unwrap());
    let stop = AtomicBool::new(false);
    let mut buf = vec![0u8; hasher::READ_BUF];
    let file = open_beneath(dir.path(), Path::new("f")).unwrap();
    let h = hash_unchanged(&file, size, mtime, &stop, &mut buf, &mut || {}).unwrap();
    assert_eq!(
        h,
        *blake3::hash(&vec![7u8; 2 * hasher::READ_BUF]).as_bytes()
    );
    // Not the listed version.
    assert!(matches!(
        hash_unchanged(&file, size + 1, mtime, &stop, &mut buf, &mut || {}),
        Err(Unhashed::Changed)
    ));
    // Cut short after the first read.
    let file = open_beneath(dir.path(), Path::new("f")).unwrap();
    let mut cut = || {
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(10)
            .unwrap()
    };
    assert!(matches!(
        hash_unchanged(&file, size, mtime, &stop, &mut buf, &mut cut),
        Err(Unhashed::Changed)
    ));
    stop.store(true, Ordering::Relaxed);
    let meta = fs::metadata(&path).unwrap();
    assert!(matches!(
        hash_unchanged(
            &file,
            meta.len(),
            meta.modified().unwrap(),
            &stop,
            &mut buf,
            &mut || {}
        ),
        Err(Unhashed::Stopped)
    ));
}

#[test]
fn watched_paths_become_walk_targets() {
    let root = Path::new("/srv/share");
    let t = |p: &str| target_of(root, Path::new(p));
    assert_eq!(t("/srv/share"), Some(Target::Root));
    assert_eq!(t("/srv/share/.p2pignore"), Some(Target::Root));
    assert_eq!(t("/srv/share/a/.p2pignore"), Some(Target::Path("a".into())));
    assert_eq!(t("/srv/share/a/b"), Some(Target::Path("a/b".into())));
    assert_eq!(
        t("/srv/share/cafe\u{301}"),
        Some(Target::Path("caf\u{e9}".into()))
    );
    assert_eq!(t("/srv/other/a"), None);
    assert_eq!(t("/srv/share/aux"), None);

    let event = |kind, path: &str| Event::new(kind).add_path(path.into());
    let (paths, rescan) = changed_paths(&[
        event(
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            "/srv/share/read",
        ),
        event(
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            "/srv/share/read",
        ),
        event(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            "/srv/share/w",
        ),
        event(EventKind::Create(CreateKind::File), "/srv/share/new"),
    ]);
    assert_eq!(
        paths,
        [Path::new("/srv/share/w"), Path::new("/srv/share/new")]
    );
    assert!(!rescan);
    let overflow = Event::new(EventKind::Other).set_flag(Flag::Rescan);
    assert!(changed_paths(&[overflow]).1);
}

#[test]
fn walk_targets_hang_from_a_directory_of_the_tree_and_do_not_nest() {
    let mut tree = Tree::new(std::time::UNIX_EPOCH);
    let file = || Node {
        disk: None,
        mtime: std::time::UNIX_EPOCH,
        body: Body::File {
            size: 1,
            hash: None,
        },
    };
    tree.attach("a", Node::dir(std::time::UNIX_EPOCH));
    tree.attach("a/f", file());
    tree.attach("g", file());
    let paths =
        |ps: &[&str]| anchored(&tree, &ps.iter().map(|p| p.to_string()).collect::<Vec<_>>());
    assert_eq!(paths(&["a/f"]), ["a/f"]);
    assert_eq!(paths(&["a/f/x/y"]), ["a/f"]);
    assert_eq!(paths(&["b/c/d"]), ["b"]);
    assert_eq!(paths(&["a/new", "a"]), ["a"]);
    assert_eq!(paths(&["a-b", "a/x", "a", "g"]), ["a", "a-b", "g"]);
    assert_eq!(paths(&[]), Vec::<String>::new());
}
