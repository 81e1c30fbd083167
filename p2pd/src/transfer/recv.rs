//! The receiving side: take the offer (new, or known from before a drop or a restart), wait
//! for the user's decision, then verify every chunk against its hash as it arrives, write it
//! to the `.part` file, and give each file its final name only once its whole hash matches.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proto::api::{Direction, Event, TransferState};
use proto::frame::FrameError;
use proto::transfer::{
    BULK_LINKS_BUSY, CHUNK, FileEntry, FileResume, IncomingOffer, MAX_CHUNK_FRAME, Manifest,
    OFFER_EXPIRED, TransferFrame, TransferId, chunk_count, chunk_range,
};
use proto::{PeerId, PeerName};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use transport::ConnError;

use super::limits::manifest_bytes;
use super::live::Live;
use super::records::Record;
use super::sink::{Job, Sink, Target, spare_buffer};
use super::{Decision, SessionLog, Transfers};
use crate::files::{Dest, FilesError};
use crate::link::LinkConn;

/// Time allowed for the offer to arrive after the link is up.
const OFFER_TIMEOUT: Duration = Duration::from_secs(30);
/// Free space kept beyond what a transfer needs.
const RESERVE: u64 = 64 * 1024 * 1024;

/// Time allowed for the offer on a link refused for its peer's cap (to name it in the refusal).
const REFUSED_OFFER_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves one inbound bulk link.
pub(super) async fn run(t: Arc<Transfers>, mut conn: LinkConn, peer: PeerId, name: PeerName) {
    conn.set_limits(MAX_CHUNK_FRAME, MAX_CHUNK_FRAME);
    let slot = t.bulk_link(peer);
    let wait = if slot.is_some() {
        OFFER_TIMEOUT
    } else {
        REFUSED_OFFER_TIMEOUT
    };
    let first = tokio::time::timeout(wait, conn.read::<IncomingOffer>()).await;
    if slot.is_none() {
        if let Ok(Ok(Some(IncomingOffer { id, .. }))) = first {
            let reason = BULK_LINKS_BUSY.to_owned();
            let _ = conn.send(&TransferFrame::Failed { id, reason }).await;
            let _ = conn.shutdown().await;
        }
        if let Some(quiet) = t.held().refusals.note(peer, svc::unix_millis()) {
            warn!(peer = %name, "refused a bulk link from {name}: {BULK_LINKS_BUSY} ({quiet} more refusals unlogged)");
        }
        return;
    }
    let manifest = match first {
        Ok(Ok(Some(IncomingOffer {
            manifest: Ok(m), ..
        }))) => m,
        Ok(Ok(Some(IncomingOffer {
            id,
            manifest: Err(e),
        }))) => {
            return t.refuse_offer(&mut conn, id, &name, e).await;
        }
        Ok(Ok(None)) => return warn!(peer = %name, "bulk link without an offer"),
        Ok(Err(e)) => return warn!(peer = %name, "refused an offer from {name}: {e}"),
        Err(_) => return warn!(peer = %name, "no offer within {OFFER_TIMEOUT:?}"),
    };
    let Some(live) = take_offer(&t, &mut conn, peer, &name, manifest).await else {
        return;
    };
    let id = live.id();
    let session = live.begin_session();
    // The session just superseded may still be writing and recording what it received:
    // where this one resumes is read only after it has ended.
    let Some(_serving) = live.serve(&session).await else {
        return;
    };
    let dest = match live.state() {
        TransferState::Offered => match wait_decision(&t, &live, &mut conn, &session).await {
            Some(dest) => dest,
            None => return,
        },
        TransferState::Running => match live.record().local_path {
            Some(p) => PathBuf::from(p),
            None => return,
        },
        state => {
            let reason = live.record().error.unwrap_or_default();
            let frame = match state {
                TransferState::Done => TransferFrame::Done { id },
                TransferState::Declined => TransferFrame::Decline { id, reason },
                TransferState::Cancelled => TransferFrame::Cancel { id, reason },
                TransferState::Expired => TransferFrame::Decline {
                    id,
                    reason: OFFER_EXPIRED.into(),
                },
                _ => TransferFrame::Failed { id, reason },
            };
            let _ = conn.send(&frame).await;
            return;
        }
    };
    match receive(&t, &live, &mut conn, &dest, &session).await {
        Ok(true) => {
            // Stored before the sender hears it: a sender told `Done` never offers again.
            t.set_state(&live, TransferState::Done, None, None);
            let _ = conn.send(&TransferFrame::Done { id }).await;
        }
        Ok(false) => {}
        Err(Fail::Link(e)) => {
            warn!(%id, peer = %name, "transfer link lost (it resumes when the sender is back): {e}")
        }
        Err(Fail::Transfer(reason)) => {
            let _ = conn
                .send(&TransferFrame::Failed {
                    id,
                    reason: reason.clone(),
                })
                .await;
            remove_parts(&live, &dest);
            t.set_state(&live, TransferState::Failed, None, Some(reason));
        }
    }
}

/// Records a new offer (or finds a known one) and returns its live handle.
async fn take_offer(
    t: &Arc<Transfers>,
    conn: &mut LinkConn,
    peer: PeerId,
    name: &PeerName,
    manifest: Manifest,
) -> Option<Arc<Live>> {
    let id = manifest.id;
    let known = t.records.get(id).await;
    if let Ok(None) = known
        && let Err(e) = t.admit_offer(id, peer, name, manifest_bytes(&manifest))
    {
        let reason = format!("offer refused: {e}");
        info!(target: svc::logging::ACTIVITY, op = "offer-refused", peer = %name, id = %id, error = %reason, "offer refused");
        let _ = conn.send(&TransferFrame::Failed { id, reason }).await;
        let _ = conn.shutdown().await;
        return None;
    }
    match known {
        Ok(Some(rec)) if rec.peer == peer && rec.direction == Direction::In => {
            Some(t.live_for(&rec))
        }
        Ok(Some(_)) => {
            let _ = conn
                .send(&TransferFrame::Failed {
                    id,
                    reason: "transfer id already in use".into(),
                })
                .await;
            None
        }
        Ok(None) => {
            let rec = Record {
                peer,
                peer_name: name.clone(),
                direction: Direction::In,
                state: TransferState::Offered,
                manifest,
                local_path: None,
                error: None,
                created_at: svc::unix_now(),
            };
            if let Err(e) = t.records.insert(&rec).await {
                warn!("cannot store an offer: {e}");
                // Unless a concurrent link of the same offer stored it meanwhile.
                if !matches!(t.records.get(id).await, Ok(Some(_))) {
                    t.held().offers.remove(id);
                }
                return None;
            }
            let live = t.live_for(&rec);
            info!(target: svc::logging::ACTIVITY, op = "offer-in", peer = %name, id = %id, files = rec.manifest.files.len(), bytes = rec.manifest.total_size(), "offer received");
            t.node.publish([Event::TransferOffered {
                transfer: live.info(),
            }]);
            if t.node.peer(peer).is_some_and(|p| p.auto_accept) {
                let _ = live
                    .decision
                    .send_replace(Decision::Accept(t.download_dir.clone()));
            }
            Some(live)
        }
        Err(e) => {
            warn!("cannot look up an offer: {e}");
            None
        }
    }
}

/// Waits for accept / decline / cancel; answers the sender. Returns the destination if
/// accepted and there is room.
async fn wait_decision(
    t: &Transfers,
    live: &Live,
    conn: &mut LinkConn,
    session: &CancellationToken,
) -> Option<PathBuf> {
    let id = live.id();
    let mut rx = live.decisions();
    // A link is not held open on an undecided offer for long: the sender offers again later.
    let deadline = tokio::time::Instant::now() + t.limits.decision_timeout;
    loop {
        let d = rx.borrow_and_update().clone();
        match d {
            Decision::Accept(dest) => {
                let need = live.info().total_bytes;
                let ready = t
                    .load_manifest(live)
                    .map_err(|e| format!("cannot read the offer back: {e}"))
                    .and_then(|()| check_space(&dest, need));
                if let Err(reason) = ready {
                    let _ = conn
                        .send(&TransferFrame::Failed {
                            id,
                            reason: reason.clone(),
                        })
                        .await;
                    t.set_state(live, TransferState::Failed, None, Some(reason));
                    return None;
                }
                t.set_state(
                    live,
                    TransferState::Running,
                    Some(dest.display().to_string()),
                    None,
                );
                return Some(dest);
            }
            Decision::Decline => {
                let _ = conn
                    .send(&TransferFrame::Decline {
                        id,
                        reason: "declined by the receiver".into(),
                    })
                    .await;
                return None;
            }
            Decision::Cancel => {
                let _ = conn
                    .send(&TransferFrame::Cancel {
                        id,
                        reason: "cancelled by the receiver".into(),
                    })
                    .await;
                return None;
            }
            Decision::Expire => {
                let reason = OFFER_EXPIRED.into();
                let _ = conn.send(&TransferFrame::Decline { id, reason }).await;
                return None;
            }
            Decision::Pending => {}
        }
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {
                info!(%id, "closing the link of an undecided offer after {:?}; it stays offered", t.limits.decision_timeout);
                let _ = conn.shutdown().await;
                return None;
            }
            // A newer link took over (the decision is read there).
            () = session.cancelled(), if !live.cancelled_here() => return None,
            r = rx.changed() => if r.is_err() { return None },
            f = conn.read::<TransferFrame>() => {
                if let Ok(Some(TransferFrame::Cancel { reason, .. })) = f {
                    t.set_state(live, TransferState::Cancelled, None, Some(reason));
                }
                // The sender went away (or cancelled); the offer stays until it is back.
                return None;
            }
        }
    }
}

/// Fails unless the disk holding `dest` has room for `need` bytes plus a reserve.
fn check_space(dest: &Path, need: u64) -> Result<(), String> {
    // Without a disk table (unsupported platform) the write itself reports a full disk.
    let Ok(disks) = sysinfo::Disks::new_with_refreshed_list() else {
        return Ok(());
    };
    let probe = dest.ancestors().find(|p| p.exists()).unwrap_or(dest);
    let probe = std::fs::canonicalize(probe).unwrap_or_else(|_| probe.to_owned());
    let disk = disks
        .iter()
        .filter(|d| probe.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len());
    match disk {
        Some(d) if d.available_space() < need.saturating_add(RESERVE) => Err(format!(
            "not enough free space in {}: {} needed (plus a {} MiB reserve), {} available",
            dest.display(),
            need,
            RESERVE >> 20,
            d.available_space()
        )),
        _ => Ok(()),
    }
}

enum Fail {
    /// The link broke: keep everything for a resume.
    Link(String),
    /// The transfer cannot succeed.
    Transfer(String),
}

fn io_fail(e: FilesError) -> Fail {
    Fail::Transfer(e.to_string())
}

/// How the read loop of [`receive`] ended, when it ended without an error.
enum Stop {
    /// The sender said `Done`.
    Done,
    /// Cancelled here; the sender was told.
    Cancelled,
    /// The sender cancelled or failed the transfer.
    Ended(TransferState, String),
    /// The writer stopped: [`Sink::close`] says why.
    SinkStopped,
}

/// Receives into `dest`. `Ok(true)`: every file is verified and in place.
async fn receive(
    t: &Arc<Transfers>,
    live: &Arc<Live>,
    conn: &mut LinkConn,
    dest: &Path,
    session: &CancellationToken,
) -> Result<bool, Fail> {
    let rec = live.record();
    let id = rec.manifest.id;
    let tag = id.to_string();
    std::fs::create_dir_all(dest)
        .map_err(|e| Fail::Transfer(format!("cannot create {}: {e}", dest.display())))?;
    let dir = Dest::open(dest).map_err(io_fail)?;
    let stored: HashMap<u32, (u64, bool)> = t
        .records
        .verified(id)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(f, v, d)| (f, (v, d)))
        .collect();
    let mut resume = Vec::new();
    let mut state: Vec<(u64, bool)> = Vec::with_capacity(rec.manifest.files.len());
    let mut done_bytes = 0u64;
    for (i, f) in rec.manifest.files.iter().enumerate() {
        let (verified, finished) = stored.get(&(i as u32)).copied().unwrap_or((0, false));
        let (verified, finished) = tokio::task::block_in_place(|| {
            resume_file(t, &dir, &tag, (id, i as u32), f, verified, finished)
        })
        .map_err(io_fail)?;
        let count = chunk_count(f.size);
        let v = if finished { count } else { verified.min(count) };
        done_bytes += (v * CHUNK).min(f.size);
        state.push((v, finished));
        resume.push(FileResume {
            file: i as u32,
            verified_chunks: v,
        });
    }
    live.set_done(done_bytes);
    let _session = SessionLog::start(live, done_bytes);
    conn.send(&TransferFrame::Accept { id, resume })
        .await
        .map_err(|e| Fail::Link(e.to_string()))?;

    let sink = Sink::start(Target {
        t: t.clone(),
        live: live.clone(),
        dir,
        tag,
        done_bytes,
    });
    let stop = read_chunks(
        live,
        conn,
        session,
        &sink,
        &mut state,
        t.limits.progress_timeout,
    )
    .await;
    // The writer finishes what it was given before anything else touches the part files.
    let written = sink.close().await;
    match (stop, written) {
        (Ok(Stop::Cancelled), _) => {
            remove_parts(live, dest);
            Ok(false)
        }
        (Ok(Stop::Ended(end, reason)), _) => {
            remove_parts(live, dest);
            t.set_state(live, end, None, Some(reason));
            Ok(false)
        }
        (_, Err(e)) => Err(Fail::Transfer(e)),
        (Ok(Stop::Done), Ok(())) if state.iter().all(|(_, finished)| *finished) => Ok(true),
        (Ok(Stop::Done), Ok(())) => Err(Fail::Transfer(
            "the sender finished before every file arrived".into(),
        )),
        (Ok(Stop::SinkStopped), Ok(())) => Err(Fail::Transfer("the writer stopped".into())),
        (Err(f), Ok(())) => Err(f),
    }
}

/// Where file `file` of transfer `id` resumes, from its stored record (`verified` chunks,
/// `finished`) and the disk: chunks are trusted only as far as the part file holds them; a
/// part already linked to its final name (a crash before the done record) is a finished
/// file, recorded now; a finished file's leftover part is removed.
fn resume_file(
    t: &Transfers,
    dir: &Dest,
    tag: &str,
    (id, file): (TransferId, u32),
    f: &FileEntry,
    verified: u64,
    finished: bool,
) -> Result<(u64, bool), FilesError> {
    let comps: Vec<&str> = f.path.components().collect();
    if !finished {
        if let Some(name) = dir.finished_part(tag, &comps, f.size, &f.hash)? {
            let count = chunk_count(f.size);
            if let Err(e) = t.records.set_verified_blocking(id, file, count, true) {
                // Keep the part: the next resume finds the link again.
                warn!(%id, "cannot record {name} as received: {e}");
                return Ok((count, true));
            }
            info!(target: svc::logging::ACTIVITY, op = "file-received", id = %id, file = %name, bytes = f.size, "file found verified and in place on resume");
        } else if verified > 0 {
            // Trust only what the part file still holds.
            let part = dir.create_part(tag, &comps, f.size)?;
            return Ok((verified.min(part.len()? / CHUNK), false));
        } else {
            return Ok((0, false));
        }
    }
    if let Err(e) = dir.remove_part(tag, &comps) {
        warn!(%id, "cannot remove the part of {}: {e}", f.path);
    }
    Ok((chunk_count(f.size), true))
}

/// Reads frames until the transfer ends, checks where each chunk belongs, and hands chunks
/// and finished files to the writer. `state` holds per file the next chunk expected and
/// whether the file is complete.
async fn read_chunks(
    live: &Live,
    conn: &mut LinkConn,
    session: &CancellationToken,
    sink: &Sink,
    state: &mut [(u64, bool)],
    progress_timeout: Duration,
) -> Result<Stop, Fail> {
    let rec = live.record();
    let id = rec.manifest.id;
    let mut hashes: HashMap<u64, [u8; 32]> = HashMap::new();
    // A sender that keeps the link but sends no chunk loses the link; it resumes on the next.
    let stalled = tokio::time::sleep(progress_timeout);
    tokio::pin!(stalled);
    loop {
        if conn.needs_spare()
            && let Some(buf) = spare_buffer()
        {
            conn.recycle(buf);
        }
        let payload = tokio::select! {
            biased;
            () = live.cancel.cancelled() => {
                if !live.cancelled_here() {
                    return Err(Fail::Link("the daemon is stopping".into()));
                }
                let _ = conn.send(&TransferFrame::Cancel { id, reason: "cancelled by the receiver".into() }).await;
                return Ok(Stop::Cancelled);
            }
            () = session.cancelled() => {
                return Err(Fail::Link("a newer link took over this transfer".into()));
            }
            () = sink.stopped() => return Ok(Stop::SinkStopped),
            () = &mut stalled => {
                return Err(Fail::Link(format!("no data from the sender for {progress_timeout:?}")));
            }
            f = conn.read_payload() => f,
        };
        let frame = match payload {
            Ok(Some(p)) => TransferFrame::decode_payload(p).map_err(ConnError::from),
            Ok(None) => return Err(Fail::Link("the sender closed the link".into())),
            Err(e) => Err(e),
        };
        let frame = match frame {
            Ok(f) => f,
            // A broken connection (a crashed sender, a network drop) is not bad data: keep
            // the verified parts for the resume.
            Err(e @ (ConnError::Io(_) | ConnError::Frame(FrameError::Truncated { .. }))) => {
                return Err(Fail::Link(e.to_string()));
            }
            Err(e) => return Err(Fail::Transfer(format!("bad frame from the sender: {e}"))),
        };
        if frame.id() != id {
            return Err(Fail::Transfer("frame for another transfer".into()));
        }
        let job = match frame {
            TransferFrame::ChunkHashes {
                first, hashes: hs, ..
            } => {
                hashes.clear();
                for (k, h) in hs.into_iter().enumerate() {
                    let index = first.checked_add(k as u64).ok_or_else(|| {
                        Fail::Transfer("chunk hashes past the last possible chunk".into())
                    })?;
                    hashes.insert(index, h);
                }
                continue;
            }
            TransferFrame::Chunk {
                file, index, data, ..
            } => {
                let f = rec.manifest.files.get(file as usize).ok_or_else(|| {
                    Fail::Transfer(format!("chunk for file {file}, which is not in the offer"))
                })?;
                let (ref mut next, finished) = state[file as usize];
                if finished || index != *next {
                    return Err(Fail::Transfer(format!(
                        "chunk {index} of {} out of order (expected {next})",
                        f.path
                    )));
                }
                let (offset, len) = chunk_range(f.size, index).ok_or_else(|| {
                    Fail::Transfer(format!("more data than announced for {}", f.path))
                })?;
                if data.len() as u64 != len {
                    return Err(Fail::Transfer(format!(
                        "chunk {index} of {} has {} bytes, {len} announced",
                        f.path,
                        data.len()
                    )));
                }
                let want = *hashes.get(&index).ok_or_else(|| {
                    Fail::Transfer(format!(
                        "chunk {index} of {} arrived without its hash",
                        f.path
                    ))
                })?;
                *next += 1;
                Job::Chunk {
                    file,
                    index,
                    offset,
                    data,
                    want,
                }
            }
            TransferFrame::FileDone { file, .. } => {
                let f =
                    rec.manifest.files.get(file as usize).ok_or_else(|| {
                        Fail::Transfer(format!("file {file} is not in the offer"))
                    })?;
                let (next, finished) = state[file as usize];
                if finished {
                    continue;
                }
                if next != chunk_count(f.size) {
                    return Err(Fail::Transfer(format!(
                        "{}: fewer bytes than announced",
                        f.path
                    )));
                }
                state[file as usize].1 = true;
                Job::FileDone { file }
            }
            TransferFrame::Done { .. } => return Ok(Stop::Done),
            TransferFrame::Cancel { reason, .. } => {
                return Ok(Stop::Ended(TransferState::Cancelled, reason));
            }
            TransferFrame::Failed { reason, .. } => {
                return Ok(Stop::Ended(TransferState::Failed, reason));
            }
            TransferFrame::Offer(_)
            | TransferFrame::Accept { .. }
            | TransferFrame::Decline { .. } => {
                return Err(Fail::Transfer(
                    "unexpected frame during the transfer".into(),
                ));
            }
        };
        let chunk = matches!(job, Job::Chunk { .. });
        if !sink.push(job).await {
            return Ok(Stop::SinkStopped);
        }
        if chunk {
            // Counted from when this side is ready for more: a slow disk is not a silent sender.
            stalled
                .as_mut()
                .reset(tokio::time::Instant::now() + progress_timeout);
        }
    }
}

/// Removes every part file of a transfer that ends without success.
fn remove_parts(live: &Live, dest: &Path) {
    let rec = live.record();
    let tag = rec.manifest.id.to_string();
    let Ok(dir) = Dest::open(dest) else { return };
    for f in &rec.manifest.files {
        let comps: Vec<&str> = f.path.components().collect();
        if let Err(e) = dir.remove_part(&tag, &comps) {
            warn!("cannot remove the part of {}: {e}", f.path);
        }
    }
}
