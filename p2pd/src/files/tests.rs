//! Tests of safe file creation against real directories (and a small tmpfs for a full disk).

use super::*;
use std::fs;
use std::os::unix::fs::symlink;
use std::process::Command;

const T: &str = "t1";

fn dest() -> (tempfile::TempDir, Dest) {
    let tmp = tempfile::tempdir().unwrap();
    let dest = Dest::open(tmp.path()).unwrap();
    (tmp, dest)
}

fn receive(dest: &Dest, components: &[&str], data: &[u8]) -> FinalName {
    let part = dest.create_part(T, components, data.len() as u64).unwrap();
    part.write_at(0, data).unwrap();
    part.finish().unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn files_creates_nested_dirs_and_file() {
    let (tmp, dest) = dest();
    let fin = receive(&dest, &["a", "b", "c.txt"], b"hello");
    assert_eq!(fin.to_string(), "a/b/c.txt");
    assert_eq!(fin.file_name(), "c.txt");
    assert_eq!(fin.to_path_buf(), Path::new("a/b/c.txt"));
    assert_eq!(fs::read(tmp.path().join("a/b/c.txt")).unwrap(), b"hello");
    assert_eq!(names(&tmp.path().join("a/b")), ["c.txt"]);
    // A second file in the existing directories.
    let fin = receive(&dest, &["a", "d.txt"], b"");
    assert_eq!(fin.to_string(), "a/d.txt");
    assert_eq!(fs::read(tmp.path().join("a/d.txt")).unwrap(), b"");
}

#[test]
fn files_resume_reopens_part_and_keeps_bytes() {
    let (tmp, dest) = dest();
    let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    {
        let part = dest.create_part(T, &["d", "f.bin"], 10_000).unwrap();
        assert!(part.is_empty().unwrap());
        part.write_at(0, &data[..4000]).unwrap();
        part.sync().unwrap();
        // Dropped without finishing: an interrupted transfer.
    }
    assert_eq!(names(&tmp.path().join("d")), [".f.bin.t1.part"]);
    let part = dest.create_part(T, &["d", "f.bin"], 10_000).unwrap();
    assert_eq!(part.len().unwrap(), 4000);
    assert_eq!(part.size(), 10_000);
    // Unverified tail dropped by the receiver, then the rest sent again.
    part.set_len(3000).unwrap();
    part.write_at(3000, &data[3000..]).unwrap();
    let fin = part.finish().unwrap();
    assert_eq!(fin.to_string(), "d/f.bin");
    assert_eq!(fs::read(tmp.path().join("d/f.bin")).unwrap(), data);
    assert_eq!(names(&tmp.path().join("d")), ["f.bin"]);
}

#[test]
fn files_another_transfer_gets_its_own_part() {
    let (tmp, dest) = dest();
    let a = dest.create_part("ta", &["x"], 3).unwrap();
    let b = dest.create_part("tb", &["x"], 3).unwrap();
    a.write_at(0, b"aaa").unwrap();
    b.write_at(0, b"bbb").unwrap();
    assert_eq!(a.finish().unwrap().to_string(), "x");
    assert_eq!(b.finish().unwrap().to_string(), "x (1)");
    assert_eq!(fs::read(tmp.path().join("x")).unwrap(), b"aaa");
    assert_eq!(fs::read(tmp.path().join("x (1)")).unwrap(), b"bbb");
}

#[test]
fn files_finish_never_overwrites() {
    let (tmp, dest) = dest();
    fs::write(tmp.path().join("report.pdf"), b"old").unwrap();
    assert_eq!(
        receive(&dest, &["report.pdf"], b"new1").to_string(),
        "report (1).pdf"
    );
    assert_eq!(
        receive(&dest, &["report.pdf"], b"new2").to_string(),
        "report (2).pdf"
    );
    assert_eq!(fs::read(tmp.path().join("report.pdf")).unwrap(), b"old");
    assert_eq!(
        fs::read(tmp.path().join("report (1).pdf")).unwrap(),
        b"new1"
    );
    assert_eq!(
        fs::read(tmp.path().join("report (2).pdf")).unwrap(),
        b"new2"
    );

    fs::write(tmp.path().join("README"), b"old").unwrap();
    assert_eq!(receive(&dest, &["README"], b"n").to_string(), "README (1)");
    fs::write(tmp.path().join(".bashrc"), b"old").unwrap();
    assert_eq!(
        receive(&dest, &[".bashrc"], b"n").to_string(),
        ".bashrc (1)"
    );
    assert_eq!(fs::read(tmp.path().join(".bashrc")).unwrap(), b"old");
    // A directory at the name is stepped around too (symlinks: see the symlink test).
    fs::create_dir(tmp.path().join("dir.txt")).unwrap();
    assert_eq!(
        receive(&dest, &["dir.txt"], b"n").to_string(),
        "dir (1).txt"
    );
    assert_eq!(
        names(tmp.path()),
        [
            ".bashrc",
            ".bashrc (1)",
            "README",
            "README (1)",
            "dir (1).txt",
            "dir.txt",
            "report (1).pdf",
            "report (2).pdf",
            "report.pdf"
        ]
    );
}

#[test]
fn files_case_collision() {
    let (tmp, dest) = dest();
    fs::write(tmp.path().join("Photo.JPG"), b"old").unwrap();
    assert_eq!(
        receive(&dest, &["photo.jpg"], b"new").to_string(),
        "photo (1).jpg"
    );
    assert_eq!(fs::read(tmp.path().join("Photo.JPG")).unwrap(), b"old");
    assert!(!tmp.path().join("photo.jpg").exists());
    // A taken `(1)` in another case is skipped as well.
    fs::write(tmp.path().join("NOTES (1).TXT"), b"old").unwrap();
    fs::write(tmp.path().join("notes.txt"), b"old").unwrap();
    assert_eq!(
        receive(&dest, &["Notes.txt"], b"new").to_string(),
        "Notes (2).txt"
    );
}

#[test]
fn files_another_unicode_spelling_on_disk_is_taken() {
    let (tmp, dest) = dest();
    // A name made on disk decomposed (as macOS writes it) and one in another case too.
    fs::write(tmp.path().join("cafe\u{301}.txt"), b"old").unwrap();
    fs::write(tmp.path().join("CAFE\u{301} (1).txt"), b"old").unwrap();
    assert_eq!(
        receive(&dest, &["caf\u{e9}.txt"], b"new").to_string(),
        "caf\u{e9} (2).txt"
    );
    assert_eq!(
        fs::read(tmp.path().join("cafe\u{301}.txt")).unwrap(),
        b"old"
    );
    assert!(!tmp.path().join("caf\u{e9}.txt").exists());
}

#[test]
fn files_a_directory_in_another_unicode_spelling_is_used_not_doubled() {
    let (tmp, dest) = dest();
    let decomposed = "Cafe\u{301}s";
    fs::create_dir(tmp.path().join(decomposed)).unwrap();
    fs::write(tmp.path().join(decomposed).join("cre\u{300}me.txt"), b"old").unwrap();
    let landed = receive(&dest, &["Caf\u{e9}s", "cr\u{e8}me.txt"], b"new");
    assert_eq!(
        landed.components(),
        [decomposed.to_owned(), "cr\u{e8}me (1).txt".to_owned()]
    );
    assert_eq!(names(tmp.path()), [decomposed]);
    assert_eq!(
        fs::read(tmp.path().join(decomposed).join("cr\u{e8}me (1).txt")).unwrap(),
        b"new"
    );
    // A part left there is found again (resume, cancel) through the same spelling.
    let part = dest.create_part(T, &["Caf\u{e9}s", "x.bin"], 3).unwrap();
    part.write_at(0, b"abc").unwrap();
    drop(part);
    assert!(dest.remove_part(T, &["Caf\u{e9}s", "x.bin"]).unwrap());
    assert_eq!(names(tmp.path()), [decomposed]);
}

#[test]
fn files_symlink_at_file_name_is_not_written_through() {
    let (tmp, dest) = dest();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("target.txt");
    fs::write(&target, b"secret").unwrap();
    symlink(&target, tmp.path().join("evil.txt")).unwrap();
    let err = dest.create_part(T, &["evil.txt"], 3).unwrap_err();
    assert!(matches!(err, FilesError::Symlink { .. }), "{err}");
    assert!(err.to_string().contains("symlink"), "{err}");

    // A symlink planted at the part name.
    symlink(&target, tmp.path().join(".other.txt.t1.part")).unwrap();
    let err = dest.create_part(T, &["other.txt"], 3).unwrap_err();
    assert!(matches!(err, FilesError::Symlink { .. }), "{err}");
    assert!(!dest.remove_part(T, &["x"]).unwrap());

    // A symlink planted at the final name while the part was being written.
    let part = dest.create_part(T, &["late.txt"], 3).unwrap();
    part.write_at(0, b"new").unwrap();
    symlink(&target, tmp.path().join("late.txt")).unwrap();
    assert_eq!(part.finish().unwrap().to_string(), "late (1).txt");
    assert_eq!(fs::read(tmp.path().join("late (1).txt")).unwrap(), b"new");

    assert_eq!(fs::read(&target).unwrap(), b"secret");
    assert_eq!(names(outside.path()), ["target.txt"]);
}

#[test]
fn files_symlinked_directory_is_refused() {
    let (tmp, dest) = dest();
    let outside = tempfile::tempdir().unwrap();
    symlink(outside.path(), tmp.path().join("sub")).unwrap();
    let err = dest.create_part(T, &["sub", "f.txt"], 1).unwrap_err();
    assert!(matches!(err, FilesError::Symlink { ref path } if path == Path::new("sub")));
    let err = dest
        .create_part(T, &["sub", "deeper", "f.txt"], 1)
        .unwrap_err();
    assert!(matches!(err, FilesError::Symlink { .. }), "{err}");
    assert!(names(outside.path()).is_empty());

    // Pointing inside the tree: refused all the same.
    fs::create_dir(tmp.path().join("real")).unwrap();
    symlink("real", tmp.path().join("alias")).unwrap();
    let err = dest.create_part(T, &["alias", "f.txt"], 1).unwrap_err();
    assert!(matches!(err, FilesError::Symlink { .. }), "{err}");
    assert!(names(&tmp.path().join("real")).is_empty());

    // A file where a directory should be.
    fs::write(tmp.path().join("plain"), b"x").unwrap();
    let err = dest.create_part(T, &["plain", "f.txt"], 1).unwrap_err();
    assert!(matches!(err, FilesError::NotADirectory { .. }), "{err}");
}

#[test]
fn files_final_name_appears_only_after_finish() {
    let (tmp, dest) = dest();
    let part = dest.create_part(T, &["movie.mkv"], 8).unwrap();
    part.write_at(4, b"5678").unwrap();
    part.write_at(0, b"1234").unwrap();
    assert_eq!(names(tmp.path()), [".movie.mkv.t1.part"]);
    assert_eq!(part.part_path(), Path::new(".movie.mkv.t1.part"));
    assert_eq!(part.rel_path(), Path::new("movie.mkv"));
    part.finish().unwrap();
    assert_eq!(names(tmp.path()), ["movie.mkv"]);
    assert_eq!(fs::read(tmp.path().join("movie.mkv")).unwrap(), b"12345678");
}

#[test]
fn files_size_lies_are_refused() {
    let (tmp, dest) = dest();
    let part = dest.create_part(T, &["f"], 4).unwrap();
    let err = part.write_at(2, b"abc").unwrap_err();
    assert!(matches!(err, FilesError::Overrun { size: 4, .. }), "{err}");
    assert!(matches!(
        part.write_at(u64::MAX, b"a").unwrap_err(),
        FilesError::Overrun { .. }
    ));
    assert!(matches!(
        part.set_len(5).unwrap_err(),
        FilesError::Overrun { .. }
    ));
    part.write_at(0, b"abc").unwrap();
    let err = part.finish().unwrap_err();
    assert!(
        matches!(
            err,
            FilesError::Incomplete {
                len: 3,
                size: 4,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(names(tmp.path()), [".f.t1.part"]);
    // A part longer than announced (a different earlier size) is cut on reopen.
    let part = dest.create_part(T, &["f"], 2).unwrap();
    assert_eq!(part.len().unwrap(), 2);
    part.finish().unwrap();
    assert_eq!(fs::read(tmp.path().join("f")).unwrap(), b"ab");
}

#[test]
fn files_remove_part() {
    let (tmp, dest) = dest();
    let part = dest.create_part(T, &["d", "a"], 4).unwrap();
    part.write_at(0, b"ab").unwrap();
    part.remove().unwrap();
    assert!(names(&tmp.path().join("d")).is_empty());

    let part = dest.create_part(T, &["d", "b"], 4).unwrap();
    drop(part);
    assert!(dest.remove_part(T, &["d", "b"]).unwrap());
    assert!(!dest.remove_part(T, &["d", "b"]).unwrap());
    assert!(!dest.remove_part(T, &["missing", "b"]).unwrap());
    assert!(!tmp.path().join("missing").exists());
    assert!(names(&tmp.path().join("d")).is_empty());
}

#[test]
fn files_bad_names_are_refused() {
    let (tmp, dest) = dest();
    let long = "x".repeat(256);
    for components in [
        &[][..],
        &[""],
        &["."],
        &[".."],
        &["..", "f"],
        &["a/b"],
        &["a\\b"],
        &["a\0b"],
        &[long.as_str()],
        &[".x.t1.part"],
        &["cafe\u{301}"],
        &["ok", "a\u{202e}b"],
        &["a\u{200b}b"],
        &["\u{ff0e}\u{ff0e}", "x"],
    ] {
        let err = dest.create_part(T, components, 1).unwrap_err();
        assert!(matches!(err, FilesError::BadName { .. }), "{err}");
    }
    for tag in ["", "a/b", "..", &"t".repeat(65)] {
        let err = dest.create_part(tag, &["f"], 1).unwrap_err();
        assert!(matches!(err, FilesError::BadName { .. }), "{err}");
    }
    // Another transfer's part-like name is an ordinary name.
    receive(&dest, &[".x.t2.part"], b"x");
    assert_eq!(names(tmp.path()), [".x.t2.part"]);
}

#[test]
fn files_long_names_fit() {
    let (tmp, dest) = dest();
    let name = format!("{}.txt", "é".repeat(125)); // 254 bytes
    assert_eq!(name.len(), 254);
    let part = dest.create_part(T, &[&name], 1).unwrap();
    assert!(part.part_path().as_os_str().len() <= MAX_NAME);
    drop(part);
    // The same long name reopens the same part; a sibling with the same prefix does not.
    let other = format!("{}.txu", "é".repeat(125));
    dest.create_part(T, &[&other], 1).unwrap();
    assert_eq!(names(tmp.path()).len(), 2);
    let part = dest.create_part(T, &[&name], 1).unwrap();
    part.write_at(0, b"a").unwrap();
    assert_eq!(part.finish().unwrap().file_name(), name);
    let fin = receive(&dest, &[&name], b"b");
    assert!(fin.file_name().len() <= MAX_NAME);
    assert!(fin.file_name().ends_with(" (1).txt"), "{fin}");
    assert_eq!(names(tmp.path()).len(), 3);
}

#[test]
fn files_copy_names() {
    assert_eq!(copy_name("a.tar.gz", 1), "a.tar (1).gz");
    assert_eq!(copy_name("noext", 3), "noext (3)");
    assert_eq!(copy_name(".bashrc", 1), ".bashrc (1)");
    assert_eq!(copy_name(".config.json", 2), ".config (2).json");
    assert_eq!(copy_name("trailing.", 1), "trailing. (1)");
    let ext_only = format!("a.{}", "e".repeat(252));
    assert!(copy_name(&ext_only, 1).len() <= MAX_NAME);
}

/// Unmounts a test tmpfs, whatever happens in the test.
struct Unmount<'a>(&'a Path);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(self.0).status();
        }
    }
}

#[test]
fn files_disk_full() {
    let tmp = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(tmp.path())
        .output();
    match mounted {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            eprintln!(
                "skipping files_disk_full: cannot mount a tmpfs (needs root): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return;
        }
        Err(e) => {
            eprintln!("skipping files_disk_full: cannot run mount: {e}");
            return;
        }
    }
    let _unmount = Unmount(tmp.path());
    let dest = Dest::open(tmp.path()).unwrap();
    let data = vec![7u8; 2 << 20];
    let part = dest
        .create_part(T, &["big.bin"], data.len() as u64)
        .unwrap();
    let err = part.write_at(0, &data).unwrap_err();
    assert!(err.is_disk_full(), "{err:?}");
    assert!(err.to_string().starts_with("the disk is full"), "{err}");
    assert!(err.to_string().contains(".big.bin.t1.part"), "{err}");
    // Nothing under the final name; the part can go, and space comes back.
    assert_eq!(names(tmp.path()), [".big.bin.t1.part"]);
    part.remove().unwrap();
    assert!(names(tmp.path()).is_empty());
    receive(&dest, &["small"], &[1u8; 1000]);
    drop(dest);
}

#[test]
fn files_link_before_done_record_is_found_on_resume() {
    let (tmp, dest) = dest();
    let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let hash = *blake3::hash(&data).as_bytes();
    let comps = ["d", "f.bin"];
    // An unrelated file holds the offered name, so the received one lands as `f (1).bin`.
    fs::create_dir(tmp.path().join("d")).unwrap();
    fs::write(tmp.path().join("d/f.bin"), b"unrelated").unwrap();
    let part = dest.create_part(T, &comps, 10_000).unwrap();
    part.write_at(0, &data).unwrap();
    // Whole but not linked yet: nothing is finished.
    assert_eq!(dest.finished_part(T, &comps, 10_000, &hash).unwrap(), None);
    let linked = part.link_final().unwrap();
    assert_eq!(linked.to_string(), "d/f (1).bin");
    // The crash: dropped before the done record and the part's removal.
    drop(part);
    assert_eq!(
        names(&tmp.path().join("d")),
        [".f.bin.t1.part", "f (1).bin", "f.bin"]
    );
    // Another size or hash than the manifest's is not this file.
    assert_eq!(dest.finished_part(T, &comps, 9_999, &hash).unwrap(), None);
    assert_eq!(
        dest.finished_part(T, &comps, 10_000, &[0; 32]).unwrap(),
        None
    );
    let found = dest.finished_part(T, &comps, 10_000, &hash).unwrap();
    assert_eq!(found, Some(linked));
    assert!(dest.remove_part(T, &comps).unwrap());
    assert_eq!(names(&tmp.path().join("d")), ["f (1).bin", "f.bin"]);
    assert_eq!(fs::read(tmp.path().join("d/f (1).bin")).unwrap(), data);
    assert_eq!(fs::read(tmp.path().join("d/f.bin")).unwrap(), b"unrelated");
    assert_eq!(dest.finished_part(T, &comps, 10_000, &hash).unwrap(), None);
}

#[test]
fn files_part_linked_elsewhere_is_not_a_finished_file() {
    let (tmp, dest) = dest();
    let data = b"some bytes".to_vec();
    let hash = *blake3::hash(&data).as_bytes();
    let part = dest.create_part(T, &["g.bin"], data.len() as u64).unwrap();
    part.write_at(0, &data).unwrap();
    drop(part);
    // A hard link under a name no finish would give is not a final name.
    fs::hard_link(
        tmp.path().join(".g.bin.t1.part"),
        tmp.path().join("other.bin"),
    )
    .unwrap();
    let size = data.len() as u64;
    assert_eq!(
        dest.finished_part(T, &["g.bin"], size, &hash).unwrap(),
        None
    );
    // Nor is anything in a directory that does not exist.
    assert_eq!(
        dest.finished_part(T, &["x", "g.bin"], size, &hash).unwrap(),
        None
    );
    assert_eq!(names(tmp.path()), [".g.bin.t1.part", "other.bin"]);
}

#[test]
fn empty_dirs_are_made_where_their_top_landed_and_never_through_a_symlink() {
    let (tmp, dest) = dest();
    let dest = dest.with_landing(Landing::from([("top".to_owned(), "top (1)".to_owned())]));
    dest.make_dir(&["top", "a", "b"]).unwrap();
    dest.make_dir(&["top"]).unwrap();
    dest.make_dir(&["plain"]).unwrap();
    // Made again (a resumed transfer that finishes twice): kept as it is.
    dest.make_dir(&["plain"]).unwrap();
    assert_eq!(names(tmp.path()), ["plain", "top (1)"]);
    assert_eq!(names(&tmp.path().join("top (1)/a")), ["b"]);
    // A symlink on the way, or at the name itself, is refused, and nothing made beyond it.
    let outside = tempfile::tempdir().unwrap();
    symlink(outside.path(), tmp.path().join("link")).unwrap();
    for comps in [&["link", "x"][..], &["link"][..]] {
        assert!(
            matches!(dest.make_dir(comps), Err(FilesError::Symlink { .. })),
            "{comps:?}"
        );
    }
    assert!(names(outside.path()).is_empty());
    assert!(matches!(
        dest.make_dir(&["..", "x"]),
        Err(FilesError::BadName { .. })
    ));
}
