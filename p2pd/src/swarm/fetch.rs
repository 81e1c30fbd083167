//! The driver of one multi-source download: it runs the [`Scheduler`], carries out what it
//! returns on the sources' links ([`super::link`]), checks every chunk against its value
//! before writing it into the part file, and reports each source's share. Chunks the part
//! file already holds (an earlier run of the same download) are checked and kept, never
//! fetched again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::PeerName;
use proto::api::PullSource;
use proto::content::{CHUNK, ChunkList};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::link::{self, FromSource, ToSource};
use super::scheduler::{Action, Config, DropReason, Holds, Progress, Scheduler, SourceId};
use crate::files::{FilesError, PartFile};
use crate::link::LinkConn;

/// How long a source may hold requests and send nothing before they move elsewhere.
pub const STALL_AFTER: Duration = Duration::from_secs(15);

/// Progress is reported at least this often while the fetch runs, even with no chunk
/// arriving (so the last chunks before a pause show).
const PROGRESS_TICK: Duration = Duration::from_secs(1);

/// Why a multi-source download failed.
#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    /// Chunks still missing are held by no source left.
    #[error("stuck: chunks {0} are held by no source")]
    Stuck(String),
    /// The part file could not be read or written.
    #[error(transparent)]
    Files(#[from] FilesError),
    /// The daemon is stopping.
    #[error("the download was stopped")]
    Stopped,
    /// The owner no longer lets us read the content (a revoke, or the share removed).
    #[error("access revoked")]
    Revoked,
}

/// What the driver tells each source's link through, by source id; `None` once dropped.
type Senders = Vec<Option<mpsc::UnboundedSender<ToSource>>>;

/// One source as the driver starts it.
pub struct SourceLink {
    /// Its name, for the report and the activity log.
    pub name: PeerName,
    /// Its share link.
    pub conn: LinkConn,
    /// The first request id not yet used on the link.
    pub next_id: u64,
    /// What it said it holds.
    pub holds: Holds,
    /// Whether it is the owner, the peer that names the content: its refusal of a chunk
    /// may mean the user lost the right to it.
    pub owner: bool,
}

/// What a finished download drew from each source, in the order given.
#[derive(Debug)]
pub struct Report {
    /// Each source's share.
    pub sources: Vec<PullSource>,
    /// Bytes received that were not used (copies that lost, chunks that failed).
    pub wasted: u64,
    /// How long the fetch ran.
    pub took: Duration,
    /// How much of that was endgame (every missing chunk in flight); zero if it never was.
    pub endgame: Duration,
}

/// The chunks of `list` that `part` already holds, checked against their values.
pub fn verified_on_disk(part: &PartFile, list: &ChunkList) -> Result<Vec<u64>, FilesError> {
    let have = part.len()?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; CHUNK as usize];
    for index in 0..list.cvs().len() as u64 {
        let Some((start, len)) = proto::content::chunk_range(list.len(), index) else {
            break;
        };
        if start + len > have {
            break;
        }
        let buf = &mut buf[..len as usize];
        let read = part.read_at(start, buf)?;
        if read == buf.len() && list.verify_chunk(index, buf).is_ok() {
            out.push(index);
        }
    }
    Ok(out)
}

/// Fetches every chunk of `list` not in `verified` from `sources`, and from those that come
/// on `joining` while it runs, into `part`, until all are written (the part is not finished
/// here) or none of the sources left holds a missing one and none can join any more (the
/// sender of `joining` dropped). `marked` is told each chunk once it is verified and
/// written; `progress` the verified bytes so far after each chunk, and every
/// [`PROGRESS_TICK`] without one, with each source's share in the order the sources came.
///
/// The first time the owner refuses a chunk as not there for us, `lost` is called: the
/// answer it gives later says whether the user lost the right to read the content, which
/// ends the fetch with [`SwarmError::Revoked`] whatever the other sources hold. Until it
/// answers, the fetch is not declared stuck.
pub async fn run(
    list: Arc<ChunkList>,
    part: Arc<PartFile>,
    verified: Vec<u64>,
    (sources, mut joining): (Vec<SourceLink>, mpsc::UnboundedReceiver<SourceLink>),
    (cancel, mut lost): (CancellationToken, impl FnMut() -> oneshot::Receiver<bool>),
    mut marked: impl FnMut(u64),
    mut progress: impl FnMut(u64, &[PullSource]),
) -> Result<Report, SwarmError> {
    let cfg = Config {
        stall_after: STALL_AFTER,
        ..Config::default()
    };
    let mut sch = Scheduler::new(cfg, list.len(), verified.iter().copied());
    let mut done: u64 = verified.iter().map(|c| sch.chunk_len(*c)).sum();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut tasks = JoinSet::new();
    let mut to: Senders = Vec::new();
    let mut report: Vec<PullSource> = Vec::new();
    let mut owners: Vec<bool> = Vec::new();
    let start = Instant::now();
    for s in sources {
        let book = (&mut to, &mut report, &mut owners);
        join(s, &list, &mut sch, &mut tasks, book, &tx);
    }
    // The check of the owner's refusal in progress, and whether one was made.
    let mut checking: Option<oneshot::Receiver<bool>> = None;
    let mut checked = false;
    let mut may_join = true;
    let mut checks: JoinSet<(SourceId, u64, Result<bool, FilesError>)> = JoinSet::new();
    let mut wasted = 0u64;
    let mut endgame_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        for a in sch.poll(now) {
            act(a, &mut to, &mut report);
        }
        if endgame_at.is_none() && sch.in_endgame() {
            endgame_at = Some(now);
        }
        match sch.progress() {
            Progress::Done => break,
            Progress::Stuck { missing } if checks.is_empty() && !may_join && checking.is_none() => {
                return Err(SwarmError::Stuck(ranges(&missing)));
            }
            _ => {}
        }
        let wake = sch
            .next_deadline()
            .unwrap_or(now + PROGRESS_TICK)
            .min(now + PROGRESS_TICK)
            .max(now + Duration::from_millis(10));
        tokio::select! {
            () = cancel.cancelled() => return Err(SwarmError::Stopped),
            revoked = async {
                match checking.as_mut() {
                    Some(c) => c.await.unwrap_or(false),
                    None => std::future::pending().await,
                }
            } => {
                checking = None;
                if revoked {
                    return Err(SwarmError::Revoked);
                }
            }
            () = tokio::time::sleep_until(wake.into()) => progress(done, &report),
            s = joining.recv(), if may_join => match s {
                Some(s) => {
                    let book = (&mut to, &mut report, &mut owners);
                    join(s, &list, &mut sch, &mut tasks, book, &tx);
                }
                None => may_join = false,
            },
            Some(ev) = rx.recv() => match ev {
                FromSource::Chunk { source, index, data } => {
                    if sch.is_verified(index) {
                        // A copy that lost the race.
                        wasted += data.len() as u64;
                        sch.on_chunk(source, index, true, Instant::now());
                        continue;
                    }
                    // A copy arriving while its twin is checked is checked too: the twin
                    // may be bad.
                    let (list, part) = (list.clone(), part.clone());
                    checks.spawn_blocking(move || {
                        if list.verify_chunk(index, &data).is_err() {
                            return (source, index, Ok(false));
                        }
                        let at = index * CHUNK;
                        (source, index, part.write_at(at, &data).map(|()| true))
                    });
                }
                FromSource::Miss { source, index, refused } => {
                    let owner = owners.get(source.0 as usize).copied().unwrap_or(false);
                    if refused && owner && !checked {
                        checked = true;
                        checking = Some(lost());
                    }
                    sch.on_miss(source, index);
                }
                FromSource::Gone { source, why } => {
                    if let Some(s) = to.get_mut(source.0 as usize).and_then(Option::take) {
                        drop(s);
                        let r = &mut report[source.0 as usize];
                        info!(peer = %r.peer, "swarm source left: {why}");
                        r.dropped = Some(format!("left: {why}"));
                    }
                    sch.remove_source(source);
                }
            },
            Some(joined) = checks.join_next() => {
                let (source, index, r) = joined.expect("chunk check task");
                let ok = r?;
                if ok {
                    let len = sch.chunk_len(index);
                    if sch.is_verified(index) {
                        wasted += len;
                    } else {
                        done += len;
                        marked(index);
                    }
                } else {
                    wasted += sch.chunk_len(index);
                }
                for a in sch.on_chunk(source, index, ok, Instant::now()) {
                    act(a, &mut to, &mut report);
                }
                for s in sch.stats() {
                    let r = &mut report[s.source.0 as usize];
                    r.bytes = s.bytes;
                    r.rate = s.rate.unwrap_or(0.0) as u64;
                }
                progress(done, &report);
            }
        }
    }
    // Copies still being checked (endgame twins) hold the part file, which the caller
    // finishes next: wait for them; their bytes are waste.
    while let Some(joined) = checks.join_next().await {
        let (_, index, _) = joined.expect("chunk check task");
        wasted += sch.chunk_len(index);
    }
    for s in sch.stats() {
        let r = &mut report[s.source.0 as usize];
        r.bytes = s.bytes;
        r.rate = s.rate.unwrap_or(0.0) as u64;
    }
    drop(to);
    tasks.abort_all();
    Ok(Report {
        sources: report,
        wasted,
        took: start.elapsed(),
        endgame: endgame_at.map_or(Duration::ZERO, |at| at.elapsed()),
    })
}

/// Starts `s` as the next source: its link's tasks, its place in the scheduler and in the
/// report.
fn join(
    s: SourceLink,
    list: &ChunkList,
    sch: &mut Scheduler,
    tasks: &mut JoinSet<()>,
    (to, report, owners): (&mut Senders, &mut Vec<PullSource>, &mut Vec<bool>),
    tx: &mpsc::UnboundedSender<FromSource>,
) {
    let source = SourceId(to.len() as u32);
    let (stx, srx) = mpsc::unbounded_channel();
    link::spawn(source, s.conn, s.next_id, list.id(), srx, tx.clone(), tasks);
    sch.add_source(source, s.holds, Instant::now());
    to.push(Some(stx));
    owners.push(s.owner);
    report.push(PullSource {
        peer: s.name,
        bytes: 0,
        rate: 0,
        dropped: None,
    });
}

/// Carries out one of the scheduler's actions.
fn act(a: Action, to: &mut [Option<mpsc::UnboundedSender<ToSource>>], report: &mut [PullSource]) {
    match a {
        Action::Request { source, chunk } => {
            if let Some(Some(s)) = to.get(source.0 as usize) {
                let _ = s.send(ToSource::Get(chunk));
            }
        }
        Action::Cancel { source, chunk } => {
            if let Some(Some(s)) = to.get(source.0 as usize) {
                let _ = s.send(ToSource::Cancel(chunk));
            }
        }
        Action::Drop { source, why } => {
            let i = source.0 as usize;
            // Closing its channel ends its writer; the link closes with it.
            to[i] = None;
            let text = match why {
                DropReason::Corrupt { chunk } => {
                    format!("chunk {chunk} failed verification")
                }
                DropReason::Stalled => "it stopped sending".to_owned(),
            };
            let name = report[i].peer.clone();
            info!(target: svc::logging::ACTIVITY, op = "swarm-drop", peer = %name, error = %text, "source dropped from a download");
            report[i].dropped = Some(text);
        }
    }
}

/// `3, 5..9, 12` for the chunks `[3, 5, 6, 7, 8, 9, 12]`.
fn ranges(chunks: &[u64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < chunks.len() {
        let mut j = i;
        while j + 1 < chunks.len() && chunks[j + 1] == chunks[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            chunks[i].to_string()
        } else {
            format!("{}..{}", chunks[i], chunks[j])
        });
        i = j + 1;
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_chunks_read_as_ranges() {
        assert_eq!(ranges(&[3, 5, 6, 7, 8, 9, 12]), "3, 5..9, 12");
        assert_eq!(ranges(&[0]), "0");
        assert_eq!(ranges(&[]), "");
    }
}
