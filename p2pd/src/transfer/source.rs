//! The sender's disk side, off the link task: a thread reads the chunks to send, a few ahead
//! of the link, into a small set of reused buffers. It does not hash them: their values were
//! computed by the scan, and the receiver verifies each chunk. Only a file whose
//! modification time moved since the scan has each chunk checked against its value here, so
//! a changed file fails the transfer naming it.
//!
//! Every file is opened through a directory handle on the shared tree's parent, one path
//! component at a time, and no symlink is followed: a file or directory replaced by a symlink
//! since the scan fails the transfer naming it, as does a file whose size changed.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, Metadata};
use proto::content::{ChunkCv, chunk_cv};
use proto::transfer::{CHUNK, RelPath, chunk_count, chunk_range};
use tokio::sync::mpsc;

use super::buffers::Buffers;
use super::error::EngineError;
use super::threads::spawn;
use crate::files::{other_spelling, same_file};
use crate::fsx::{self, FileAt};

/// Chunks read and hashed ahead of the link.
const READ_AHEAD: usize = 1;
/// Most buffers one send uses at once: those queued, the one being sent and the one being
/// read. Those beyond the first count against a daemon-wide cap ([`Buffers::extra_send`]).
pub(super) const BUFFERS: usize = READ_AHEAD + 2;

/// One file to send.
pub(super) struct Plan {
    /// Index into the manifest.
    pub file: u32,
    /// Its manifest path, below the directory the sender reads from.
    pub path: RelPath,
    /// That directory, when it is not the one the [`Source`] was started with (several
    /// paths offered together may have different parents).
    pub base: Option<PathBuf>,
    /// Its size in the manifest.
    pub size: u64,
    /// The first chunk the receiver lacks.
    pub start: u64,
    /// Its modification time at the scan ([`super::scan::Scanned::mtime`]).
    pub mtime: (i64, i64),
    /// Its chunk values from the scan.
    pub cvs: Arc<Vec<ChunkCv>>,
}

/// What comes next on the link.
pub(super) enum Piece {
    /// A chunk; give the buffer back with [`Source::recycle`].
    Chunk {
        /// Index into the manifest.
        file: u32,
        /// Chunk index.
        index: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Every chunk of this file was given.
    FileDone(u32),
}

/// Chunks of the planned files, in order. Dropping it stops the reading thread.
pub(super) struct Source {
    rx: mpsc::Receiver<Result<Piece, EngineError>>,
    free: std_mpsc::Sender<Vec<u8>>,
    buffers: Arc<Buffers>,
}

impl Source {
    /// Starts reading `plan`, below the directory `base`, on its own thread.
    pub(super) fn start(
        base: PathBuf,
        plan: Vec<Plan>,
        buffers: Arc<Buffers>,
    ) -> Result<Source, EngineError> {
        let (tx, rx) = mpsc::channel(READ_AHEAD);
        let (free, free_rx) = std_mpsc::channel();
        let pool = buffers.clone();
        spawn("p2pd-read", move || {
            if let Err(e) = read_plan(&base, &plan, &tx, &free_rx, &pool) {
                let _ = tx.blocking_send(Err(e));
            }
            // Keep the buffers given back for the next send (later ones go there directly).
            drop(tx);
            let back: Vec<_> = free_rx.try_iter().collect();
            drop(free_rx);
            for buf in back {
                pool.keep_send(buf);
            }
        })?;
        Ok(Source { rx, free, buffers })
    }

    /// The next piece; `None` after the last.
    pub(super) async fn next(&mut self) -> Option<Result<Piece, EngineError>> {
        self.rx.recv().await
    }

    /// Gives a chunk's buffer back for reuse.
    pub(super) fn recycle(&self, buf: Vec<u8>) {
        if let Err(back) = self.free.send(buf) {
            // Every chunk has been read: keep it for the next send.
            self.buffers.keep_send(back.0);
        }
    }
}

/// Why the reader stopped early: the link side is gone, which is not an error to report.
struct Gone;

/// Reads every planned chunk. `Err` is a read error to report.
fn read_plan(
    base: &Path,
    plan: &[Plan],
    tx: &mpsc::Sender<Result<Piece, EngineError>>,
    free: &std_mpsc::Receiver<Vec<u8>>,
    pool: &Buffers,
) -> Result<(), EngineError> {
    let mut made = 0;
    // Permits for the buffers made beyond the first, held until every chunk has been read.
    let mut extras = Vec::new();
    let mut buffer = || -> Result<Vec<u8>, Gone> {
        if let Ok(buf) = free.try_recv() {
            return Ok(buf);
        }
        let room = match made {
            0 => true,
            n if n < BUFFERS => pool.extra_send().map(|p| extras.push(p)).is_some(),
            _ => false,
        };
        if room {
            made += 1;
            return Ok(pool
                .take_send()
                .unwrap_or_else(|| Vec::with_capacity(CHUNK as usize)));
        }
        free.recv().map_err(|_| Gone)
    };
    // The directory handle of the files read last, and its path.
    let mut root: Option<(&Path, Dir)> = None;
    for p in plan {
        let count = chunk_count(p.size);
        if p.start < count {
            let base = p.base.as_deref().unwrap_or(base);
            let root = match &root {
                Some((at, r)) if *at == base => r,
                _ => {
                    let dir =
                        Dir::open_ambient_dir(base, ambient_authority()).map_err(|source| {
                            EngineError::Source {
                                path: base.to_owned(),
                                source,
                            }
                        })?;
                    &root.insert((base, dir)).1
                }
            };
            let shown = base.join(p.path.as_str());
            let file = open_in(root, &p.path, &shown)?;
            let meta = file.metadata().map_err(|source| EngineError::Source {
                path: shown.clone(),
                source,
            })?;
            let now = meta.len();
            // Touched since the scan: each chunk is checked against its value before it goes.
            let check = super::scan::mtime(&meta) != p.mtime;
            if now != p.size {
                return Err(EngineError::Changed {
                    path: shown,
                    scanned: p.size,
                    now,
                });
            }
            for index in p.start..count {
                let (offset, len) = chunk_range(p.size, index).ok_or(EngineError::Changed {
                    path: shown.clone(),
                    scanned: p.size,
                    now,
                })?;
                let Ok(mut data) = buffer() else {
                    return Ok(());
                };
                data.resize(len as usize, 0);
                file.read_exact_at(&mut data, offset).map_err(|source| {
                    if source.kind() == io::ErrorKind::UnexpectedEof {
                        // Cut short while being sent.
                        let now = file.metadata().map_or(0, |m| m.len());
                        EngineError::Changed {
                            path: shown.clone(),
                            scanned: p.size,
                            now,
                        }
                    } else {
                        EngineError::Source {
                            path: shown.clone(),
                            source,
                        }
                    }
                })?;
                if check && !matches_value(&p.cvs, index, &data) {
                    return Err(EngineError::Modified { path: shown, index });
                }
                let piece = Piece::Chunk {
                    file: p.file,
                    index,
                    data,
                };
                if tx.blocking_send(Ok(piece)).is_err() {
                    return Ok(());
                }
            }
        }
        if tx.blocking_send(Ok(Piece::FileDone(p.file))).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// Whether `data` is chunk `index` of the file whose values are `cvs`.
fn matches_value(cvs: &[ChunkCv], index: u64, data: &[u8]) -> bool {
    let listed = usize::try_from(index).ok().and_then(|i| cvs.get(i));
    listed.is_some_and(|want| chunk_cv(index, data, cvs.len() == 1).ok() == Some(*want))
}

/// Opens the regular file at `path` below `root`, one component at a time, following no
/// symlink. A component missing under its manifest spelling is looked up by its NFC form
/// (the scan offers NFC names; the disk may hold them decomposed). `shown` names the file
/// in errors.
fn open_in(root: &Dir, path: &RelPath, shown: &Path) -> Result<std::fs::File, EngineError> {
    let io_err = |source| EngineError::Source {
        path: shown.to_owned(),
        source,
    };
    let symlink = || EngineError::Symlink {
        path: shown.to_owned(),
    };
    let comps: Vec<&str> = path.components().collect();
    let Some((last, parents)) = comps.split_last() else {
        return Err(io_err(io::ErrorKind::NotFound.into()));
    };
    let mut cur = root.try_clone().map_err(io_err)?;
    for c in parents {
        let name = spelling(&cur, c).map_err(io_err)?;
        let before = entry(&cur, &name, symlink, io_err)?;
        // cap-std's open_dir follows a symlink that stays in the tree: check after opening
        // that the name still is that directory.
        let next = cur.open_dir(&name).map_err(io_err)?;
        let opened = next.dir_metadata().map_err(io_err)?;
        if !before.is_dir() || !same_file(&before, &opened) {
            return Err(symlink());
        }
        cur = next;
    }
    let name = spelling(&cur, last).map_err(io_err)?;
    let before = entry(&cur, &name, symlink, io_err)?;
    let file = match cur.open_with(&name, &fsx::read_nofollow_options()) {
        Ok(f) => f,
        // ELOOP: the last component became a symlink after the check.
        Err(e) if fsx::is_symlink_refused(&e) => {
            return Err(symlink());
        }
        Err(e) => return Err(io_err(e)),
    };
    let opened = file.metadata().map_err(io_err)?;
    if !opened.is_file() || !same_file(&before, &opened) {
        return Err(if opened.is_file() {
            symlink()
        } else {
            io_err(io::Error::other("not a regular file"))
        });
    }
    Ok(file.into_std())
}

/// The name of `name` in `dir` as it is on disk: itself, or another Unicode spelling of it.
fn spelling(dir: &Dir, name: &str) -> io::Result<String> {
    match dir.symlink_metadata(name) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(other_spelling(dir, name)?
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "no such file in any spelling")
            })?),
        _ => Ok(name.to_owned()),
    }
}

/// The entry `name` of `dir`, not followed; a symlink is refused.
fn entry(
    dir: &Dir,
    name: &str,
    symlink: impl Fn() -> EngineError,
    io_err: impl Fn(io::Error) -> EngineError,
) -> Result<Metadata, EngineError> {
    let m = dir.symlink_metadata(name).map_err(io_err)?;
    if m.file_type().is_symlink() {
        return Err(symlink());
    }
    Ok(m)
}

#[cfg(test)]
#[path = "source_tests.rs"]
mod tests;
