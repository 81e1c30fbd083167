//! The in-memory state of one transfer: its record, progress and rate, and the channel that
//! carries the user's decision to the link task. An undecided incoming offer, or a transfer
//! that has ended, keeps only a summary of its manifest here (the store has the rest): what
//! peers offer does not pile up in memory.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use proto::api::{Direction, TransferInfo, TransferKind, TransferState};
use proto::transfer::{Manifest, TransferId};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::records::{LANDED_KEPT, Record};
use super::{Decision, DecisionRx, TransferError};

/// Progress events at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// A rate measured longer ago than this is no longer shown: the data has stopped (the link
/// stalled, or the peer is gone and the link not yet seen closed).
const RATE_STALE: Duration = Duration::from_secs(3);

/// What `transfers` shows of a manifest.
struct Summary {
    files: u32,
    sample: Vec<String>,
    total: u64,
    /// See [`super::limits::manifest_bytes`].
    bytes: u64,
}

impl Summary {
    fn of(m: &Manifest) -> Summary {
        Summary {
            files: u32::try_from(m.files.len()).unwrap_or(u32::MAX),
            sample: m.files.iter().take(5).map(|f| f.path.to_string()).collect(),
            total: m.total_size(),
            bytes: super::limits::manifest_bytes(m),
        }
    }
}

struct Inner {
    /// The record; its manifest lists no file while `hollow`.
    rec: Record,
    summary: Summary,
    /// The manifest's files are left in the store.
    hollow: bool,
    done_bytes: u64,
    rate: u64,
    window: (Instant, u64),
    /// When `rate` was last measured.
    measured: Option<Instant>,
    last_progress: Option<Instant>,
}

/// One transfer in memory.
pub struct Live {
    inner: Mutex<Inner>,
    /// The user's decision on an incoming offer.
    pub decision: watch::Sender<Decision>,
    /// Cancels the transfer's link task.
    pub cancel: CancellationToken,
    /// The link session serving this transfer now; a newer link supersedes it.
    session: Mutex<CancellationToken>,
    /// Held by a receiving session for its whole life, so the next one starts only after
    /// the previous one has written and recorded everything it received.
    serving: tokio::sync::Mutex<()>,
    /// How many empty directories the offer went without (to an older receiver); 0 until
    /// the sender has said so. Kept in memory only: a restarted p2pd says it again when it
    /// offers again.
    dirs_left_out: std::sync::atomic::AtomicU32,
}

impl Live {
    /// Wraps a stored record. Of an undecided incoming offer or an ended transfer it keeps
    /// only the summary of the manifest.
    pub fn new(mut rec: Record, cancel: CancellationToken) -> Live {
        let (decision, _) = watch::channel(Decision::Pending);
        let summary = Summary::of(&rec.manifest);
        let hollow = rec.state.is_final()
            || (rec.direction == Direction::In && rec.state == TransferState::Offered);
        if hollow {
            rec.manifest.files = Vec::new();
            rec.manifest.dirs = Vec::new();
        }
        Live {
            inner: Mutex::new(Inner {
                rec,
                summary,
                hollow,
                done_bytes: 0,
                rate: 0,
                window: (Instant::now(), 0),
                measured: None,
                last_progress: None,
            }),
            decision,
            session: Mutex::new(cancel.child_token()),
            serving: tokio::sync::Mutex::default(),
            dirs_left_out: std::sync::atomic::AtomicU32::new(0),
            cancel,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes that the offer goes without its `dirs` empty directories (to a receiver of
    /// `p2p-bulk/2`), for [`Live::info`]. True the first time only: whether to say so.
    pub fn note_dirs_left_out(&self, dirs: usize) -> bool {
        let dirs = u32::try_from(dirs).unwrap_or(u32::MAX).max(1);
        self.dirs_left_out
            .swap(dirs, std::sync::atomic::Ordering::Relaxed)
            == 0
    }

    /// Marks it a pull this side asked for.
    pub fn mark_pull(&self) {
        self.lock().rec.pull = true;
    }

    /// Its id.
    pub fn id(&self) -> TransferId {
        self.lock().rec.manifest.id
    }

    /// Its state.
    pub fn state(&self) -> TransferState {
        self.lock().rec.state
    }

    /// A copy of its record; its manifest lists no file unless [`Live::fill`] gave them.
    pub fn record(&self) -> Record {
        self.lock().rec.clone()
    }

    /// What its manifest counts for against the caps on undecided offers.
    pub fn manifest_bytes(&self) -> u64 {
        self.lock().summary.bytes
    }

    /// True while the manifest's files are only in the store.
    pub fn is_hollow(&self) -> bool {
        self.lock().hollow
    }

    /// Gives back the whole manifest, read from the store.
    pub fn fill(&self, manifest: Manifest) {
        let mut g = self.lock();
        if g.hollow && manifest.id == g.rec.manifest.id {
            g.rec.manifest = manifest;
            g.hollow = false;
        }
    }

    /// While hashing: what the listing of the tree found, shown until the manifest is made.
    pub fn set_listing(&self, files: usize, bytes: u64, sample: Vec<String>) {
        let mut g = self.lock();
        g.summary.files = u32::try_from(files).unwrap_or(u32::MAX);
        g.summary.total = bytes;
        g.summary.sample = sample;
    }

    /// Hashing is over: the manifest replaces the listing, and the bytes counted so far
    /// (hashed) start again from zero (sent).
    pub fn set_manifest(&self, manifest: Manifest) {
        let mut g = self.lock();
        g.summary = Summary::of(&manifest);
        g.rec.manifest = manifest;
        g.hollow = false;
        g.done_bytes = 0;
        g.rate = 0;
        g.window = (Instant::now(), 0);
        g.measured = None;
    }

    /// Its link session ended: no data moves until the next one, so no rate is shown and
    /// the next one measures afresh.
    pub fn link_down(&self) {
        let mut g = self.lock();
        g.rate = 0;
        g.measured = None;
        g.window = (Instant::now(), g.done_bytes);
    }

    /// Receiver: file `file` is in place under `path` (relative to the destination). Kept
    /// for the first [`LANDED_KEPT`] files, which land in order.
    pub fn landed(&self, file: u32, path: String) {
        let mut g = self.lock();
        let landed = &mut g.rec.landed;
        if usize::try_from(file).is_ok_and(|f| f == landed.len() && f < LANDED_KEPT) {
            landed.push(path);
        }
    }

    /// When it ended (ms since the Unix epoch), once it has.
    pub fn ended_ms(&self) -> Option<u64> {
        self.lock().rec.ended_ms
    }

    /// Starts a new link session for this transfer, ending the previous one: only one link
    /// serves a transfer at a time. The token also fires when the transfer is cancelled.
    pub fn begin_session(&self) -> CancellationToken {
        let new = self.cancel.child_token();
        let old = std::mem::replace(
            &mut *self.session.lock().unwrap_or_else(PoisonError::into_inner),
            new.clone(),
        );
        old.cancel();
        new
    }

    /// Waits until no other session serves this transfer and returns the guard that makes
    /// this one the only one until dropped; `None` if `session` is superseded meanwhile or
    /// the daemon stops.
    pub async fn serve(
        &self,
        session: &CancellationToken,
    ) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        tokio::select! {
            g = self.serving.lock() => Some(g),
            // Cancelled here: wait all the same, to tell the peer.
            () = session.cancelled() => {
                if self.cancelled_here() {
                    Some(self.serving.lock().await)
                } else {
                    None
                }
            }
        }
    }

    /// Whether the transfer was cancelled here, by the user. [`Live::cancel`] also fires
    /// when the daemon stops, which must leave the transfer to resume: only a cancel made
    /// here is told to the peer.
    pub fn cancelled_here(&self) -> bool {
        *self.decision.borrow() == Decision::Cancel
    }

    /// A receiver of decisions.
    pub fn decisions(&self) -> DecisionRx {
        self.decision.subscribe()
    }

    /// Sets the state; false when it was already final (nothing changes after an end).
    pub fn set_state(
        &self,
        state: TransferState,
        local_path: Option<String>,
        error: Option<String>,
    ) -> bool {
        let mut g = self.lock();
        if g.rec.state.is_final() {
            return false;
        }
        g.rec.state = state;
        if local_path.is_some() {
            g.rec.local_path = local_path;
        }
        if error.is_some() {
            g.rec.error = error;
        }
        if state.is_final() {
            g.rate = 0;
            g.rec.ended_ms.get_or_insert_with(svc::unix_millis);
        }
        true
    }

    /// Records a decision on an offer in `expected` state.
    pub fn decide(
        &self,
        d: Decision,
        expected: TransferState,
        what: &'static str,
    ) -> Result<(), TransferError> {
        let g = self.lock();
        if g.rec.state != expected || g.rec.direction != proto::api::Direction::In {
            return Err(TransferError::State {
                id: g.rec.manifest.id,
                state: g.rec.state,
                what,
            });
        }
        let id = g.rec.manifest.id;
        drop(g);
        // An offer that is expiring stays expired.
        let mut expired = false;
        self.decision.send_if_modified(|cur| {
            expired = *cur == Decision::Expire;
            if !expired {
                *cur = d;
            }
            !expired
        });
        if expired {
            return Err(TransferError::State {
                id,
                state: TransferState::Expired,
                what,
            });
        }
        Ok(())
    }

    /// Sets the bytes done so far, updating the rate.
    pub fn set_done(&self, bytes: u64) {
        let mut g = self.lock();
        g.done_bytes = bytes;
        let (t0, b0) = g.window;
        let dt = t0.elapsed();
        if dt >= Duration::from_millis(500) {
            g.rate = (bytes.saturating_sub(b0) as f64 / dt.as_secs_f64()) as u64;
            g.window = (Instant::now(), bytes);
            g.measured = Some(Instant::now());
        }
    }

    /// True when a progress event is due (and notes that one is sent).
    pub fn progress_due(&self) -> bool {
        let mut g = self.lock();
        let due = g
            .last_progress
            .is_none_or(|t| t.elapsed() >= PROGRESS_EVERY);
        if due {
            g.last_progress = Some(Instant::now());
        }
        due
    }

    /// The public view.
    pub fn info(&self) -> TransferInfo {
        let g = self.lock();
        let total = g.summary.total;
        let running = matches!(
            g.rec.state,
            TransferState::Running | TransferState::Scanning
        );
        let fresh = g.measured.is_some_and(|t| t.elapsed() <= RATE_STALE);
        let rate = if running && fresh { g.rate } else { 0 };
        TransferInfo {
            id: g.rec.manifest.id,
            peer: g.rec.peer,
            peer_name: g.rec.peer_name.clone(),
            direction: g.rec.direction,
            state: g.rec.state,
            files: g.summary.files,
            sample: g.summary.sample.clone(),
            total_bytes: total,
            done_bytes: if g.rec.state == TransferState::Done {
                total
            } else {
                g.done_bytes
            },
            rate,
            eta_secs: (rate > 0).then(|| total.saturating_sub(g.done_bytes) / rate),
            local_path: g.rec.local_path.clone(),
            error: g.rec.error.clone(),
            kind: match (g.rec.direction, g.rec.pull) {
                (Direction::Out, _) => TransferKind::Send,
                (Direction::In, false) => TransferKind::Receive,
                (Direction::In, true) => TransferKind::Pull,
            },
            created_at: Some(proto::timefmt::format_ms(g.rec.created_ms)),
            ended_at: g.rec.ended_ms.map(proto::timefmt::format_ms),
            landed: g.rec.landed.clone(),
            sources: Vec::new(),
            dirs_left_out: self
                .dirs_left_out
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::transfer::{FileEntry, RelPath};

    fn record(direction: Direction, state: TransferState) -> Record {
        let files = (0..7)
            .map(|i| FileEntry {
                path: RelPath::new(&format!("f{i}")).unwrap(),
                size: 10,
                hash: [0; 32],
            })
            .collect();
        Record {
            peer: proto::SecretKey::from_seed([1; 32]).peer_id(),
            peer_name: proto::PeerName::new("bob").unwrap(),
            direction,
            state,
            manifest: Manifest {
                id: TransferId([3; 16]),
                files,
                dirs: Vec::new(),
            },
            local_path: None,
            error: None,
            created_ms: 0,
            pull: false,
            ended_ms: None,
            landed: Vec::new(),
        }
    }

    #[test]
    fn undecided_offers_and_ended_transfers_keep_only_a_summary() {
        for (direction, state, hollow) in [
            (Direction::In, TransferState::Offered, true),
            (Direction::Out, TransferState::Done, true),
            (Direction::In, TransferState::Expired, true),
            (Direction::In, TransferState::Running, false),
            (Direction::Out, TransferState::Offered, false),
            (Direction::Out, TransferState::Queued, false),
        ] {
            let rec = record(direction, state);
            let live = Live::new(rec.clone(), CancellationToken::new());
            assert_eq!(live.is_hollow(), hollow, "{direction:?} {state:?}");
            assert_eq!(live.record().manifest.files.is_empty(), hollow);
            // What `transfers` shows does not depend on it.
            let info = live.info();
            assert_eq!((info.files, info.total_bytes), (7, 70));
            assert_eq!(info.sample, ["f0", "f1", "f2", "f3", "f4"]);
            assert_eq!(live.manifest_bytes(), 16 + 7 * (2 + 40));
            // Read back from the store on accept.
            live.fill(rec.manifest.clone());
            assert!(!live.is_hollow());
            assert_eq!(live.record().manifest, rec.manifest);
        }
    }

    #[test]
    fn landed_names_are_kept_in_order_for_the_first_files() {
        let live = Live::new(
            record(Direction::In, TransferState::Running),
            CancellationToken::new(),
        );
        // Out of order (cannot happen): not kept, so entry i stays file i's.
        live.landed(1, "f1".into());
        assert!(live.info().landed.is_empty());
        for i in 0..7 {
            live.landed(i, format!("f{i} (1)"));
        }
        assert_eq!(
            live.info().landed,
            ["f0 (1)", "f1 (1)", "f2 (1)", "f3 (1)", "f4 (1)"]
        );
        assert_eq!(live.info().ended_at, None);
        assert!(live.set_state(TransferState::Done, None, None));
        let ended = live.ended_ms().expect("an end time");
        assert!(live.info().ended_at.is_some());
        // Nothing changes after an end, the end time neither.
        assert!(!live.set_state(TransferState::Failed, None, None));
        assert_eq!(live.ended_ms(), Some(ended));
    }

    #[test]
    fn no_rate_is_shown_once_the_link_is_down() {
        let live = Live::new(
            record(Direction::Out, TransferState::Running),
            CancellationToken::new(),
        );
        {
            let mut g = live.lock();
            g.rate = 1000;
            g.measured = Some(Instant::now());
        }
        assert_eq!((live.info().rate, live.info().eta_secs), (1000, Some(0)));
        live.link_down();
        assert_eq!((live.info().rate, live.info().eta_secs), (0, None));
        // A rate measured long ago is not shown either.
        {
            let mut g = live.lock();
            g.rate = 1000;
            g.measured = Instant::now().checked_sub(RATE_STALE * 2);
        }
        assert_eq!((live.info().rate, live.info().eta_secs), (0, None));
    }
}
