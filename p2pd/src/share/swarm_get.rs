//! Multi-source `get`: one file of a share fetched from the named peer and every other
//! source at once. The named peer names the content (`Stat`, then its chunk values by
//! `GetManifest`, checked against the content id); the other sources are the `--from` peers,
//! or without `--from` those of the peers known online that answer `Have` for the content id
//! (a peer answers only from shares the asker may read: a hash is never a capability). Each
//! source says which chunks it holds (`Have`); the chunks come through
//! [`crate::swarm::fetch`] into a part file in the destination, which is finished (fsync,
//! rename that never replaces) once every chunk is verified.
//!
//! `get` answers once the pull is under way; the fetch runs as a daemon task. The pull is
//! kept in the transfer records ([`crate::transfer::swarms`]): one a stop interrupted
//! resumes at start, reconnecting to the sources it had. The part file's name depends only
//! on the content, and the chunks in it are checked again and kept, so a resume fetches
//! only what is missing.
//!
//! Before any source is asked, each run (the first or a resume) takes the chunks found on
//! this machine ([`crate::swarm::local`]); while it runs, the pull is listed in
//! [`crate::swarm::partial`] so its verified chunks are served to peers that may read the
//! share it lands in.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::api::{TransferInfo, TransferState};
use proto::content::{ChunkCv, ChunkList};
use proto::share::{
    Bitfield, ContentId, EntryKind, ErrorKind, HaveQuery, ManifestPage, Request, Response,
    ShareName,
};
use proto::transfer::RelPath;
use proto::{PeerId, PeerName};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::remote::Remote;
use super::{Shares, SharesError};
use crate::backoff::{Backoff, random_unit};
use crate::files::Dest;
use crate::swarm::fetch::{self, SourceLink, SwarmError};
use crate::swarm::local;
use crate::swarm::partial::{Partial, part_tag};
use crate::swarm::scheduler::Holds;
use crate::transfer::Transfers;
use crate::transfer::pull::{Found, Placement, look, placement};
use crate::transfer::swarms::{Begun, SwarmJob};

/// Progress shown at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Without `--from`, at most this many other peers are asked whether they hold the content.
const MAX_ASKED: usize = 32;

/// How long a peer asked whether it holds the content may take to connect and answer.
const ASK_WAIT: Duration = Duration::from_secs(5);

/// What the named peer says is at the path asked for.
enum Looked {
    /// A file, hashed: its name, content id and size.
    File(String, ContentId, u64),
    /// A directory.
    Dir,
    /// A file not hashed yet.
    Unhashed,
}

/// Why a resumed pull cannot fetch yet, or ever.
enum Unready {
    /// The owner refuses us the share (our read right revoked, or the share removed).
    Revoked,
    /// No source gave the chunk values: tried again later.
    Waiting(SharesError),
}

/// A pull ready to fetch: the chunk values, the sources with what each holds, those that
/// join while it runs, and the order the sources are listed in at the end.
struct Ready {
    list: Arc<ChunkList>,
    sources: Vec<SourceLink>,
    joining: mpsc::UnboundedReceiver<SourceLink>,
    order: Vec<String>,
}

impl Shares {
    /// `get --from`: pulls the file at `rel` of `share` from `peer` and the `from` peers at
    /// once into `dest` (checked by the caller to be a valid destination). Answers once the
    /// pull is under way (or with the pull of the same content under way already).
    pub(super) async fn swarm_get(
        self: &Arc<Self>,
        peer: PeerId,
        share: &ShareName,
        rel: Option<RelPath>,
        dest: PathBuf,
        from: &[PeerId],
    ) -> Result<TransferInfo, SharesError> {
        let mut link = self.connect(peer).await?;
        let shown = shown(share, rel.as_ref());
        let (name, id, size) = match look_up(&mut link, share, rel.as_ref()).await? {
            Looked::File(name, id, size) => (name, id, size),
            Looked::Dir => {
                return Err(SharesError::Remote {
                    peer: link.peer.clone(),
                    message: format!(
                        "{shown} is a directory: get --from fetches one file (get the \
                         directory without --from)"
                    ),
                });
            }
            Looked::Unhashed => {
                return Err(SharesError::Remote {
                    peer: link.peer.clone(),
                    message: format!("{shown} is not hashed yet; try again shortly"),
                });
            }
        };
        let asked: Vec<PeerId> = from.iter().copied().filter(|p| *p != peer).collect();
        let file = (name, id, size);
        self.begin(link, peer, (share, rel), dest, file, (asked, true))
            .await
    }

    /// `get` without `--from` of a file while other peers are online: pulls it as
    /// [`swarm_get`](Self::swarm_get) does, starting at once from the owner alone, and adds
    /// each of the peers known online (up to [`MAX_ASKED`]) that answers it holds the content
    /// and lets us read it as a source when its answer comes. `None` when the entry is not a
    /// hashed file or no other peer is online: an ordinary pull carries it. So does a `Stat`
    /// the owner refuses: its `Pull` says why, and the owner logs the refusal.
    pub(super) async fn discovered_get(
        self: &Arc<Self>,
        peer: PeerId,
        share: &ShareName,
        rel: Option<RelPath>,
        dest: PathBuf,
    ) -> Result<Option<TransferInfo>, SharesError> {
        let asked = self.online_others(peer);
        if asked.is_empty() {
            return Ok(None);
        }
        let Ok(mut link) = self.connect(peer).await else {
            return Ok(None);
        };
        let Ok(Looked::File(name, id, size)) = look_up(&mut link, share, rel.as_ref()).await else {
            let _ = link.conn.shutdown().await;
            return Ok(None);
        };
        let file = (name, id, size);
        self.begin(link, peer, (share, rel), dest, file, (asked, false))
            .await
            .map(Some)
    }

    /// The peers known online but `owner` and us, not blocked, up to [`MAX_ASKED`], in the
    /// order they are listed.
    fn online_others(&self, owner: PeerId) -> Vec<PeerId> {
        let me = self.node.identity.id;
        self.node
            .peers()
            .into_iter()
            .filter(|p| p.online && !p.blocked && p.id != owner && p.id != me)
            .map(|p| p.id)
            .take(MAX_ASKED)
            .collect()
    }

    /// Asks each of `peers` at once, as a task, whether it holds some of `id` (`count`
    /// chunks, named by `owner`) and lets us read it; each that does is sent on `to` as
    /// soon as it answers. `to` is dropped once every peer answered or took [`ASK_WAIT`],
    /// or `stop` is cancelled. A peer `named` by the user that is no source is logged as such.
    fn ask_sources(
        self: &Arc<Self>,
        peers: Vec<PeerId>,
        (id, count, owner): (ContentId, u64, PeerId),
        named: bool,
        to: mpsc::UnboundedSender<SourceLink>,
        stop: CancellationToken,
    ) {
        let this = self.clone();
        self.tasks.spawn(async move {
            let mut asked = JoinSet::new();
            for p in peers {
                let this2 = this.clone();
                asked.spawn(async move {
                    let ask = async {
                        let link = this2.connect(p).await?;
                        source(link, id, count, p == owner).await
                    };
                    (p, tokio::time::timeout(ASK_WAIT, ask).await)
                });
            }
            loop {
                let joined = tokio::select! {
                    () = stop.cancelled() => return,
                    j = asked.join_next() => j,
                };
                let Some(joined) = joined else { return };
                let Ok((p, answer)) = joined else { continue };
                let name = this.peer_name(p);
                let why = match answer {
                    Ok(Ok(s)) if holds_any(&s.holds) => {
                        let _ = to.send(s);
                        continue;
                    }
                    Ok(Ok(_)) => "it holds none of it".to_owned(),
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => "no answer".to_owned(),
                };
                if named {
                    info!(peer = %name, "not a source of {id}: {why}");
                } else {
                    tracing::debug!(peer = %name, "not a source of {id}: {why}");
                }
            }
        });
    }

    /// Gets the chunk values from `link` (to `owner`), places the file, and starts the pull
    /// from `owner`, with each of `asked` that holds the content joining as it answers
    /// (`named`: the `--from` peers, kept with the pull). A pull of the same content under
    /// way into the same place is the answer; one into another place is refused, named.
    async fn begin(
        self: &Arc<Self>,
        mut link: Remote,
        owner: PeerId,
        (share, rel): (&ShareName, Option<RelPath>),
        dest: PathBuf,
        (entry, id, size): (String, ContentId, u64),
        (asked, named): (Vec<PeerId>, bool),
    ) -> Result<TransferInfo, SharesError> {
        let transfers = self.transfers()?;
        let list = Arc::new(manifest(&mut link, id, size).await?);
        let (dir, name) = match placement(
            &dest,
            look(&dest),
            dest.parent().map_or(Found::Nothing, look),
        )
        .map_err(crate::transfer::TransferError::Destination)?
        {
            Placement::Into(dir) => (dir, entry),
            Placement::Named { dir, name } => (dir, name),
        };
        let owner_name = link.peer.clone();
        let count = list.cvs().len() as u64;
        let sources = vec![source(link, id, count, true).await?];
        let job = SwarmJob {
            id: SwarmJob::new_id()?,
            content: id,
            size,
            owner,
            owner_name: owner_name.clone(),
            share: share.to_string(),
            path: rel.map(|p| p.to_string()),
            dir,
            name,
            sources: if named { asked.clone() } else { Vec::new() },
            created_ms: svc::unix_millis(),
        };
        let (info, stop) = match transfers.begin_swarm(&job, true).await? {
            Begun::Started(info, stop) => (info, stop),
            Begun::Same(info) => return Ok(info),
            Begun::Elsewhere(info) => {
                let at = info.local_path.clone().unwrap_or_default();
                return Err(crate::transfer::TransferError::Destination(format!(
                    "transfer {} is downloading the same content into {at}; wait for it to end or cancel it",
                    info.id
                ))
                .into());
            }
        };
        let (to, joining) = mpsc::unbounded_channel();
        let mut order = vec![owner_name.to_string()];
        order.extend(asked.iter().map(|p| self.peer_name(*p)));
        self.ask_sources(asked, (id, count, owner), named, to, stop.clone());
        let this = self.clone();
        let ready = Ready {
            list,
            sources,
            joining,
            order,
        };
        self.tasks
            .spawn(async move { this.run_swarm(transfers, job, stop, Some(ready)).await });
        Ok(info)
    }

    /// Asks `job`'s owner, as a task, whether it took back our right to read the share the
    /// content is in: the answer is `true` when it refuses it (the read right revoked, or
    /// the share removed), `false` when it lets us, or cannot be asked.
    fn read_revoked(self: &Arc<Self>, job: &SwarmJob) -> oneshot::Receiver<bool> {
        let (tx, rx) = oneshot::channel();
        let (this, job) = (self.clone(), job.clone());
        self.tasks.spawn(async move {
            let ask = async {
                let mut link = this.connect(job.owner).await.ok()?;
                let refused = refuses_read(&mut link, &job).await.ok();
                let _ = link.conn.shutdown().await;
                refused
            };
            let _ = tx.send(ask.await.unwrap_or(false));
        });
        rx
    }

    /// Resumes the multi-source pulls a stop interrupted, each as a daemon task.
    pub(super) fn resume_swarms(self: &Arc<Self>, transfers: &Arc<Transfers>) {
        for job in transfers.interrupted_swarms() {
            let (this, transfers) = (self.clone(), transfers.clone());
            self.tasks.spawn(async move {
                match transfers.begin_swarm(&job, false).await {
                    Ok(Begun::Started(_, stop)) => {
                        info!(id = %job.id, "resuming the multi-source pull of {}", job.name);
                        this.run_swarm(transfers, job, stop, None).await;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("cannot resume pull {}: {e}", job.id),
                }
            });
        }
    }

    fn transfers(&self) -> Result<Arc<Transfers>, SharesError> {
        self.transfers.get().cloned().ok_or_else(|| {
            crate::transfer::TransferError::Destination("transfers are not running".into()).into()
        })
    }

    /// Fetches `job` (from `ready`, or from its sources reconnected) and ends it: done,
    /// failed, cancelled when the owner refuses us the share (found while fetching, or on
    /// reconnecting), or, once `stop` is cancelled (a cancel, or the daemon stopping), left
    /// as it is stored.
    async fn run_swarm(
        self: Arc<Self>,
        transfers: Arc<Transfers>,
        job: SwarmJob,
        stop: CancellationToken,
        ready: Option<Ready>,
    ) {
        let ready = match ready {
            Some(r) => Ok(r),
            None => self.reconnect(&job, &stop).await,
        };
        let fetched = match ready {
            Ok(ready) => self.fetch(&transfers, &job, ready, stop).await,
            Err(e) => Err(e),
        };
        match fetched {
            Ok(info) => transfers.end_swarm(info).await,
            Err(SwarmError::Revoked) => {
                // As an ordinary pull ends at a revoke: cancelled, nothing left.
                remove_part(&job).await;
                let mut info = transfers.swarm(job.id).unwrap_or_else(|| job.info());
                info.state = TransferState::Cancelled;
                info.error = Some(SwarmError::Revoked.to_string());
                info.rate = 0;
                info.eta_secs = None;
                info.ended_at = Some(proto::timefmt::format_ms(svc::unix_millis()));
                info!(id = %job.id, peer = %job.owner_name, "pull of {} ended: access revoked", job.name);
                transfers.end_swarm(info).await;
                transfers.swarm_stopped(job.id);
            }
            Err(SwarmError::Stopped) => {
                let cancelled = transfers
                    .swarm(job.id)
                    .is_some_and(|t| t.state == TransferState::Cancelled);
                if cancelled {
                    remove_part(&job).await;
                }
                transfers.swarm_stopped(job.id);
            }
            Err(e) => {
                let mut info = transfers.swarm(job.id).unwrap_or_else(|| job.info());
                info.state = TransferState::Failed;
                info.error = Some(e.to_string());
                info.rate = 0;
                info.eta_secs = None;
                info.ended_at = Some(proto::timefmt::format_ms(svc::unix_millis()));
                transfers.end_swarm(info).await;
            }
        }
    }

    /// `job`'s chunk values and sources, from the owner or any source that answers, tried
    /// again with backoff until one does. [`SwarmError::Revoked`] as soon as the owner
    /// answers that it refuses us the share (whatever the other sources would give: a hash
    /// is never a capability); [`SwarmError::Stopped`] if `stop` is cancelled first. An owner
    /// that cannot be reached is waited for like any source.
    async fn reconnect(
        self: &Arc<Self>,
        job: &SwarmJob,
        stop: &CancellationToken,
    ) -> Result<Ready, SwarmError> {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        loop {
            match self.try_reconnect(job, stop).await {
                Ok(ready) => return Ok(ready),
                Err(Unready::Revoked) => return Err(SwarmError::Revoked),
                Err(Unready::Waiting(e)) => {
                    info!(id = %job.id, "pull of {} waits for a source: {e}", job.name);
                }
            }
            let wait = backoff.next_delay(random_unit());
            tokio::select! {
                () = stop.cancelled() => return Err(SwarmError::Stopped),
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// `job`'s chunk values from the first of its owner and its sources that gives them,
    /// that peer as the first source, and the others (with the peers known online) asked
    /// again, each joining as it answers. The owner, asked first, is asked before anything
    /// else whether it still lets us read the share: when it refuses, nothing is fetched.
    async fn try_reconnect(
        self: &Arc<Self>,
        job: &SwarmJob,
        stop: &CancellationToken,
    ) -> Result<Ready, Unready> {
        let count = proto::transfer::chunk_count(job.size);
        let mut peers: Vec<PeerId> = std::iter::once(job.owner)
            .chain(job.sources.iter().copied())
            .collect();
        for p in self.online_others(job.owner) {
            if !peers.contains(&p) {
                peers.push(p);
            }
        }
        let order: Vec<String> = std::iter::once(job.owner_name.to_string())
            .chain(peers[1..].iter().map(|p| self.peer_name(*p)))
            .collect();
        let mut last = None;
        for (i, p) in peers.iter().take(1 + job.sources.len()).enumerate() {
            let attempt = async {
                let mut link = self.connect(*p).await?;
                if *p == job.owner && refuses_read(&mut link, job).await? {
                    let _ = link.conn.shutdown().await;
                    return Ok(None);
                }
                let list = Arc::new(manifest(&mut link, job.content, job.size).await?);
                let first = source(link, job.content, count, *p == job.owner).await?;
                Ok::<_, SharesError>(Some((list, first)))
            };
            match attempt.await {
                Ok(None) => return Err(Unready::Revoked),
                Ok(Some((list, first))) => {
                    let rest: Vec<PeerId> = peers
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, p)| *p)
                        .collect();
                    let (to, joining) = mpsc::unbounded_channel();
                    let content = (job.content, count, job.owner);
                    self.ask_sources(rest, content, false, to, stop.clone());
                    return Ok(Ready {
                        list,
                        sources: vec![first],
                        joining,
                        order,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(Unready::Waiting(last.unwrap_or_else(|| {
            SharesError::Offline(job.owner_name.to_string())
        })))
    }

    /// Fetches `job` from `ready` into its part file, after the chunks this machine holds
    /// already, serving its verified chunks while it runs, and finishes the file: the pull
    /// as it ended.
    async fn fetch(
        self: &Arc<Self>,
        transfers: &Transfers,
        job: &SwarmJob,
        ready: Ready,
        stop: CancellationToken,
    ) -> Result<TransferInfo, SwarmError> {
        let Ready {
            list,
            sources,
            joining,
            order,
        } = ready;
        let tag = part_tag(&job.content);
        let total = job.size;
        let copies = self.local_copies(&job.content);
        let opened = {
            let (dir, name, list) = (job.dir.clone(), job.name.clone(), list.clone());
            tokio::task::spawn_blocking(move || {
                let d = Dest::open(&dir)?;
                let part = d.create_part(&tag, &[&name], total)?;
                let mut have = fetch::verified_on_disk(&part, &list)?;
                let reused = local::take_local(&part, &list, &mut have, &dir, &name, &copies)?;
                let partial = Partial::of_part(list, &dir, &name, &part, &have)?;
                Ok::<_, crate::files::FilesError>((part, have, reused, partial))
            })
            .await
            .expect("part file task")
        };
        let (part, have, reused, partial) = opened?;
        let serving = self.partials().register(Arc::new(partial));
        let part = Arc::new(part);
        let mut shown = transfers.swarm(job.id).unwrap_or_else(|| job.info());
        let started = Instant::now();
        let mut last = started;
        let (verified, to_store) = tokio::sync::watch::channel(shown.done_bytes);
        let run = fetch::run(
            list.clone(),
            part.clone(),
            have,
            (sources, joining),
            (stop, || self.read_revoked(job)),
            |index| serving.partial().mark(index),
            |done, sources| {
                verified.send_replace(done);
                let now = Instant::now();
                if now.duration_since(last) < PROGRESS_EVERY {
                    return;
                }
                last = now;
                let secs = now.duration_since(started).as_secs_f64().max(0.001);
                shown.done_bytes = done;
                shown.rate = (done as f64 / secs) as u64;
                shown.eta_secs = (shown.rate > 0).then(|| (total - done) / shown.rate);
                shown.sources = sources.to_vec();
                transfers.swarm_progress(shown.clone());
            },
        );
        let fetched = tokio::select! {
            r = run => r,
            never = transfers.keep_swarm_progress(job.id, to_store) => match never {},
        };
        // Unlisted before the part file is finished, or removed by a cancel.
        drop(serving);
        let mut report = fetched?;
        report.sources.sort_by_key(|s| {
            order
                .iter()
                .position(|o| o == s.peer.as_str())
                .unwrap_or(usize::MAX)
        });
        let part = Arc::into_inner(part).expect("the fetch let go of the part file");
        let landed = tokio::task::spawn_blocking(move || part.finish())
            .await
            .expect("finish task")?;
        let drew: Vec<String> = report
            .sources
            .iter()
            .map(|s| format!("{}={}", s.peer, s.bytes))
            .collect();
        let path = shown_path(&job.share, job.path.as_deref());
        info!(target: svc::logging::ACTIVITY, op = "get", peer = %job.owner_name, share = %job.share, path = %path, sources = %drew.join(","), reused, wasted = report.wasted, took_ms = report.took.as_millis() as u64, endgame_ms = report.endgame.as_millis() as u64, "multi-source get done");
        let mut info = job.info();
        info.state = TransferState::Done;
        info.done_bytes = total;
        info.landed = vec![landed.to_string()];
        info.ended_at = Some(proto::timefmt::format_ms(svc::unix_millis()));
        info.local_path = Some(job.dir.join(landed.to_path_buf()).display().to_string());
        info.sources = report.sources;
        Ok(info)
    }
}

/// Removes the part file of `job` (cancelled): the chunks fetched go with it.
async fn remove_part(job: &SwarmJob) {
    let (dir, name, tag) = (job.dir.clone(), job.name.clone(), part_tag(&job.content));
    let removed =
        tokio::task::spawn_blocking(move || Dest::open(&dir)?.remove_part(&tag, &[&name]))
            .await
            .expect("part removal task");
    if let Err(e) = removed {
        tracing::warn!(id = %job.id, "cannot remove the part file of {}: {e}", job.name);
    }
}

/// `SHARE/PATH` for messages.
fn shown(share: &ShareName, rel: Option<&RelPath>) -> String {
    shown_path(share.as_str(), rel.map(RelPath::as_str))
}

fn shown_path(share: &str, rel: Option<&str>) -> String {
    match rel {
        Some(p) => format!("{share}/{p}"),
        None => share.to_owned(),
    }
}

/// Whether `link`'s peer, `job`'s owner, refuses us the share `job` names (`Denied`: our
/// read right revoked, or the share removed). A share or path stored unreadable is never
/// taken as a refusal.
async fn refuses_read(link: &mut Remote, job: &SwarmJob) -> Result<bool, SharesError> {
    let Ok(share) = ShareName::new(&job.share) else {
        return Ok(false);
    };
    let path = match job.path.as_deref().map(RelPath::new) {
        Some(Ok(p)) => Some(p),
        Some(Err(_)) => return Ok(false),
        None => None,
    };
    let answer = link.ask(Request::Stat { share, path }).await?;
    Ok(matches!(answer, Response::Error(e) if e.kind == ErrorKind::Denied))
}

/// What `link`'s peer has at `rel` of `share`.
async fn look_up(
    link: &mut Remote,
    share: &ShareName,
    rel: Option<&RelPath>,
) -> Result<Looked, SharesError> {
    let stat = Request::Stat {
        share: share.clone(),
        path: rel.cloned(),
    };
    let entry = match link.ask(stat).await? {
        Response::Stat(e) => e,
        Response::Error(e) if e.kind == ErrorKind::NotFound => {
            return Err(SharesError::NotFound {
                path: shown(share, rel),
                peer: link.peer.clone(),
            });
        }
        other => return Err(link.refused(Some(share), other)),
    };
    Ok(match (entry.kind, entry.id) {
        (EntryKind::File, Some(id)) => Looked::File(entry.name.as_str().to_owned(), id, entry.size),
        (EntryKind::File, None) => Looked::Unhashed,
        _ => Looked::Dir,
    })
}

/// The chunk values of `id` (`len` bytes) from `link`, page by page, checked against `id`.
async fn manifest(link: &mut Remote, id: ContentId, len: u64) -> Result<ChunkList, SharesError> {
    let want = proto::transfer::chunk_count(len);
    let mut cvs: Vec<ChunkCv> = Vec::new();
    while (cvs.len() as u64) < want {
        let ask = Request::GetManifest {
            id,
            first: cvs.len() as u64,
        };
        match link.ask(ask).await? {
            Response::Manifest(ManifestPage {
                id: got,
                len: l,
                first,
                cvs: page,
            }) if got == id && l == len && first == cvs.len() as u64 && !page.is_empty() => {
                cvs.extend(page);
            }
            other => return Err(link.refused(None, other)),
        }
    }
    ChunkList::new(id, len, cvs).map_err(|e| SharesError::Remote {
        peer: link.peer.clone(),
        message: format!("its chunk values do not match the content id: {e}"),
    })
}

/// `link` as a source of `id` (`count` chunks): what it holds, by `Have`; `owner` when its
/// peer names the content.
async fn source(
    mut link: Remote,
    id: ContentId,
    count: u64,
    owner: bool,
) -> Result<SourceLink, SharesError> {
    let holds = if count == 0 {
        Holds::All
    } else {
        let q = Request::Have(HaveQuery::Chunks {
            id,
            first: 0,
            count: u32::try_from(count).unwrap_or(u32::MAX),
        });
        match link.ask(q).await? {
            Response::Have(bits) => holds_of(&bits, count),
            other => return Err(link.refused(None, other)),
        }
    };
    let (conn, next_id, name): (_, _, PeerName) = link.into_parts();
    Ok(SourceLink {
        name,
        conn,
        next_id,
        holds,
        owner,
    })
}

fn holds_of(bits: &Bitfield, count: u64) -> Holds {
    let v: Vec<bool> = (0..count).map(|i| bits.get(i as u32)).collect();
    if v.iter().all(|b| *b) {
        Holds::All
    } else {
        Holds::Some(v)
    }
}

fn holds_any(h: &Holds) -> bool {
    match h {
        Holds::All => true,
        Holds::Some(v) => v.iter().any(|b| *b),
    }
}
