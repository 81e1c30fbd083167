//! The receiver's rules, as a pure state machine: given the manifest and where each file
//! resumes, it takes each frame the sender sends and says what to do with it (queue a chunk,
//! finish a file, end) or which rule it breaks. No I/O: the link task in `recv.rs` reads,
//! steps the machine, and acts; the chunk and whole-file hashes are checked by the verifier
//! (`sink.rs`).

use proto::api::TransferState;
use proto::transfer::{CHUNK, FileEntry, FileResume, TransferFrame, TransferId};

use super::sink::Job;

/// A rule of the bulk protocol the sender broke. The transfer fails with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Violation {
    /// A frame names another transfer.
    #[error("frame for another transfer")]
    OtherTransfer,
    /// `ChunkHashes` whose indexes pass the end of `u64`.
    #[error("chunk hashes past the last possible chunk")]
    HashIndexOverflow,
    /// A chunk for a file index the manifest does not have.
    #[error("chunk for file {file}, which is not in the offer")]
    UnknownChunkFile {
        /// The index sent.
        file: u32,
    },
    /// A `FileDone` or `ChunkHashes` for a file index the manifest does not have.
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
    /// A chunk whose hash was not sent before it.
    #[error("chunk {index} of {path} arrived without its hash")]
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
    /// Nothing (hashes kept for the chunks that follow, a repeated `FileDone`).
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
}

/// The hashes of one `ChunkHashes` frame.
#[derive(Debug)]
struct Hashes {
    /// The file they are for.
    file: u32,
    /// The chunk the first hash is for; the last one's index fits in a `u64`.
    first: u64,
    /// One hash per chunk from `first` on.
    hashes: Vec<[u8; 32]>,
}

/// The receiver's view of one link session.
#[derive(Debug)]
pub(super) struct Receiver<'m> {
    id: TransferId,
    files: &'m [FileEntry],
    state: Vec<FileState>,
    /// The hashes of the latest `ChunkHashes`.
    hashes: Option<Hashes>,
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
                FileState {
                    next: if finished { count } else { verified.min(count) },
                    finished,
                }
            })
            .collect();
        Receiver {
            id,
            files,
            state,
            hashes: None,
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
            TransferFrame::ChunkHashes {
                file,
                first,
                hashes,
                ..
            } => {
                let more = (hashes.len() as u64).saturating_sub(1);
                if first.checked_add(more).is_none() {
                    return Err(Violation::HashIndexOverflow);
                }
                if self.files.get(file as usize).is_none() {
                    return Err(Violation::UnknownFile { file });
                }
                self.hashes = Some(Hashes {
                    file,
                    first,
                    hashes,
                });
                Ok(Step::Ignore)
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
                let want = match &self.hashes {
                    Some(h) if h.file == file => index
                        .checked_sub(h.first)
                        .and_then(|k| usize::try_from(k).ok())
                        .and_then(|k| h.hashes.get(k))
                        .copied(),
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

#[cfg(test)]
#[path = "recv_rules_tests.rs"]
mod tests;
