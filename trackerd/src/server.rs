//! Starting and stopping the tracker: bind, accept under the connection caps, spawn one
//! tracked task per connection, sweep the links whose lease ran out, and shut down in a
//! fixed order.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use proto::PeerId;
use svc::logging::ACTIVITY;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::admin::{self, AdminError};
use crate::config::Config;
use crate::conn::{ConnCtx, serve};
use crate::limits::{ConnLimiter, Over, RateLimiter};
use crate::state::{Hub, Tally};
use crate::store::{Store, StoreError};

/// Time connections get to finish after shutdown begins.
const GRACE: Duration = Duration::from_secs(5);

/// Errors starting the tracker.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The state directory could not be made.
    #[error("cannot create state directory {dir}: {source}")]
    StateDir {
        /// The directory.
        dir: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The identity key.
    #[error(transparent)]
    Key(#[from] svc::keyfile::KeyFileError),
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// TLS setup.
    #[error(transparent)]
    Tls(#[from] transport::TlsError),
    /// The admin socket.
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// The listen address.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A running tracker. Returned by [`Tracker::start`] only once it accepts connections.
pub struct Tracker {
    addr: SocketAddr,
    id: PeerId,
    hub: Hub,
    admin_socket: PathBuf,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl Tracker {
    /// Creates the state directory, loads or makes the key, opens the database, binds the
    /// listener and starts accepting.
    pub async fn start(config: Config) -> Result<Tracker, StartError> {
        svc::create_private_dir(&config.state_dir).map_err(|source| StartError::StateDir {
            dir: config.state_dir.display().to_string(),
            source,
        })?;
        let (key, created) = svc::keyfile::load_or_create(&config.state_dir.join("tracker.key"))?;
        if created {
            info!(id = %key.peer_id(), "made a new tracker key");
        }
        let store = Store::open(&config.state_dir)?;
        let limits = &config.limits;
        let hub = Hub::new(
            store,
            RateLimiter::new(
                limits.registrations_per_ip_per_sec,
                limits.registration_burst,
            ),
            config.name_lapse,
        )?;
        let listener = svc::listen::bind_tcp(config.listen).map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let ctx = Arc::new(ConnCtx {
            tls: transport::lean_server_config(&key)?,
            hub: hub.clone(),
            handshake_timeout: limits.handshake_timeout,
            lease: config.lease,
        });
        let admin_listener = admin::bind(&config.admin_socket).await?;
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(admin::serve(
            admin_listener,
            hub.clone(),
            cancel.clone(),
            tasks.clone(),
        ));
        tasks.spawn(touch_live_loop(
            hub.clone(),
            touch_interval(config.name_lapse),
            cancel.clone(),
        ));
        tasks.spawn(sweep_loop(hub.clone(), config.lease, cancel.clone()));
        tasks.spawn(accept_loop(
            listener,
            ctx,
            ConnLimiter::per_prefix(limits.max_connections, limits.max_connections_per_ip),
            cancel.clone(),
            tasks.clone(),
        ));
        info!(%addr, id = %key.peer_id(), admin = %config.admin_socket.display(), "tracker listening");
        Ok(Tracker {
            addr,
            id: key.peer_id(),
            hub,
            admin_socket: config.admin_socket,
            cancel,
            tasks,
        })
    }

    /// The bound address (the real port when the config said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The tracker's identity, which peers pin.
    pub fn id(&self) -> PeerId {
        self.id
    }

    /// Live registered peers.
    pub fn live_count(&self) -> usize {
        self.hub.live_count()
    }

    /// Stops accepting, closes every connection, waits for their tasks (up to a grace
    /// period). The database closes when the last handle drops.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.hub.close_all();
        self.tasks.close();
        if tokio::time::timeout(GRACE, self.tasks.wait())
            .await
            .is_err()
        {
            warn!("connections outlived the {GRACE:?} grace period");
        }
        if let Err(e) = std::fs::remove_file(&self.admin_socket) {
            warn!("cannot remove {}: {e}", self.admin_socket.display());
        }
        info!("tracker stopped");
    }
}

/// How often connected keys' bindings are marked used: a quarter of the lapse time, at
/// least every second and at most every hour.
fn touch_interval(lapse: Duration) -> Duration {
    (lapse / 4).clamp(Duration::from_secs(1), Duration::from_secs(3600))
}

/// Marks connected keys' bindings used every `every`, so that a tracker killed while they
/// are connected does not let their names lapse early.
async fn touch_live_loop(hub: Hub, every: Duration, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = tick.tick() => hub.touch_live(),
        }
    }
}

/// How often the leases are checked: a tenth of the lease, between 100 ms and 1 s, so a
/// silent peer goes at most that long after its lease.
fn sweep_interval(lease: Duration) -> Duration {
    (lease / 10).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

/// How often the registrations and departures are summed up in the activity log.
const TALLY_EVERY: Duration = Duration::from_secs(60);

/// Closes the links whose lease ran out: one timer for all of them. Also logs, every
/// [`TALLY_EVERY`] in which peers came or went, how many, beside the line each
/// registration and departure has.
async fn sweep_loop(hub: Hub, lease: Duration, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(sweep_interval(lease));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut report =
        tokio::time::interval_at(tokio::time::Instant::now() + TALLY_EVERY, TALLY_EVERY);
    report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = Tally::default();
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = tick.tick() => {
                let closed = hub.sweep(lease);
                if closed > 0 {
                    debug!(closed, "leases ran out");
                }
            }
            _ = report.tick() => {
                let now = hub.tally();
                if now != last {
                    info!(target: ACTIVITY, op = "peers", registered = now.registered - last.registered, left = now.left - last.left, live = hub.live_count(), "registrations and departures in the last minute");
                    last = now;
                }
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<ConnCtx>,
    limiter: ConnLimiter,
    cancel: CancellationToken,
    tasks: TaskTracker,
) {
    let mut next_id: u64 = 0;
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            r = listener.accept() => r,
        };
        let (tcp, addr) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!("accept failed: {e}");
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(50)) => continue,
                }
            }
        };
        let acquired = match limiter.try_acquire(addr.ip()) {
            // Full: make room by evicting one (see `Hub::evict_idlest`).
            Err(Over::Total) if ctx.hub.evict_idlest().is_some() => {
                limiter.try_acquire_over_total(addr.ip())
            }
            other => other,
        };
        let slot = match acquired {
            Ok(slot) => slot,
            Err(over) => {
                debug!(%addr, ?over, "connection refused: over the limit");
                drop(tcp);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        next_id += 1;
        tasks.spawn(serve(ctx.clone(), next_id, tcp, addr, slot));
    }
}
