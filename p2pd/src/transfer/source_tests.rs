//! The sender's reads: what it sends, and the files it refuses to follow.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;

use proto::transfer::{CHUNK, RelPath};

use super::{Piece, Plan, Source};
use crate::transfer::buffers::Buffers;
use crate::transfer::error::EngineError;
use crate::transfer::scan::hash_file;

fn plan(file: u32, path: &str, size: u64) -> Plan {
    Plan {
        base: None,
        file,
        path: RelPath::new(path).expect("path"),
        size,
        start: 0,
        mtime: (0, 0),
        cvs: Arc::new(Vec::new()),
    }
}

/// Reads a whole plan below `base`: the bytes per file, or the first error. Each file that
/// exists is scanned first, as `send` would have.
async fn read_all(base: &Path, mut plan: Vec<Plan>) -> Result<Vec<Vec<u8>>, EngineError> {
    for p in &mut plan {
        if let Ok((_, _, scanned)) = hash_file(&base.join(p.path.as_str())) {
            p.mtime = scanned.mtime;
            p.cvs = Arc::new(scanned.cvs);
        }
    }
    read_scanned(base, plan).await
}

/// Reads a whole plan below `base` as it is given.
async fn read_scanned(base: &Path, plan: Vec<Plan>) -> Result<Vec<Vec<u8>>, EngineError> {
    let files = plan.len();
    let mut source = Source::start(base.to_owned(), plan, Arc::new(Buffers::default()))?;
    let mut got = vec![Vec::new(); files];
    while let Some(piece) = source.next().await {
        match piece? {
            Piece::Chunk { file, data, .. } => {
                got[file as usize].extend_from_slice(&data);
                source.recycle(data);
            }
            Piece::FileDone(_) => {}
        }
    }
    Ok(got)
}

#[tokio::test]
async fn files_are_read_below_the_base_in_chunks() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("shared");
    std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
    let big: Vec<u8> = (0..CHUNK as usize + 100).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("sub/big.bin"), &big).expect("write");
    std::fs::write(dir.join("small"), b"hello").expect("write");
    let got = read_all(
        tmp.path(),
        vec![
            plan(0, "shared/sub/big.bin", big.len() as u64),
            plan(1, "shared/small", 5),
        ],
    )
    .await
    .expect("read");
    assert_eq!(got, [big, b"hello".to_vec()]);
}

#[tokio::test]
async fn a_file_replaced_by_a_symlink_since_the_scan_is_not_followed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let outside = tmp.path().join("secret");
    std::fs::write(&outside, b"secret!").expect("write");
    let base = tmp.path().join("home");
    std::fs::create_dir_all(base.join("shared/sub")).expect("mkdir");
    // The file itself became a symlink.
    symlink(&outside, base.join("shared/a.txt")).expect("symlink");
    let e = read_all(&base, vec![plan(0, "shared/a.txt", 7)])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, EngineError::Symlink { path } if path == &base.join("shared/a.txt")),
        "{e:?}"
    );
    assert!(e.to_string().contains("shared/a.txt"), "{e}");
    assert!(e.is_local_source());
    // A directory on the way became a symlink (to a tree holding the same name).
    std::fs::create_dir_all(tmp.path().join("elsewhere")).expect("mkdir");
    std::fs::write(tmp.path().join("elsewhere/b.txt"), b"secret!").expect("write");
    symlink(tmp.path().join("elsewhere"), base.join("shared/dir")).expect("symlink");
    let e = read_all(&base, vec![plan(0, "shared/dir/b.txt", 7)])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, EngineError::Symlink { path } if path == &base.join("shared/dir/b.txt")),
        "{e:?}"
    );
    // A symlink staying inside the tree is not followed either.
    std::fs::write(base.join("shared/sub/real"), b"secret!").expect("write");
    symlink("sub", base.join("shared/inside")).expect("symlink");
    let e = read_all(&base, vec![plan(0, "shared/inside/real", 7)])
        .await
        .unwrap_err();
    assert!(matches!(e, EngineError::Symlink { .. }), "{e:?}");
}

#[tokio::test]
async fn a_file_whose_size_changed_since_the_scan_fails_naming_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("grew"), b"0123456789").expect("write");
    let e = read_all(tmp.path(), vec![plan(0, "grew", 4)])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, EngineError::Changed { scanned: 4, now: 10, path } if path.ends_with("grew")),
        "{e:?}"
    );
    let e = read_all(tmp.path(), vec![plan(0, "gone", 4)])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, EngineError::Source { path, .. } if path.ends_with("gone")),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_name_decomposed_on_disk_is_found_from_its_nfc_manifest_path() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("Cafe\u{301}s");
    std::fs::create_dir(&root).expect("mkdir");
    std::fs::write(root.join("cre\u{300}me.txt"), b"brulee").expect("write");
    // As the scan saw it, under its name on disk.
    let (_, _, scanned) = hash_file(&root.join("cre\u{300}me.txt")).expect("scan");
    let nfc = Plan {
        mtime: scanned.mtime,
        cvs: Arc::new(scanned.cvs),
        ..plan(0, "Caf\u{e9}s/cr\u{e8}me.txt", 6)
    };
    let got = read_scanned(tmp.path(), vec![nfc]).await.expect("read");
    assert_eq!(got, [b"brulee".to_vec()]);
    let e = read_all(tmp.path(), vec![plan(0, "Caf\u{e9}s/other", 6)])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, EngineError::Source { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_file_rewritten_since_the_scan_fails_and_a_touched_one_is_sent() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data: Vec<u8> = (0..2 * CHUNK as usize + 7)
        .map(|i| (i % 249) as u8)
        .collect();
    let path = tmp.path().join("f.bin");
    std::fs::write(&path, &data).expect("write");
    let (_, _, scanned) = hash_file(&path).expect("scan");
    let scanned_plan = || Plan {
        mtime: scanned.mtime,
        cvs: Arc::new(scanned.cvs.clone()),
        ..plan(0, "f.bin", data.len() as u64)
    };
    let moved = (scanned.mtime.0 - 10, scanned.mtime.1);
    let set_mtime = |(s, ns): (i64, i64)| {
        let t = std::time::UNIX_EPOCH
            + std::time::Duration::new(s.cast_unsigned(), ns.try_into().expect("ns"));
        let f = std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("open");
        f.set_modified(t).expect("set mtime");
    };
    // Unchanged: read as scanned.
    let got = read_scanned(tmp.path(), vec![scanned_plan()])
        .await
        .expect("read");
    assert_eq!(got, std::slice::from_ref(&data));
    // Touched, same bytes: each chunk checked, and all match.
    set_mtime(moved);
    let got = read_scanned(tmp.path(), vec![scanned_plan()])
        .await
        .expect("read");
    assert_eq!(got, std::slice::from_ref(&data));
    // Same size, other bytes in the second chunk: refused naming the file and the chunk.
    let mut other = data.clone();
    other[CHUNK as usize + 3] ^= 1;
    std::fs::write(&path, &other).expect("write");
    set_mtime(moved);
    let e = read_scanned(tmp.path(), vec![scanned_plan()])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, EngineError::Modified { path: p, index: 1 } if p == &path),
        "{e:?}"
    );
    assert!(e.is_local_source());
}
