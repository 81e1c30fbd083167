//! The sender's reads: what it sends, and the files it refuses to follow.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Arc;

use proto::transfer::{CHUNK, RelPath};

use super::{Piece, Plan, Source};
use crate::transfer::buffers::Buffers;
use crate::transfer::error::EngineError;

fn plan(file: u32, path: &str, size: u64) -> Plan {
    Plan {
        file,
        path: RelPath::new(path).expect("path"),
        size,
        start: 0,
    }
}

/// Reads a whole plan below `base`: the bytes per file, or the first error.
async fn read_all(base: &Path, plan: Vec<Plan>) -> Result<Vec<Vec<u8>>, EngineError> {
    let files = plan.len();
    let mut source = Source::start(base.to_owned(), plan, Arc::new(Buffers::default()))?;
    let mut got = vec![Vec::new(); files];
    while let Some(piece) = source.next().await {
        match piece? {
            Piece::Chunk {
                file, data, hash, ..
            } => {
                assert_eq!(hash, *blake3::hash(&data).as_bytes());
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
    let got = read_all(tmp.path(), vec![plan(0, "Caf\u{e9}s/cr\u{e8}me.txt", 6)])
        .await
        .expect("read");
    assert_eq!(got, [b"brulee".to_vec()]);
    let e = read_all(tmp.path(), vec![plan(0, "Caf\u{e9}s/other", 6)])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, EngineError::Source { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{e:?}"
    );
}
