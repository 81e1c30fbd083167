//! Building a manifest from a local file or directory (blocking). Symlinks are never
//! followed: a shared tree cannot lead out of itself.
//!
//! Each file is read once: the pass computes the value of each 1 MiB chunk (`chunk_cv`) and
//! merges them into the file's content id. The values and the file's modification time are
//! kept ([`Scanned`], stored with the manifest), so sending reads the chunks without hashing
//! them again while the file is unchanged.
//!
//! Manifest paths are in Unicode NFC ([`RelPath`] normalises them), whatever form the names
//! have on this disk: a name that macOS or a copy from it stored decomposed is offered in the
//! form every receiver compares and stores. The file is still opened under its name on disk:
//! the sender (`source.rs`) finds it again from the manifest path.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use proto::content::{ChunkCv, ContentId, chunk_cv, content_id};
use proto::transfer::{
    CHUNK, FileEntry, MAX_CHUNK_FRAME, MAX_DIRS, MAX_FILES, Manifest, ManifestError, PathError,
    RelPath, TransferId, offer_len,
};

/// Why a path cannot be offered.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The path must be absolute (p2pctl sends absolute paths).
    #[error("{0} is not an absolute path")]
    NotAbsolute(PathBuf),
    /// Reading failed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A name cannot be sent safely.
    #[error("cannot offer {}: {source}", path.display())]
    Name {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: PathError,
    },
    /// The manifest breaks a rule.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Nothing to send.
    #[error(
        "{0} holds nothing to send: neither a regular file nor a directory (symlinks are not followed)"
    )]
    Empty(PathBuf),
    /// Too many files.
    #[error("more than {MAX_FILES} files")]
    TooMany,
    /// Too many empty directories.
    #[error("more than {MAX_DIRS} empty directories")]
    TooManyDirs,
    /// The offer listing everything would not fit in one frame.
    #[error(
        "{files} files and {dirs} empty directories are too many (or their names too long) for one transfer: \
         the offer would take {len} bytes, at most {MAX_CHUNK_FRAME} fit; send them in several transfers"
    )]
    OfferTooLarge {
        /// Files listed.
        files: usize,
        /// Empty directories listed.
        dirs: usize,
        /// Bytes the offer would take.
        len: usize,
    },
    /// The scan was told to stop.
    #[error("stopped before every file was hashed")]
    Stopped,
}

/// A file to send: where it is here, and its manifest entry.
#[derive(Debug, Clone)]
pub struct Source {
    /// Absolute local path.
    pub local: PathBuf,
    /// Its manifest entry.
    pub entry: FileEntry,
    /// Its chunk values and modification time.
    pub scanned: Scanned,
}

/// What the sender keeps of a scanned file beyond its manifest entry (stored beside the
/// manifest): the value of each chunk, merged into the entry's content id, the file's
/// modification time when the scan opened it, and the directory its manifest path is below.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Scanned {
    /// Modification time: seconds and nanoseconds since the Unix epoch.
    pub mtime: (i64, i64),
    /// One value per chunk ([`proto::content::chunk_cv`]).
    pub cvs: Vec<ChunkCv>,
    /// The local directory the file's manifest path is below: the parent of the path it was
    /// offered under, as several paths offered together may have different parents. `None`
    /// in manifests stored before this was kept: the parent of the transfer's one path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<PathBuf>,
}

/// A file's modification time as [`Scanned::mtime`] holds it.
pub fn mtime(m: &fs::Metadata) -> (i64, i64) {
    crate::fsx::mtime(m)
}

/// What a scan reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The tree is listed: how many files, their size as listed, the first few paths.
    Listed {
        /// Files found.
        files: usize,
        /// Their total size when listed.
        bytes: u64,
        /// The first paths (at most [`SAMPLE`]).
        sample: Vec<String>,
    },
    /// Bytes hashed so far, over all files.
    Hashed(u64),
}

/// Paths a [`Report::Listed`] names.
pub const SAMPLE: usize = 5;

/// Walks `path` (a file, or a directory sent as the list of its regular files and its empty
/// directories) and hashes every file. Manifest paths start with `path`'s own name.
pub fn scan(path: &Path, id: TransferId) -> Result<(Manifest, Vec<Source>), ScanError> {
    scan_with(&[path.to_owned()], id, &mut |_| true)
}

/// A file found by the listing: manifest path, local path, size, and the directory the
/// manifest path is below.
type Found = (String, PathBuf, u64, PathBuf);

/// An entry the listing leaves out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left {
    /// Its manifest path: where it would have landed at the peer.
    pub path: String,
    /// Why it stays here: [`SYMLINK`] or [`SPECIAL`].
    pub reason: &'static str,
}

/// Why a symlink is left out of a listing.
pub const SYMLINK: &str = "symlink (not followed)";
/// Why a socket, pipe or device is left out of a listing.
pub const SPECIAL: &str = "special file";

/// What a metadata walk of the paths of one transfer finds, before any file is read: the
/// files, the directories that hold nothing to send, and what is left out.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    files: Vec<Found>,
    /// Manifest paths of the directories that hold no file, nor any directory listed here.
    pub dirs: Vec<String>,
    /// Symlinks and special files, in walk order.
    pub left: Vec<Left>,
}

/// Lists `paths`, each a file or a directory, in the order given: a metadata walk, no file
/// read. Each path must hold something (a file, or be or hold an empty directory), or the
/// user would not know it was left; a tree of directories alone (no file) goes as those
/// directories.
pub fn list(paths: &[PathBuf]) -> Result<Listing, ScanError> {
    let mut found = Listing::default();
    for path in paths {
        if !path.is_absolute() {
            return Err(ScanError::NotAbsolute(path.to_owned()));
        }
        let meta = fs::symlink_metadata(path).map_err(|source| ScanError::Io {
            path: path.to_owned(),
            source,
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let before = (found.files.len(), found.dirs.len());
        if meta.is_file() {
            if found.files.len() >= MAX_FILES {
                return Err(ScanError::TooMany);
            }
            found.files.push((name, path.to_owned(), meta.len(), base));
        } else if meta.is_dir() {
            let mut files = Vec::new();
            let room = MAX_FILES - found.files.len();
            walk(path, &name, &mut files, &mut found, room)?;
            found
                .files
                .extend(files.into_iter().map(|(r, l, n)| (r, l, n, base.clone())));
        }
        if (found.files.len(), found.dirs.len()) == before {
            return Err(ScanError::Empty(path.to_owned()));
        }
    }
    if found.files.is_empty() && found.dirs.is_empty() {
        return Err(ScanError::Empty(paths.first().cloned().unwrap_or_default()));
    }
    let len = offer_len(
        found.files.iter().map(|f| (f.0.len(), f.2)),
        found.dirs.iter().map(String::len),
    );
    if len > MAX_CHUNK_FRAME {
        return Err(ScanError::OfferTooLarge {
            files: found.files.len(),
            dirs: found.dirs.len(),
            len,
        });
    }
    Ok(found)
}

/// Lists `paths` (offered together, as one transfer; manifest paths start with each path's
/// own name) and hashes every file ([`hash_listing`]).
pub fn scan_with(
    paths: &[PathBuf],
    id: TransferId,
    report: &mut dyn FnMut(Report) -> bool,
) -> Result<(Manifest, Vec<Source>), ScanError> {
    hash_listing(list(paths)?, id, report)
}

/// Hashes every file of `found`, telling `report` what it has done first for the listing and
/// then after each chunk hashed; stops with [`ScanError::Stopped`] as soon as `report`
/// returns false.
pub fn hash_listing(
    found: Listing,
    id: TransferId,
    report: &mut dyn FnMut(Report) -> bool,
) -> Result<(Manifest, Vec<Source>), ScanError> {
    let io_err = |p: &Path| {
        let p = p.to_owned();
        move |source| ScanError::Io { path: p, source }
    };
    let Listing { files, dirs, .. } = found;
    let listed = Report::Listed {
        files: files.len(),
        bytes: files.iter().map(|f| f.2).sum(),
        sample: files.iter().take(SAMPLE).map(|f| f.0.clone()).collect(),
    };
    if !report(listed) {
        return Err(ScanError::Stopped);
    }
    let mut sources = Vec::with_capacity(files.len());
    let mut hashed = 0u64;
    for (rel, local, _, base) in files {
        let path = RelPath::new(&rel).map_err(|source| ScanError::Name {
            path: local.clone(),
            source,
        })?;
        let mut stopped = false;
        let (size, hash, mut scanned) = hash_file_with(&local, &mut |n| {
            hashed += n;
            stopped = !report(Report::Hashed(hashed));
            !stopped
        })
        .map_err(io_err(&local))?;
        if stopped {
            return Err(ScanError::Stopped);
        }
        scanned.base = Some(base);
        sources.push(Source {
            local,
            entry: FileEntry {
                path,
                size,
                hash: hash.0,
            },
            scanned,
        });
    }
    let dirs = dirs
        .iter()
        .map(|d| {
            RelPath::new(d).map_err(|source| ScanError::Name {
                path: PathBuf::from(d),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let manifest = Manifest {
        id,
        files: sources.iter().map(|s| s.entry.clone()).collect(),
        dirs,
    };
    manifest.validate()?;
    Ok((manifest, sources))
}

/// Lists what is under `dir` (manifest path `rel`): its regular files into `out` (at most
/// `max`: manifest path, local path, size), and into `found` the directories that hold
/// nothing to send (`dir` itself when nothing below it was listed) and what is left out.
fn walk(
    dir: &Path,
    rel: &str,
    out: &mut Vec<(String, PathBuf, u64)>,
    found: &mut Listing,
    max: usize,
) -> Result<(), ScanError> {
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(dir)
        .and_then(|rd| rd.collect::<Result<_, _>>())
        .map_err(|source| ScanError::Io {
            path: dir.to_owned(),
            source,
        })?;
    entries.sort_by_key(fs::DirEntry::file_name);
    let before = (out.len(), found.dirs.len());
    for e in entries {
        let ft = e.file_type().map_err(|source| ScanError::Io {
            path: e.path(),
            source,
        })?;
        let child = format!("{rel}/{}", e.file_name().to_string_lossy());
        if ft.is_symlink() {
            tracing::info!(path = %e.path().display(), "not following a symlink in a shared tree");
            found.left.push(Left {
                path: child,
                reason: SYMLINK,
            });
        } else if ft.is_dir() {
            walk(&e.path(), &child, out, found, max)?;
        } else if ft.is_file() {
            if out.len() >= max {
                return Err(ScanError::TooMany);
            }
            let len = e.metadata().map_or(0, |m| m.len());
            out.push((child, e.path(), len));
        } else {
            found.left.push(Left {
                path: child,
                reason: SPECIAL,
            });
        }
    }
    if (out.len(), found.dirs.len()) == before {
        if found.dirs.len() >= MAX_DIRS {
            return Err(ScanError::TooManyDirs);
        }
        found.dirs.push(rel.to_owned());
    }
    Ok(())
}

/// Size, content id and chunk values of a file, in one pass.
pub fn hash_file(path: &Path) -> io::Result<(u64, ContentId, Scanned)> {
    hash_file_with(path, &mut |_| true)
}

/// [`hash_file`], telling `hashed` the size of each chunk read; it returns false to stop
/// early (the result is then meaningless).
fn hash_file_with(
    path: &Path,
    hashed: &mut dyn FnMut(u64) -> bool,
) -> io::Result<(u64, ContentId, Scanned)> {
    let mut file = fs::File::open(path)?;
    let mtime = mtime(&file.metadata()?);
    // One chunk buffer: a chunk's value depends on whether it is the file's only one, so after
    // a whole first chunk one byte more is read, and it starts the second chunk.
    let mut buf = vec![0u8; CHUNK as usize];
    let mut cvs = Vec::new();
    let mut size = 0u64;
    let mut len = read_full(&mut file, &mut buf)?;
    let mut index = 0u64;
    // The byte read past the first chunk, if any.
    let mut carried = None;
    while len > 0 {
        size += len as u64;
        if !hashed(len as u64) {
            let base = None;
            return Ok((size, ContentId::EMPTY, Scanned { mtime, cvs, base }));
        }
        if index == 0 && len == buf.len() {
            let mut one = [0u8; 1];
            carried = (read_full(&mut file, &mut one)? == 1).then_some(one[0]);
        }
        let only = index == 0 && carried.is_none();
        cvs.push(chunk_cv(index, &buf[..len], only).map_err(io::Error::other)?);
        index += 1;
        len = match carried.take() {
            Some(byte) => {
                buf[0] = byte;
                1 + read_full(&mut file, &mut buf[1..])?
            }
            None if len == buf.len() => read_full(&mut file, &mut buf)?,
            None => 0,
        };
    }
    let id = content_id(&cvs, size).map_err(io::Error::other)?;
    Ok((
        size,
        id,
        Scanned {
            mtime,
            cvs,
            base: None,
        },
    ))
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(file: &mut fs::File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_become_file_lists_and_symlinks_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("photos");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("a.jpg"), b"aaa").unwrap();
        fs::write(root.join("sub/b.jpg"), b"bbbb").unwrap();
        fs::write(dir.path().join("secret"), b"outside").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link")).unwrap();
        let (m, sources) = scan(&root, TransferId([1; 16])).unwrap();
        let paths: Vec<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, vec!["photos/a.jpg", "photos/sub/b.jpg"]);
        assert_eq!(m.total_size(), 7);
        assert_eq!(sources[0].entry.hash, *blake3::hash(b"aaa").as_bytes());
        assert_eq!(sources[0].scanned.cvs, vec![ChunkCv(sources[0].entry.hash)]);
    }

    #[test]
    fn empty_directories_are_listed_but_not_those_that_hold_something() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("d");
        fs::create_dir_all(root.join("full/empty")).unwrap();
        fs::create_dir_all(root.join("a/b/c")).unwrap();
        fs::create_dir_all(root.join("links")).unwrap();
        fs::write(root.join("full/f"), b"f").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("links/pw")).unwrap();
        let found = list(std::slice::from_ref(&root)).unwrap();
        // `a` and `a/b` are implied by `a/b/c`; `full` holds a file; `links` only a symlink.
        assert_eq!(found.dirs, ["d/a/b/c", "d/full/empty", "d/links"]);
        assert_eq!(
            found.left,
            [Left {
                path: "d/links/pw".into(),
                reason: SYMLINK
            }]
        );
        let (m, _) = hash_listing(found, TransferId([4; 16]), &mut |_| true).unwrap();
        let dirs: Vec<&str> = m.dirs.iter().map(RelPath::as_str).collect();
        assert_eq!(dirs, ["d/a/b/c", "d/full/empty", "d/links"]);
        assert_eq!(m.files.len(), 1);
    }

    #[test]
    fn several_paths_make_one_manifest_each_file_below_its_own_parent() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b/c"));
        fs::create_dir_all(a.join("photos/sub")).unwrap();
        fs::create_dir_all(&b).unwrap();
        fs::write(a.join("photos/sub/1.jpg"), b"one").unwrap();
        fs::write(b.join("notes.txt"), b"notes").unwrap();
        let paths = [b.join("notes.txt"), a.join("photos")];
        let (m, sources) = scan_with(&paths, TransferId([9; 16]), &mut |_| true).unwrap();
        let got: Vec<(&str, Option<&Path>)> = m
            .files
            .iter()
            .zip(&sources)
            .map(|(f, s)| (f.path.as_str(), s.scanned.base.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("notes.txt", Some(b.as_path())),
                ("photos/sub/1.jpg", Some(a.as_path())),
            ]
        );
        // One of several that is an empty directory goes as one; alone, too.
        fs::create_dir(a.join("nothing")).unwrap();
        let (m, _) = scan_with(
            &[a.join("photos"), a.join("nothing")],
            TransferId([9; 16]),
            &mut |_| true,
        )
        .unwrap();
        assert_eq!(m.dirs, [RelPath::new("nothing").unwrap()]);
        let (m, sources) =
            scan_with(&[a.join("nothing")], TransferId([9; 16]), &mut |_| true).unwrap();
        assert!(m.files.is_empty() && sources.is_empty());
        assert_eq!(m.dirs, [RelPath::new("nothing").unwrap()]);
        // A symlink alone holds nothing to send.
        std::os::unix::fs::symlink(a.join("nothing"), a.join("link")).unwrap();
        let err = scan_with(&[a.join("link")], TransferId([9; 16]), &mut |_| true).unwrap_err();
        assert!(
            matches!(&err, ScanError::Empty(p) if p.ends_with("link")),
            "{err}"
        );
        // Two paths of one name cannot arrive together.
        fs::write(a.join("notes.txt"), b"other").unwrap();
        assert!(matches!(
            scan_with(
                &[b.join("notes.txt"), a.join("notes.txt")],
                TransferId([9; 16]),
                &mut |_| true
            ),
            Err(ScanError::Manifest(ManifestError::Duplicate { .. }))
        ));
    }

    #[test]
    fn decomposed_names_are_offered_in_nfc_and_still_opened() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("Cafe\u{301}s");
        fs::create_dir(&root).unwrap();
        fs::write(root.join("cre\u{300}me.txt"), b"brulee").unwrap();
        let (m, sources) = scan(&root, TransferId([5; 16])).unwrap();
        assert_eq!(m.files[0].path.as_str(), "Caf\u{e9}s/cr\u{e8}me.txt");
        assert_eq!(sources[0].local, root.join("cre\u{300}me.txt"));
        // `source.rs` opens it from the NFC path (its tests).
        // Two spellings of one name cannot be offered together.
        fs::write(root.join("cr\u{e8}me.txt"), b"x").unwrap();
        assert!(matches!(
            scan(&root, TransferId([6; 16])),
            Err(ScanError::Manifest(ManifestError::Duplicate { .. }))
        ));
    }

    #[test]
    fn reports_the_listing_then_bytes_hashed_and_stops_when_told() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("d");
        fs::create_dir(&root).unwrap();
        fs::write(root.join("a"), vec![1u8; 3 * CHUNK as usize / 2]).unwrap();
        fs::write(root.join("b"), b"xy").unwrap();
        let mut seen = Vec::new();
        scan_with(std::slice::from_ref(&root), TransferId([7; 16]), &mut |r| {
            seen.push(r);
            true
        })
        .unwrap();
        let total = 3 * CHUNK / 2 + 2;
        assert_eq!(
            seen,
            vec![
                Report::Listed {
                    files: 2,
                    bytes: total,
                    sample: vec!["d/a".into(), "d/b".into()],
                },
                Report::Hashed(CHUNK),
                Report::Hashed(3 * CHUNK / 2),
                Report::Hashed(total),
            ]
        );
        let mut calls = 0;
        let stopped = scan_with(
            std::slice::from_ref(&root),
            TransferId([8; 16]),
            &mut |_| {
                calls += 1;
                calls < 2
            },
        );
        assert!(matches!(stopped, Err(ScanError::Stopped)));
        assert_eq!(calls, 2);
    }

    #[test]
    fn one_pass_gives_the_content_id_and_the_chunk_values() {
        let dir = tempfile::tempdir().unwrap();
        for size in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5] {
            let data: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
            let f = dir.path().join(format!("f{size}"));
            fs::write(&f, &data).unwrap();
            let (got, id, scanned) = hash_file(&f).unwrap();
            assert_eq!(got, size);
            assert_eq!(id, ContentId::of(&data), "{size}");
            assert_eq!(scanned.cvs, proto::content::chunk_cvs(&data), "{size}");
            assert_eq!(scanned.mtime, mtime(&fs::metadata(&f).unwrap()));
        }
    }

    #[test]
    fn single_files_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.bin");
        fs::write(&f, b"").unwrap();
        let (m, _) = scan(&f, TransferId([2; 16])).unwrap();
        assert_eq!(m.files[0].path.as_str(), "x.bin");
        assert!(matches!(
            scan(Path::new("rel"), TransferId([3; 16])),
            Err(ScanError::NotAbsolute(_))
        ));
        // Directories with no file below go as the deepest of them.
        fs::create_dir_all(dir.path().join("empty/b/c")).unwrap();
        fs::create_dir_all(dir.path().join("empty/d")).unwrap();
        let (m, sources) = scan(&dir.path().join("empty"), TransferId([4; 16])).unwrap();
        assert!(m.files.is_empty() && sources.is_empty());
        let dirs: Vec<&str> = m.dirs.iter().map(RelPath::as_str).collect();
        assert_eq!(dirs, ["empty/b/c", "empty/d"]);
    }

    #[test]
    fn a_listing_whose_offer_would_not_fit_one_frame_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("top");
        fs::create_dir(&root).unwrap();
        fs::write(root.join("f"), b"x").unwrap();
        // Each empty directory takes about 250 bytes of the offer.
        let dirs = MAX_CHUNK_FRAME / 250 + 10;
        for n in 0..dirs {
            fs::create_dir(root.join(format!("{n:05}{}", "d".repeat(240)))).unwrap();
        }
        let err = list(std::slice::from_ref(&root)).unwrap_err();
        assert!(
            matches!(err, ScanError::OfferTooLarge { files: 1, dirs: d, len } if d == dirs && len > MAX_CHUNK_FRAME),
            "{err}"
        );
        assert!(err.to_string().contains("several transfers"), "{err}");
        // Fewer of them fit.
        for n in 0..dirs / 2 {
            fs::remove_dir(root.join(format!("{n:05}{}", "d".repeat(240)))).unwrap();
        }
        assert_eq!(
            list(std::slice::from_ref(&root)).unwrap().dirs.len(),
            dirs - dirs / 2
        );
    }
}
