//! The sending side: wait for the peer, dial a bulk link, offer, then stream every chunk not
//! yet verified at the receiver, each preceded by its hash, until the receiver says `Done`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proto::api::{Event, TransferState};
use proto::frame;
use proto::peer::ALPN_BULK;
use proto::transfer::{
    BULK_LINKS_BUSY, MAX_CHUNK_FRAME, OFFER_EXPIRED, TransferFrame, chunk_frame_head,
};
use tokio::io::AsyncWrite;
use tracing::warn;
use transport::FramedConn;

use super::live::Live;
use super::source::{Piece, Plan, Source};
use super::{SessionLog, Transfers};
use crate::backoff::{Backoff, random_unit};

/// A session that lasted this long shows the link works: the next one is dialed soon.
const LINK_WORKED: Duration = Duration::from_secs(5);

/// How a session ended, when it ended the transfer.
enum End {
    Done,
    Declined(String),
    Cancelled(String),
    Failed(String),
    Expired,
}

/// Runs an outgoing transfer until it ends, across link drops and peer absences.
pub(super) async fn run(t: Arc<Transfers>, live: Arc<Live>) {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let mut events = t.node.subscribe();
    loop {
        if live.state().is_final() {
            return;
        }
        let rec = live.record();
        // Online, or pinned with an address from the book.
        let Some(peer) = t.node.dialable(rec.peer) else {
            // Wait for the peer to come online.
            tokio::select! {
                () = live.cancel.cancelled() => return,
                ev = events.recv() => {
                    if let Err(tokio::sync::broadcast::error::RecvError::Closed) = ev { return }
                    continue;
                }
            }
        };
        let before = live.info().done_bytes;
        let began = tokio::time::Instant::now();
        let result = session(&t, &live, &peer).await;
        match result {
            Ok(Some(end)) => {
                let (state, err) = match end {
                    End::Done => (TransferState::Done, None),
                    End::Declined(r) => (TransferState::Declined, Some(r)),
                    End::Cancelled(r) => (TransferState::Cancelled, Some(r)),
                    End::Failed(r) => (TransferState::Failed, Some(r)),
                    End::Expired => (TransferState::Expired, Some(OFFER_EXPIRED.to_owned())),
                };
                t.set_state(&live, state, None, err);
                return;
            }
            Ok(None) => return,
            Err(e) => {
                warn!(id = %live.id(), peer = %peer.name, "transfer link: {e}");
                if live.info().done_bytes > before || began.elapsed() >= LINK_WORKED {
                    // The session moved data, or the receiver held it a while (until its
                    // decision deadline, say): the link works, retry soon. Either bounds the
                    // pace of re-dials.
                    backoff.reset();
                }
                let delay = backoff.next_delay(random_unit());
                tokio::select! {
                    () = live.cancel.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// One link: offer, then stream. `Ok(None)`: cancelled here (already recorded), or the
/// daemon is stopping (the transfer resumes when it is back).
async fn session(
    t: &Arc<Transfers>,
    live: &Arc<Live>,
    peer: &proto::api::PeerInfo,
) -> Result<Option<End>, String> {
    let mut conn = t
        .dialer
        .dial(ALPN_BULK, peer)
        .await
        .map_err(|e| e.to_string())?;
    conn.set_limits(MAX_CHUNK_FRAME, MAX_CHUNK_FRAME);
    let rec = live.record();
    let id = rec.manifest.id;
    conn.send(&TransferFrame::Offer(rec.manifest.clone()))
        .await
        .map_err(|e| e.to_string())?;
    if rec.state == TransferState::Queued {
        t.set_state(live, TransferState::Offered, None, None);
    }
    let reply = tokio::select! {
        () = live.cancel.cancelled() => {
            if live.cancelled_here() {
                let _ = conn.send(&TransferFrame::Cancel { id, reason: "cancelled by the sender".into() }).await;
            }
            return Ok(None);
        }
        r = conn.read::<TransferFrame>() => r.map_err(|e| e.to_string())?,
    };
    let resume = match reply {
        Some(TransferFrame::Accept { resume, .. }) => resume,
        Some(TransferFrame::Decline { reason, .. }) if reason == OFFER_EXPIRED => {
            return Ok(Some(End::Expired));
        }
        Some(TransferFrame::Decline { reason, .. }) => return Ok(Some(End::Declined(reason))),
        Some(TransferFrame::Cancel { reason, .. }) => return Ok(Some(End::Cancelled(reason))),
        // The receiver holds too many of our links now: not an end, offer again later.
        Some(TransferFrame::Failed { reason, .. }) if reason == BULK_LINKS_BUSY => {
            return Err(reason);
        }
        Some(TransferFrame::Failed { reason, .. }) => return Ok(Some(End::Failed(reason))),
        Some(TransferFrame::Done { .. }) => return Ok(Some(End::Done)),
        Some(other) => return Err(format!("unexpected {:?} before Accept", other.id())),
        None => return Err("the receiver closed the link".into()),
    };
    if live.state() != TransferState::Running {
        t.set_state(live, TransferState::Running, None, None);
    }
    let base = rec
        .local_path
        .as_deref()
        .map(Path::new)
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let (mut reader, writer) = conn.split();
    let t2 = t.clone();
    let live2 = live.clone();
    let mut writer_task =
        Box::pin(async move { stream(&t2, &live2, &base, &resume, writer).await });
    let verdict = async {
        loop {
            match reader
                .read::<TransferFrame>()
                .await
                .map_err(|e| e.to_string())?
            {
                Some(TransferFrame::Done { .. }) => return Ok(End::Done),
                Some(TransferFrame::Cancel { reason, .. }) => return Ok(End::Cancelled(reason)),
                Some(TransferFrame::Failed { reason, .. }) => return Ok(End::Failed(reason)),
                Some(TransferFrame::Decline { reason, .. }) => return Ok(End::Declined(reason)),
                Some(_) => {}
                None => return Err::<End, String>("the receiver closed the link".into()),
            }
        }
    };
    tokio::pin!(verdict);
    tokio::select! {
        w = &mut writer_task => {
            match w {
                Ok(Some(_writer)) => {}
                Ok(None) => return Ok(None),
                Err(e) => {
                    // The receiver may have said why before it closed: read its last word.
                    return match tokio::time::timeout(Duration::from_secs(1), &mut verdict).await {
                        Ok(Ok(v)) => Ok(Some(v)),
                        _ => Err(e),
                    };
                }
            }
            tokio::select! {
                v = &mut verdict => v.map(Some),
                () = live.cancel.cancelled() => Ok(None),
            }
        }
        v = &mut verdict => v.map(Some),
    }
}

/// Sends every chunk the receiver lacks, then `FileDone`s and `Done`. Returns the writer,
/// or `None` if the transfer was cancelled here (the receiver was told) or the daemon is
/// stopping.
async fn stream<W: AsyncWrite + Unpin>(
    t: &Transfers,
    live: &Live,
    base: &Path,
    resume: &[proto::transfer::FileResume],
    mut w: FramedConn<W>,
) -> Result<Option<FramedConn<W>>, String> {
    let rec = live.record();
    let id = rec.manifest.id;
    let start_of = |i: u32| {
        resume
            .iter()
            .find(|r| r.file == i)
            .map_or(0, |r| r.verified_chunks)
    };
    let mut done: u64 = rec
        .manifest
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| (start_of(i as u32) * proto::transfer::CHUNK).min(f.size))
        .sum();
    live.set_done(done);
    let _session = SessionLog::start(live, done);
    let mut plan = Vec::with_capacity(rec.manifest.files.len());
    for (i, f) in rec.manifest.files.iter().enumerate() {
        let file = u32::try_from(i).map_err(|_| "too many files".to_string())?;
        plan.push(Plan {
            file,
            path: base.join(f.path.as_str()),
            size: f.size,
            start: start_of(file),
        });
    }
    let mut source = Source::start(plan)?;
    // A receiver that stops reading ends the link, not the transfer: it resumes on the next.
    let limit = t.limits.progress_timeout;
    let stuck = || format!("the receiver took no data for {limit:?}");
    while let Some(piece) = source.next().await {
        if live.cancel.is_cancelled() {
            // A stopping daemon leaves the transfer to resume; only a cancel here ends it.
            if live.cancelled_here() {
                let _ = w
                    .send(&TransferFrame::Cancel {
                        id,
                        reason: "cancelled by the sender".into(),
                    })
                    .await;
            }
            return Ok(None);
        }
        match piece? {
            Piece::Chunk {
                file,
                index,
                data,
                hash,
            } => {
                // The hash, then the chunk whose data goes out from the read buffer, in one
                // flush.
                let mut head = frame::encode(
                    &TransferFrame::ChunkHashes {
                        id,
                        file,
                        first: index,
                        hashes: vec![hash],
                    },
                    MAX_CHUNK_FRAME,
                )
                .map_err(|e| e.to_string())?;
                head.extend(
                    chunk_frame_head(id, file, index, data.len(), MAX_CHUNK_FRAME)
                        .map_err(|e| e.to_string())?,
                );
                tokio::time::timeout(limit, w.send_parts(&[&head, &data]))
                    .await
                    .map_err(|_| stuck())?
                    .map_err(|e| e.to_string())?;
                done += data.len() as u64;
                source.recycle(data);
                live.set_done(done);
                t.progress(live);
            }
            Piece::FileDone(file) => {
                tokio::time::timeout(limit, w.send(&TransferFrame::FileDone { id, file }))
                    .await
                    .map_err(|_| stuck())?
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    tokio::time::timeout(limit, w.send(&TransferFrame::Done { id }))
        .await
        .map_err(|_| stuck())?
        .map_err(|e| e.to_string())?;
    t.node.publish([Event::TransferProgress {
        transfer: live.info(),
    }]);
    Ok(Some(w))
}
