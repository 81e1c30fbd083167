//! The receiver's disk side, off the link task: a writer thread checks each chunk against its
//! hash, writes it to the `.part` file and keeps the file's running hash; a durability thread
//! fsyncs the part file and only then records the verified chunks, and gives each finished
//! file its final name. The link task only reads and checks frames, so reading the network,
//! hashing, writing and syncing overlap.

use std::collections::VecDeque;
use std::io::Read;
use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use proto::transfer::{CHUNK, FileEntry, TransferId};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::Transfers;
use super::live::Live;
use crate::files::{Dest, PartFile};

/// Verified chunks queued between the link task and the writer.
const QUEUE: usize = 4;
/// The part file is synced, and its verified chunks recorded, after this many bytes.
const SYNC_BYTES: u64 = 16 * CHUNK;

/// Work for the writer, in the order the frames arrived.
pub(super) enum Job {
    /// A chunk whose place in the file the link task has checked; its hash is not checked yet.
    Chunk {
        /// Index into the manifest.
        file: u32,
        /// Chunk index.
        index: u64,
        /// Where it goes in the file.
        offset: u64,
        /// The bytes.
        data: Bytes,
        /// Its hash from `ChunkHashes`.
        want: [u8; 32],
    },
    /// Every chunk of this file has arrived: check the whole file and give it its name.
    FileDone {
        /// Index into the manifest.
        file: u32,
    },
}

/// Work for the durability thread.
enum Durable {
    /// Sync the part file, then record its first `verified` chunks.
    Sync {
        file: u32,
        part: Arc<PartFile>,
        verified: u64,
    },
    /// The file is whole and verified: sync, name, record.
    Finish {
        file: u32,
        part: Arc<PartFile>,
        chunks: u64,
    },
}

/// The first error of either thread; the other stops when it sees one.
type ErrorSlot = Arc<Mutex<Option<String>>>;

fn fail(slot: &ErrorSlot, e: String) -> String {
    slot.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert(e)
        .clone()
}

fn failed(slot: &ErrorSlot) -> Option<String> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

/// The running writer of one receive session.
pub(super) struct Sink {
    tx: mpsc::Sender<Job>,
    task: JoinHandle<Result<(), String>>,
    stopped: CancellationToken,
}

/// What the writer needs about the transfer.
pub(super) struct Target {
    /// The service (for the store and progress events).
    pub t: Arc<Transfers>,
    /// The transfer.
    pub live: Arc<Live>,
    /// The destination directory.
    pub dir: Dest,
    /// The transfer's part tag.
    pub tag: String,
    /// Bytes already verified before this session.
    pub done_bytes: u64,
}

impl Sink {
    /// Starts the writer (and its durability thread).
    pub(super) fn start(target: Target) -> Sink {
        let (tx, rx) = mpsc::channel(QUEUE);
        let stopped = CancellationToken::new();
        let guard = stopped.clone().drop_guard();
        let task = tokio::task::spawn_blocking(move || {
            let _guard = guard;
            write_all(target, rx)
        });
        Sink { tx, task, stopped }
    }

    /// Completes when the writer has stopped on its own (an error: see [`Sink::close`]).
    pub(super) async fn stopped(&self) {
        self.stopped.cancelled().await;
    }

    /// Queues a job. `false` when the writer has stopped (see [`Sink::close`] for why).
    pub(super) async fn push(&self, job: Job) -> bool {
        self.tx.send(job).await.is_ok()
    }

    /// Lets the writer finish what is queued and waits for it: `Ok` when every job was done
    /// and every finished file is synced, named and recorded.
    pub(super) async fn close(self) -> Result<(), String> {
        drop(self.tx);
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(format!("the writer stopped: {e}")),
        }
    }
}

/// The writer thread.
fn write_all(target: Target, mut rx: mpsc::Receiver<Job>) -> Result<(), String> {
    let Target {
        t,
        live,
        dir,
        tag,
        mut done_bytes,
    } = target;
    let rec = live.record();
    let id = rec.manifest.id;
    let files = rec.manifest.files;
    let errors = ErrorSlot::default();
    let (dtx, drx) = std_mpsc::channel();
    let durable = {
        let t = t.clone();
        let errors = errors.clone();
        let files = files.clone();
        std::thread::Builder::new()
            .name("p2pd-sync".into())
            .spawn(move || {
                if let Err(e) = make_durable(&t, id, &files, &drx) {
                    fail(&errors, e);
                }
            })
            .map_err(|e| format!("cannot start the sync thread: {e}"))?
    };
    let mut w = Writer {
        dir: &dir,
        tag: &tag,
        files: &files,
        open: None,
        unsynced: 0,
        durable: dtx,
    };
    let mut result = Ok(());
    while let Some(job) = rx.blocking_recv() {
        if let Some(e) = failed(&errors) {
            result = Err(e);
            break;
        }
        match w.job(job) {
            Ok(len) => {
                if len > 0 {
                    done_bytes += len;
                    live.set_done(done_bytes);
                    t.progress(&live);
                }
            }
            Err(e) => {
                result = Err(fail(&errors, e));
                break;
            }
        }
    }
    // Stop taking jobs, let the durability thread finish what it was given, and report the
    // first error of either.
    drop(rx);
    drop(w);
    if durable.join().is_err() {
        fail(&errors, "the sync thread stopped".into());
    }
    match failed(&errors) {
        Some(e) => Err(e),
        None => result,
    }
}

struct Writer<'a> {
    dir: &'a Dest,
    tag: &'a str,
    files: &'a [FileEntry],
    /// The file being written, and its running hash when it was written from its first
    /// chunk in this session (else the whole part is read back to check it).
    open: Option<(u32, Arc<PartFile>, Option<blake3::Hasher>)>,
    /// Bytes written since the last sync request.
    unsynced: u64,
    durable: std_mpsc::Sender<Durable>,
}

impl<'a> Writer<'a> {
    fn entry(&self, file: u32) -> Result<&'a FileEntry, String> {
        self.files
            .get(file as usize)
            .ok_or_else(|| format!("file {file} is not in the offer"))
    }

    fn create_part(&self, f: &FileEntry) -> Result<PartFile, String> {
        let comps: Vec<&str> = f.path.components().collect();
        self.dir
            .create_part(self.tag, &comps, f.size)
            .map_err(|e| e.to_string())
    }

    fn send(&self, d: Durable) -> Result<(), String> {
        self.durable
            .send(d)
            .map_err(|_| "the sync thread stopped".to_string())
    }

    /// Does one job; returns the bytes it verified.
    fn job(&mut self, job: Job) -> Result<u64, String> {
        match job {
            Job::Chunk {
                file,
                index,
                offset,
                data,
                want,
            } => {
                let f = self.entry(file)?;
                if blake3::hash(&data).as_bytes() != &want {
                    return Err(format!("chunk {index} of {} failed verification", f.path));
                }
                if self.open.as_ref().is_none_or(|(n, _, _)| *n != file) {
                    let part = self.create_part(f)?;
                    self.open =
                        Some((file, Arc::new(part), (index == 0).then(blake3::Hasher::new)));
                    self.unsynced = 0;
                }
                let Some((_, part, hasher)) = self.open.as_mut() else {
                    return Err("no part file".into());
                };
                part.write_at(offset, &data).map_err(|e| e.to_string())?;
                if let Some(h) = hasher {
                    h.update(&data);
                }
                let len = data.len() as u64;
                self.unsynced += len;
                if self.unsynced >= SYNC_BYTES {
                    self.unsynced = 0;
                    let part = part.clone();
                    self.send(Durable::Sync {
                        file,
                        part,
                        verified: index + 1,
                    })?;
                }
                Ok(len)
            }
            Job::FileDone { file } => {
                let f = self.entry(file)?;
                let (part, hasher) = match self.open.take() {
                    Some((n, p, h)) if n == file => (p, h),
                    other => {
                        drop(other);
                        // An empty file has no chunks: its hash is that of nothing.
                        (
                            Arc::new(self.create_part(f)?),
                            (f.size == 0).then(blake3::Hasher::new),
                        )
                    }
                };
                let whole = match hasher {
                    Some(h) => *h.finalize().as_bytes(),
                    None => hash_part(&self.dir.path().join(part.part_path()))
                        .map_err(|e| format!("cannot read back {}: {e}", f.path))?,
                };
                if whole != f.hash {
                    return Err(format!("{} does not match its hash", f.path));
                }
                self.unsynced = 0;
                self.send(Durable::Finish {
                    file,
                    part,
                    chunks: f.chunk_count(),
                })?;
                Ok(0)
            }
        }
    }
}

/// The durability thread: syncs, records and names, in the order asked. A sync that a later
/// request for the same file covers is skipped.
fn make_durable(
    t: &Transfers,
    id: TransferId,
    files: &[FileEntry],
    rx: &std_mpsc::Receiver<Durable>,
) -> Result<(), String> {
    let mut queue = VecDeque::new();
    while let Ok(first) = rx.recv() {
        queue.push_back(first);
        queue.extend(rx.try_iter());
        while let Some(d) = queue.pop_front() {
            match d {
                Durable::Sync {
                    file,
                    part,
                    verified,
                } => {
                    let covered = queue.front().is_some_and(|next| match next {
                        Durable::Sync { file: f, .. } | Durable::Finish { file: f, .. } => {
                            *f == file
                        }
                    });
                    if covered {
                        continue;
                    }
                    part.sync().map_err(|e| e.to_string())?;
                    drop(part);
                    // Only chunks that are on disk are recorded, so a resume trusts them.
                    let _ = t.node.store().set_verified(id, file, verified, false);
                }
                Durable::Finish { file, part, chunks } => {
                    let f = files
                        .get(file as usize)
                        .ok_or_else(|| format!("file {file} is not in the offer"))?;
                    let part = Arc::try_unwrap(part)
                        .map_err(|_| format!("{} is still being written", f.path))?;
                    let name = part.finish().map_err(|e| e.to_string())?;
                    let _ = t.node.store().set_verified(id, file, chunks, true);
                    info!(target: svc::logging::ACTIVITY, op = "file-received", id = %id, file = %name, bytes = f.size, "file verified and in place");
                }
            }
        }
    }
    Ok(())
}

/// BLAKE3 of what a part file holds.
fn hash_part(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; CHUNK as usize];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(*hasher.finalize().as_bytes())
}
