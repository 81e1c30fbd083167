//! The receiver's disk side, off the link task, in three threads joined by short queues: a
//! verifier checks each chunk against its chunk value (one BLAKE3 pass over the data, and
//! the only one: the values were checked against the file's content id before the first
//! chunk, so a file whose chunks all verified is the file offered); a writer writes verified
//! chunks to the `.part` file; a durability thread records how far each file got and gives
//! each whole file its final name after one fsync of the file and one of its directory. The
//! link task only reads and checks frames, so reading the network, hashing, writing and
//! syncing overlap.
//!
//! The part file is not synced while it grows: a killed daemon loses nothing of the page
//! cache, and after a machine crash whatever was lost is found on resume, when the part's
//! prefix is hashed against the file's chunk values ([`Job::Recheck`]) before any new chunk
//! is written. So a progress record only says a part is worth reopening; the part itself
//! says how far it got. The writer does hand each written stretch to the kernel's write-back
//! early ([`WRITE_BACK_BYTES`]), so the final fsync finds little dirty data and other
//! programs' fsyncs on the same file system (the chat database's) do not wait behind a
//! gigabyte of it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::{Bytes, BytesMut};
use proto::content::{ChunkCv, ChunkList, chunk_cv};
use proto::transfer::{CHUNK, FileEntry, TransferId};
use tokio::sync::mpsc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::Transfers;
use super::buffers::{Buffers, Receiving};
use super::error::EngineError;
use super::live::Live;
use super::recv_rules::Violation;
use super::threads::spawn;
use crate::files::{Dest, PartFile};

/// Chunks queued between the link task and the verifier, and between the verifier and the
/// writer.
const QUEUE: usize = 1;

/// The verified chunks of the part file are recorded (not synced) after this many bytes.
const RECORD_BYTES: u64 = 16 * CHUNK;

/// Written data is handed to the kernel's write-back in stretches of this many bytes, and the
/// stretch before is waited for, so at most about two stretches of a part file are dirty in
/// the page cache and its one fsync at the end has little left to flush. Small, because
/// every fsync on the same file system (the chat database's commits) waits for the journal
/// to take those dirty pages first (ext4, data=ordered): with 16 MiB stretches a chat commit
/// during a transfer waited up to ~11 ms (chat p99 ~30 ms), with 1 MiB chat p99 was 7-10 ms,
/// at the same rate.
const WRITE_BACK_BYTES: u64 = 1024 * 1024;

/// Where a part file's early write-back stands ([`WRITE_BACK_BYTES`]).
#[derive(Default)]
struct WriteBack {
    /// The start of the written data not yet handed to write-back.
    from: Option<u64>,
    /// The stretch handed over last, not yet waited for.
    started: Option<(u64, u64)>,
}

impl WriteBack {
    /// Notes that `part` now holds data up to `end` (written in order from `offset`);
    /// starts a stretch once enough is written, and waits for the one before.
    fn written(&mut self, part: &PartFile, offset: u64, end: u64) {
        let from = *self.from.get_or_insert(offset);
        if end.saturating_sub(from) < WRITE_BACK_BYTES {
            return;
        }
        part.start_write_back(from, end - from);
        if let Some((at, len)) = self.started.replace((from, end - from)) {
            part.wait_write_back(at, len);
        }
        self.from = Some(end);
    }
}

/// Work for the verifier, in the order the frames arrived.
#[derive(Debug)]
pub(super) enum Job {
    /// A chunk whose place in the file the link task has checked; its value is not checked
    /// yet.
    Chunk {
        /// Index into the manifest.
        file: u32,
        /// Chunk index.
        index: u64,
        /// Where it goes in the file.
        offset: u64,
        /// The bytes.
        data: Bytes,
        /// Its value, from the file's list checked against its content id.
        want: ChunkCv,
        /// The chunk is its file's only one: its value is a root hash (the content id).
        only: bool,
    },
    /// Every chunk of this file has arrived verified: give it its name.
    FileDone {
        /// Index into the manifest.
        file: u32,
    },
    /// Before the first new chunk of a file resumed mid-way: hash chunks `0 .. chunks` of
    /// its part file against `list`. A mismatch (data lost in a machine crash) cuts the part
    /// back to the first bad chunk and ends the link, so the next session resumes there.
    Recheck {
        /// Index into the manifest.
        file: u32,
        /// Chunks held from earlier sessions.
        chunks: u64,
        /// The file's chunk values, checked against its content id.
        list: ChunkList,
    },
}

/// A job and, for a chunk, its room among the chunks in flight ([`Buffers::chunk_room`]).
struct Queued {
    job: Job,
    permit: Option<OwnedSemaphorePermit>,
}

/// Work for the writer: chunks that matched their value.
#[derive(Debug)]
enum Verified {
    Chunk {
        file: u32,
        index: u64,
        offset: u64,
        data: Bytes,
        permit: Option<OwnedSemaphorePermit>,
    },
    /// Every chunk of the file is verified (in this session or an earlier one).
    FileDone { file: u32 },
    /// See [`Job::Recheck`].
    Recheck {
        file: u32,
        chunks: u64,
        list: ChunkList,
    },
}

/// Work for the durability thread.
enum Durable {
    /// Record that the part file holds its first `verified` chunks (written, not synced).
    Record { file: u32, verified: u64 },
    /// The file is whole and verified: sync, name, record.
    Finish {
        file: u32,
        part: Arc<PartFile>,
        chunks: u64,
    },
}

/// The first error of any thread, and a token that fires with it (or when the verifier
/// ends), so the link task stops reading.
#[derive(Clone, Default)]
struct Errors {
    first: Arc<Mutex<Option<EngineError>>>,
    stopped: CancellationToken,
}

impl Errors {
    fn fail(&self, e: EngineError) {
        self.first
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(e);
        self.stopped.cancel();
    }

    fn failed(&self) -> bool {
        self.first
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    fn take(&self) -> Option<EngineError> {
        self.first
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// The disk side of one receive session.
pub(super) struct Sink {
    tx: mpsc::Sender<Queued>,
    /// Answered when the verifier thread has finished (dropped unanswered if it panicked).
    ended: oneshot::Receiver<()>,
    errors: Errors,
    buffers: Arc<Buffers>,
    /// Counts this session as receiving while it lasts.
    _receiving: Receiving,
}

/// What the disk side needs about the transfer.
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
    /// Starts the threads.
    pub(super) fn start(target: Target) -> Sink {
        let (tx, rx) = mpsc::channel(QUEUE);
        let errors = Errors::default();
        let (end_tx, ended) = oneshot::channel::<()>();
        let buffers = target.t.buffers.clone();
        let receiving = buffers.receiving();
        let e = errors.clone();
        let started = spawn("p2pd-verify", move || {
            let _guard = e.stopped.clone().drop_guard();
            run(target, rx, &e);
            let _ = end_tx.send(());
        });
        if let Err(e) = started {
            errors.fail(e);
        }
        Sink {
            tx,
            ended,
            errors,
            buffers,
            _receiving: receiving,
        }
    }

    /// A buffer for reading the next chunk from the link, if one is free.
    pub(super) fn spare_buffer(&self) -> Option<BytesMut> {
        self.buffers.spare_recv()
    }

    /// Completes when the threads have stopped on their own (an error: see [`Sink::close`]).
    pub(super) async fn stopped(&self) {
        self.errors.stopped.cancelled().await;
    }

    /// Waits for room to read one more chunk from the link whose own room is `own`
    /// ([`Buffers::chunk_room`]); the chunk read with it is pushed with it.
    pub(super) async fn room(&self, own: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
        self.buffers.chunk_room(own).await
    }

    /// Queues a job; a chunk carries the `permit` it was read with, freed once it is
    /// written. `false` when the threads have stopped (see [`Sink::close`] for why).
    pub(super) async fn push(&self, job: Job, permit: Option<OwnedSemaphorePermit>) -> bool {
        self.tx.send(Queued { job, permit }).await.is_ok()
    }

    /// Lets the threads finish what is queued and waits for them: `Ok` when every job was
    /// done and every finished file is synced, named and recorded.
    pub(super) async fn close(self) -> Result<(), EngineError> {
        drop(self.tx);
        if self.ended.await.is_err() {
            self.errors.fail(EngineError::Thread {
                name: "verifier",
                what: "stopped",
            });
        }
        self.errors.take().map_or(Ok(()), Err)
    }
}

/// Runs the verifier here and the writer and durability threads beside it, until the link
/// task closes the queue or a thread fails.
fn run(target: Target, mut rx: mpsc::Receiver<Queued>, errors: &Errors) {
    let rec = target.live.record();
    let id = rec.manifest.id;
    let files = Arc::new(rec.manifest.files);
    let (dtx, drx) = std_mpsc::channel();
    let (wtx, wrx) = std_mpsc::sync_channel(QUEUE);
    // Syncs asked for and not yet recorded: progress is published only when there are
    // none, so a reported byte count past a sync point means that point is on record.
    let pending = Arc::new(AtomicUsize::new(0));
    let threads = {
        let durable = Durability {
            t: target.t.clone(),
            live: target.live.clone(),
            id,
            files: files.clone(),
            pending: pending.clone(),
        };
        let e = errors.clone();
        let durable = spawn("p2pd-sync", move || {
            if let Err(err) = durable.run(&drx) {
                e.fail(err);
            }
        });
        let (f, e) = (files.clone(), errors.clone());
        let writer = spawn("p2pd-write", move || {
            if let Err(err) = write(target, &f, &wrx, &dtx, &pending) {
                e.fail(err);
            }
        });
        durable.and_then(|d| Ok((d, writer?)))
    };
    let (durable, writer) = match threads {
        Ok(t) => t,
        Err(e) => return errors.fail(e),
    };
    let v = Verifier { files: &files };
    while let Some(Queued { job, permit }) = rx.blocking_recv() {
        if errors.failed() {
            break;
        }
        match v.verify(job, permit) {
            Ok(ok) => {
                if wtx.send(ok).is_err() {
                    break;
                }
            }
            Err(e) => {
                errors.fail(e);
                break;
            }
        }
    }
    // Stop taking jobs; let the writer and then the durability thread finish what they were
    // given.
    drop(rx);
    drop(wtx);
    for (name, thread) in [("writer", writer), ("sync", durable)] {
        if thread.join().is_err() {
            errors.fail(EngineError::Thread {
                name,
                what: "stopped",
            });
        }
    }
}

/// The verifier's rule: each chunk against its value. Pure; [`run`] feeds it.
struct Verifier<'a> {
    files: &'a [FileEntry],
}

impl Verifier<'_> {
    /// Checks a job; a chunk carries `permit` on to the writer.
    fn verify(
        &self,
        job: Job,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<Verified, EngineError> {
        match job {
            Job::Chunk {
                file,
                index,
                offset,
                data,
                want,
                only,
            } => {
                let f = entry(self.files, file)?;
                if chunk_cv(index, &data, only).ok() != Some(want) {
                    return Err(EngineError::ChunkHash {
                        path: f.path.to_string(),
                        index,
                    });
                }
                Ok(Verified::Chunk {
                    file,
                    index,
                    offset,
                    data,
                    permit,
                })
            }
            Job::FileDone { file } => {
                entry(self.files, file)?;
                Ok(Verified::FileDone { file })
            }
            Job::Recheck { file, chunks, list } => {
                entry(self.files, file)?;
                Ok(Verified::Recheck { file, chunks, list })
            }
        }
    }
}

fn entry(files: &[FileEntry], file: u32) -> Result<&FileEntry, EngineError> {
    files
        .get(file as usize)
        .ok_or(EngineError::Protocol(Violation::UnknownFile { file }))
}

/// The writer thread: rechecks resumed parts, writes verified chunks, asks for records and
/// for finished files to be named.
fn write(
    target: Target,
    files: &[FileEntry],
    rx: &std_mpsc::Receiver<Verified>,
    durable: &std_mpsc::Sender<Durable>,
    pending: &AtomicUsize,
) -> Result<(), EngineError> {
    let Target {
        t,
        live,
        dir,
        tag,
        mut done_bytes,
    } = target;
    let create_part = |f: &FileEntry| {
        let comps: Vec<&str> = f.path.components().collect();
        dir.create_part(&tag, &comps, f.size)
    };
    let send = |d| {
        durable.send(d).map_err(|_| EngineError::Thread {
            name: "sync",
            what: "stopped",
        })
    };
    let mut open: Option<(u32, Arc<PartFile>)> = None;
    let mut unrecorded = 0;
    let mut write_back = WriteBack::default();
    while let Ok(v) = rx.recv() {
        match v {
            Verified::Chunk {
                file,
                index,
                offset,
                data,
                permit,
            } => {
                let part = match &open {
                    Some((n, p)) if *n == file => p,
                    _ => {
                        unrecorded = 0;
                        write_back = WriteBack::default();
                        let p = Arc::new(create_part(entry(files, file)?)?);
                        &open.insert((file, p)).1
                    }
                };
                part.write_at(offset, &data)?;
                let len = data.len() as u64;
                write_back.written(part, offset, offset + len);
                t.buffers.give_back_recv(data);
                drop(permit);
                unrecorded += len;
                if unrecorded >= RECORD_BYTES {
                    unrecorded = 0;
                    pending.fetch_add(1, Ordering::SeqCst);
                    send(Durable::Record {
                        file,
                        verified: index + 1,
                    })?;
                }
                done_bytes += len;
                live.set_done(done_bytes);
                if pending.load(Ordering::SeqCst) == 0 {
                    t.progress(&live);
                }
            }
            Verified::FileDone { file } => {
                let f = entry(files, file)?;
                let part = match open.take() {
                    Some((n, p)) if n == file => p,
                    _ => Arc::new(create_part(f)?),
                };
                unrecorded = 0;
                send(Durable::Finish {
                    file,
                    part,
                    chunks: f.chunk_count(),
                })?;
            }
            Verified::Recheck { file, chunks, list } => {
                let f = entry(files, file)?;
                unrecorded = 0;
                write_back = WriteBack::default();
                let p = Arc::new(create_part(f)?);
                let part = &open.insert((file, p)).1;
                recheck(part, f, chunks, &list)?;
            }
        }
    }
    Ok(())
}

/// Hashes chunks `0 .. chunks` of `part` against `list`, one chunk buffer at a time. At the
/// first one that does not match (or is missing), cuts the part there and fails with
/// [`EngineError::Recheck`].
fn recheck(
    part: &PartFile,
    f: &FileEntry,
    chunks: u64,
    list: &ChunkList,
) -> Result<(), EngineError> {
    let only = list.cvs().len() == 1;
    let mut buf = Vec::new();
    for (index, want) in (0..chunks).zip(list.cvs()) {
        let Some((offset, len)) = f.chunk_range(index) else {
            break;
        };
        buf.resize(len as usize, 0);
        let read = part.read_at(offset, &mut buf)?;
        if read != buf.len() || chunk_cv(index, &buf, only).ok() != Some(*want) {
            part.set_len(offset)?;
            return Err(EngineError::Recheck {
                path: f.path.to_string(),
                index,
            });
        }
    }
    Ok(())
}

/// The durability thread's view of the transfer.
struct Durability {
    t: Arc<Transfers>,
    live: Arc<Live>,
    id: TransferId,
    files: Arc<Vec<FileEntry>>,
    /// Syncs asked for and not yet recorded.
    pending: Arc<AtomicUsize>,
}

impl Durability {
    /// Records, syncs and names, in the order asked. A record that a later request for the
    /// same file covers is skipped.
    fn run(&self, rx: &std_mpsc::Receiver<Durable>) -> Result<(), EngineError> {
        let mut queue = VecDeque::new();
        while let Ok(first) = rx.recv() {
            queue.push_back(first);
            queue.extend(rx.try_iter());
            while let Some(d) = queue.pop_front() {
                match d {
                    Durable::Record { file, verified } => {
                        let covered = queue.front().is_some_and(|next| match next {
                            Durable::Record { file: f, .. } | Durable::Finish { file: f, .. } => {
                                *f == file
                            }
                        });
                        if !covered {
                            // Not synced: a resume rechecks the part before trusting it.
                            let _ = self
                                .t
                                .records
                                .set_verified_blocking(self.id, file, verified, None);
                        }
                        if self.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
                            self.t.progress(&self.live);
                        }
                    }
                    Durable::Finish { file, part, chunks } => {
                        let f = entry(&self.files, file)?;
                        let part =
                            Arc::try_unwrap(part).map_err(|_| EngineError::StillWriting {
                                path: f.path.to_string(),
                            })?;
                        // Name, record, and only then drop the part name: a crash in
                        // between leaves a link that the resume recognises.
                        let name = part.link_final()?;
                        self.t
                            .records
                            .set_verified_blocking(self.id, file, chunks, Some(name.to_string()))
                            .map_err(|source| EngineError::Record {
                                name: name.to_string(),
                                source: Box::new(source),
                            })?;
                        part.remove()?;
                        self.live.landed(file, name.to_string());
                        info!(target: svc::logging::ACTIVITY, op = "file-received", id = %self.id, file = %name, bytes = f.size, content_id = %f.content_id(), "file verified and in place");
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proto::content::{ChunkCv, ChunkList};
    use proto::transfer::{CHUNK, FileEntry, RelPath};

    use super::{EngineError, Job, Verified, Verifier, recheck};
    use crate::files::Dest;

    fn job(file: u32, index: u64, data: &[u8], want: ChunkCv, only: bool) -> Job {
        Job::Chunk {
            file,
            index,
            offset: index * CHUNK,
            data: Bytes::copy_from_slice(data),
            want,
            only,
        }
    }

    fn verified(r: Result<Verified, EngineError>) -> bool {
        matches!(r, Ok(Verified::Chunk { .. }))
    }

    fn bad_chunk(r: &Result<Verified, EngineError>, name: &str, at: u64) -> bool {
        matches!(r, Err(EngineError::ChunkHash { path, index }) if path == name && *index == at)
    }

    #[test]
    fn each_chunk_is_checked_against_its_value_alone() {
        let data: Vec<u8> = (0..3 * CHUNK + 10).map(|i| (i % 251) as u8).collect();
        let list = ChunkList::of(&data);
        let small = b"one chunk only";
        let files = [
            FileEntry {
                path: RelPath::new("big.bin").expect("path"),
                size: data.len() as u64,
                hash: list.id().0,
            },
            FileEntry {
                path: RelPath::new("small.txt").expect("path"),
                size: small.len() as u64,
                hash: ChunkList::of(small).id().0,
            },
            FileEntry {
                path: RelPath::new("empty").expect("path"),
                size: 0,
                hash: ChunkList::of(b"").id().0,
            },
        ];
        let v = Verifier { files: &files };
        let piece =
            |i: u64| &data[(i * CHUNK) as usize..((i + 1) * CHUNK).min(data.len() as u64) as usize];
        // Every chunk of a file, from its first.
        for i in 0..4 {
            assert!(
                verified(v.verify(job(0, i, piece(i), list.cvs()[i as usize], false), None)),
                "{i}"
            );
        }
        assert!(matches!(
            v.verify(Job::FileDone { file: 0 }, None),
            Ok(Verified::FileDone { file: 0 })
        ));
        // Resumed mid-file: the chunks that are left verify on their own, nothing is read
        // back.
        assert!(verified(
            v.verify(job(0, 3, piece(3), list.cvs()[3], false), None)
        ));
        // One bad chunk: a flipped byte, a chunk at another index (same bytes, other place),
        // a chunk given as a file's only one.
        let mut flipped = piece(1).to_vec();
        flipped[77] ^= 1;
        assert!(bad_chunk(
            &v.verify(job(0, 1, &flipped, list.cvs()[1], false), None),
            "big.bin",
            1
        ));
        assert!(bad_chunk(
            &v.verify(job(0, 2, piece(1), list.cvs()[1], false), None),
            "big.bin",
            2
        ));
        assert!(bad_chunk(
            &v.verify(job(0, 0, piece(0), list.cvs()[0], true), None),
            "big.bin",
            0
        ));
        // A one-chunk file: its chunk is checked by its root hash, the content id.
        let cv = ChunkCv(files[1].hash);
        assert!(verified(v.verify(job(1, 0, small, cv, true), None)));
        assert!(bad_chunk(
            &v.verify(job(1, 0, b"one chunk onlY", cv, true), None),
            "small.txt",
            0
        ));
        assert!(bad_chunk(
            &v.verify(job(1, 0, small, cv, false), None),
            "small.txt",
            0
        ));
        // An empty file has no chunk; the rules checked its id.
        assert!(matches!(
            v.verify(Job::FileDone { file: 2 }, None),
            Ok(Verified::FileDone { file: 2 })
        ));
        // A chunk longer than a chunk can be is refused, not hashed.
        let long = vec![0u8; CHUNK as usize + 1];
        assert!(bad_chunk(
            &v.verify(job(0, 0, &long, list.cvs()[0], false), None),
            "big.bin",
            0
        ));
    }

    #[test]
    fn a_resumed_part_is_trusted_only_up_to_its_first_bad_chunk() {
        let data: Vec<u8> = (0..4 * CHUNK + 7).map(|i| (i % 253) as u8).collect();
        let list = ChunkList::of(&data);
        let f = FileEntry {
            path: RelPath::new("big.bin").expect("path"),
            size: data.len() as u64,
            hash: list.id().0,
        };
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = Dest::open(tmp.path()).expect("dest");
        let part = dir.create_part("t1", &["big.bin"], f.size).expect("part");
        let three = (3 * CHUNK) as usize;
        part.write_at(0, &data[..three]).expect("write");
        // What an earlier session wrote, all there.
        recheck(&part, &f, 3, &list).expect("intact prefix");
        assert_eq!(part.len().expect("len"), 3 * CHUNK);
        // Chunk 1 lost (zeros, as after a machine crash): cut back to it, and refused.
        part.write_at(CHUNK, &vec![0; CHUNK as usize])
            .expect("write");
        let e = recheck(&part, &f, 3, &list).expect_err("lost chunk");
        assert!(
            matches!(&e, EngineError::Recheck { path, index: 1 } if path == "big.bin"),
            "{e:?}"
        );
        assert!(e.link_only(), "the transfer goes on from chunk 1");
        assert_eq!(part.len().expect("len"), CHUNK);
        // A part shorter than the chunks claimed: the first missing chunk is the cut.
        let e = recheck(&part, &f, 2, &list).expect_err("short part");
        assert!(matches!(e, EngineError::Recheck { index: 1, .. }), "{e:?}");
        recheck(&part, &f, 1, &list).expect("one chunk left");
    }
}
