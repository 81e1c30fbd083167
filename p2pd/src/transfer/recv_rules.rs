//! The receiver's rules, as a pure state machine: given the manifest and where each file
//! resumes, it takes each frame the sender sends and says what to do with it (queue a chunk,
//! finish a file, end) or which rule it breaks. No I/O: the link task in `recv.rs` reads,
//! steps the machine, and acts.
//!
//! Before it takes any chunk of a file, the machine gathers the file's whole list of chunk
//! values and checks that it merges into the file's content id (`ChunkList::check`); each
//! chunk then leaves with the value it must hash to, which the verifier (`sink.rs`) checks.
//! A file whose chunks all verified is the file the manifest names: nothing hashes it again.

use proto::api::TransferState;
use proto::content::{ChunkCv, ChunkCvs, ChunkList, ContentId};
use proto::transfer::{CHUNK, FileEntry, FileResume, TransferFrame, TransferId};

use super::sink::Job;

/// A rule of the bulk protocol the sender broke. The transfer fails with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Violation {
    /// A frame names another transfer.
    #[error("frame for another transfer")]
    OtherTransfer,
    /// Chunk values past the last chunk of the file.
    #[error("chunk values past the end of {path}")]
    ValuesPastEnd {
        /// The file.
        path: String,
    },
    /// Chunk values that do not continue the file's list where it stands.
    #[error("chunk values of {path} out of order (from {first}, expected {expected})")]
    ValuesOutOfOrder {
        /// The file.
        path: String,
        /// The first index sent.
        first: u64,
        /// The index expected.
        expected: u64,
    },
    /// A file's chunk values do not merge into its content id (or an empty file whose id is
    /// not that of nothing).
    #[error("the chunk values of {path} do not add up to its content id {id}")]
    ValuesMismatch {
        /// The file.
        path: String,
        /// The content id in the offer.
        id: ContentId,
    },
    /// A chunk for a file index the manifest does not have.
    #[error("chunk for file {file}, which is not in the offer")]
    UnknownChunkFile {
        /// The index sent.
        file: u32,
    },
    /// A `FileDone` or `ChunkCvs` for a file index the manifest does not have.
    #[error("file {file} is not in the offer")]
    UnknownFile {
        /// The index sent.
        file: u32,
    },
    /// A chunk other than the next one expected (an extra chunk after a finished file too).
    #[error("chunk {index} of {path} out of order (expected {expected})")]
    OutOfOrder {
        /// The file.
        path: String,
        /// The chunk sent.
        index: u64,
        /// The chunk expected.
        expected: u64,
    },
    /// A chunk past the last one the announced size has.
    #[error("more data than announced for {path}")]
    PastEnd {
        /// The file.
        path: String,
    },
    /// A chunk longer or shorter than its place in the file.
    #[error("chunk {index} of {path} has {len} bytes, {announced} announced")]
    WrongLength {
        /// The file.
        path: String,
        /// The chunk.
        index: u64,
        /// Bytes sent.
        len: u64,
        /// Bytes its place holds.
        announced: u64,
    },
    /// A chunk that arrived before its file's whole list of chunk values.
    #[error("chunk {index} of {path} arrived before its file's chunk values")]
    NoHash {
        /// The file.
        path: String,
        /// The chunk.
        index: u64,
    },
    /// `FileDone` before every chunk of the file.
    #[error("{path}: fewer bytes than announced")]
    EarlyFileDone {
        /// The file.
        path: String,
    },
    /// `Done` before every file was done.
    #[error("the sender finished before every file arrived")]
    EarlyDone,
    /// A frame only a receiver sends, or only sent before the data.
    #[error("unexpected frame during the transfer")]
    Unexpected,
}

/// What to do with a frame.
#[derive(Debug)]
pub(super) enum Step {
    /// Nothing (chunk values kept for the chunks that follow, a repeated `FileDone`).
    Ignore,
    /// Hand this to the verifier.
    Queue(Job),
    /// Every file arrived: once the disk side has finished, the transfer is done.
    Done,
    /// The sender ended the transfer (`Cancelled` or `Failed`) with this reason.
    Ended(TransferState, String),
}

/// Where one file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileState {
    /// The next chunk expected.
    next: u64,
    /// Every chunk arrived and `FileDone` was queued (or it was finished before).
    finished: bool,
    /// Chunks `0 .. next` were held from an earlier session and are not checked yet: once the
    /// file's list of values is whole, the part file's prefix is hashed against it.
    recheck: bool,
}

/// The chunk values of the file being received.
#[derive(Debug)]
struct Values {
    /// The file they are for.
    file: u32,
    /// The values of chunks `0 .. got.len()`, gathered until the list is whole.
    got: Vec<ChunkCv>,
    /// The whole list, once it checked against the content id.
    list: Option<ChunkList>,
}

/// The receiver's view of one link session.
#[derive(Debug)]
pub(super) struct Receiver<'m> {
    id: TransferId,
    files: &'m [FileEntry],
    state: Vec<FileState>,
    /// The chunk values of the file being received (one file at a time).
    values: Option<Values>,
}

impl<'m> Receiver<'m> {
    /// A session of transfer `id` whose files resume where `held` says: per file, the chunks
    /// verified on disk and whether it is finished (missing entries: from the start).
    pub(super) fn new(
        id: TransferId,
        files: &'m [FileEntry],
        held: &[(u64, bool)],
    ) -> Receiver<'m> {
        let state = files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let count = f.chunk_count();
                let (verified, finished) = held.get(i).copied().unwrap_or((0, false));
                let next = if finished { count } else { verified.min(count) };
                FileState {
                    next,
                    finished,
                    recheck: !finished && next > 0,
                }
            })
            .collect();
        Receiver {
            id,
            files,
            state,
            values: None,
        }
    }

    /// What to tell the sender in `Accept`: the verified chunks of every file.
    pub(super) fn resume(&self) -> Vec<FileResume> {
        (0u32..)
            .zip(&self.state)
            .map(|(file, s)| FileResume {
                file,
                verified_chunks: s.next,
            })
            .collect()
    }

    /// Bytes already held, verified.
    pub(super) fn done_bytes(&self) -> u64 {
        self.files
            .iter()
            .zip(&self.state)
            .map(|(f, s)| s.next.saturating_mul(CHUNK).min(f.size))
            .sum()
    }

    /// Every file arrived.
    pub(super) fn complete(&self) -> bool {
        self.state.iter().all(|s| s.finished)
    }

    /// Takes the next frame from the sender.
    pub(super) fn step(&mut self, frame: TransferFrame) -> Result<Step, Violation> {
        if frame.id() != self.id {
            return Err(Violation::OtherTransfer);
        }
        match frame {
            TransferFrame::ChunkCvs { file, run, .. } => {
                Ok(self.values(file, run)?.map_or(Step::Ignore, Step::Queue))
            }
            TransferFrame::Chunk {
                file, index, data, ..
            } => {
                let f = self
                    .files
                    .get(file as usize)
                    .ok_or(Violation::UnknownChunkFile { file })?;
                let path = || f.path.to_string();
                let s = &mut self.state[file as usize];
                if s.finished || index != s.next {
                    return Err(Violation::OutOfOrder {
                        path: path(),
                        index,
                        expected: s.next,
                    });
                }
                let (offset, len) = f
                    .chunk_range(index)
                    .ok_or_else(|| Violation::PastEnd { path: path() })?;
                if data.len() as u64 != len {
                    return Err(Violation::WrongLength {
                        path: path(),
                        index,
                        len: data.len() as u64,
                        announced: len,
                    });
                }
                let (want, only) = match &self.values {
                    Some(Values {
                        file: n,
                        list: Some(list),
                        ..
                    }) if *n == file => usize::try_from(index)
                        .ok()
                        .and_then(|k| list.cvs().get(k))
                        .map(|cv| (*cv, list.cvs().len() == 1)),
                    _ => None,
                }
                .ok_or_else(|| Violation::NoHash {
                    path: path(),
                    index,
                })?;
                s.next += 1;
                Ok(Step::Queue(Job::Chunk {
                    file,
                    index,
                    offset,
                    data,
                    want,
                    only,
                }))
            }
            TransferFrame::FileDone { file, .. } => {
                let f = self
                    .files
                    .get(file as usize)
                    .ok_or(Violation::UnknownFile { file })?;
                let s = &mut self.state[file as usize];
                if s.finished {
                    return Ok(Step::Ignore);
                }
                if s.next != f.chunk_count() {
                    return Err(Violation::EarlyFileDone {
                        path: f.path.to_string(),
                    });
                }
                // An empty file has no chunk to verify: its id must be that of nothing.
                if f.size == 0 && f.content_id() != ContentId::EMPTY {
                    return Err(Violation::ValuesMismatch {
                        path: f.path.to_string(),
                        id: f.content_id(),
                    });
                }
                if self.values.as_ref().is_some_and(|v| v.file == file) {
                    self.values = None;
                }
                s.finished = true;
                Ok(Step::Queue(Job::FileDone { file }))
            }
            TransferFrame::Done { .. } if self.complete() => Ok(Step::Done),
            TransferFrame::Done { .. } => Err(Violation::EarlyDone),
            TransferFrame::Cancel { reason, .. } => {
                Ok(Step::Ended(TransferState::Cancelled, reason))
            }
            TransferFrame::Failed { reason, .. } => Ok(Step::Ended(TransferState::Failed, reason)),
            TransferFrame::Offer(_)
            | TransferFrame::Accept { .. }
            | TransferFrame::Decline { .. } => Err(Violation::Unexpected),
        }
    }
}

impl Receiver<'_> {
    /// Takes a run of chunk values of `file`: runs start a file's list at chunk 0 and
    /// continue it in order; the list, once whole, must merge into the content id. A file's
    /// list replaces the one of the file before. When the list of a file resumed mid-way is
    /// whole, returns the check of the part file's prefix against it.
    fn values(&mut self, file: u32, run: ChunkCvs) -> Result<Option<Job>, Violation> {
        let f = self
            .files
            .get(file as usize)
            .ok_or(Violation::UnknownFile { file })?;
        let path = || f.path.to_string();
        if !run.fits(f.size) {
            return Err(Violation::ValuesPastEnd { path: path() });
        }
        let v = match &mut self.values {
            Some(v) if v.file == file && v.list.is_none() => v,
            // A new list (of this file again, on a re-send, or of the next file).
            _ => self.values.insert(Values {
                file,
                got: Vec::new(),
                list: None,
            }),
        };
        let expected = v.got.len() as u64;
        if run.first != expected {
            return Err(Violation::ValuesOutOfOrder {
                path: path(),
                first: run.first,
                expected,
            });
        }
        v.got.extend(run.cvs);
        if v.got.len() as u64 == f.chunk_count() {
            let got = std::mem::take(&mut v.got);
            let list = ChunkList::new(f.content_id(), f.size, got).map_err(|_| {
                Violation::ValuesMismatch {
                    path: path(),
                    id: f.content_id(),
                }
            })?;
            let s = &mut self.state[file as usize];
            let recheck = s.recheck.then(|| Job::Recheck {
                file,
                chunks: s.next,
                list: list.clone(),
            });
            s.recheck = false;
            v.list = Some(list);
            return Ok(recheck);
        }
        Ok(None)
    }
}

#[cfg(test)]
#[path = "recv_rules_tests.rs"]
mod tests;
