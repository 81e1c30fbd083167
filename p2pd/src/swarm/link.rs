//! One source's share link during a multi-source download: a writer task sends the
//! scheduler's `GetChunk` and `Cancel` requests as they come (pipelined, each under its own
//! request id), a reader task hands every answer back to the driver. Neither verifies
//! anything: the driver checks each chunk against its value before it is written.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use proto::share::{
    ContentId, ErrorKind, Request, RequestFrame, RequestId, Response, ResponseFrame,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::scheduler::SourceId;
use crate::link::LinkConn;

/// What the driver tells a source's link.
#[derive(Debug, Clone, Copy)]
pub enum ToSource {
    /// Ask for this chunk.
    Get(u64),
    /// Stop serving this chunk.
    Cancel(u64),
}

/// What a source's link tells the driver.
#[derive(Debug)]
pub enum FromSource {
    /// A chunk as it came, not yet verified.
    Chunk {
        /// The source.
        source: SourceId,
        /// The chunk's index.
        index: u64,
        /// Its bytes.
        data: Bytes,
    },
    /// The source could not give this chunk (not found, busy, refused).
    Miss {
        /// The source.
        source: SourceId,
        /// The chunk's index.
        index: u64,
        /// It answered the content is not there for us (`NotFound` or `Denied`): what a
        /// peer that no longer lets us read it says, as well as one that lost the content.
        refused: bool,
    },
    /// The link ended.
    Gone {
        /// The source.
        source: SourceId,
        /// Why.
        why: String,
    },
}

/// Request ids of the chunks asked for and not answered yet.
#[derive(Default)]
struct Asked {
    by_id: HashMap<RequestId, u64>,
    by_chunk: HashMap<u64, RequestId>,
}

/// Starts the two tasks of `source`'s link `conn` in `tasks`, asking for chunks of `id`.
/// They end when `rx` closes (the driver dropped the source) or the link does.
pub fn spawn(
    source: SourceId,
    conn: LinkConn,
    next_id: u64,
    id: ContentId,
    mut rx: mpsc::UnboundedReceiver<ToSource>,
    tx: mpsc::UnboundedSender<FromSource>,
    tasks: &mut JoinSet<()>,
) {
    let (mut read, mut write) = conn.split();
    let asked = Arc::new(Mutex::new(Asked::default()));
    let asked_w = asked.clone();
    let gone_tx = tx.clone();
    tasks.spawn(async move {
        let mut next = next_id;
        while let Some(cmd) = rx.recv().await {
            let request = {
                let mut a = asked_w.lock().unwrap_or_else(PoisonError::into_inner);
                match cmd {
                    ToSource::Get(index) => {
                        let rid = RequestId(next);
                        next += 1;
                        a.by_id.insert(rid, index);
                        a.by_chunk.insert(index, rid);
                        RequestFrame {
                            id: rid,
                            request: Request::GetChunk { id, index },
                        }
                    }
                    ToSource::Cancel(index) => {
                        let Some(rid) = a.by_chunk.remove(&index) else {
                            continue;
                        };
                        a.by_id.remove(&rid);
                        let cid = RequestId(next);
                        next += 1;
                        RequestFrame {
                            id: cid,
                            request: Request::Cancel { request: rid },
                        }
                    }
                }
            };
            if let Err(e) = write.send(&request).await {
                let _ = gone_tx.send(FromSource::Gone {
                    source,
                    why: e.to_string(),
                });
                return;
            }
        }
        let _ = write.shutdown().await;
    });
    tasks.spawn(async move {
        loop {
            let frame = match read.read::<ResponseFrame>().await {
                Ok(Some(f)) => f,
                Ok(None) => {
                    let why = "the share link was closed".to_owned();
                    let _ = tx.send(FromSource::Gone { source, why });
                    return;
                }
                Err(e) => {
                    let why = e.to_string();
                    let _ = tx.send(FromSource::Gone { source, why });
                    return;
                }
            };
            let chunk = {
                let mut a = asked.lock().unwrap_or_else(PoisonError::into_inner);
                let chunk = a.by_id.remove(&frame.id);
                if let Some(c) = chunk {
                    a.by_chunk.remove(&c);
                }
                chunk
            };
            // Answers to cancels, and to requests cancelled since, are of no use.
            let Some(chunk) = chunk else { continue };
            let msg = match frame.response {
                Response::Chunk {
                    id: got,
                    index,
                    data,
                } if got == id && index == chunk => FromSource::Chunk {
                    source,
                    index,
                    data,
                },
                Response::Error(e) => FromSource::Miss {
                    source,
                    index: chunk,
                    refused: matches!(e.kind, ErrorKind::NotFound | ErrorKind::Denied),
                },
                _ => FromSource::Miss {
                    source,
                    index: chunk,
                    refused: false,
                },
            };
            if tx.send(msg).is_err() {
                return;
            }
        }
    });
}
