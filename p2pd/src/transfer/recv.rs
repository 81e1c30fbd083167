//! The receiving side: take the offer (new, or known from before a drop or a restart), wait
//! for the user's decision, then check each file's list of chunk values against its content
//! id, verify every chunk against its value as it arrives, write it to the `.part` file, and
//! give each file its final name once every chunk of it verified. An offer on a link of the
//! older bulk protocol (`p2p-bulk/1`) is answered with a `Failed` saying to upgrade.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proto::api::{Direction, Event, TransferState};
use proto::transfer::{
    BULK_LINKS_BUSY, CHUNK, FileEntry, IncomingOffer, MAX_CHUNK_FRAME, Manifest, OFFER_EXPIRED,
    RelPath, TransferFrame, TransferId, chunk_count,
};
use proto::{PeerId, PeerName};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::buffers::own_room;
use super::error::EngineError;
use super::limits::manifest_bytes;
use super::live::Live;
use super::records::Record;
use super::recv_rules::{Receiver, Step};
use super::sink::{Job, Sink, Target};
use super::{Decision, SessionLog, Transfers};
use crate::files::{Dest, FilesError, Landing, Op};
use crate::link::LinkConn;
use crate::router::{PeerLink, Protocol};
use transport::ConnError;

/// Time allowed for the offer to arrive after the link is up.
const OFFER_TIMEOUT: Duration = Duration::from_secs(30);
/// Free space kept beyond what a transfer needs.
const RESERVE: u64 = 64 * 1024 * 1024;

/// Time allowed for the offer on a link refused for its peer's cap (to name it in the refusal).
const REFUSED_OFFER_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an offer made over `p2p-bulk/1` is refused: the sender's transfer fails with it.
pub(crate) const BULK_V1_REFUSED: &str = "the receiving p2pd is newer: it speaks p2p-bulk/2, the sender p2p-bulk/1; upgrade the sending p2pd";

/// The handler of `p2p-bulk/1` links, made by older daemons: their offers are answered with
/// `Failed` ([`BULK_V1_REFUSED`]), so the sender's transfer ends saying why.
pub struct BulkV1(pub Arc<Transfers>);

impl Protocol for BulkV1 {
    fn handle(self: Arc<Self>, link: PeerLink) {
        let t = self.0.clone();
        self.0.tasks.spawn(async move {
            let PeerLink {
                mut conn,
                key,
                name,
            } = link;
            // Counted against the peer's bulk links while it is answered.
            let Some(_slot) = t.bulk_link(key) else { return };
            conn.set_limits(MAX_CHUNK_FRAME, MAX_CHUNK_FRAME);
            let first = tokio::time::timeout(REFUSED_OFFER_TIMEOUT, read_offer(&mut conn));
            if let Ok(Ok(Some(IncomingOffer { id, .. }))) = first.await {
                warn!(peer = %name, %id, "refused an offer from {name} over p2p-bulk/1: its p2pd is older");
                let reason = BULK_V1_REFUSED.to_owned();
                let _ = conn.send(&TransferFrame::Failed { id, reason }).await;
                let _ = conn.shutdown().await;
            }
        });
    }
}

/// Reads a bulk link's first frame as an offer, with its empty directories if it has any
/// (`p2p-bulk/3`). `Ok(None)`: the link closed first.
async fn read_offer(conn: &mut LinkConn) -> Result<Option<IncomingOffer>, ConnError> {
    match conn.read_payload().await? {
        Some(payload) => Ok(Some(IncomingOffer::from_payload(&payload)?)),
        None => Ok(None),
    }
}

/// Serves one inbound bulk link.
pub(super) async fn run(t: Arc<Transfers>, mut conn: LinkConn, peer: PeerId, name: PeerName) {
    conn.set_limits(MAX_CHUNK_FRAME, MAX_CHUNK_FRAME);
    let slot = t.bulk_link(peer);
    let wait = if slot.is_some() {
        OFFER_TIMEOUT
    } else {
        REFUSED_OFFER_TIMEOUT
    };
    let first = tokio::time::timeout(wait, read_offer(&mut conn)).await;
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
            t.set_state(&live, TransferState::Done, None, None).await;
            let _ = conn.send(&TransferFrame::Done { id }).await;
        }
        Ok(false) => {}
        Err(e) if e.link_only() => {
            warn!(%id, peer = %name, "transfer link lost (it resumes when the sender is back): {e}")
        }
        Err(e) => {
            if e.is_disk_full() {
                warn!(%id, peer = %name, "the disk filled up: the transfer fails and its part files are removed");
            }
            let reason = e.to_string();
            let _ = conn
                .send(&TransferFrame::Failed {
                    id,
                    reason: reason.clone(),
                })
                .await;
            remove_parts(&t, &live, &dest).await;
            t.set_state(&live, TransferState::Failed, None, Some(reason))
                .await;
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
                created_ms: svc::unix_millis(),
                pull: false,
                ended_ms: None,
                landed: Vec::new(),
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
            if t.claim_pull(&live, peer).await {
                // Asked for with `get`: accepted into its destination already.
            } else if t.node.peer(peer).is_some_and(|p| p.auto_accept) {
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
                    .await
                    .map_err(|e| EngineError::Offer(Box::new(e)))
                    .and_then(|()| check_space(&dest, need));
                let ready = match ready {
                    Ok(()) => land_dirs(t, live, &dest).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = ready {
                    let reason = e.to_string();
                    let _ = conn
                        .send(&TransferFrame::Failed {
                            id,
                            reason: reason.clone(),
                        })
                        .await;
                    t.set_state(live, TransferState::Failed, None, Some(reason))
                        .await;
                    return None;
                }
                t.set_state(
                    live,
                    TransferState::Running,
                    Some(dest.display().to_string()),
                    None,
                )
                .await;
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
                    t.set_state(live, TransferState::Cancelled, None, Some(reason)).await;
                }
                // The sender went away (or cancelled); the offer stays until it is back.
                return None;
            }
        }
    }
}

/// Fails unless the disk holding `dest` has room for `need` bytes plus a reserve.
fn check_space(dest: &Path, need: u64) -> Result<(), EngineError> {
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
        Some(d) if d.available_space() < need.saturating_add(RESERVE) => {
            Err(EngineError::NoSpace {
                dest: dest.to_owned(),
                need,
                reserve: RESERVE,
                available: d.available_space(),
            })
        }
        _ => Ok(()),
    }
}

/// Chooses, on accept, where each top-level directory of the offer lands: a directory
/// already in `dest` is not merged into, the offered one lands beside it as `dir (1)` (see
/// [`Dest::claim_dir`]). Stored with the transfer so every session lands in the same place;
/// a choice already stored (a link lost right after the accept) is kept. A pull keeps its
/// own placement.
async fn land_dirs(t: &Transfers, live: &Live, dest: &Path) -> Result<(), EngineError> {
    let rec = live.record();
    let id = rec.manifest.id;
    if rec.pull || !landing(t, id).await?.is_empty() {
        return Ok(());
    }
    let mut tops: Vec<&str> = Vec::new();
    for f in &rec.manifest.files {
        let mut comps = f.path.components();
        if let (Some(top), Some(_)) = (comps.next(), comps.next())
            && !tops.contains(&top)
        {
            tops.push(top);
        }
    }
    // An empty directory's first component is a directory, even alone.
    for d in &rec.manifest.dirs {
        if let Some(top) = d.components().next()
            && !tops.contains(&top)
        {
            tops.push(top);
        }
    }
    if tops.is_empty() {
        return Ok(());
    }
    let landing = tokio::task::block_in_place(|| -> Result<Landing, FilesError> {
        std::fs::create_dir_all(dest)
            .map_err(|e| FilesError::io(Op::CreateDir, dest.to_owned(), e))?;
        let dir = Dest::open(dest)?;
        tops.iter()
            .map(|top| Ok(((*top).to_owned(), dir.claim_dir(top)?)))
            .collect()
    })?;
    t.records
        .set_landing(id, &landing)
        .await
        .map_err(|e| EngineError::Offer(Box::new(e.into())))
}

/// Where the top-level directories of transfer `id` land, as stored on accept.
async fn landing(t: &Transfers, id: TransferId) -> Result<Landing, EngineError> {
    t.records
        .landing(id)
        .await
        .map_err(|e| EngineError::Offer(Box::new(e.into())))
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
) -> Result<bool, EngineError> {
    let rec = live.record();
    let id = rec.manifest.id;
    let tag = id.to_string();
    std::fs::create_dir_all(dest).map_err(|e| FilesError::io(Op::CreateDir, dest.to_owned(), e))?;
    let dir = Dest::open(dest)?.with_landing(landing(t, id).await?);
    let stored: HashMap<u32, (u64, bool)> = t
        .records
        .verified(id)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(f, v, d)| (f, (v, d)))
        .collect();
    let mut held = Vec::with_capacity(rec.manifest.files.len());
    for (i, f) in rec.manifest.files.iter().enumerate() {
        let (verified, finished) = stored.get(&(i as u32)).copied().unwrap_or((0, false));
        held.push(tokio::task::block_in_place(|| {
            resume_file(t, &dir, &tag, (id, i as u32), f, verified, finished)
        })?);
    }
    let mut rules = Receiver::new(id, &rec.manifest.files, &held);
    let done_bytes = rules.done_bytes();
    live.set_done(done_bytes);
    let _session = SessionLog::start(live, done_bytes);
    let resume = rules.resume();
    conn.send(&TransferFrame::Accept { id, resume })
        .await
        .map_err(EngineError::Link)?;

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
        &mut rules,
        t.limits.progress_timeout,
    )
    .await;
    // The writer finishes what it was given before anything else touches the part files.
    let written = sink.close().await;
    match (stop, written) {
        (Ok(Stop::Cancelled), _) => {
            remove_parts(t, live, dest).await;
            Ok(false)
        }
        (Ok(Stop::Ended(end, reason)), _) => {
            remove_parts(t, live, dest).await;
            t.set_state(live, end, None, Some(reason)).await;
            Ok(false)
        }
        (_, Err(e)) => Err(e),
        (Ok(Stop::Done), Ok(())) => {
            make_dirs(t, live, &rec.manifest, dest).await?;
            Ok(true)
        }
        (Ok(Stop::SinkStopped), Ok(())) => Err(EngineError::Thread {
            name: "writer",
            what: "stopped",
        }),
        (Err(f), Ok(())) => Err(f),
    }
}

/// Creates the offer's empty directories under `dest` (each top-level one where it landed),
/// once every file is in place, whichever session that is: through the no-follow handle,
/// so a symlink on the way is refused as it is for a file. A directory that cannot be made
/// (a file or a symlink in its place) does not undo the files: the transfer is done, and
/// the directories left unmade are named in the log and the activity log. An offer of
/// directories alone is done only once every one of them exists: else it fails, naming
/// them ([`EngineError::DirsNotMade`]).
async fn make_dirs(
    t: &Transfers,
    live: &Live,
    manifest: &Manifest,
    dest: &Path,
) -> Result<(), EngineError> {
    if manifest.dirs.is_empty() {
        return Ok(());
    }
    let id = manifest.id;
    let failed = match landing(t, id).await {
        Ok(landing) => tokio::task::block_in_place(|| match Dest::open(dest) {
            Ok(dir) => make_dirs_in(&dir.with_landing(landing), &manifest.dirs),
            Err(e) => all_failed(&manifest.dirs, &e),
        }),
        Err(e) => all_failed(&manifest.dirs, &e),
    };
    if failed.is_empty() {
        return Ok(());
    }
    let peer = live.record().peer_name;
    let dirs = failed.len();
    let list = failed
        .iter()
        .map(|(d, e)| format!("{d} ({e})"))
        .collect::<Vec<_>>()
        .join(", ");
    if manifest.files.is_empty() {
        return Err(EngineError::DirsNotMade { dirs, list });
    }
    warn!(%id, %peer, "every file arrived but {dirs} empty directories could not be made: {list}");
    info!(target: svc::logging::ACTIVITY, op = "dirs-not-made", peer = %peer, id = %id, dirs, error = %list, "empty directories not made (every file arrived)");
    Ok(())
}

/// Makes each of `dirs` under `dir`, going on past one that fails: those that failed, with
/// why.
fn make_dirs_in(dir: &Dest, dirs: &[RelPath]) -> Vec<(RelPath, String)> {
    dirs.iter()
        .filter_map(|d| {
            dir.make_dir(&d.components().collect::<Vec<_>>())
                .err()
                .map(|e| (d.clone(), e.to_string()))
        })
        .collect()
}

/// Every one of `dirs`, failed for the same reason.
fn all_failed(dirs: &[RelPath], e: &dyn std::fmt::Display) -> Vec<(RelPath, String)> {
    dirs.iter().map(|d| (d.clone(), e.to_string())).collect()
}

/// Where file `file` of transfer `id` resumes, from its stored record (`verified` chunks,
/// `finished`) and the disk: a part recorded as started resumes after the whole chunks it
/// holds (checked against the chunk values once they come); a
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
            let landed = Some(name.to_string());
            if let Err(e) = t.records.set_verified_blocking(id, file, count, landed) {
                // Keep the part: the next resume finds the link again.
                warn!(%id, "cannot record {name} as received: {e}");
                return Ok((count, true));
            }
            info!(target: svc::logging::ACTIVITY, op = "file-received", id = %id, file = %name, bytes = f.size, "file found verified and in place on resume");
        } else if verified > 0 {
            // The part was not synced as it grew: what it holds (more than the record says
            // after a SIGKILL, perhaps less after a machine crash) is hashed against the
            // chunk values before the next chunk is written (`Job::Recheck`). The last
            // chunk always comes again, so its file's values always come.
            let part = dir.create_part(tag, &comps, f.size)?;
            let count = chunk_count(f.size);
            return Ok(((part.len()? / CHUNK).min(count.saturating_sub(1)), false));
        } else {
            return Ok((0, false));
        }
    }
    if let Err(e) = dir.remove_part(tag, &comps) {
        warn!(%id, "cannot remove the part of {}: {e}", f.path);
    }
    Ok((chunk_count(f.size), true))
}

/// Reads frames until the transfer ends, steps the receiver's rules with each, and hands
/// chunks and finished files to the writer.
async fn read_chunks(
    live: &Live,
    conn: &mut LinkConn,
    session: &CancellationToken,
    sink: &Sink,
    rules: &mut Receiver<'_>,
    progress_timeout: Duration,
) -> Result<Stop, EngineError> {
    let id = live.id();
    // A sender that keeps the link but sends no chunk loses the link; it resumes on the next.
    let stalled = tokio::time::sleep(progress_timeout);
    tokio::pin!(stalled);
    // Room for the next chunk is taken before its bytes are read, so a chunk's buffer is
    // counted from the read to the write; the link reads nothing while it has none.
    let own = own_room();
    let mut room = None;
    loop {
        if room.is_some()
            && conn.needs_spare()
            && let Some(buf) = sink.spare_buffer()
        {
            conn.recycle(buf);
        }
        let payload = tokio::select! {
            biased;
            () = live.cancel.cancelled() => {
                if !live.cancelled_here() {
                    return Err(EngineError::Stopping);
                }
                let _ = conn.send(&TransferFrame::Cancel { id, reason: "cancelled by the receiver".into() }).await;
                return Ok(Stop::Cancelled);
            }
            () = session.cancelled() => return Err(EngineError::Superseded),
            () = sink.stopped() => return Ok(Stop::SinkStopped),
            got = sink.room(&own), if room.is_none() => {
                room = got;
                // Counted from when this side is ready for more: a slow disk is not a
                // silent sender.
                stalled.as_mut().reset(tokio::time::Instant::now() + progress_timeout);
                continue;
            }
            () = &mut stalled, if room.is_some() => {
                return Err(EngineError::Stalled { what: "no data from the sender", after: progress_timeout });
            }
            f = conn.read_payload(), if room.is_some() => f,
        };
        // A broken connection (a crashed sender, a network drop) is not bad data: the
        // verified parts are kept for the resume.
        let frame = match payload {
            Ok(Some(p)) => TransferFrame::decode_payload(p)
                .map_err(|e| EngineError::from_read("sender", e.into()))?,
            Ok(None) => return Err(EngineError::Closed { peer: "sender" }),
            Err(e) => return Err(EngineError::from_read("sender", e)),
        };
        let job = match rules.step(frame)? {
            Step::Ignore => continue,
            Step::Queue(job) => job,
            Step::Done => return Ok(Stop::Done),
            Step::Ended(state, reason) => return Ok(Stop::Ended(state, reason)),
        };
        let permit = match job {
            Job::Chunk { .. } => room.take(),
            Job::FileDone { .. } | Job::Recheck { .. } => None,
        };
        if !sink.push(job, permit).await {
            return Ok(Stop::SinkStopped);
        }
    }
}

/// Removes every part file of a transfer that ends without success.
async fn remove_parts(t: &Transfers, live: &Live, dest: &Path) {
    let rec = live.record();
    let tag = rec.manifest.id.to_string();
    let landing = match landing(t, rec.manifest.id).await {
        Ok(l) => l,
        Err(e) => return warn!("cannot remove the part files: {e}"),
    };
    let Ok(dir) = Dest::open(dest) else { return };
    let dir = dir.with_landing(landing);
    for f in &rec.manifest.files {
        let comps: Vec<&str> = f.path.components().collect();
        if let Err(e) = dir.remove_part(&tag, &comps) {
            warn!("cannot remove the part of {}: {e}", f.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_that_cannot_be_made_is_named_and_the_others_are_still_made() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir(root.join("top")).unwrap();
        std::fs::write(root.join("top/file"), b"x").unwrap();
        std::os::unix::fs::symlink(tmp.path(), root.join("top/link")).unwrap();
        let dirs: Vec<RelPath> = ["top/file/below", "top/link/below", "top/a/b", "other"]
            .iter()
            .map(|d| RelPath::new(d).unwrap())
            .collect();
        let failed = make_dirs_in(&Dest::open(root).unwrap(), &dirs);
        let names: Vec<&str> = failed.iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(names, ["top/file/below", "top/link/below"], "{failed:?}");
        assert!(root.join("top/a/b").is_dir());
        assert!(root.join("other").is_dir());
        assert!(!root.join("below").exists());
    }
}
