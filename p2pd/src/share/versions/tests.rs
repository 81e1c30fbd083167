//! The version store against a real database and real files.

use std::fs;

use super::*;
use crate::store::testing::id;

struct Fixture {
    _tmp: tempfile::TempDir,
    share: PathBuf,
    root: Dir,
    store: VersionStore,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let share = tmp.path().join("share");
    fs::create_dir_all(&state).unwrap();
    fs::create_dir_all(&share).unwrap();
    let db = Db::open_blocking(&state).unwrap();
    let store = VersionStore::open(&state, db).unwrap();
    let root = dirs::open_root(&share).unwrap();
    Fixture {
        _tmp: tmp,
        share,
        root,
        store,
    }
}

fn key(path: &str) -> Key {
    Key {
        share: "docs".into(),
        path: path.into(),
    }
}

fn keep(n: u32) -> Retention {
    Retention {
        keep: n,
        max_bytes: None,
        max_age_ms: None,
    }
}

impl Fixture {
    /// Writes `bytes` at `name`, archives it, then removes it, as a remove through the
    /// daemon does.
    fn replace(&self, name: &str, bytes: &[u8], keep: &Retention) -> Option<VersionInfo> {
        fs::write(self.share.join(name), bytes).unwrap();
        let v = self
            .store
            .archive(&self.root, name, &key(name), Some(id(1)), keep)
            .unwrap();
        fs::remove_file(self.share.join(name)).unwrap();
        v
    }

    fn blobs(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.store.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn blob_bytes(&self) -> u64 {
        fs::read_dir(self.store.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    }

    fn list(&self, path: &str) -> Vec<VersionInfo> {
        let db = self.store.db.clone();
        let k = key(path);
        db.call_blocking(move |c| rows::list(c, &k, MAX_VERSIONS))
            .unwrap()
    }
}

#[test]
fn a_file_is_kept_with_its_bytes_and_an_absent_path_or_a_directory_is_not() {
    let f = fixture();
    let v = f.replace("a.txt", b"first", &keep(5)).unwrap();
    assert_eq!(v.number, 1);
    assert_eq!(v.size, 5);
    assert_eq!(v.id, ContentId::of(b"first"));
    assert_eq!(v.by, Some(id(1)));
    let mut back = Vec::new();
    f.store
        .open_blob(&v.id)
        .unwrap()
        .read_to_end(&mut back)
        .unwrap();
    assert_eq!(back, b"first", "the blob outlives the removed file");
    assert_eq!(f.list("a.txt"), [v]);

    let none = f
        .store
        .archive(&f.root, "nope", &key("nope"), None, &keep(5));
    assert!(none.unwrap().is_none());
    fs::create_dir(f.share.join("d")).unwrap();
    let dir = f.store.archive(&f.root, "d", &key("d"), None, &keep(5));
    assert!(dir.unwrap().is_none(), "a directory is not archived");
    std::os::unix::fs::symlink("/etc/hostname", f.share.join("link")).unwrap();
    let link = f
        .store
        .archive(&f.root, "link", &key("link"), None, &keep(5));
    assert!(link.unwrap().is_none(), "a symlink is not followed");
    assert_eq!(f.blobs().len(), 1);
}

#[test]
fn identical_content_is_stored_once_and_goes_with_its_last_row() {
    let f = fixture();
    f.replace("a.txt", b"same", &keep(1));
    f.replace("b.txt", b"same", &keep(1));
    assert_eq!(f.blobs(), [ContentId::of(b"same").to_string()]);
    // a.txt's only version is replaced by another: the blob stays for b.txt.
    f.replace("a.txt", b"other", &keep(1));
    assert_eq!(f.blobs().len(), 2);
    f.replace("b.txt", b"third", &keep(1));
    let mut want = vec![
        ContentId::of(b"other").to_string(),
        ContentId::of(b"third").to_string(),
    ];
    want.sort();
    assert_eq!(f.blobs(), want, "the shared blob went with its last row");
}

#[test]
fn retention_keeps_n_per_path_and_numbers_are_never_given_twice() {
    let f = fixture();
    for round in 0..10u32 {
        f.replace("a.txt", format!("round {round}").as_bytes(), &keep(3));
    }
    let kept: Vec<u64> = f.list("a.txt").iter().map(|v| v.number).collect();
    assert_eq!(kept, [8, 9, 10]);
    assert_eq!(f.blobs().len(), 3);
    // Every version pruned (keep 0), then one more: still the next number.
    f.replace("a.txt", b"gone at once", &keep(0));
    assert!(f.list("a.txt").is_empty());
    assert!(f.blobs().is_empty());
    let v = f.replace("a.txt", b"again", &keep(3)).unwrap();
    assert_eq!(v.number, 12);
}

#[test]
fn retention_drops_versions_past_the_age_cap() {
    let f = fixture();
    f.replace("old.txt", b"old", &keep(5));
    // Make the first version an hour old.
    let db = f.store.db.clone();
    let hour_ago = now_ms() - 3_600_000;
    db.call_blocking(move |c| {
        c.execute(
            "UPDATE versions SET replaced_at = ?1",
            [hour_ago.cast_signed()],
        )
    })
    .unwrap();
    let aged = Retention {
        max_age_ms: Some(600_000),
        ..keep(5)
    };
    f.replace("new.txt", b"new", &aged);
    assert!(f.list("old.txt").is_empty(), "older than ten minutes");
    assert_eq!(f.list("new.txt").len(), 1);
    assert_eq!(f.blobs(), [ContentId::of(b"new").to_string()]);
}

#[test]
fn retention_holds_the_byte_cap_oldest_first() {
    let f = fixture();
    let capped = Retention {
        max_bytes: Some(1000),
        ..keep(100)
    };
    for round in 0..20u8 {
        f.replace("a.bin", &[round; 300], &capped);
        assert!(f.blob_bytes() <= 1000, "round {round}: {}", f.blob_bytes());
    }
    let kept: Vec<u64> = f.list("a.bin").iter().map(|v| v.number).collect();
    assert_eq!(kept, [18, 19, 20], "the newest that fit");
    // One version alone over the cap is not kept.
    f.replace("big.bin", &[7; 2000], &capped);
    assert!(f.list("big.bin").is_empty());
    assert!(f.blob_bytes() <= 1000);
}

#[test]
fn a_removed_share_leaves_no_version_and_an_interrupted_archive_no_file() {
    let f = fixture();
    f.replace("a.txt", b"x", &keep(5));
    fs::write(f.store.path().join(".tmp.1.1"), b"half").unwrap();
    f.store.forget_share("docs").unwrap();
    assert!(f.list("a.txt").is_empty());
    assert_eq!(f.blobs(), [".tmp.1.1"]);
    let state = f.store.path().parent().unwrap().to_owned();
    let again = VersionStore::open(&state, f.store.db.clone()).unwrap();
    drop(again);
    assert!(f.blobs().is_empty(), "leftover temporary files are dropped");
}
