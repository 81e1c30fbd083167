//! Starting and stopping p2pd: every socket is bound before [`Daemon::start`] returns, and
//! shutdown runs in one fixed order.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use proto::PeerId;
use proto::peer::{ALPN_BULK, ALPN_BULK_V1, ALPN_BULK_V2, ALPN_CHAT, ALPN_SHARE};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::chat::Chat;
use crate::chat::store::ChatStore;
use crate::config::Config;
use crate::dht::DhtSource;
use crate::lan::Lan;
use crate::node::{Identity, Node};
use crate::peers::TrackerIdx;
use crate::rekey::{self, RekeyError, Rekeyer};
use crate::resources::Sampler;
use crate::router::{Dialer, Router};
use crate::rpc::dispatch::Services;
use crate::rpc::server::{self, SocketError};
use crate::share::Shares;
use crate::share::store::ShareStore;
use crate::state_lock::{LockError, StateLock};
use crate::store::{Db, PeerStore, StoreError};
use crate::tracker_client::TrackerLink;
use crate::tracker_pin::TrackerPins;
use crate::transfer::records::TransferStore;
use crate::transfer::{BulkV1, Transfers};

/// Time tasks get to finish after shutdown begins.
const GRACE: Duration = Duration::from_secs(5);

/// Errors starting the daemon.
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
    /// Another daemon uses the state directory, or its lock could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The identity key.
    #[error(transparent)]
    Key(#[from] svc::keyfile::KeyFileError),
    /// The peer listener.
    #[error("cannot listen for peers on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The control socket.
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// TLS setup.
    #[error(transparent)]
    Tls(#[from] transport::TlsError),
    /// A pending key rotation's statement.
    #[error(transparent)]
    Rekey(#[from] RekeyError),
    /// The share service (its version store).
    #[error(transparent)]
    Shares(#[from] crate::share::SharesError),
    /// The pinned tracker keys could not be read (or the single pin of an older daemon
    /// moved).
    #[error("cannot read the tracker pins: {0}")]
    TrackerPins(#[source] std::io::Error),
}

/// A running daemon.
pub struct Daemon {
    node: Arc<Node>,
    socket: PathBuf,
    cancel: CancellationToken,
    tasks: TaskTracker,
    /// Cancelled when the daemon should restart with the same configuration (after `rekey`).
    restart: CancellationToken,
    /// The share service, whose indexes stop once the tasks serving them have ended.
    shares: Arc<Shares>,
    /// The state directory's lock, released last.
    lock: StateLock,
}

impl Daemon {
    /// Makes the state directory if needed, takes its lock, then starts as
    /// [`start_locked`](Self::start_locked) does.
    pub async fn start(config: Config) -> Result<Daemon, StartError> {
        svc::create_private_dir(&config.state_dir).map_err(|source| StartError::StateDir {
            dir: config.state_dir.display().to_string(),
            source,
        })?;
        let lock = StateLock::acquire(&config.state_dir)?;
        Self::start_locked(config, lock).await
    }

    /// With the state directory's lock already taken (before anything else touched the
    /// directory, such as the activity log): loads or makes the identity, binds the peer
    /// listener and the control socket, and starts the tracker link. Returns once clients and
    /// peers can connect.
    pub async fn start_locked(config: Config, lock: StateLock) -> Result<Daemon, StartError> {
        // A socket directory we may not use is refused before anything is made.
        server::prepare_dir(&config.socket)?;
        let (key, created) = svc::keyfile::load_or_create(&config.state_dir.join(rekey::KEY_FILE))?;
        if created {
            info!(id = %key.peer_id(), "made a new identity");
        }
        let pending = rekey::load_pending(&config.state_dir, key.peer_id())?;
        let peer_listener =
            svc::listen::bind_tcp(config.listen).map_err(|source| StartError::Listen {
                addr: config.listen,
                source,
            })?;
        let listen = peer_listener
            .local_addr()
            .map_err(|source| StartError::Listen {
                addr: config.listen,
                source,
            })?;
        let control = server::bind(&config.socket).await?;

        let db = Db::open(&config.state_dir).await?;
        let identity = Identity {
            name: config.name.clone(),
            id: key.peer_id(),
            listen,
            socket: config.socket.clone(),
            tracker_addrs: config.trackers.iter().map(|t| t.addr.clone()).collect(),
        };
        let node = Node::new(identity, &key, PeerStore::new(db.clone())).await?;
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        let dht = config.dht.as_ref().map(|dht| {
            DhtSource::start(dht, key.clone(), node.clone(), &tasks, cancel.child_token())
        });
        let dialer = Dialer::new(&key, config.name.clone(), dht.clone())?;
        let chat = Chat::start(
            node.clone(),
            ChatStore::new(db.clone()),
            dialer.clone(),
            config.limits.messages,
            tasks.clone(),
            cancel.child_token(),
        );
        let shares = Shares::start(
            node.clone(),
            ShareStore::new(db.clone()),
            &config.state_dir,
            dialer.clone(),
            tasks.clone(),
            cancel.child_token(),
        )
        .await?;
        let transfers = Transfers::start(
            node.clone(),
            TransferStore::new(db),
            dialer,
            config.download_dir.clone(),
            config.transfer_limits,
            tasks.clone(),
            cancel.child_token(),
        )
        .await;
        shares.carry_pulls_with(transfers.clone());
        let restart = CancellationToken::new();
        let lan = Lan::start(node.clone(), &config.lan, &tasks, cancel.child_token());
        let services = Arc::new(Services {
            node: node.clone(),
            chat: chat.clone(),
            transfers: transfers.clone(),
            shares: shares.clone(),
            sampler: Sampler::new(),
            rekey: Rekeyer::new(config.state_dir.clone(), key.clone(), restart.clone()),
            activity: crate::activity::ActivityLog::new(config.state_dir.clone()),
            lan,
            dht,
        });
        tasks.spawn(server::serve(
            control,
            services,
            cancel.child_token(),
            tasks.clone(),
        ));
        Router::new(node.clone())
            .accept(ALPN_CHAT, chat)
            // The newer bulk version first: a sender offering both gets it.
            .accept(ALPN_BULK, transfers.clone())
            .accept(ALPN_BULK_V2, transfers.clone())
            .accept(ALPN_BULK_V1, Arc::new(BulkV1(transfers)))
            .accept(ALPN_SHARE, shares.clone())
            .spawn(
                &key,
                peer_listener,
                config.limits,
                &tasks,
                cancel.child_token(),
            )?;
        let pins = Arc::new(
            TrackerPins::open(
                &config.state_dir,
                config.trackers.first().map(|t| t.addr.as_str()),
            )
            .map_err(StartError::TrackerPins)?,
        );
        for (tracker, i) in config.trackers.iter().zip(0u16..) {
            let link = TrackerLink {
                node: node.clone(),
                idx: TrackerIdx(i),
                pins: pins.clone(),
                key: key.clone(),
                addr: tracker.addr.clone(),
                configured_key: tracker.key,
                state_dir: config.state_dir.clone(),
                pending: pending.clone(),
                subscribe_max: config.limits.tracker_subscribe_max,
            };
            tasks.spawn(link.run(cancel.child_token()));
        }
        if config.trackers.is_empty() {
            info!("no tracker configured: peers are found by the other sources only");
        }
        tasks.spawn(crate::own_record::keep_fresh(
            node.clone(),
            cancel.child_token(),
        ));
        info!(name = %config.name, id = %node.identity.id, %listen, socket = %config.socket.display(), "p2pd started");
        Ok(Daemon {
            node,
            socket: config.socket,
            cancel,
            tasks,
            restart,
            shares,
            lock,
        })
    }

    /// Resolves when the daemon asks to be restarted with the same configuration (its
    /// identity key changed on disk).
    pub async fn restart_requested(&self) {
        self.restart.cancelled().await;
    }

    /// The bound peer-link address.
    pub fn listen_addr(&self) -> SocketAddr {
        self.node.identity.listen
    }

    /// The control socket path.
    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    /// This daemon's identity.
    pub fn id(&self) -> PeerId {
        self.node.identity.id
    }

    /// Stops in a fixed order: cancel every task (control clients, the peer listener, the
    /// tracker link, the LAN source, which says goodbye on the LAN), wait for them within a grace period, remove the socket file, and only
    /// then release the state directory.
    pub async fn shutdown(self) {
        drop(self.stop().await);
        info!("p2pd stopped");
    }

    /// Stops as [`shutdown`](Self::shutdown) does (the shares' indexes stop after the tasks) but keeps the state directory's lock and
    /// returns it, to start again in the same process ([`start_locked`](Self::start_locked)).
    pub async fn stop(self) -> StateLock {
        self.cancel.cancel();
        self.tasks.close();
        if tokio::time::timeout(GRACE, self.tasks.wait())
            .await
            .is_err()
        {
            warn!("tasks outlived the {GRACE:?} grace period");
        }
        self.shares.stop().await;
        server::remove(&self.socket);
        self.lock
    }
}
