//! Why a transfer's link session stopped: one enum for the engine (the sender's link and
//! source, the receiver's link, rules and disk), with the context in its fields. Whether a
//! failure ends the transfer or only the link is decided here, once.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use proto::frame::FrameError;
use transport::ConnError;

use super::recv_rules::Violation;
use crate::files::FilesError;
use crate::link::LinkError;
use crate::store::StoreError;

/// A failure of the transfer engine.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EngineError {
    /// Writing or naming a received file failed (a full disk stays [`FilesError::DiskFull`]).
    #[error(transparent)]
    Disk(#[from] FilesError),
    /// An offer of directories alone (no file) whose directories could not all be made.
    #[error("{dirs} of the directories could not be made: {list}")]
    DirsNotMade {
        /// How many could not be made.
        dirs: usize,
        /// Each, with why.
        list: String,
    },
    /// The receiver's destination has no room for the offer.
    #[error(
        "not enough free space in {}: {need} needed (plus a {} MiB reserve), {available} available",
        dest.display(),
        reserve >> 20
    )]
    NoSpace {
        /// The destination directory.
        dest: PathBuf,
        /// Bytes the offer needs.
        need: u64,
        /// Bytes kept free beyond it.
        reserve: u64,
        /// Bytes free on its disk.
        available: u64,
    },
    /// The link broke (I/O, or a frame cut short by a closed connection).
    #[error(transparent)]
    Link(ConnError),
    /// No link could be made to the peer.
    #[error(transparent)]
    Dial(#[from] LinkError),
    /// The other side closed the link.
    #[error("the {peer} closed the link")]
    Closed {
        /// "sender" or "receiver".
        peer: &'static str,
    },
    /// The other side moved nothing for too long.
    #[error("{what} for {after:?}")]
    Stalled {
        /// What did not happen ("no data from the sender", "the receiver took no data").
        what: &'static str,
        /// How long it was waited for.
        after: Duration,
    },
    /// A resumed part file no longer holds what an earlier session wrote (lost in a machine
    /// crash): it was cut back to the first bad chunk, and the next link resumes there.
    #[error("chunk {index} of {path} was lost since it was written: resuming from there")]
    Recheck {
        /// The file.
        path: String,
        /// The first chunk that did not match.
        index: u64,
    },
    /// A newer link of the same transfer took over.
    #[error("a newer link took over this transfer")]
    Superseded,
    /// The daemon is stopping.
    #[error("the daemon is stopping")]
    Stopping,
    /// The receiver holds too many of our links now; offer again later.
    #[error("{0}")]
    Busy(String),
    /// The peer sent a frame that does not decode.
    #[error("bad frame from the {peer}: {source}")]
    BadFrame {
        /// "sender" or "receiver".
        peer: &'static str,
        /// The decoding error.
        #[source]
        source: ConnError,
    },
    /// A frame could not be encoded.
    #[error("cannot encode a frame: {0}")]
    Encode(#[from] FrameError),
    /// The peer broke a rule of the bulk protocol.
    #[error(transparent)]
    Protocol(#[from] Violation),
    /// The receiver answered the offer with a frame that has no place there.
    #[error("unexpected {what} frame before Accept")]
    Unexpected {
        /// The frame's kind.
        what: &'static str,
    },
    /// A chunk does not match its chunk value.
    #[error("chunk {index} of {path} failed verification")]
    ChunkHash {
        /// The file's manifest path.
        path: String,
        /// The chunk.
        index: u64,
    },
    /// A verified file could not be recorded.
    #[error("cannot record {name} as received: {source}")]
    Record {
        /// The file's final name.
        name: String,
        /// The cause.
        #[source]
        source: Box<StoreError>,
    },
    /// The offer could not be read back from the store.
    #[error("cannot read the offer back: {0}")]
    Offer(#[source] Box<super::TransferError>),
    /// A file to send cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Source {
        /// The file, as shared.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A file to send was replaced by a symlink (or sits under one) since it was scanned.
    #[error("{} is now a symlink (or under one) and is not followed", path.display())]
    Symlink {
        /// The file, as shared.
        path: PathBuf,
    },
    /// A file to send no longer has the size it had when it was scanned.
    #[error("{} changed since it was scanned: {now} bytes, {scanned} offered", path.display())]
    Changed {
        /// The file, as shared.
        path: PathBuf,
        /// Its size in the manifest.
        scanned: u64,
        /// Its size now.
        now: u64,
    },
    /// A file to send has other bytes than when it was scanned (its modification time moved
    /// and a chunk no longer matches its value).
    #[error("{} changed since it was scanned: chunk {index} differs", path.display())]
    Modified {
        /// The file, as shared.
        path: PathBuf,
        /// The first chunk found changed.
        index: u64,
    },
    /// The transfer's stored manifest has no chunk values (made by an older p2pd).
    #[error("made by an older p2pd; send it again")]
    NoValues,
    /// A worker thread could not start or stopped early.
    #[error("the {name} thread {what}")]
    Thread {
        /// The thread's role.
        name: &'static str,
        /// What happened to it.
        what: &'static str,
    },
    /// A worker thread could not be started.
    #[error("cannot start a {name} thread: {source}")]
    Spawn {
        /// The thread's name.
        name: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A part file was still held by the writer when it was to be named.
    #[error("{path} is still being written")]
    StillWriting {
        /// The file's manifest path.
        path: String,
    },
    /// The manifest holds more files than an index can name.
    #[error("too many files")]
    TooManyFiles,
}

impl EngineError {
    /// A connection error read from the `peer`: a broken link (the transfer resumes on the
    /// next) or, for anything else, bad data.
    pub(crate) fn from_read(peer: &'static str, e: ConnError) -> EngineError {
        match e {
            ConnError::Io(_) | ConnError::Frame(FrameError::Truncated { .. }) => {
                EngineError::Link(e)
            }
            source => EngineError::BadFrame { peer, source },
        }
    }

    /// Only the link ended: what was verified is kept, and the transfer resumes on the next
    /// link. Everything else ends the transfer.
    pub(crate) fn link_only(&self) -> bool {
        matches!(
            self,
            EngineError::Link(_)
                | EngineError::Dial(_)
                | EngineError::Closed { .. }
                | EngineError::Stalled { .. }
                | EngineError::Recheck { .. }
                | EngineError::Superseded
                | EngineError::Stopping
                | EngineError::Busy(_)
                | EngineError::Unexpected { .. }
        )
    }

    /// The sender's own files are the cause: no new link helps, the transfer fails.
    pub(crate) fn is_local_source(&self) -> bool {
        matches!(
            self,
            EngineError::Source { .. }
                | EngineError::Symlink { .. }
                | EngineError::Changed { .. }
                | EngineError::Modified { .. }
                | EngineError::NoValues
        )
    }

    /// The disk is full (the reason users see says so).
    pub(crate) fn is_disk_full(&self) -> bool {
        matches!(self, EngineError::Disk(e) if e.is_disk_full())
    }
}
