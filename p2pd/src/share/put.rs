//! Puts served here: `Put` then its `PutChunk`s on one share link (design §2 "Writes").
//!
//! `Put` is checked for `write`, its path (the directory reached from the share's root with
//! no symlink, the target a regular file or absent), the share's quota and the free space
//! of its filesystem, and a first compare and swap against what the path holds; then a
//! staging file is made beside the target (`.p2p-put-<random>.part`, which the index never
//! serves) and the put waits for its chunks, in a table of the link's puts in progress
//! ([`LinkPuts`]; at most [`PER_LINK`] per link and [`IN_ALL`] in the daemon). Each chunk is
//! checked for `write` again (a revoke stops a put at its next chunk), for its length and
//! for being new, then written at its offset and answered. After the last, the staged file
//! is hashed and checked against the put's content id, synced, and under the share's write
//! lock checked once more against `replaces`; what the path held is kept as a version, the
//! staged file renamed over it, the directory synced, the index refreshed for the path, and
//! the `Put` answered (a `Conflict` refreshes it too, so that the client's next `Stat` shows
//! what the path holds now). A put that
//! fails, is cancelled, or whose link ends leaves nothing: its staging file is removed.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use proto::PeerId;
use proto::share::rules;
use proto::share::{
    ContentId, ErrorKind, Request, RequestId, Response, ResponseFrame, ShareError, ShareName,
};
use proto::transfer::{RelPath, chunk_count, chunk_range};
use tracing::info;

use super::Shares;
use super::put_fs::{self, Current, Staging};

/// Most puts in progress on one link.
pub(super) const PER_LINK: usize = 4;

/// Most puts in progress in the daemon, all links together.
pub(super) const IN_ALL: usize = 32;

/// How long a put waits for the index to hash the file it would replace.
const HASH_WAIT: Duration = Duration::from_secs(120);

/// Puts in progress in the daemon.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// One place among the daemon's [`IN_ALL`] puts, given back on drop.
struct Slot;

impl Slot {
    fn take() -> Option<Slot> {
        RUNNING
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < IN_ALL).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One put waiting for its chunks.
struct Pending {
    share: ShareName,
    path: RelPath,
    size: u64,
    id: ContentId,
    replaces: Option<ContentId>,
    /// The target's name in the staging file's directory.
    name: String,
    staging: Staging,
    /// Chunks written.
    got: BTreeSet<u64>,
    _slot: Slot,
}

/// The puts in progress on one link, by the id of their `Put`. Dropping it (the link ended)
/// removes their staging files.
#[derive(Default)]
pub(super) struct LinkPuts {
    pending: HashMap<RequestId, Pending>,
}

impl LinkPuts {
    /// Stops the put of request `id`, if one is in progress; whether one was.
    pub(super) fn cancel(&mut self, id: RequestId) -> bool {
        self.pending.remove(&id).is_some()
    }
}

fn frame(id: RequestId, response: Response) -> ResponseFrame {
    ResponseFrame { id, response }
}

fn refuse(kind: ErrorKind, message: &str) -> ShareError {
    ShareError::new(kind, message)
}

/// Runs blocking disk work off the runtime's workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ShareError> + Send + 'static,
) -> Result<T, ShareError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(refuse(ErrorKind::Busy, &format!("the put stopped: {e}"))))
}

impl Shares {
    /// The answers to a `Put` or `PutChunk` request `id` from `peer` on a link whose puts
    /// are `puts`: none (a `Put` whose chunks are still to come), one, or two (a chunk's and
    /// then its `Put`'s, when it completed or ended the put).
    pub(super) async fn serve_put(
        &self,
        peer: PeerId,
        id: RequestId,
        request: Request,
        puts: &mut LinkPuts,
    ) -> Vec<ResponseFrame> {
        let put_share = match &request {
            Request::PutChunk { put, .. } => puts.pending.get(put).map(|p| p.share.clone()),
            _ => None,
        };
        let checked = rules::check(&*self.lock(), &peer, &request, put_share.as_ref());
        match request {
            Request::Put {
                share,
                path,
                size,
                id: content,
                replaces,
            } => {
                let begun = match checked {
                    Ok(()) => {
                        let ask = Ask {
                            share: share.clone(),
                            path: path.clone(),
                            size,
                            id: content,
                            replaces,
                        };
                        self.begin_put(peer, id, ask, puts).await
                    }
                    Err(e) => Err(e),
                };
                match begun {
                    Ok(None) => Vec::new(),
                    Ok(Some(done)) => vec![frame(id, done)],
                    Err(e) => {
                        self.log_put(peer, &share, &path, size, Err(&e));
                        if e.kind == ErrorKind::Conflict {
                            self.reindex(&share, &path).await;
                        }
                        vec![frame(id, Response::Error(e))]
                    }
                }
            }
            Request::PutChunk { put, index, data } => {
                let Some(share) = put_share else {
                    return vec![frame(id, Response::Error(refuse_unknown(checked, put)))];
                };
                let step = match checked {
                    Ok(()) => self.put_chunk(put, index, data, puts).await,
                    Err(e) => Err(e),
                };
                match step {
                    Ok(false) => vec![frame(id, Response::Done)],
                    Ok(true) => {
                        let Some(p) = puts.pending.remove(&put) else {
                            return vec![frame(id, Response::Done)];
                        };
                        let done = self.finish_put(peer, p).await;
                        vec![frame(id, Response::Done), frame(put, done)]
                    }
                    Err(e) => {
                        // The put ends with its chunk: nothing of it lands.
                        let ended = puts.pending.remove(&put);
                        if let Some(p) = &ended {
                            self.log_put(peer, &share, &p.path, p.size, Err(&e));
                        }
                        let why = format!("the put ended: {}", e.message.as_str());
                        vec![
                            frame(id, Response::Error(e.clone())),
                            frame(put, Response::Error(refuse(e.kind, &why))),
                        ]
                    }
                }
            }
            other => vec![frame(
                id,
                Response::error(ErrorKind::Invalid, &format!("not a put: {}", other.tag())),
            )],
        }
    }

    /// Checks a `Put` and makes its staging file; `Some` answer at once for an empty file.
    async fn begin_put(
        &self,
        peer: PeerId,
        id: RequestId,
        ask: Ask,
        puts: &mut LinkPuts,
    ) -> Result<Option<Response>, ShareError> {
        if puts.pending.contains_key(&id) {
            return Err(refuse(
                ErrorKind::Invalid,
                &format!("request id {} is taken by a put in progress", id.0),
            ));
        }
        if puts.pending.len() >= PER_LINK {
            return Err(refuse(
                ErrorKind::Busy,
                &format!("at most {PER_LINK} puts at once on one link"),
            ));
        }
        let slot = Slot::take().ok_or_else(|| {
            refuse(
                ErrorKind::Busy,
                "too many puts in progress here; try again shortly",
            )
        })?;
        let (root, index, quota) = {
            let live = self.lock();
            let Some(s) = live.get(&ask.share) else {
                return Err(rules::denied(&ask.share, rules::Access::Write));
            };
            let index = s.index.clone().map_err(|e| {
                refuse(
                    ErrorKind::Busy,
                    &format!("{} cannot be served now: {e}", ask.share),
                )
            })?;
            (PathBuf::from(&s.row.path), index, write_quota(&s.row))
        };
        let shown = format!("{}/{}", ask.share, ask.path);
        let (path, size) = (ask.path.clone(), ask.size);
        let shown2 = shown.clone();
        let (target, current) = blocking(move || {
            let (target, current) = put_fs::open_target(&root, &path)?;
            put_fs::fits_on_disk(&shown2, size, put_fs::free_space(&target.dir)?)?;
            Ok((target, current))
        })
        .await?;
        let replaced = match current {
            Current::File(n) => n,
            Current::Absent => 0,
        };
        if quota.is_some() {
            // The share's total counts only once its first walk is done.
            match tokio::time::timeout(HASH_WAIT, index.ready()).await {
                Ok(Ok(())) => {}
                _ => {
                    return Err(refuse(
                        ErrorKind::Busy,
                        &format!("{} is still being indexed; try again shortly", ask.share),
                    ));
                }
            }
        }
        let total = index.stats().totals.bytes;
        put_fs::within_quota(ask.share.as_str(), ask.size, total, replaced, quota)?;
        // The first compare and swap, against the index's hash (made now if it has none),
        // or what the disk holds if the index has not seen the file yet.
        let dir = Arc::new(target.dir);
        let seen = match current {
            Current::Absent => None,
            Current::File(_) => {
                match tokio::time::timeout(HASH_WAIT, index.hash(&ask.path)).await {
                    Ok(Ok(h)) => Some(ContentId(h)),
                    _ => {
                        let (d, name) = (dir.clone(), target.name.clone());
                        blocking(move || put_fs::current_id(&*d, &name)).await?
                    }
                }
            }
        };
        if seen != ask.replaces {
            return Err(changed(&ask.share, &ask.path));
        }
        let staging = blocking(move || Staging::create(dir)).await?;
        let p = Pending {
            share: ask.share,
            path: ask.path,
            size: ask.size,
            id: ask.id,
            replaces: ask.replaces,
            name: target.name,
            staging,
            got: BTreeSet::new(),
            _slot: slot,
        };
        if chunk_count(p.size) == 0 {
            return Ok(Some(self.finish_put(peer, p).await));
        }
        puts.pending.insert(id, p);
        Ok(None)
    }

    /// Writes one chunk of the put `put`; whether it was the last.
    async fn put_chunk(
        &self,
        put: RequestId,
        index: u64,
        data: Bytes,
        puts: &mut LinkPuts,
    ) -> Result<bool, ShareError> {
        let Some(p) = puts.pending.get_mut(&put) else {
            return Err(refuse(
                ErrorKind::Invalid,
                &format!("no put {} in progress on this link", put.0),
            ));
        };
        let Some((offset, len)) = chunk_range(p.size, index) else {
            return Err(refuse(
                ErrorKind::Invalid,
                &format!("a file of {} bytes has no chunk {index}", p.size),
            ));
        };
        if data.len() as u64 != len {
            return Err(refuse(
                ErrorKind::Invalid,
                &format!("chunk {index} holds {len} bytes, not {}", data.len()),
            ));
        }
        if p.got.contains(&index) {
            return Err(refuse(
                ErrorKind::Invalid,
                &format!("chunk {index} came twice"),
            ));
        }
        let file = p.staging.file.clone();
        blocking(move || {
            use crate::fsx::FileAt;
            file.write_all_at(&data, offset)
                .map_err(|e| refuse(ErrorKind::Busy, &format!("cannot write chunk {index}: {e}")))
        })
        .await?;
        p.got.insert(index);
        Ok(p.got.len() as u64 == chunk_count(p.size))
    }

    /// Checks the whole staged file and puts it in place: the answer to its `Put`.
    async fn finish_put(&self, peer: PeerId, p: Pending) -> Response {
        let (share, path, size) = (p.share.clone(), p.path.clone(), p.size);
        let r = self.land(peer, p).await;
        self.log_put(peer, &share, &path, size, r.as_ref().map(|_| ()));
        if r.as_ref().is_err_and(|e| e.kind == ErrorKind::Conflict) {
            // So that the client's next look shows what is there now.
            self.reindex(&share, &path).await;
        }
        match r {
            Ok(()) => Response::Done,
            Err(e) => Response::Error(e),
        }
    }

    async fn land(&self, peer: PeerId, mut p: Pending) -> Result<(), ShareError> {
        let (file, size, want) = (p.staging.file.clone(), p.size, p.id);
        blocking(move || {
            let got = put_fs::content_of(&file, size)
                .map_err(|e| refuse(ErrorKind::Busy, &format!("cannot read it back: {e}")))?;
            if got != want {
                return Err(refuse(
                    ErrorKind::Invalid,
                    &format!(
                        "the bytes received are not content {} (they hash to {})",
                        want.short(),
                        got.short()
                    ),
                ));
            }
            file.sync_all()
                .map_err(|e| refuse(ErrorKind::Busy, &format!("cannot sync it: {e}")))
        })
        .await?;
        let guard = self
            .write_lock(&p.share)
            .await
            .map_err(|_| rules::denied(&p.share, rules::Access::Write))?;
        let (dir, name) = (p.staging.dir.clone(), p.name.clone());
        let now = blocking(move || {
            let id = put_fs::current_id(&*dir, &name)?;
            Ok((id, put_fs::current_len(&*dir, &name)))
        })
        .await?;
        if now.0 != p.replaces {
            return Err(changed(&p.share, &p.path));
        }
        // Again under the lock: puts on other links may have landed since the first check.
        let (quota, total) = self.quota_and_total(&p.share);
        put_fs::within_quota(p.share.as_str(), p.size, total, now.1, quota)?;
        self.keep_replaced(&p.share, &p.path, peer).await?;
        let name = p.name.clone();
        let (staging, placed) = blocking(move || {
            let placed = p.staging.place(&name);
            Ok((p.staging, placed))
        })
        .await?;
        drop(staging);
        placed.map_err(|e| refuse(ErrorKind::Busy, &format!("cannot put it in place: {e}")))?;
        // Refreshed before the lock goes, so the next put's quota check counts this file.
        self.reindex(&p.share, &p.path).await;
        drop(guard);
        Ok(())
    }

    /// The share's quota and the bytes its index holds now.
    fn quota_and_total(&self, share: &ShareName) -> (Option<u64>, u64) {
        let live = self.lock();
        let Some(s) = live.get(share) else {
            return (None, 0);
        };
        let total = s.index.as_ref().map_or(0, |ix| ix.stats().totals.bytes);
        (write_quota(&s.row), total)
    }

    /// Keeps what `path` holds now as a version (by `by`), before a put replaces it. Called
    /// with the share's write lock held.
    async fn keep_replaced(
        &self,
        share: &ShareName,
        path: &RelPath,
        by: PeerId,
    ) -> Result<(), ShareError> {
        self.archive(share, path, Some(by))
            .await
            .map(|_| ())
            .map_err(|e| {
                refuse(
                    ErrorKind::Busy,
                    &format!("cannot keep the version replaced: {e}"),
                )
            })
    }

    /// Brings the index up to date with `path` after a put.
    async fn reindex(&self, share: &ShareName, path: &RelPath) {
        let index = self.lock().get(share).and_then(|s| s.index.clone().ok());
        if let Some(index) = index {
            let _ = index.refresh(std::slice::from_ref(path)).await;
        }
    }

    /// The activity-log line of a put from `peer`: done, or refused or failed and why.
    fn log_put(
        &self,
        peer: PeerId,
        share: &ShareName,
        path: &RelPath,
        bytes: u64,
        outcome: Result<(), &ShareError>,
    ) {
        let who = self.peer_name(peer);
        match outcome {
            Ok(()) => {
                info!(target: svc::logging::ACTIVITY, op = "put", peer = %who, peer_id = %peer, share = %share, path = %path, bytes, "put received");
            }
            Err(e) => {
                let op = if e.kind == ErrorKind::Denied {
                    "put-denied"
                } else {
                    "put-failed"
                };
                info!(target: svc::logging::ACTIVITY, op, peer = %who, peer_id = %peer, share = %share, path = %path, bytes, error = e.message.as_str(), "put refused");
            }
        }
    }
}

/// What a `Put` asks.
struct Ask {
    share: ShareName,
    path: RelPath,
    size: u64,
    id: ContentId,
    replaces: Option<ContentId>,
}

/// A `PutChunk` naming no put of this link: the check's own refusal.
fn refuse_unknown(checked: Result<(), ShareError>, put: RequestId) -> ShareError {
    checked.err().unwrap_or_else(|| {
        refuse(
            ErrorKind::Invalid,
            &format!("no put {} in progress on this link", put.0),
        )
    })
}

/// The `Conflict` of a put whose path no longer holds what the client saw.
fn changed(share: &ShareName, path: &RelPath) -> ShareError {
    refuse(
        ErrorKind::Conflict,
        &format!("{share}/{path} changed since you read it"),
    )
}

/// The share's quota on what peers write, in bytes (none: no limit).
fn write_quota(row: &super::store::ShareRow) -> Option<u64> {
    row.write_quota
}
