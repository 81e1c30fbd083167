//! File transfers: offers queued on the receiver, accept/decline/cancel, data verified as it
//! arrives and written to `.part` files, and resume after a dropped link or a restart.
//!
//! Each transfer runs over its own bulk link (ALPN `p2p-bulk/1`), dialed by the sender, so
//! chat never waits behind data. The sender re-dials and re-offers the same id until the
//! transfer ends; the receiver recognises it and answers with what it already holds.

mod buffers;
mod error;
mod hashing;
pub mod limits;
mod live;
pub(crate) mod pull;
pub mod records;
mod recv;
pub use recv::BulkV1;
mod recv_rules;
pub mod scan;
mod send;
mod send_rules;
mod sink;
mod source;
pub mod swarms;
mod threads;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use proto::api::{Direction, Event, Sent, Skipped, TransferInfo, TransferState};
use proto::transfer::{OfferError, TransferFrame, TransferId};
use proto::{PeerId, PeerName};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::link::LinkConn;
use crate::node::Node;
use crate::peers::ResolveError;
use crate::router::{Dialer, PeerLink, Protocol};
use crate::store::StoreError;
use buffers::Buffers;
use limits::{LinkCounts, OfferBook, OfferRefusal, RefusalLog, TransferLimits};
use live::Live;
use records::{Record, TransferStore};

/// The limits set by the configuration, for the service this process starts.
/// A peer's refusals are logged at most this often.
const REFUSAL_LOG_PERIOD: Duration = Duration::from_secs(60);

/// What peers hold here: undecided offers, bulk links, and the refusal log.
struct Holdings {
    offers: OfferBook,
    links: LinkCounts,
    refusals: RefusalLog,
}

/// Errors reported to callers.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// No such peer.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The path cannot be offered.
    #[error(transparent)]
    Scan(#[from] scan::ScanError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No transfer matches.
    #[error("no transfer matches {0:?}")]
    Unknown(String),
    /// Several transfers match a prefix.
    #[error("{0:?} matches several transfers; give more of the id")]
    Ambiguous(String),
    /// The operation does not fit the transfer's state.
    #[error("transfer {id} is {}: {what}", state.as_str())]
    State {
        /// The transfer.
        id: TransferId,
        /// Its state.
        state: TransferState,
        /// What cannot be done.
        what: &'static str,
    },
    /// The destination is unusable.
    #[error("{0}")]
    Destination(String),
    /// The peer is blocked.
    #[error("{0} is blocked; unblock it first")]
    Blocked(PeerName),
}

/// A user's decision on an incoming offer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    Pending,
    Accept(PathBuf),
    Decline,
    Cancel,
    /// Left undecided past the expiry.
    Expire,
}

/// The transfer service. Share as `Arc<Transfers>`.
pub struct Transfers {
    node: Arc<Node>,
    /// The service's tables.
    records: TransferStore,
    dialer: Arc<Dialer>,
    download_dir: PathBuf,
    live: Mutex<HashMap<TransferId, Arc<Live>>>,
    limits: TransferLimits,
    held: Mutex<Holdings>,
    /// The chunk buffers and the cap on received chunks in flight, shared by every transfer.
    buffers: Arc<Buffers>,
    /// Pulls asked for whose offer has not come yet: the owner and the destination.
    expected: Mutex<HashMap<TransferId, (PeerId, PathBuf)>>,
    /// Multi-source pulls as they stand ([`swarms`]).
    swarms: Mutex<swarms::SwarmBook>,
    tasks: TaskTracker,
    cancel: CancellationToken,
}

impl Transfers {
    /// Starts the service and resumes unfinished outgoing transfers.
    pub async fn start(
        node: Arc<Node>,
        records: TransferStore,
        dialer: Arc<Dialer>,
        download_dir: PathBuf,
        limits: TransferLimits,
        tasks: TaskTracker,
        cancel: CancellationToken,
    ) -> Arc<Transfers> {
        let t = Arc::new(Transfers {
            node,
            records,
            dialer,
            download_dir,
            live: Mutex::default(),
            limits,
            held: Mutex::new(Holdings {
                offers: OfferBook::new(limits),
                links: LinkCounts::default(),
                refusals: RefusalLog::new(REFUSAL_LOG_PERIOD),
            }),
            buffers: Arc::default(),
            expected: Mutex::default(),
            swarms: Mutex::default(),
            tasks,
            cancel,
        });
        // One record at a time: only the manifests still needed stay in memory.
        let cancel = t.cancel.clone();
        let loaded = t
            .records
            .load(move |rec| Arc::new(Live::new(rec, cancel.child_token())))
            .await;
        let records = loaded.unwrap_or_else(|e| {
            warn!("cannot load the transfers: {e}");
            Vec::new()
        });
        for live in records {
            let rec = live.record();
            t.lock().insert(rec.manifest.id, live.clone());
            if rec.direction == Direction::In && rec.state == TransferState::Offered {
                t.held().offers.insert(
                    rec.manifest.id,
                    rec.peer,
                    live.manifest_bytes(),
                    rec.created_ms,
                );
            }
            if rec.state == TransferState::Scanning {
                t.finish(
                    &live,
                    TransferState::Failed,
                    Some(hashing::INTERRUPTED.into()),
                )
                .await;
            } else if rec.direction == Direction::Out && !rec.state.is_final() {
                t.spawn_sender(live);
            }
        }
        t.load_expected_pulls().await;
        t.load_swarms().await;
        let t2 = t.clone();
        t.tasks.spawn(async move { t2.expire_offers().await });
        t
    }

    fn held(&self) -> MutexGuard<'_, Holdings> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks undecided offers past the expiry as expired, now and then until the daemon
    /// stops. A link waiting on one tells its sender at once; a later re-offer is told then.
    async fn expire_offers(&self) {
        let every = (self.limits.offer_expiry / 4)
            .clamp(Duration::from_millis(100), Duration::from_secs(60));
        loop {
            let expired = self.held().offers.expired(svc::unix_millis());
            for id in expired {
                self.held().offers.remove(id);
                let live = self.lock().get(&id).cloned();
                let Some(live) = live else { continue };
                // Accepted while the sender was away (and not yet running): not undecided.
                let undecided = live.decision.send_if_modified(|d| {
                    let pending = *d == Decision::Pending;
                    if pending {
                        *d = Decision::Expire;
                    }
                    pending
                });
                if !undecided {
                    continue;
                }
                info!(target: svc::logging::ACTIVITY, op = "offer-expired", id = %id, peer = %live.record().peer_name, "offer expired undecided");
                self.finish(
                    &live,
                    TransferState::Expired,
                    Some(proto::transfer::OFFER_EXPIRED.into()),
                )
                .await;
            }
            tokio::select! {
                () = self.cancel.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// Takes a new incoming offer into the caps, or says why not (logged at most once per
    /// peer per period).
    fn admit_offer(
        &self,
        id: TransferId,
        peer: PeerId,
        name: &PeerName,
        bytes: u64,
    ) -> Result<(), OfferRefusal> {
        let now = svc::unix_millis();
        let mut held = self.held();
        let refusal = match held.offers.admit(id, peer, bytes, now) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if let Some(quiet) = held.refusals.note(peer, now) {
            let (count, bytes) = held.offers.totals();
            drop(held);
            warn!(peer = %name, %id, "refused an offer from {name}: {refusal} ({quiet} more refusals unlogged; {count} undecided offers held, {bytes} manifest bytes)");
        }
        Err(refusal)
    }

    /// Reads back the whole manifest of a transfer that keeps only its summary in memory.
    async fn load_manifest(&self, live: &Live) -> Result<(), TransferError> {
        if !live.is_hollow() {
            return Ok(());
        }
        let rec = self
            .records
            .get(live.id())
            .await?
            .ok_or_else(|| TransferError::Unknown(live.id().to_string()))?;
        live.fill(rec.manifest);
        Ok(())
    }

    /// Counts a bulk link from `peer`; `None` if it has too many already.
    fn bulk_link(self: &Arc<Self>, peer: PeerId) -> Option<BulkSlot> {
        self.held()
            .links
            .acquire(peer, self.limits.max_bulk_links_per_peer)
            .then(|| BulkSlot {
                t: self.clone(),
                peer,
            })
    }

    fn lock_expected(&self) -> MutexGuard<'_, HashMap<TransferId, (PeerId, PathBuf)>> {
        self.expected.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<TransferId, Arc<Live>>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The live handle of a stored transfer (made on first use).
    fn live_for(&self, rec: &Record) -> Arc<Live> {
        let mut g = self.lock();
        g.entry(rec.manifest.id)
            .or_insert_with(|| Arc::new(Live::new(rec.clone(), self.cancel.child_token())))
            .clone()
    }

    fn find(&self, text: &str) -> Result<Arc<Live>, TransferError> {
        let text = text.to_ascii_lowercase();
        if text.len() < 6 {
            return Err(TransferError::Unknown(text));
        }
        let g = self.lock();
        let matches: Vec<&Arc<Live>> = g
            .iter()
            .filter(|(id, _)| id.to_string().starts_with(&text))
            .map(|(_, l)| l)
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(TransferError::Unknown(text)),
            _ => Err(TransferError::Ambiguous(text)),
        }
    }

    /// Offers `paths` (absolute; one or more files or directories, as one transfer) to
    /// `peer`. Lists them first ([`scan::list`], a metadata walk: a path that holds nothing
    /// to send is refused here), then answers with the transfer `scanning` and what is left
    /// out: the files are hashed by a job ([`hashing`]), after which the transfer is
    /// `queued` and goes on; a file that cannot be hashed ends it `failed`.
    pub async fn send(
        self: &Arc<Self>,
        peer: PeerId,
        paths: &[String],
    ) -> Result<Sent, TransferError> {
        self.send_kind(peer, paths, false).await
    }

    /// As [`send`](Self::send); `pull` marks the entry of a share that `peer` asked for.
    async fn send_kind(
        self: &Arc<Self>,
        peer: PeerId,
        paths: &[String],
        pull: bool,
    ) -> Result<Sent, TransferError> {
        if paths.is_empty() {
            return Err(TransferError::Destination("no path to send".into()));
        }
        let info = self
            .node
            .peer(peer)
            .ok_or_else(|| ResolveError::unknown(&peer.to_string()))?;
        if info.blocked {
            return Err(TransferError::Blocked(info.name));
        }
        let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
        if let Some(p) = paths.iter().find(|p| !p.is_absolute()) {
            return Err(scan::ScanError::NotAbsolute(p.clone()).into());
        }
        self.node.deal_with(info.id).await?;
        let listing = {
            let paths = paths.clone();
            tokio::task::spawn_blocking(move || scan::list(&paths))
                .await
                .map_err(|e| TransferError::Destination(format!("listing stopped: {e}")))??
        };
        let skipped = listing
            .left
            .iter()
            .map(|l| Skipped {
                path: l.path.clone(),
                reason: l.reason.to_owned(),
            })
            .collect();
        let mut id = [0u8; 16];
        getrandom::fill(&mut id)
            .map_err(|e| TransferError::Destination(format!("no randomness: {e}")))?;
        let id = TransferId(id);
        let rec = Record {
            peer: info.id,
            peer_name: info.name.clone(),
            direction: Direction::Out,
            state: TransferState::Scanning,
            manifest: proto::transfer::Manifest {
                id,
                files: Vec::new(),
                dirs: Vec::new(),
            },
            // The paths offered, for display (each file's directory is kept with its chunk
            // values once scanned).
            local_path: Some(
                paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            error: None,
            created_ms: svc::unix_millis(),
            pull,
            ended_ms: None,
            landed: Vec::new(),
        };
        self.records.insert(&rec).await?;
        let live = self.live_for(&rec);
        let ti = live.info();
        self.node.publish([Event::TransferOffered {
            transfer: ti.clone(),
        }]);
        hashing::start(self, live, listing).await;
        Ok(Sent {
            transfer: ti,
            skipped,
        })
    }

    /// The transfers in listing order ([`proto::api::sort_for_listing`]): every one with
    /// `all`, else those [`proto::api::listed_at`] keeps now.
    pub fn list(&self, all: bool) -> Vec<TransferInfo> {
        let now = svc::unix_millis();
        let mut v: Vec<TransferInfo> = self
            .lock()
            .values()
            .map(|l| l.info())
            .filter(|t| all || proto::api::listed_at(t, now))
            .collect();
        v.extend(
            self.lock_swarms()
                .shown
                .values()
                .filter(|t| all || proto::api::listed_at(t, now))
                .cloned(),
        );
        proto::api::sort_for_listing(&mut v);
        v
    }

    /// Forgets every transfer that has ended: its record, its chunk records and its place
    /// in memory. Unfinished ones stay. Returns how many were forgotten.
    pub async fn clear_ended(&self) -> Result<u64, TransferError> {
        let ended: Vec<TransferId> = self
            .lock()
            .iter()
            .filter(|(_, l)| l.state().is_final())
            .map(|(id, _)| *id)
            .collect();
        let forgotten = self.records.forget_ended(ended.clone()).await?;
        {
            let mut live = self.lock();
            for id in &ended {
                live.remove(id);
            }
        }
        let forgotten = forgotten + self.clear_ended_swarms().await?;
        info!(target: svc::logging::ACTIVITY, op = "transfers-cleared", count = forgotten, "finished transfers forgotten");
        Ok(forgotten)
    }

    /// Accepts an incoming offer into `to` (default: the download directory, made if
    /// missing). A `to` that does not exist is refused, so that a mistyped one is not made
    /// silently, unless `mkdir` says to make it.
    pub async fn accept(
        &self,
        id: &str,
        to: Option<&str>,
        mkdir: bool,
    ) -> Result<TransferInfo, TransferError> {
        let live = self.find(id)?;
        let dest = to.map_or_else(|| self.download_dir.clone(), PathBuf::from);
        if !dest.is_absolute() {
            return Err(TransferError::Destination(format!(
                "{} is not an absolute path",
                dest.display()
            )));
        }
        if to.is_some() {
            destination(&dest, mkdir)?;
        }
        // Accepting is dealing with the sender: its name is pinned to its key.
        self.node.deal_with(live.info().peer).await?;
        live.decide(
            Decision::Accept(dest),
            TransferState::Offered,
            "only an incoming offer can be accepted",
        )?;
        // Decided: it no longer counts as undecided, nor expires.
        self.held().offers.remove(live.id());
        Ok(live.info())
    }

    /// Declines an incoming offer.
    pub async fn decline(&self, id: &str) -> Result<TransferInfo, TransferError> {
        let live = self.find(id)?;
        live.decide(
            Decision::Decline,
            TransferState::Offered,
            "only an incoming offer can be declined",
        )?;
        self.finish(
            &live,
            TransferState::Declined,
            Some("declined by the receiver".into()),
        )
        .await;
        Ok(live.info())
    }

    /// Cancels a transfer, either side.
    pub async fn cancel(&self, id: &str) -> Result<TransferInfo, TransferError> {
        let live = match self.find(id) {
            Ok(live) => live,
            Err(TransferError::Unknown(text)) => {
                return match self.cancel_swarm(&text).await {
                    Some(done) => done,
                    None => Err(TransferError::Unknown(text)),
                };
            }
            Err(e) => return Err(e),
        };
        let state = live.state();
        if state.is_final() {
            return Err(TransferError::State {
                id: live.id(),
                state,
                what: "it has ended",
            });
        }
        let _ = live.decision.send_replace(Decision::Cancel);
        live.cancel.cancel();
        // Worded for both sides: a receiver replays it to a sender that re-offers.
        let why = match live.record().direction {
            Direction::In => "cancelled by the receiver",
            Direction::Out => "cancelled by the sender",
        };
        self.finish(&live, TransferState::Cancelled, Some(why.into()))
            .await;
        Ok(live.info())
    }

    /// Records a state change (most often an end), stores it, and tells subscribers.
    async fn finish(&self, live: &Live, state: TransferState, error: Option<String>) {
        self.set_state(live, state, None, error).await
    }

    /// Records a state change, stores it (awaiting the database thread), and tells
    /// subscribers.
    async fn set_state(
        &self,
        live: &Live,
        state: TransferState,
        local_path: Option<String>,
        error: Option<String>,
    ) {
        if !self.apply_state(live, state, local_path.clone(), error.clone()) {
            return;
        }
        let stored = self
            .records
            .set_state(
                live.id(),
                state,
                (local_path.as_deref(), error.as_deref()),
                live.ended_ms(),
            )
            .await;
        self.announce_state(live, stored);
    }

    /// Applies a state change in memory; false if it changes nothing.
    fn apply_state(
        &self,
        live: &Live,
        state: TransferState,
        local_path: Option<String>,
        error: Option<String>,
    ) -> bool {
        if !live.set_state(state, local_path, error) {
            return false;
        }
        if state != TransferState::Offered {
            self.held().offers.remove(live.id());
        }
        true
    }

    /// Once the change is stored (or could not be): the activity log and the event.
    fn announce_state(&self, live: &Live, stored: Result<(), StoreError>) {
        if let Err(e) = stored {
            tracing::warn!("cannot store transfer {}: {e}", live.id());
        }
        let t = live.info();
        info!(target: svc::logging::ACTIVITY, op = "transfer", id = %t.id, peer = %t.peer_name, direction = ?t.direction, state = ?t.state, bytes = t.done_bytes, error = t.error.as_deref().unwrap_or(""), "transfer state");
        self.node.publish([Event::TransferUpdated { transfer: t }]);
    }

    fn lock_swarms(&self) -> MutexGuard<'_, swarms::SwarmBook> {
        self.swarms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn progress(&self, live: &Live) {
        if live.progress_due() {
            self.node.publish([Event::TransferProgress {
                transfer: live.info(),
            }]);
        }
    }

    /// Answers an offer whose manifest breaks a rule: `Failed` with the exact reason, then a
    /// clean close. Nothing is recorded.
    async fn refuse_offer(
        &self,
        conn: &mut LinkConn,
        id: TransferId,
        name: &PeerName,
        e: OfferError,
    ) {
        let reason = format!("offer refused: {e}");
        warn!(peer = %name, %id, "refused an offer from {name}: {reason}");
        info!(target: svc::logging::ACTIVITY, op = "offer-refused", peer = %name, id = %id, error = %reason, "offer refused");
        let _ = conn.send(&TransferFrame::Failed { id, reason }).await;
        let _ = conn.shutdown().await;
    }

    fn spawn_sender(self: &Arc<Self>, live: Arc<Live>) {
        let t = self.clone();
        self.tasks.spawn(async move { send::run(t, live).await });
    }
}

/// Inbound bulk links, already admitted: each carries one transfer to receive.
impl Protocol for Transfers {
    fn handle(self: Arc<Self>, link: PeerLink) {
        let tasks = self.tasks.clone();
        tasks.spawn(async move { recv::run(self, link.conn, link.key, link.name).await });
    }
}

/// The activity-log record of one link session of a transfer: where it starts (bytes already
/// verified at the receiver; 0 for a fresh start) when made, and how many bytes the session
/// moved (sent, or received and verified) when dropped, however the session ends.
struct SessionLog<'a> {
    live: &'a Live,
    from: u64,
}

impl<'a> SessionLog<'a> {
    /// Logs that a session of `live` starts at byte `from`.
    fn start(live: &'a Live, from: u64) -> SessionLog<'a> {
        let t = live.info();
        let op = if from == 0 { "start" } else { "resume" };
        info!(target: svc::logging::ACTIVITY, op, id = %t.id, peer = %t.peer_name, direction = ?t.direction, from, total = t.total_bytes, "transfer session starts at byte {from} of {}", t.total_bytes);
        SessionLog { live, from }
    }
}

impl Drop for SessionLog<'_> {
    fn drop(&mut self) {
        self.live.link_down();
        let t = self.live.info();
        let bytes = t.done_bytes.saturating_sub(self.from);
        info!(target: svc::logging::ACTIVITY, op = "session-end", id = %t.id, peer = %t.peer_name, direction = ?t.direction, from = self.from, bytes, total = t.total_bytes, "transfer session ended after {bytes} bytes");
    }
}

/// One bulk link counted against its peer's cap, until dropped.
struct BulkSlot {
    t: Arc<Transfers>,
    peer: PeerId,
}

impl Drop for BulkSlot {
    fn drop(&mut self) {
        self.t.held().links.release(self.peer);
    }
}

/// A watch of the decision on an offer.
type DecisionRx = watch::Receiver<Decision>;

/// Checks that `dest`, a destination the user named, is a directory; makes it (and its
/// missing parents) first when `mkdir` says so.
fn destination(dest: &std::path::Path, mkdir: bool) -> Result<(), TransferError> {
    let shown = dest.display();
    match std::fs::metadata(dest) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(TransferError::Destination(format!(
            "{shown} is not a directory"
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && mkdir => {
            std::fs::create_dir_all(dest)
                .map_err(|e| TransferError::Destination(format!("cannot create {shown}: {e}")))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(TransferError::Destination(
            format!("{shown} does not exist (create it, or accept with --mkdir)"),
        )),
        Err(e) => Err(TransferError::Destination(format!(
            "cannot use {shown}: {e}"
        ))),
    }
}
