//! The BitTorrent Mainline DHT as a discovery source (off unless `--dht`).
//!
//! [`DhtSource`] publishes this daemon's signed address record as a BEP 44 mutable item under
//! its own key ([`item`]), again every hour and whenever the record changes, with the last
//! seq it published as the CAS, so an update never silently overwrites a newer one. When a
//! known peer cannot be dialled through the other sources, the [`crate::router::Dialer`] asks
//! [`DhtSource::find`]: the most recent item under the peer's key is fetched within a short
//! deadline, its record checked (key, signature, expiry, seq) and fed to the peer table as a
//! `dht` sighting, and its addresses dialled. A DHT that answers nothing leaves the daemon
//! running: `status` says so and the source retries.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use mainline::Dht;
use mainline::async_dht::AsyncDht;
use proto::addr_record::SignedAddrRecord;
use proto::api::{PeerSource, SourceState, SourceStatus};
use proto::{PeerId, SecretKey};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::config::DhtConfig;
use crate::node::Node;
use crate::peers::Source;

pub mod item;
mod record;

/// How often the record is published again although nothing changed (DHT nodes drop items
/// after some hours).
pub const REPUBLISH_EVERY: Duration = Duration::from_secs(60 * 60);
/// The most a lookup may take, from its start to the best answer so far.
pub const LOOKUP_DEADLINE: Duration = Duration::from_secs(5);
/// How long a lookup waits, once it holds a valid record, for a more recent one.
const LOOKUP_GRACE: Duration = Duration::from_millis(300);
/// How often sightings of expired records are ended.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// The least time between two lookups of one peer (a peer that cannot be reached is not
/// looked up on every dial).
const LOOKUP_EVERY: Duration = Duration::from_secs(5);

/// What went wrong talking to the DHT.
#[derive(Debug, thiserror::Error)]
pub enum DhtError {
    /// The UDP socket could not be bound (or a bootstrap name resolved).
    #[error("cannot start the DHT node: {0}")]
    Start(#[source] std::io::Error),
    /// The item could not be made.
    #[error(transparent)]
    Item(#[from] item::ItemError),
    /// No DHT node stored the item, or a newer one is there.
    #[error("publishing failed: {0}")]
    Publish(#[from] mainline::errors::PutMutableError),
}

/// Where the source stands, as `status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Asking the bootstrap nodes for the first time.
    Bootstrapping,
    /// Some DHT node answered.
    Ready,
    /// No bootstrap node answered; retrying.
    Unreachable,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// Unix seconds when `phase` last changed.
    since: u64,
    /// Nodes in the routing table when last counted.
    nodes: usize,
    /// Unix seconds and seq of the last successful publish.
    published: Option<(u64, u64)>,
    /// The last publish error, cleared by a success.
    error: Option<String>,
}

/// The DHT discovery source: one mainline client, its publisher task, and lookups.
pub struct DhtSource {
    key: SecretKey,
    node: Arc<Node>,
    /// The bootstrap nodes as configured (empty: mainline's public ones).
    bootstrap: Vec<String>,
    /// Set once the client is bound (the first thing the task does).
    client: OnceLock<AsyncDht>,
    state: Mutex<State>,
    /// When each peer was last looked up, and the addresses it gave.
    lookups: Mutex<HashMap<PeerId, Lookup>>,
    /// The peers a record found here shows, with the record's expiry (unix seconds): the
    /// sighting ends then, or sooner when a dial to its addresses fails.
    seen: Mutex<HashMap<PeerId, u64>>,
    /// Our record with our public address in place of an unspecified one, and the seq of
    /// the record it copies (see `record::own`).
    made: Mutex<Option<(u64, std::net::Ipv4Addr, SignedAddrRecord)>>,
}

/// When a peer was last looked up, and the addresses that gave.
type Lookup = (Instant, Option<Vec<SocketAddr>>);

impl DhtSource {
    /// Starts the source: binds the client and runs the publisher on `tasks` until `cancel`.
    pub fn start(
        config: &DhtConfig,
        key: SecretKey,
        node: Arc<Node>,
        tasks: &tokio_util::task::TaskTracker,
        cancel: CancellationToken,
    ) -> Arc<DhtSource> {
        let source = Arc::new(DhtSource {
            key,
            node,
            bootstrap: config.bootstrap.clone(),
            client: OnceLock::new(),
            state: Mutex::new(State {
                phase: Phase::Bootstrapping,
                since: svc::unix_now(),
                nodes: 0,
                published: None,
                error: None,
            }),
            lookups: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
            made: Mutex::new(None),
        });
        let run = source.clone();
        let sweep = source.clone();
        let stop = cancel.clone();
        tasks.spawn(async move { cancel.run_until_cancelled(run.run()).await });
        tasks.spawn(async move { stop.run_until_cancelled(sweep.sweep()).await });
        source
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_phase(&self, phase: Phase) {
        let mut s = self.state();
        if s.phase != phase {
            s.phase = phase;
            s.since = svc::unix_now();
        }
    }

    /// The `dht` entry of `status`: bootstrapping, ready (with the routing table's size and
    /// the last publish), or unreachable.
    pub fn status(&self) -> SourceStatus {
        let s = self.state();
        let (state, mut detail) = match s.phase {
            Phase::Bootstrapping => (SourceState::Connecting, "bootstrapping".to_owned()),
            Phase::Ready => (
                SourceState::Up,
                format!("ready, {} nodes in the routing table", s.nodes),
            ),
            Phase::Unreachable => (
                SourceState::Down,
                "no bootstrap node reachable; retrying".to_owned(),
            ),
        };
        match (&s.published, &s.error) {
            (_, Some(e)) => detail.push_str(&format!("; last publish failed: {e}")),
            (Some((at, seq)), None) => detail.push_str(&format!(
                "; record published {} (seq {seq})",
                proto::timefmt::format_ms(at * 1000)
            )),
            (None, None) => detail.push_str("; record not published yet"),
        }
        SourceStatus {
            kind: PeerSource::Dht,
            addr: Some(if self.bootstrap.is_empty() {
                "public bootstrap nodes".to_owned()
            } else {
                self.bootstrap.join(", ")
            }),
            key: None,
            state,
            detail: Some(detail),
            since: Some(s.since),
            peers: self.node.seen_by(Source::Dht),
        }
    }

    /// The `dht` entry of `status` when the source is turned off.
    pub fn off_status() -> SourceStatus {
        SourceStatus {
            kind: PeerSource::Dht,
            addr: None,
            key: None,
            state: SourceState::Off,
            detail: None,
            since: None,
            peers: 0,
        }
    }

    /// The publisher: bind, bootstrap (retrying while no node answers), then publish now,
    /// every [`REPUBLISH_EVERY`] and whenever the record changes.
    async fn run(self: Arc<Self>) {
        let bootstrap = self.bootstrap.clone();
        let built = tokio::task::spawn_blocking(move || client(&bootstrap)).await;
        let dht = match built {
            Ok(Ok(dht)) => dht,
            Ok(Err(e)) => {
                warn!("DHT: {e}");
                self.set_phase(Phase::Unreachable);
                self.state().error = Some(e.to_string());
                return;
            }
            Err(e) => return warn!("DHT: the client could not be started: {e}"),
        };
        let dht = self.client.get_or_init(|| dht).clone();
        let mut backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(300));
        let mut changes = self.node.watch_addr_record();
        loop {
            if !dht.bootstrapped().await {
                self.set_phase(Phase::Unreachable);
                let wait = backoff.next_delay(crate::backoff::random_unit());
                warn!("DHT: no bootstrap node answered; retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                continue;
            }
            self.state().nodes = dht.to_bootstrap().await.len();
            if self.state().phase != Phase::Ready {
                // The state first: a reader of the log line finds it in `status`.
                self.set_phase(Phase::Ready);
                info!("DHT: bootstrapped");
            }
            backoff.reset();
            changes.borrow_and_update();
            self.publish(&dht).await;
            tokio::select! {
                () = tokio::time::sleep(REPUBLISH_EVERY) => {}
                Ok(()) = changes.changed() => debug!("DHT: our address record changed"),
            }
        }
    }

    /// Publishes our current record once, noting the outcome for `status`.
    async fn publish(&self, dht: &AsyncDht) {
        let public_ip = dht.info().await.public_address().map(|a| *a.ip());
        let ours = {
            let mut made = self.made.lock().unwrap_or_else(PoisonError::into_inner);
            record::own(&self.node, &self.key, public_ip, &mut made)
        };
        let (value, seq) = (ours.encode(), ours.record.seq);
        // An update names the seq it replaces: the last one published by this process, or
        // at start the one the DHT holds under our key, if any.
        let last = self.state().published.map(|(_, seq)| seq as i64);
        let cas = match last {
            Some(seq) => Some(seq),
            None => dht
                .get_mutable_most_recent(self.key.peer_id().as_bytes(), Some(item::SALT))
                .await
                .map(|found| found.seq())
                .filter(|found| *found < seq as i64),
        };
        let outcome = match item::make(&self.key, &value, seq) {
            Ok(item) => dht.put_mutable(item, cas).await.map_err(DhtError::from),
            Err(e) => Err(e.into()),
        };
        let mut s = self.state();
        match outcome {
            Ok(_) => {
                info!(seq, "DHT: record published");
                s.published = Some((svc::unix_now(), seq));
                s.error = None;
            }
            Err(e) => {
                warn!("DHT: {e}");
                s.error = Some(e.to_string());
            }
        }
    }

    /// Ends the sightings whose record expired, once a minute.
    async fn sweep(self: Arc<Self>) {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tick.tick().await;
            let now = svc::unix_now();
            let expired: Vec<PeerId> = {
                let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
                let gone = seen
                    .iter()
                    .filter(|(_, expiry)| **expiry <= now)
                    .map(|(id, _)| *id)
                    .collect();
                seen.retain(|_, expiry| *expiry > now);
                gone
            };
            for id in expired {
                debug!(peer = %id.short(), "DHT: the record found expired");
                self.node.lost(id, Source::Dht);
            }
        }
    }

    /// Looks `peer` up (at most once per few seconds): the most recent valid record under
    /// its key, fed to the peer table, and its addresses; `None` when the DHT is not ready
    /// or holds no valid record.
    pub async fn find(&self, peer: PeerId) -> Option<Vec<SocketAddr>> {
        let dht = self.client.get()?.clone();
        {
            let mut lookups = self.lookups.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            if let Some((at, addrs)) = lookups.get(&peer)
                && now.duration_since(*at) < LOOKUP_EVERY
            {
                return addrs.clone();
            }
            lookups.retain(|_, (at, _)| now.duration_since(*at) < LOOKUP_EVERY);
            lookups.insert(peer, (now, None));
        }
        // The caller could not reach the peer where the sources said: whatever the DHT said
        // before is stale until the lookup says it again.
        self.node.lost(peer, Source::Dht);
        let now = svc::unix_now();
        let found = lookup(&dht, peer, |value, seq| {
            record::check(peer, value, seq, now)
        })
        .await;
        let addrs = found.and_then(|rec| {
            let addrs = record::take(&self.node, &rec)?;
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            seen.insert(peer, rec.record.expiry);
            Some(addrs)
        });
        let mut lookups = self.lookups.lock().unwrap_or_else(PoisonError::into_inner);
        lookups.insert(peer, (Instant::now(), addrs.clone()));
        addrs
    }
}

/// A mainline client bootstrapping from `bootstrap` (mainline's public nodes when empty).
/// Blocking: it binds a socket and resolves the names.
fn client(bootstrap: &[String]) -> Result<AsyncDht, DhtError> {
    let mut builder = Dht::builder();
    if !bootstrap.is_empty() {
        builder.bootstrap(bootstrap);
    }
    Ok(builder.build().map_err(DhtError::Start)?.as_async())
}

/// The most recent item under `peer`'s key that `check` takes, within [`LOOKUP_DEADLINE`]:
/// once one is taken, the lookup waits at most [`LOOKUP_GRACE`] more for a more recent one.
/// Items `check` refuses are logged and skipped.
pub async fn lookup<T>(
    dht: &AsyncDht,
    peer: PeerId,
    mut check: impl FnMut(&[u8], i64) -> Result<T, item::ItemError>,
) -> Option<T> {
    use futures_lite::StreamExt as _;
    let mut stream = dht.get_mutable(peer.as_bytes(), Some(item::SALT), None);
    let start = tokio::time::Instant::now();
    let mut deadline = start + LOOKUP_DEADLINE;
    let mut best: Option<(i64, T)> = None;
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next()).await;
        let Ok(Some(found)) = next else { break };
        let taken = item::value_of(&found, peer).and_then(|v| check(v, found.seq()));
        match taken {
            Ok(t) if best.as_ref().is_none_or(|(seq, _)| found.seq() > *seq) => {
                if best.is_none() {
                    deadline = deadline.min(tokio::time::Instant::now() + LOOKUP_GRACE);
                }
                best = Some((found.seq(), t));
            }
            Ok(_) => {}
            Err(e) => warn!(peer = %peer.short(), "DHT: an item was ignored: {e}"),
        }
    }
    debug!(peer = %peer.short(), found = best.is_some(), took = ?start.elapsed(), "DHT lookup");
    best.map(|(_, t)| t)
}

#[cfg(test)]
mod tests;
