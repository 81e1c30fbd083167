//! Multi-source pulls (a `get` drawing one file from several peers) as the transfer service
//! keeps them: one row each in `swarm_pulls` (what, from whom, where to, how it stands),
//! loaded at start so that `transfers` lists them across a restart and those a stop
//! interrupted go back to the share service, which resumes them; in memory, how each stands
//! now and which are being fetched. The fetching itself is the share service's
//! (`share/swarm_get.rs`); the chunks already fetched are in its part file.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use proto::api::{PullSource, TransferInfo, TransferState};
use proto::share::ContentId;
use proto::transfer::TransferId;
use proto::{PeerId, PeerName};
use rusqlite::params;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::records::{TransferStore, bad};
use super::{TransferError, Transfers};
use crate::store::StoreError;

/// A multi-source pull: what it fetches, from whom, and where it lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmJob {
    /// Its transfer id ([`SwarmJob::new_id`]).
    pub id: TransferId,
    /// The content.
    pub content: ContentId,
    /// Its size in bytes.
    pub size: u64,
    /// The peer whose share names the content; its chunk values are asked of it first.
    pub owner: PeerId,
    /// That peer's name when the pull began.
    pub owner_name: PeerName,
    /// The share, on `owner`.
    pub share: String,
    /// The path in the share.
    pub path: Option<String>,
    /// The existing directory the file lands in.
    pub dir: PathBuf,
    /// The name it lands under (`name (1)` if that is taken by then).
    pub name: String,
    /// The other peers it draws from, in order.
    pub sources: Vec<PeerId>,
    /// When it began, in ms since the Unix epoch.
    pub created_ms: u64,
}

impl SwarmJob {
    /// A new transfer id for a pull: random, so that no peer can foresee it (a pull of the
    /// same content is found by its content, and its part file is named after the content).
    pub fn new_id() -> Result<TransferId, TransferError> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id)
            .map_err(|e| TransferError::Destination(format!("no randomness: {e}")))?;
        Ok(TransferId(id))
    }

    /// How it is listed when it begins or resumes: running, nothing verified yet.
    pub fn info(&self) -> TransferInfo {
        let mut t = super::pull::pull_info(
            self.id,
            self.owner,
            self.owner_name.clone(),
            TransferState::Running,
            self.dir.display().to_string(),
            self.created_ms,
        );
        t.files = 1;
        t.sample = vec![self.name.clone()];
        t.total_bytes = self.size;
        t
    }
}

/// What [`Transfers::begin_swarm`] made of a pull.
#[derive(Debug)]
pub enum Begun {
    /// Claimed: listed as running, with the token that stops it.
    Started(TransferInfo, CancellationToken),
    /// A pull of the same content into the same place is being fetched: that one.
    Same(TransferInfo),
    /// A pull of the same content into another place is being fetched: that one.
    Elsewhere(TransferInfo),
}

/// A running pull's verified bytes are stored at most this often...
const STORE_PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// ... or once this many more are verified, whichever comes first.
const STORE_PROGRESS_BYTES: u64 = 16 << 20;

/// What the transfer service holds of the multi-source pulls.
#[derive(Debug, Default)]
pub(super) struct SwarmBook {
    /// Each one as it stands now, for `transfers`.
    pub(super) shown: HashMap<TransferId, TransferInfo>,
    /// Those being fetched now, with what stops each (a cancel, or the daemon stopping), the
    /// content and where each lands (directory, name).
    running: HashMap<TransferId, Running>,
    /// Those a stop interrupted, found at start, until the share service takes them.
    interrupted: Vec<SwarmJob>,
}

/// A pull being fetched: what stops it, its content, where it lands (directory, name).
type Running = (CancellationToken, ContentId, PathBuf, String);

impl SwarmBook {
    /// The pull of `content` being fetched, if any, with its id.
    fn running_of(&self, content: &ContentId) -> Option<(TransferId, &Running)> {
        self.running
            .iter()
            .find(|(_, r)| r.1 == *content)
            .map(|(id, r)| (*id, r))
    }

    /// Cancels the pull whose id starts with `text`, in one step: only from a state not
    /// final, listed cancelled at once; with what stops its task, if it runs. `None` if no
    /// such pull is listed.
    fn cancel(
        &mut self,
        text: &str,
    ) -> Option<Result<(TransferInfo, Option<CancellationToken>), TransferError>> {
        let mut found = self
            .shown
            .values()
            .filter(|t| t.id.to_string().starts_with(text));
        let mut info = found.next()?.clone();
        if found.next().is_some() {
            return Some(Err(TransferError::Ambiguous(text.to_owned())));
        }
        if info.state.is_final() {
            return Some(Err(TransferError::State {
                id: info.id,
                state: info.state,
                what: "it has ended",
            }));
        }
        info.state = TransferState::Cancelled;
        info.error = Some("cancelled by the receiver".into());
        info.rate = 0;
        info.eta_secs = None;
        info.ended_at = Some(proto::timefmt::format_ms(svc::unix_millis()));
        self.shown.insert(info.id, info.clone());
        let stop = self.running.get(&info.id).map(|r| r.0.clone());
        Some(Ok((info, stop)))
    }

    /// Lists pull `info.id` as `info` says while it runs, unless it has ended (a cancel):
    /// whether it did.
    fn progress(&mut self, info: &TransferInfo) -> bool {
        if self.shown.get(&info.id).is_some_and(|t| t.state.is_final()) {
            return false;
        }
        self.shown.insert(info.id, info.clone());
        true
    }

    /// Ends pull `info.id` as `info` says, unless it has ended already (a final state is
    /// never replaced): whether it did. Its task is let go of, unless it ends cancelled (then
    /// the task lets go once its part file is removed).
    fn end(&mut self, info: &TransferInfo) -> bool {
        if info.state != TransferState::Cancelled {
            self.running.remove(&info.id);
        }
        self.progress(info)
    }

    /// The pulls `transfers clear` forgets: those that ended, but not one whose task still
    /// runs (a cancelled one removing its part file, which it knows to do by its listing).
    fn clearable(&self) -> Vec<TransferId> {
        self.shown
            .values()
            .filter(|t| t.state.is_final() && !self.running.contains_key(&t.id))
            .map(|t| t.id)
            .collect()
    }
}

impl Transfers {
    /// Loads the stored multi-source pulls: all are listed; the unfinished ones wait for
    /// [`interrupted_swarms`](Self::interrupted_swarms).
    pub(super) async fn load_swarms(&self) {
        let rows = match self.records.swarms().await {
            Ok(rows) => rows,
            Err(e) => {
                warn!("cannot load the multi-source pulls: {e}");
                return;
            }
        };
        let mut book = self.lock_swarms();
        for (job, shown) in rows {
            if !shown.state.is_final() {
                book.interrupted.push(job);
            }
            book.shown.insert(shown.id, shown);
        }
    }

    /// The multi-source pulls a stop interrupted, to resume; given once.
    pub fn interrupted_swarms(&self) -> Vec<SwarmJob> {
        std::mem::take(&mut self.lock_swarms().interrupted)
    }

    /// Claims `job` for fetching: stored (when `fresh`: a new pull) and listed as running (a resumed one with the bytes stored as
    /// verified); with the token that stops it (`cancel`, or the daemon stopping). When a
    /// pull of that content is being fetched already, `job` is not taken: the caller shows
    /// that one, or refuses if it lands elsewhere.
    pub async fn begin_swarm(&self, job: &SwarmJob, fresh: bool) -> Result<Begun, TransferError> {
        let stop = self.cancel.child_token();
        let mut info = job.info();
        {
            let mut book = self.lock_swarms();
            if let Some((id, (stop, _, dir, name))) = book.running_of(&job.content) {
                if stop.is_cancelled() {
                    return Err(TransferError::Destination(format!(
                        "transfer {id} of the same content was cancelled and is still being removed; try again"
                    )));
                }
                let same = *dir == job.dir && *name == job.name;
                let that = book.shown.get(&id).cloned().unwrap_or_else(|| job.info());
                return Ok(if same {
                    Begun::Same(that)
                } else {
                    Begun::Elsewhere(that)
                });
            }
            let at = (stop.clone(), job.content, job.dir.clone(), job.name.clone());
            book.running.insert(job.id, at);
            if !fresh && let Some(stored) = book.shown.get(&job.id) {
                info.done_bytes = stored.done_bytes;
            }
        }
        if fresh && let Err(e) = self.records.put_swarm(job).await {
            self.lock_swarms().running.remove(&job.id);
            return Err(e.into());
        }
        // Listed as running (in place of the ended pull it resumes, if any).
        self.lock_swarms().shown.insert(info.id, info.clone());
        self.swarm_progress(info.clone());
        Ok(Begun::Started(info, stop))
    }

    /// Cancels the multi-source pull whose id starts with `text` (lower case, 6 characters or
    /// more): stopped, and ended `cancelled` so that no start resumes it. `None` if no such
    /// pull is listed.
    pub(super) async fn cancel_swarm(
        &self,
        text: &str,
    ) -> Option<Result<TransferInfo, TransferError>> {
        let (info, stop) = match self.lock_swarms().cancel(text)? {
            Ok(cancelled) => cancelled,
            Err(e) => return Some(Err(e)),
        };
        // Listed as cancelled before it stops, so that its task knows to remove the part.
        if let Some(stop) = stop {
            stop.cancel();
        }
        self.announce_end(info.clone()).await;
        Some(Ok(info))
    }

    /// How a multi-source pull stands now, if one of that id is listed.
    pub fn swarm(&self, id: TransferId) -> Option<TransferInfo> {
        self.lock_swarms().shown.get(&id).cloned()
    }

    /// Shows a running multi-source pull in `transfers` as `info` says now, and sends the
    /// progress event.
    pub fn swarm_progress(&self, info: TransferInfo) {
        if !self.lock_swarms().progress(&info) {
            return;
        }
        self.node
            .publish([proto::api::Event::TransferProgress { transfer: info }]);
    }

    /// Ends a multi-source pull as `info` says: listed, stored, logged and announced; unless
    /// it has ended already (a cancel came first), which stays.
    pub async fn end_swarm(&self, info: TransferInfo) {
        if self.lock_swarms().end(&info) {
            self.announce_end(info).await;
        }
    }

    /// Stores, logs and announces how a multi-source pull ended (listed so already).
    async fn announce_end(&self, info: TransferInfo) {
        if let Err(e) = self.records.end_swarm(&info).await {
            warn!("cannot store transfer {}: {e}", info.id);
        }
        let t = &info;
        info!(target: svc::logging::ACTIVITY, op = "transfer", id = %t.id, peer = %t.peer_name, direction = ?t.direction, state = ?t.state, bytes = t.done_bytes, error = t.error.as_deref().unwrap_or(""), "transfer state");
        self.node
            .publish([proto::api::Event::TransferUpdated { transfer: info }]);
    }

    /// Lets go of a multi-source pull stopped before its end: stored as it was (running, so
    /// that the next start resumes it, unless a cancel ended it). Call once its part file is
    /// left alone (or removed): a pull of the same content may begin from then on.
    pub fn swarm_stopped(&self, id: TransferId) {
        self.lock_swarms().running.remove(&id);
    }

    /// Stores the verified bytes of the running pull `id` as `done` says them, when
    /// [`STORE_PROGRESS_BYTES`] more are verified or [`STORE_PROGRESS_EVERY`] has passed
    /// since the last write (one row update each time, never one per chunk), so that a
    /// restart lists them before the part file is checked again. Runs until dropped.
    pub async fn keep_swarm_progress(
        &self,
        id: TransferId,
        mut done: watch::Receiver<u64>,
    ) -> std::convert::Infallible {
        let mut stored = *done.borrow_and_update();
        let mut at = Instant::now();
        loop {
            let now = *done.borrow_and_update();
            let due = now.saturating_sub(stored) >= STORE_PROGRESS_BYTES
                || (now != stored && at.elapsed() >= STORE_PROGRESS_EVERY);
            if due {
                if let Err(e) = self.records.swarm_progress(id, now).await {
                    warn!("cannot store the progress of transfer {id}: {e}");
                }
                (stored, at) = (now, Instant::now());
                continue;
            }
            let wake = (at + STORE_PROGRESS_EVERY).max(Instant::now() + Duration::from_millis(10));
            tokio::select! {
                changed = done.changed() => if changed.is_err() {
                    return std::future::pending().await;
                },
                () = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }

    /// Forgets the multi-source pulls that ended; how many.
    pub(super) async fn clear_ended_swarms(&self) -> Result<u64, TransferError> {
        let ended = self.lock_swarms().clearable();
        let n = self.records.forget_ended_swarms(ended.clone()).await?;
        let mut book = self.lock_swarms();
        for id in &ended {
            book.shown.remove(id);
        }
        Ok(n)
    }
}

const FINAL: &str = "('done', 'declined', 'cancelled', 'failed', 'expired')";

impl TransferStore {
    /// Stores a new multi-source pull, running (replacing one of the same id).
    pub async fn put_swarm(&self, job: &SwarmJob) -> Result<(), StoreError> {
        let job = job.clone();
        self.db
            .call(move |c| {
                let sources = serde_json::to_string(&job.sources).map_err(bad)?;
                c.execute(
                    "INSERT OR REPLACE INTO swarm_pulls (id, content, size, owner, owner_name, share, path,
                         dir, name, sources, state, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'running', ?11)",
                    params![
                        job.id.0.as_slice(),
                        job.content.as_bytes().as_slice(),
                        job.size.cast_signed(),
                        job.owner.as_bytes().as_slice(),
                        job.owner_name.as_str(),
                        job.share,
                        job.path,
                        job.dir.display().to_string(),
                        job.name,
                        sources,
                        job.created_ms.cast_signed(),
                    ],
                )?;
                Ok(())
            })
            .await
    }

    /// Stores the verified bytes of a running multi-source pull.
    pub async fn swarm_progress(&self, id: TransferId, done: u64) -> Result<(), StoreError> {
        self.db
            .call(move |c| {
                c.execute(
                    "UPDATE swarm_pulls SET done_bytes = ?2 WHERE id = ?1 AND state = 'running'",
                    params![id.0.as_slice(), done.cast_signed()],
                )?;
                Ok(())
            })
            .await
    }

    /// Stores how a multi-source pull ended.
    pub async fn end_swarm(&self, info: &TransferInfo) -> Result<(), StoreError> {
        let info = info.clone();
        self.db
            .call(move |c| {
                let drew = serde_json::to_string(&info.sources).map_err(bad)?;
                let ended = info
                    .ended_at
                    .as_deref()
                    .and_then(proto::timefmt::parse_ms)
                    .unwrap_or_else(svc::unix_millis);
                c.execute(
                    "UPDATE swarm_pulls SET state = ?2, error = ?3, done_bytes = ?4, drew = ?5,
                         landed = ?6, ended_at = ?7 WHERE id = ?1",
                    params![
                        info.id.0.as_slice(),
                        info.state.as_str(),
                        info.error,
                        info.done_bytes.cast_signed(),
                        drew,
                        info.landed.first(),
                        ended.cast_signed(),
                    ],
                )?;
                Ok(())
            })
            .await
    }

    /// Forgets the multi-source pulls of `ids` that ended; how many.
    pub async fn forget_ended_swarms(&self, ids: Vec<TransferId>) -> Result<u64, StoreError> {
        self.db
            .call(move |c| {
                let mut st = c.prepare(&format!(
                    "DELETE FROM swarm_pulls WHERE id = ?1 AND state IN {FINAL}"
                ))?;
                let mut n = 0;
                for id in &ids {
                    n += st.execute([id.0.as_slice()])? as u64;
                }
                Ok(n)
            })
            .await
    }

    /// Every stored multi-source pull, with how it is listed. Unreadable rows are skipped
    /// with a warning.
    pub async fn swarms(&self) -> Result<Vec<(SwarmJob, TransferInfo)>, StoreError> {
        self.db
            .call(|c| {
                let mut st = c.prepare(
                    "SELECT id, content, size, owner, owner_name, share, path, dir, name, sources,
                         state, error, done_bytes, drew, landed, created_at, ended_at
                     FROM swarm_pulls",
                )?;
                let mut rows = st.query([])?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    match swarm_row(r) {
                        Ok(one) => out.push(one),
                        Err(e) => warn!("skipping an unreadable multi-source pull: {e}"),
                    }
                }
                Ok(out)
            })
            .await
    }
}

fn swarm_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(SwarmJob, TransferInfo)> {
    let id: [u8; 16] = r.get::<_, Vec<u8>>(0)?.try_into().map_err(|_| blob(0))?;
    let content: [u8; 32] = r.get::<_, Vec<u8>>(1)?.try_into().map_err(|_| blob(1))?;
    let owner = crate::store::peer_id(r.get(3)?)?;
    let sources: Vec<PeerId> = serde_json::from_str(&r.get::<_, String>(9)?).map_err(bad)?;
    let job = SwarmJob {
        id: TransferId(id),
        content: ContentId(content),
        size: r.get::<_, i64>(2)?.cast_unsigned(),
        owner,
        owner_name: crate::store::peer_name(r.get(4)?)?,
        share: r.get(5)?,
        path: r.get(6)?,
        dir: PathBuf::from(r.get::<_, String>(7)?),
        name: r.get(8)?,
        sources,
        created_ms: r.get::<_, i64>(15)?.cast_unsigned(),
    };
    let mut t = job.info();
    t.state = super::records::state_from(&r.get::<_, String>(10)?);
    t.error = r.get(11)?;
    t.done_bytes = r.get::<_, i64>(12)?.cast_unsigned();
    if let Some(drew) = r.get::<_, Option<String>>(13)? {
        t.sources = serde_json::from_str::<Vec<PullSource>>(&drew).map_err(bad)?;
    }
    if let Some(landed) = r.get::<_, Option<String>>(14)? {
        t.local_path = Some(job.dir.join(&landed).display().to_string());
        t.landed = vec![landed];
    }
    t.ended_at = r
        .get::<_, Option<i64>>(16)?
        .map(|ms| proto::timefmt::format_ms(ms.cast_unsigned()));
    Ok((job, t))
}

fn blob(col: usize) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(col, "id".into(), rusqlite::types::Type::Blob)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Db;
    use proto::SecretKey;

    fn job(n: u8) -> SwarmJob {
        let content = ContentId([n; 32]);
        SwarmJob {
            id: TransferId([n; 16]),
            content,
            size: 5 << 20,
            owner: SecretKey::from_seed([1; 32]).peer_id(),
            owner_name: PeerName::new("alice").unwrap(),
            share: "rel".into(),
            path: Some("os.iso".into()),
            dir: PathBuf::from("/in"),
            name: "os.iso".into(),
            sources: vec![SecretKey::from_seed([2; 32]).peer_id()],
            created_ms: 7,
        }
    }

    #[test]
    fn a_cancelled_pull_still_stopping_is_not_cleared() {
        let (a, b) = (job(1), job(2));
        let mut book = SwarmBook::default();
        for j in [&a, &b] {
            let mut t = j.info();
            t.state = TransferState::Cancelled;
            book.shown.insert(j.id, t);
        }
        let at = (
            CancellationToken::new(),
            a.content,
            a.dir.clone(),
            a.name.clone(),
        );
        book.running.insert(a.id, at);
        assert_eq!(book.clearable(), vec![b.id], "a's task still runs");
        book.running.remove(&a.id);
        let mut ids = book.clearable();
        ids.sort_by_key(|id| id.0);
        assert_eq!(ids, vec![a.id, b.id]);
    }

    #[test]
    fn a_cancel_and_an_end_race_to_one_final_state() {
        let a = job(1);
        let text = a.id.to_string();
        let mut done = a.info();
        done.state = TransferState::Done;
        // The end first: the cancel is refused, the pull stays done.
        let mut book = SwarmBook::default();
        book.shown.insert(a.id, a.info());
        assert!(book.end(&done));
        assert!(matches!(
            book.cancel(&text),
            Some(Err(TransferError::State { .. }))
        ));
        assert_eq!(book.shown[&a.id].state, TransferState::Done);
        // The cancel first: the end, and any progress after it, change nothing.
        let mut book = SwarmBook::default();
        book.shown.insert(a.id, a.info());
        let stop = CancellationToken::new();
        book.running.insert(
            a.id,
            (stop.clone(), a.content, a.dir.clone(), a.name.clone()),
        );
        let (info, got) = book.cancel(&text).unwrap().unwrap();
        assert_eq!(info.state, TransferState::Cancelled);
        assert!(got.is_some());
        assert!(!book.progress(&a.info()));
        assert!(!book.end(&done));
        assert_eq!(book.shown[&a.id].state, TransferState::Cancelled);
        assert!(book.cancel("ffffffffffff").is_none());
    }

    #[test]
    fn pull_ids_are_random_and_a_pull_is_found_by_its_content() {
        let (one, two) = (SwarmJob::new_id().unwrap(), SwarmJob::new_id().unwrap());
        assert_ne!(one, two);
        let a = job(1);
        assert_ne!(
            one.0[..],
            a.content.as_bytes()[..16],
            "not derived from the content"
        );
        let mut book = SwarmBook::default();
        let at = (
            CancellationToken::new(),
            a.content,
            a.dir.clone(),
            a.name.clone(),
        );
        book.running.insert(one, at);
        assert_eq!(book.running_of(&a.content).map(|(id, _)| id), Some(one));
        assert!(book.running_of(&job(2).content).is_none());
    }

    #[tokio::test]
    async fn a_swarm_pull_reads_back_as_stored_and_as_it_ended() {
        let dir = tempfile::tempdir().unwrap();
        let store = TransferStore::new(Db::open(dir.path()).await.unwrap());
        let (a, b) = (job(1), job(2));
        store.put_swarm(&a).await.unwrap();
        store.put_swarm(&b).await.unwrap();
        let mut ended = b.info();
        ended.state = TransferState::Done;
        ended.done_bytes = b.size;
        ended.landed = vec!["os (1).iso".into()];
        ended.ended_at = Some(proto::timefmt::format_ms(9_000));
        ended.sources = vec![PullSource {
            peer: PeerName::new("carol").unwrap(),
            bytes: b.size,
            rate: 3,
            dropped: None,
        }];
        store.end_swarm(&ended).await.unwrap();
        let mut got = store.swarms().await.unwrap();
        got.sort_by_key(|(j, _)| j.content);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (a.clone(), a.info()));
        assert_eq!(got[1].0, b);
        let mut want = ended.clone();
        want.local_path = Some("/in/os (1).iso".into());
        assert_eq!(got[1].1, want);
        // Only the ended one is forgotten.
        let n = store.forget_ended_swarms(vec![a.id, b.id]).await.unwrap();
        assert_eq!(n, 1);
        assert_eq!(store.swarms().await.unwrap().len(), 1);
    }
}
