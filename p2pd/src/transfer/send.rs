//! The sending side: wait for the peer, dial a bulk link, offer, then stream every chunk not
//! yet verified at the receiver, each file's chunks preceded by the file's whole list of
//! chunk values (from the scan), until the receiver says `Done`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proto::api::{Event, TransferState};
use proto::content::ChunkCvs;
use proto::frame;
use proto::peer::{ALPN_BULK, ALPN_BULK_V2};
use proto::transfer::{MAX_CHUNK_FRAME, TransferFrame, chunk_frame_head};
use tokio::io::AsyncWrite;
use tracing::{info, warn};
use transport::FramedConn;

use super::error::EngineError;
use super::live::Live;
use super::send_rules::{
    End, OfferReply, dirs_need_v3, is_too_old, on_offer_reply, on_offer_unsent, on_verdict, starts,
    too_old,
};
use super::source::{Piece, Plan, Source};
use super::{SessionLog, Transfers};
use crate::backoff::{Backoff, random_unit};

/// A session that lasted this long shows the link works: the next one is dialed soon.
const LINK_WORKED: Duration = Duration::from_secs(5);

/// What the receiver is told of a cancel made here: the reason recorded with it (a pull
/// whose right was revoked), else a cancel by the user.
fn cancel_reason(live: &Live) -> String {
    let rec = live.record();
    match rec.error {
        Some(reason) if rec.state == TransferState::Cancelled => reason,
        _ => "cancelled by the sender".into(),
    }
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
        // Online, or pinned with an address from the book, or pinned with none when the DHT
        // can look it up (the backoff below paces those dials).
        let Some(peer) = t.node.dial_target(rec.peer, t.dialer.looks_up()) else {
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
                let (state, err) = end.outcome();
                t.set_state(&live, state, None, err).await;
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
) -> Result<Option<End>, EngineError> {
    let mut conn = match t.dialer.dial_any(&[ALPN_BULK, ALPN_BULK_V2], peer).await {
        Ok(c) => c,
        // No link will help until the peer upgrades: the transfer fails saying so.
        Err(e) if is_too_old(&e) => return Ok(Some(End::Failed(too_old(peer.name.as_str())))),
        Err(e) => return Err(e.into()),
    };
    conn.set_limits(MAX_CHUNK_FRAME, MAX_CHUNK_FRAME);
    let rec = live.record();
    let id = rec.manifest.id;
    let mut offer = rec.manifest.clone();
    if crate::link::alpn(&conn) != Some(ALPN_BULK) && offer.files.is_empty() {
        // Without its directories the offer would hold nothing: no link to this peer helps.
        let _ = conn.shutdown().await;
        return Ok(Some(End::Failed(dirs_need_v3(peer.name.as_str()))));
    }
    if crate::link::alpn(&conn) != Some(ALPN_BULK) && !offer.dirs.is_empty() {
        // A receiver of p2p-bulk/2 reads no directories: the files go without them.
        let dirs = std::mem::take(&mut offer.dirs).len();
        if live.note_dirs_left_out(dirs) {
            warn!(%id, peer = %peer.name, "p2pd on {} speaks p2p-bulk/2: {dirs} empty directories left out", peer.name);
            info!(target: svc::logging::ACTIVITY, op = "dirs-left-out", peer = %peer.name, id = %id, dirs, "empty directories left out: the receiving p2pd is older (p2p-bulk/2)");
        }
    }
    if let Err(e) = conn.send(&TransferFrame::Offer(offer)).await {
        return on_offer_unsent(e).map(Some);
    }
    if rec.state == TransferState::Queued {
        t.set_state(live, TransferState::Offered, None, None).await;
    }
    let reply = tokio::select! {
        () = live.cancel.cancelled() => {
            if live.cancelled_here() {
                let _ = conn.send(&TransferFrame::Cancel { id, reason: cancel_reason(live) }).await;
            }
            return Ok(None);
        }
        r = conn.read::<TransferFrame>() => r.map_err(|e| EngineError::from_read("receiver", e))?,
    };
    let resume = match on_offer_reply(reply) {
        OfferReply::Stream(resume) => resume,
        OfferReply::End(end) => return Ok(Some(end)),
        OfferReply::Retry(e) => return Err(e),
    };
    if live.state() != TransferState::Running {
        t.set_state(live, TransferState::Running, None, None).await;
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
                .map_err(|e| EngineError::from_read("receiver", e))?
            {
                Some(frame) => {
                    if let Some(end) = on_verdict(frame) {
                        return Ok(end);
                    }
                }
                None => return Err(EngineError::Closed { peer: "receiver" }),
            }
        }
    };
    tokio::pin!(verdict);
    tokio::select! {
        w = &mut writer_task => {
            match w {
                Ok(Some(_writer)) => {}
                Ok(None) => return Ok(None),
                // The files here are the cause (the receiver was told): no link helps.
                Err(e) if e.is_local_source() => return Ok(Some(End::Failed(e.to_string()))),
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
) -> Result<Option<FramedConn<W>>, EngineError> {
    let rec = live.record();
    let id = rec.manifest.id;
    let (first, mut done) = starts(&rec.manifest.files, resume);
    live.set_done(done);
    let _session = SessionLog::start(live, done);
    let scanned = match t.records.scanned(id).await {
        Ok(Some(s)) if s.len() == rec.manifest.files.len() => s,
        Ok(_) => return Err(EngineError::NoValues),
        Err(e) => return Err(EngineError::Offer(Box::new(e.into()))),
    };
    let mut plan = Vec::with_capacity(rec.manifest.files.len());
    let mut values = Vec::with_capacity(rec.manifest.files.len());
    for (((f, start), i), s) in rec
        .manifest
        .files
        .iter()
        .zip(first)
        .zip(0u32..)
        .zip(scanned)
    {
        let cvs = Arc::new(s.cvs);
        values.push(cvs.clone());
        plan.push(Plan {
            file: i,
            path: f.path.clone(),
            base: s.base,
            size: f.size,
            start,
            mtime: s.mtime,
            cvs,
        });
    }
    if plan.len() != rec.manifest.files.len() {
        return Err(EngineError::TooManyFiles);
    }
    let mut source = Source::start(base.to_owned(), plan, t.buffers.clone())?;
    // A receiver that stops reading ends the link, not the transfer: it resumes on the next.
    let limit = t.limits.progress_timeout;
    let stuck = |_| EngineError::Stalled {
        what: "the receiver took no data",
        after: limit,
    };
    // The file whose chunk values went out last.
    let mut listed = None;
    while let Some(piece) = source.next().await {
        if live.cancel.is_cancelled() {
            // A stopping daemon leaves the transfer to resume; only a cancel here ends it.
            if live.cancelled_here() {
                let _ = w
                    .send(&TransferFrame::Cancel {
                        id,
                        reason: cancel_reason(live),
                    })
                    .await;
            }
            return Ok(None);
        }
        let piece = match piece {
            Ok(p) => p,
            Err(e) => {
                // Tell the receiver why the transfer ends (a link error only ends the link).
                if e.is_local_source() {
                    let reason = e.to_string();
                    let failed = TransferFrame::Failed { id, reason };
                    let _ = tokio::time::timeout(limit, w.send(&failed)).await;
                }
                return Err(e);
            }
        };
        match piece {
            Piece::Chunk { file, index, data } => {
                // Before a file's first chunk, its whole list of values (the receiver checks
                // it against the content id); then the chunk, its data going out from the
                // read buffer, in the same flush.
                let mut head = Vec::new();
                if listed != Some(file) {
                    listed = Some(file);
                    let cvs = values.get(file as usize).ok_or(EngineError::TooManyFiles)?;
                    for run in ChunkCvs::runs(cvs) {
                        let f = TransferFrame::ChunkCvs { id, file, run };
                        head.extend(frame::encode(&f, MAX_CHUNK_FRAME)?);
                    }
                }
                head.extend(chunk_frame_head(
                    id,
                    file,
                    index,
                    data.len(),
                    MAX_CHUNK_FRAME,
                )?);
                tokio::time::timeout(limit, w.send_parts(&[&head, &data]))
                    .await
                    .map_err(stuck)?
                    .map_err(EngineError::Link)?;
                done += data.len() as u64;
                source.recycle(data);
                live.set_done(done);
                t.progress(live);
            }
            Piece::FileDone(file) => {
                tokio::time::timeout(limit, w.send(&TransferFrame::FileDone { id, file }))
                    .await
                    .map_err(stuck)?
                    .map_err(EngineError::Link)?;
            }
        }
    }
    tokio::time::timeout(limit, w.send(&TransferFrame::Done { id }))
        .await
        .map_err(stuck)?
        .map_err(EngineError::Link)?;
    t.node.publish([Event::TransferProgress {
        transfer: live.info(),
    }]);
    Ok(Some(w))
}
