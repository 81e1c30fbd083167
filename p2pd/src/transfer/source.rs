//! The sender's disk side, off the link task: a thread reads the chunks to send and hashes
//! them, a few ahead of the link, into a small set of reused buffers.

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::sync::{Mutex, MutexGuard, PoisonError};

use proto::transfer::{CHUNK, chunk_count, chunk_range};
use tokio::sync::mpsc;

use super::threads::spawn;

/// Chunks read and hashed ahead of the link.
const READ_AHEAD: usize = 1;
/// Buffers in use at once: those queued, the one being sent and the one being read.
const BUFFERS: usize = READ_AHEAD + 2;

/// Chunk buffers of finished sends, kept for the next: buffers allocated by each send's own
/// thread and freed at its end would stay scattered over the allocator's per-thread arenas.
static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
/// Most buffers kept in [`POOL`].
const POOL_MAX: usize = BUFFERS;

fn pool() -> MutexGuard<'static, Vec<Vec<u8>>> {
    POOL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One file to send.
pub(super) struct Plan {
    /// Index into the manifest.
    pub file: u32,
    /// Where it is on disk.
    pub path: PathBuf,
    /// Its size in the manifest.
    pub size: u64,
    /// The first chunk the receiver lacks.
    pub start: u64,
}

/// What comes next on the link.
pub(super) enum Piece {
    /// A chunk and its BLAKE3 hash; give the buffer back with [`Source::recycle`].
    Chunk {
        /// Index into the manifest.
        file: u32,
        /// Chunk index.
        index: u64,
        /// The bytes.
        data: Vec<u8>,
        /// Their hash.
        hash: [u8; 32],
    },
    /// Every chunk of this file was given.
    FileDone(u32),
}

/// Chunks of the planned files, in order. Dropping it stops the reading thread.
pub(super) struct Source {
    rx: mpsc::Receiver<Result<Piece, String>>,
    free: std_mpsc::Sender<Vec<u8>>,
}

impl Source {
    /// Starts reading `plan` on its own thread.
    pub(super) fn start(plan: Vec<Plan>) -> Result<Source, String> {
        let (tx, rx) = mpsc::channel(READ_AHEAD);
        let (free, free_rx) = std_mpsc::channel();
        spawn("p2pd-read", move || {
            if let Err(e) = read_plan(&plan, &tx, &free_rx) {
                let _ = tx.blocking_send(Err(e));
            }
            // Keep the buffers given back for the next send (later ones go there directly).
            drop(tx);
            let back: Vec<_> = free_rx.try_iter().collect();
            drop(free_rx);
            let mut pool = pool();
            for buf in back {
                if pool.len() < POOL_MAX {
                    pool.push(buf);
                }
            }
        })?;
        Ok(Source { rx, free })
    }

    /// The next piece; `None` after the last.
    pub(super) async fn next(&mut self) -> Option<Result<Piece, String>> {
        self.rx.recv().await
    }

    /// Gives a chunk's buffer back for reuse.
    pub(super) fn recycle(&self, buf: Vec<u8>) {
        if let Err(back) = self.free.send(buf) {
            // Every chunk has been read: keep it for the next send.
            let mut pool = pool();
            if pool.len() < POOL_MAX {
                pool.push(back.0);
            }
        }
    }
}

/// Why the reader stopped early: the link side is gone, which is not an error to report.
struct Gone;

/// Reads every planned chunk. `Err` is a read error to report.
fn read_plan(
    plan: &[Plan],
    tx: &mpsc::Sender<Result<Piece, String>>,
    free: &std_mpsc::Receiver<Vec<u8>>,
) -> Result<(), String> {
    let mut made = 0;
    let mut buffer = || -> Result<Vec<u8>, Gone> {
        if let Ok(buf) = free.try_recv() {
            return Ok(buf);
        }
        if made < BUFFERS {
            made += 1;
            return Ok(pool()
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(CHUNK as usize)));
        }
        free.recv().map_err(|_| Gone)
    };
    for p in plan {
        let count = chunk_count(p.size);
        if p.start < count {
            let file = super::scan::open_source(&p.path)
                .map_err(|e| format!("cannot read {}: {e}", p.path.display()))?;
            for index in p.start..count {
                let (offset, len) = chunk_range(p.size, index).ok_or("chunk out of range")?;
                let Ok(mut data) = buffer() else {
                    return Ok(());
                };
                data.resize(len as usize, 0);
                file.read_exact_at(&mut data, offset)
                    .map_err(|e| format!("{} changed while being sent: {e}", p.path.display()))?;
                let hash = *blake3::hash(&data).as_bytes();
                let piece = Piece::Chunk {
                    file: p.file,
                    index,
                    data,
                    hash,
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
