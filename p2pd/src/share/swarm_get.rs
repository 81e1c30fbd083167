//! `get --from`: one file of a share fetched from the named peer and every other source at
//! once. The named peer names the content (`Stat`, then its chunk values by `GetManifest`,
//! checked against the content id); each source says which chunks it holds (`Have`); the
//! chunks come through [`crate::swarm::fetch`] into a part file in the destination, which
//! is finished (fsync, rename that never replaces) once every chunk is verified. The part
//! file's name depends only on the content, so running the same `get` again after an
//! interruption keeps the chunks already written. Before any source is asked, the chunks
//! found on this machine are taken ([`crate::swarm::local`]); while it runs, the download
//! is listed in [`crate::swarm::partial`] so its verified chunks are served to peers that
//! may read the share it lands in.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::api::{Direction, TransferInfo, TransferKind, TransferState};
use proto::content::{ChunkCv, ChunkList};
use proto::share::{
    Bitfield, ContentId, EntryKind, ErrorKind, HaveQuery, ManifestPage, Request, Response,
    ShareName,
};
use proto::transfer::{RelPath, TransferId};
use proto::{PeerId, PeerName};
use tracing::info;

use super::remote::Remote;
use super::{Shares, SharesError};
use crate::files::Dest;
use crate::swarm::fetch::{self, SourceLink, SwarmError};
use crate::swarm::local;
use crate::swarm::partial::Partial;
use crate::swarm::scheduler::Holds;
use crate::transfer::pull::{Found, Placement, look, placement};

/// Progress shown at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

impl Shares {
    /// Pulls the file at `rel` of `share` from `peer` and the `from` peers at once into
    /// `dest` (checked by the caller to be a valid destination).
    pub(super) async fn swarm_get(
        &self,
        peer: PeerId,
        share: &ShareName,
        rel: Option<RelPath>,
        dest: PathBuf,
        from: &[PeerId],
    ) -> Result<TransferInfo, SharesError> {
        let mut link = self.connect(peer).await?;
        let shown = match &rel {
            Some(p) => format!("{share}/{p}"),
            None => share.to_string(),
        };
        let stat = Request::Stat {
            share: share.clone(),
            path: rel.clone(),
        };
        let entry = match link.ask(stat).await? {
            Response::Stat(e) => e,
            Response::Error(e) if e.kind == ErrorKind::NotFound => {
                return Err(SharesError::NotFound {
                    path: shown,
                    peer: link.peer.clone(),
                });
            }
            other => return Err(link.refused(Some(share), other)),
        };
        if entry.kind != EntryKind::File {
            return Err(SharesError::Remote {
                peer: link.peer.clone(),
                message: format!(
                    "{shown} is a directory: get --from fetches one file (get the directory \
                     without --from)"
                ),
            });
        }
        let Some(id) = entry.id else {
            return Err(SharesError::Remote {
                peer: link.peer.clone(),
                message: format!("{shown} is not hashed yet; try again shortly"),
            });
        };
        let list = Arc::new(manifest(&mut link, id, entry.size).await?);
        let (dir, name) = match placement(
            &dest,
            look(&dest),
            dest.parent().map_or(Found::Nothing, look),
        )
        .map_err(crate::transfer::TransferError::Destination)?
        {
            Placement::Into(dir) => (dir, entry.name.as_str().to_owned()),
            Placement::Named { dir, name } => (dir, name),
        };
        let mut sources = vec![source(link, id, &list).await?];
        for p in from {
            if *p == peer {
                continue;
            }
            let name = self.peer_name(*p);
            let holds = match self.connect(*p).await {
                Ok(l) => source(l, id, &list).await,
                Err(e) => Err(e),
            };
            match holds {
                Ok(s) => sources.push(s),
                Err(e) => info!(peer = %name, "not a source for {shown}: {e}"),
            }
        }
        let tag = crate::swarm::partial::part_tag(&id);
        let total = list.len();
        let copies = self.local_copies(&id);
        let opened = {
            let (dir, name, list) = (dir.clone(), name.clone(), list.clone());
            tokio::task::spawn_blocking(move || {
                let d = Dest::open(&dir)?;
                let part = d.create_part(&tag, &[&name], total)?;
                let mut have = fetch::verified_on_disk(&part, &list)?;
                let reused = local::take_local(&part, &list, &mut have, &dir, &name, &copies)?;
                let partial = Partial::of_part(list, &dir, &part, &have)?;
                Ok::<_, crate::files::FilesError>((part, have, reused, partial))
            })
            .await
            .expect("part file task")
        };
        let (part, have, reused, partial) = opened.map_err(SwarmError::from)?;
        let serving = self.partials().register(Arc::new(partial));
        let part = Arc::new(part);
        let who = self.peer_name(peer);
        let mut tid = [0u8; 16];
        tid.copy_from_slice(&id.as_bytes()[..16]);
        let mut shown_info = TransferInfo {
            id: TransferId(tid),
            peer,
            peer_name: PeerName::new(&who).unwrap_or_else(|_| sources[0].name.clone()),
            direction: Direction::In,
            state: TransferState::Running,
            files: 1,
            sample: vec![name.clone()],
            total_bytes: total,
            done_bytes: 0,
            rate: 0,
            eta_secs: None,
            local_path: Some(dir.display().to_string()),
            error: None,
            kind: TransferKind::Pull,
            created_at: Some(proto::timefmt::format_ms(svc::unix_millis())),
            ended_at: None,
            landed: Vec::new(),
            sources: Vec::new(),
        };
        let transfers = self.transfers.get().cloned();
        let show = |info: &TransferInfo| {
            if let Some(t) = &transfers {
                t.show_swarm(info.clone());
            }
        };
        show(&shown_info);
        let started = Instant::now();
        let mut last = started;
        let fetched = fetch::run(
            list.clone(),
            part.clone(),
            have,
            sources,
            self.cancel.child_token(),
            |index| serving.partial().mark(index),
            |done, sources| {
                let now = Instant::now();
                if now.duration_since(last) < PROGRESS_EVERY {
                    return;
                }
                last = now;
                let mut info = shown_info.clone();
                let secs = now.duration_since(started).as_secs_f64().max(0.001);
                info.done_bytes = done;
                info.rate = (done as f64 / secs) as u64;
                info.eta_secs = (info.rate > 0).then(|| (total - done) / info.rate);
                info.sources = sources.to_vec();
                show(&info);
            },
        )
        .await;
        drop(serving);
        let finished = match fetched {
            Ok(report) => {
                let part = Arc::into_inner(part).expect("the fetch let go of the part file");
                tokio::task::spawn_blocking(move || part.finish())
                    .await
                    .expect("finish task")
                    .map_err(SwarmError::from)
                    .map(|name| (name, report))
            }
            Err(e) => Err(e),
        };
        let (final_name, report) = match finished {
            Ok(f) => f,
            Err(e) => {
                shown_info.state = TransferState::Failed;
                shown_info.error = Some(e.to_string());
                shown_info.ended_at = Some(proto::timefmt::format_ms(svc::unix_millis()));
                show(&shown_info);
                return Err(e.into());
            }
        };
        let at = dir.join(final_name.to_path_buf());
        let drew: Vec<String> = report
            .sources
            .iter()
            .map(|s| format!("{}={}", s.peer, s.bytes))
            .collect();
        info!(target: svc::logging::ACTIVITY, op = "get", peer = %who, share = %share, path = %shown, sources = %drew.join(","), reused, wasted = report.wasted, took_ms = report.took.as_millis() as u64, endgame_ms = report.endgame.as_millis() as u64, "multi-source get done");
        shown_info.state = TransferState::Done;
        shown_info.done_bytes = total;
        shown_info.rate = 0;
        shown_info.eta_secs = None;
        shown_info.sample = vec![name.clone()];
        shown_info.landed = vec![final_name.to_string()];
        shown_info.ended_at = Some(proto::timefmt::format_ms(svc::unix_millis()));
        shown_info.local_path = Some(at.display().to_string());
        shown_info.sources = report.sources;
        show(&shown_info);
        Ok(shown_info)
    }
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

/// `link` as a source of `id`: what it holds, by `Have`.
async fn source(
    mut link: Remote,
    id: ContentId,
    list: &ChunkList,
) -> Result<SourceLink, SharesError> {
    let count = list.cvs().len() as u64;
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
    let (conn, next_id, name) = link.into_parts();
    Ok(SourceLink {
        name,
        conn,
        next_id,
        holds,
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
