//! Shares: directories this daemon serves to other peers, and the listing of other peers'
//! shares. [`Shares`] is the service: it owns the `shares` and `grants` tables
//! ([`store`]) and one [`index::ShareIndex`] per share, serves `p2p-share/1` (`serve.rs`:
//! every request checked against the grants as they are when it is served) and lists a
//! peer's shares over a share link it dials (`remote.rs`).

mod audit;
mod content;
mod dirs;
mod edit;
pub mod index;
mod pull;
mod put;
mod put_client;
mod put_fs;
mod remote;
mod serve;
mod state;
pub mod store;
mod swarm_get;
pub mod versions;
mod write;

pub use remote::LsQuery;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use proto::api::{GrantInfo, Granted, LocalShare, Revoked};
use proto::share::{Access, NameError, ShareName, VersionInfo};
use proto::transfer::{PathError, RelPath};
use proto::{PeerId, PeerName};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::link::LinkError;
use crate::node::Node;
use crate::router::Dialer;
use crate::store::StoreError;
use crate::transfer::{TransferError, Transfers};
use index::{IndexError, IndexOptions, ShareIndex};
use state::Live;
use store::{GrantRow, ShareRow, ShareStore};
use versions::{Retention, VersionStore};

/// Versions kept per path when `share add` gives no number.
pub const DEFAULT_KEEP_VERSIONS: u32 = 5;

/// Why a share operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SharesError {
    /// The share name breaks the naming rules.
    #[error("bad share name {name:?}: {source}")]
    Name {
        /// The name as given.
        name: String,
        /// Which rule.
        #[source]
        source: NameError,
    },
    /// A path inside a share breaks the path rules (`..`, absolute, hostile characters).
    #[error("bad path {path:?}: {source}")]
    BadPath {
        /// The path as given.
        path: String,
        /// Which rule.
        #[source]
        source: PathError,
    },
    /// The directory to share is not usable.
    #[error("cannot share {}: {source}", path.display())]
    Dir {
        /// The path as given.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The name is taken by another share.
    #[error("a share named {0} exists already (remove it first with 'share rm {0}')")]
    Exists(ShareName),
    /// No share of that name here.
    #[error("no share named {0}")]
    NoSuchShare(String),
    /// The share's index could not start.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No address is known for the peer now.
    #[error("{0} is offline; try again once it is online")]
    Offline(String),
    /// The share link could not be made or broke.
    #[error("cannot reach {peer}: {detail}")]
    Link {
        /// The peer.
        peer: PeerName,
        /// What failed.
        detail: String,
    },
    /// The peer refused: we lack the right, or the share does not exist there.
    #[error("permission denied: {share} on {peer} (ask {peer} for {})", right.as_str())]
    Denied {
        /// The share.
        share: ShareName,
        /// The peer.
        peer: PeerName,
        /// The right needed.
        right: Access,
    },
    /// The transfer service refused.
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// A multi-source get failed.
    #[error(transparent)]
    Swarm(#[from] crate::swarm::fetch::SwarmError),
    /// The peer's p2pd does not serve pulls.
    #[error("{0}'s p2pd is too old for get")]
    TooOld(PeerName),
    /// The peer has no such entry in the share.
    #[error("no such file: {path} on {peer}")]
    NotFound {
        /// `SHARE/PATH` as asked.
        path: String,
        /// The peer.
        peer: PeerName,
    },
    /// A put lost a race: the path changed on the peer since it was looked at.
    #[error("conflict: {path} changed on {peer} since you read it")]
    Conflict {
        /// `SHARE/PATH`.
        path: String,
        /// The peer.
        peer: PeerName,
    },
    /// The local file or directory to put cannot be read.
    #[error("cannot put {}: {source}", path.display())]
    Source {
        /// The local path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An entry of a share, or the version store, could not be read or changed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// `SHARE/PATH`.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// No such entry in one of our shares (or only one reached through a symlink).
    #[error("no such file: {0}")]
    NoSuchEntry(String),
    /// An entry is in the way (a move's or a new directory's path).
    #[error("{0} exists already")]
    EntryExists(String),
    /// A directory to remove holds entries.
    #[error("{0} is a directory that is not empty")]
    NotEmpty(String),
    /// The entry is not what the change needs (a directory to restore a file over).
    #[error("{path} is {what}")]
    WrongKind {
        /// `SHARE/PATH`.
        path: String,
        /// What it is, and why that does not do.
        what: &'static str,
    },
    /// No version of that number is kept.
    #[error("no version {number} of {path} is kept (see 'p2pctl versions')")]
    NoSuchVersion {
        /// `SHARE/PATH`.
        path: String,
        /// The number asked for.
        number: u64,
    },
    /// A peer's change would take the share over its quota.
    #[error("{share} would be over its quota of {quota} bytes")]
    OverQuota {
        /// The share.
        share: ShareName,
        /// Its quota.
        quota: u64,
    },
    /// The peer answered with another error.
    #[error("{peer}: {message}")]
    Remote {
        /// The peer.
        peer: PeerName,
        /// Its message (neutralised on the wire).
        message: String,
    },
}

impl SharesError {
    fn link(peer: &PeerName, e: impl std::fmt::Display) -> Self {
        SharesError::Link {
            peer: peer.clone(),
            detail: e.to_string(),
        }
    }
}

impl From<(PeerName, LinkError)> for SharesError {
    fn from((peer, e): (PeerName, LinkError)) -> Self {
        SharesError::link(&peer, e)
    }
}

/// The share service.
pub struct Shares {
    node: Arc<Node>,
    store: ShareStore,
    dialer: Arc<Dialer>,
    live: Mutex<Live>,
    options: IndexOptions,
    /// The transfer service, which carries pulls (set once both services run).
    transfers: OnceLock<Arc<Transfers>>,
    /// The chunk values of content served by id lately.
    content: content::CvCache,
    /// The multi-source downloads in progress, whose verified chunks are served.
    partials: Arc<crate::swarm::partial::Partials>,
    /// What the daemon replaced or removed in its shares.
    versions: Arc<VersionStore>,
    /// One lock per share, held by every change made in it.
    write_locks: Mutex<HashMap<ShareName, Arc<tokio::sync::Mutex<()>>>>,
    tasks: TaskTracker,
    cancel: CancellationToken,
}

impl Shares {
    /// Loads the shares and grants, opens the version store (`<state_dir>/versions`) and each
    /// share's index (a share whose directory is gone is kept, listed with the error, and
    /// served as unavailable).
    pub async fn start(
        node: Arc<Node>,
        store: ShareStore,
        state_dir: &Path,
        dialer: Arc<Dialer>,
        tasks: TaskTracker,
        cancel: CancellationToken,
    ) -> Result<Arc<Shares>, SharesError> {
        let versions = VersionStore::open(state_dir, store.db().clone()).map_err(|source| {
            SharesError::Io {
                what: "cannot open the version store",
                path: state_dir.join(versions::VERSIONS_DIR).display().to_string(),
                source,
            }
        })?;
        let (rows, grants) = store.load().await?;
        let options = IndexOptions::default();
        let mut live = Live::default();
        for row in rows {
            let index = ShareIndex::open(Path::new(&row.path), options.clone())
                .map(Arc::new)
                .map_err(|e| {
                    warn!(share = %row.name, "cannot serve the share: {e}");
                    e.to_string()
                });
            live.add(row, index);
        }
        for g in grants {
            live.grant(&g.share, g.peer, g.right);
        }
        Ok(Arc::new(Shares {
            node,
            store,
            dialer,
            live: Mutex::new(live),
            options,
            transfers: OnceLock::new(),
            content: content::CvCache::default(),
            partials: Arc::default(),
            versions: Arc::new(versions),
            write_locks: Mutex::new(HashMap::new()),
            tasks,
            cancel,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves the directory at `path` as `name`.
    pub async fn add(
        &self,
        name: &str,
        path: &str,
        settings: ShareSettings,
    ) -> Result<LocalShare, SharesError> {
        let name = share_name(name)?;
        let dir_err = |source| SharesError::Dir {
            path: PathBuf::from(path),
            source,
        };
        if !Path::new(path).is_absolute() {
            return Err(dir_err(std::io::Error::other("the path must be absolute")));
        }
        let canonical = std::fs::canonicalize(path).map_err(dir_err)?;
        if !canonical.is_dir() {
            return Err(dir_err(std::io::Error::other("not a directory")));
        }
        if self.lock().get(&name).is_some() {
            return Err(SharesError::Exists(name));
        }
        let index = Arc::new(ShareIndex::open(&canonical, self.options.clone())?);
        let row = ShareRow {
            name: name.clone(),
            path: canonical.display().to_string(),
            keep_versions: settings.keep_versions.unwrap_or(DEFAULT_KEEP_VERSIONS),
            max_version_bytes: settings.max_version_bytes,
            max_version_age: settings.max_version_age,
            write_quota: settings.quota,
            created: svc::unix_now(),
        };
        if !self.store.add(row.clone()).await? {
            stop_index(index).await;
            return Err(SharesError::Exists(name));
        }
        info!(share = %name, path = %row.path, "share added");
        self.lock().add(row, Ok(index));
        self.describe(&name)
    }

    /// Stops serving `name` and drops its grants.
    pub async fn remove(&self, name: &str) -> Result<LocalShare, SharesError> {
        let name = share_name(name)?;
        let before = self.describe(&name)?;
        let writing = self.write_lock(&name).await?;
        self.store.remove(&name).await?;
        let (root, served) = {
            let mut live = self.lock();
            let root = live
                .get(&name)
                .map(|s| std::path::PathBuf::from(&s.row.path));
            (root, live.remove(&name))
        };
        if let Some(root) = root {
            self.end_pulls(None, &root, "the share was removed").await;
        }
        let versions = self.versions.clone();
        let share = name.to_string();
        let forgotten = tokio::task::spawn_blocking(move || versions.forget_share(&share)).await;
        if let Ok(Err(e)) = forgotten {
            warn!(share = %name, "cannot drop the versions of a removed share: {e}");
        }
        drop(writing);
        lock_map(&self.write_locks).remove(&name);
        if let Some(Ok(index)) = served {
            stop_index(index).await;
        }
        info!(share = %name, "share removed");
        Ok(before)
    }

    /// Every share, by name, with its counts and grants.
    pub fn list(&self) -> Vec<LocalShare> {
        let names = self.lock().names();
        names.iter().filter_map(|n| self.describe(n).ok()).collect()
    }

    /// Gives `peer` `right` on `share` (pinning the peer).
    pub async fn grant(
        &self,
        share: &str,
        peer: PeerId,
        right: Access,
    ) -> Result<Granted, SharesError> {
        let share = self.existing(share)?;
        self.node.deal_with(peer).await?;
        let g = GrantRow {
            share: share.clone(),
            peer,
            right,
        };
        self.store.grant(g).await?;
        self.lock().grant(&share, peer, right);
        info!(%share, peer = %peer.short(), right = right.as_str(), "granted");
        Ok(Granted {
            peer: self.peer_name(peer),
            share,
            id: peer,
            right,
        })
    }

    /// Takes `peer`'s right on `share` away; its next request is refused.
    pub async fn revoke(&self, share: &str, peer: PeerId) -> Result<Revoked, SharesError> {
        let share = self.existing(share)?;
        let revoked = self.store.revoke(&share, peer).await?;
        let root = {
            let mut live = self.lock();
            live.revoke(&share, peer);
            live.get(&share)
                .map(|s| std::path::PathBuf::from(&s.row.path))
        };
        if let Some(root) = root {
            self.end_pulls(Some(peer), &root, "access revoked").await;
        }
        info!(%share, peer = %peer.short(), "revoked");
        Ok(Revoked {
            peer: self.peer_name(peer),
            share,
            revoked,
        })
    }

    /// Waits for, and takes, the write lock of `share`: every change made in a share
    /// (a put's commit, rm, mv, mkdir, restore) holds it, so they happen one at a time.
    pub async fn write_lock(
        &self,
        share: &ShareName,
    ) -> Result<tokio::sync::OwnedMutexGuard<()>, SharesError> {
        if self.lock().get(share).is_none() {
            return Err(SharesError::NoSuchShare(share.to_string()));
        }
        let lock = lock_map(&self.write_locks)
            .entry(share.clone())
            .or_default()
            .clone();
        Ok(lock.lock_owned().await)
    }

    /// Keeps the current bytes of the regular file at `path` in `share` as its next version
    /// (`by`: the peer whose request replaces or removes it; `None` for the owner), then
    /// applies the share's retention. Call it with the share's [`write_lock`](Self::write_lock)
    /// held, just before the file is replaced or removed: the version is a hard link to the
    /// file where the filesystem allows. `Ok(None)` if nothing is there to keep (absent, a
    /// directory, a symlink). The path is reached below the share's root with no symlink
    /// followed.
    pub async fn archive(
        &self,
        share: &ShareName,
        path: &RelPath,
        by: Option<PeerId>,
    ) -> Result<Option<VersionInfo>, SharesError> {
        let (root, keep) = self.root_of(share)?;
        let versions = self.versions.clone();
        let key = versions::Key {
            share: share.to_string(),
            path: path.as_str().to_owned(),
        };
        let path = path.clone();
        let shown = format!("{share}/{path}");
        tokio::task::spawn_blocking(move || {
            let root = dirs::open_root(&root).map_err(|source| SharesError::Io {
                what: "cannot open",
                path: shown.clone(),
                source,
            })?;
            let parent = match dirs::parent_of(&root, &path) {
                Ok(p) => p,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(source) => {
                    return Err(SharesError::Io {
                        what: "cannot open",
                        path: shown,
                        source,
                    });
                }
            };
            versions.archive(&parent.dir, &parent.name, &key, by, &keep)
        })
        .await
        .map_err(|e| SharesError::Io {
            what: "cannot keep a version of",
            path: String::new(),
            source: std::io::Error::other(e),
        })?
    }

    /// The directory served as `share` and its retention.
    fn root_of(&self, share: &ShareName) -> Result<(PathBuf, Retention), SharesError> {
        let live = self.lock();
        let served = live
            .get(share)
            .ok_or_else(|| SharesError::NoSuchShare(share.to_string()))?;
        Ok((PathBuf::from(&served.row.path), Retention::of(&served.row)))
    }

    /// Stops every share's index (after the tasks that serve them have ended).
    pub async fn stop(&self) {
        let all = self.lock().take_all();
        for index in all {
            stop_index(index).await;
        }
    }

    fn existing(&self, name: &str) -> Result<ShareName, SharesError> {
        let name = share_name(name)?;
        match self.lock().get(&name) {
            Some(_) => Ok(name),
            None => Err(SharesError::NoSuchShare(name.to_string())),
        }
    }

    /// The name the peer table holds for `id`; its short id if it holds none.
    fn peer_name(&self, id: PeerId) -> String {
        if id == self.node.identity.id {
            return self.node.identity.name.to_string();
        }
        self.node
            .peer(id)
            .map_or_else(|| id.short(), |p| p.name.to_string())
    }

    fn describe(&self, name: &ShareName) -> Result<LocalShare, SharesError> {
        let live = self.lock();
        let served = live
            .get(name)
            .ok_or_else(|| SharesError::NoSuchShare(name.to_string()))?;
        let (ready, totals, error) = match &served.index {
            Ok(ix) => (ix.is_ready(), ix.stats().totals, None),
            Err(e) => (false, index::Totals::default(), Some(e.clone())),
        };
        let grants = live
            .grants_of(name)
            .map(|(id, right)| GrantInfo {
                peer: self.peer_name(id),
                id,
                right,
            })
            .collect();
        Ok(LocalShare {
            name: name.clone(),
            path: served.row.path.clone(),
            keep_versions: served.row.keep_versions,
            max_version_bytes: served.row.max_version_bytes,
            max_version_age: served.row.max_version_age,
            quota: served.row.write_quota,
            ready,
            files: totals.files,
            bytes: totals.bytes,
            hashed: totals.hashed,
            error,
            grants,
        })
    }
}

/// What `share add` may set besides the name and directory; `None`: the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShareSettings {
    /// Versions kept per path ([`DEFAULT_KEEP_VERSIONS`]).
    pub keep_versions: Option<u32>,
    /// Cap on the bytes of the share's kept versions (none).
    pub max_version_bytes: Option<u64>,
    /// Versions older than this many seconds are dropped (never).
    pub max_version_age: Option<u64>,
    /// Cap on the share's total bytes that peers' writes may reach (none).
    pub quota: Option<u64>,
}

fn lock_map<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn share_name(name: &str) -> Result<ShareName, SharesError> {
    ShareName::new(name).map_err(|source| SharesError::Name {
        name: name.to_owned(),
        source,
    })
}

/// Stops an index off the runtime's workers (its threads are joined); a handler still
/// holding it stops it when done.
async fn stop_index(index: Arc<ShareIndex>) {
    let _ = tokio::task::spawn_blocking(move || drop(index)).await;
}
