//! Changes to one of our shares: remove, move, make a directory, put a kept version back,
//! and the kept versions of a path. Each change runs under the share's write lock, reaches
//! its paths below the share's root with no symlink followed (`dirs.rs`), keeps what it
//! replaces or removes in the version store first, and has the share's index look at what
//! it changed before it returns, so a listing right after shows it. `by` is the peer whose
//! request it serves; `None` for the owner.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cap_std::fs::{Dir, OpenOptions};
use proto::PeerId;
use proto::share::rules::{self, Access};
use proto::share::{ErrorKind, Request, Response, ShareName, VersionInfo};
use proto::transfer::RelPath;

use super::dirs::{self, Found, Parent};
use super::index::ShareIndex;
use super::versions::{Key, Retention, VersionStore};
use super::{Shares, SharesError};

/// How long a change waits for the index to show it before answering anyway.
const REFRESH_WAIT: Duration = Duration::from_secs(30);

/// Names the temporary files of restores apart.
static TEMP: AtomicU64 = AtomicU64::new(0);

/// What a change in one share needs.
struct Target {
    root: PathBuf,
    keep: Retention,
    quota: Option<u64>,
    index: Option<Arc<ShareIndex>>,
}

/// `SHARE/PATH`, as errors show it.
fn shown(share: &ShareName, path: &str) -> String {
    format!("{share}/{path}")
}

/// The parent directory's path of `path` in the share, `SHARE/DIR` (the share alone for a
/// top-level entry).
fn parent_shown(share: &ShareName, path: &RelPath) -> String {
    match path.as_str().rsplit_once('/') {
        Some((dir, _)) => shown(share, dir),
        None => share.to_string(),
    }
}

fn io_err(what: &'static str, path: &str) -> impl Fn(io::Error) -> SharesError {
    let path = path.to_owned();
    move |source| SharesError::Io {
        what,
        path: path.clone(),
        source,
    }
}

/// Runs `f` off the runtime's workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SharesError> + Send + 'static,
) -> Result<T, SharesError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io_err("cannot change", "")(io::Error::other(e))))
}

/// The parent of `path` below `root`; a directory missing on the way (or a symlink) is
/// `missing`.
fn parent(
    root: &Dir,
    path: &RelPath,
    missing: impl FnOnce() -> SharesError,
) -> Result<Parent, SharesError> {
    match dirs::parent_of(root, path) {
        Ok(p) => Ok(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(missing()),
        Err(e) => Err(io_err("cannot open", path.as_str())(e)),
    }
}

fn open_root(t: &Target, share: &ShareName) -> Result<Dir, SharesError> {
    dirs::open_root(&t.root).map_err(io_err("cannot open", share.as_str()))
}

impl Shares {
    fn target(&self, share: &ShareName) -> Result<Target, SharesError> {
        let live = self.lock();
        let served = live
            .get(share)
            .ok_or_else(|| SharesError::NoSuchShare(share.to_string()))?;
        Ok(Target {
            root: PathBuf::from(&served.row.path),
            keep: Retention::of(&served.row),
            quota: served.row.write_quota,
            index: served.index.as_ref().ok().cloned(),
        })
    }

    /// Has the share's index look at `paths` now, and waits (a while) until it shows them.
    async fn refreshed(&self, t: &Target, paths: &[RelPath]) {
        if let Some(index) = &t.index {
            let _ = tokio::time::timeout(REFRESH_WAIT, index.refresh(paths)).await;
        }
    }

    fn version_key(share: &ShareName, path: &RelPath) -> Key {
        Key {
            share: share.to_string(),
            path: path.as_str().to_owned(),
        }
    }

    /// Removes the file at `path` (kept as a version first) or the empty directory there.
    pub(super) async fn remove_entry(
        &self,
        share: &ShareName,
        path: &RelPath,
        by: Option<PeerId>,
    ) -> Result<Option<VersionInfo>, SharesError> {
        let _writing = self.write_lock(share).await?;
        let t = self.target(share)?;
        let (root, name) = (open_root(&t, share)?, shown(share, path.as_str()));
        let (versions, key, keep, rel) = (
            self.versions.clone(),
            Self::version_key(share, path),
            t.keep,
            path.clone(),
        );
        let kept = blocking(move || {
            let missing = || SharesError::NoSuchEntry(name.clone());
            let p = parent(&root, &rel, missing)?;
            let kept =
                match dirs::found(&p.dir, &p.name).map_err(io_err("cannot look at", &name))? {
                    None | Some(Found::Other) => return Err(missing()),
                    Some(Found::Dir) => match p.dir.remove_dir(&p.name) {
                        Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => {
                            return Err(SharesError::NotEmpty(name));
                        }
                        r => r.map(|()| None).map_err(io_err("cannot remove", &name))?,
                    },
                    Some(Found::File(_)) => {
                        let kept = versions.archive(&p.dir, &p.name, &key, by, &keep)?;
                        p.dir
                            .remove_file(&p.name)
                            .map_err(io_err("cannot remove", &name))?;
                        kept
                    }
                };
            dirs::sync_dir(&p.dir).map_err(io_err("cannot remove", &name))?;
            Ok(kept)
        })
        .await?;
        self.refreshed(&t, std::slice::from_ref(path)).await;
        self.log_change(
            "share-rm",
            by,
            share,
            path,
            None,
            kept.as_ref().map(|v| v.number),
        );
        Ok(kept)
    }

    /// Moves the entry at `from` to `to`, never over an existing entry.
    pub(super) async fn move_entry(
        &self,
        share: &ShareName,
        from: &RelPath,
        to: &RelPath,
        by: Option<PeerId>,
    ) -> Result<(), SharesError> {
        let _writing = self.write_lock(share).await?;
        let t = self.target(share)?;
        let root = open_root(&t, share)?;
        let (from_name, to_name) = (shown(share, from.as_str()), shown(share, to.as_str()));
        let to_parent = parent_shown(share, to);
        let (f, tt) = (from.clone(), to.clone());
        blocking(move || {
            let missing = || SharesError::NoSuchEntry(from_name.clone());
            let src = parent(&root, &f, missing)?;
            match dirs::found(&src.dir, &src.name).map_err(io_err("cannot look at", &from_name))? {
                Some(Found::File(_) | Found::Dir) => {}
                None | Some(Found::Other) => return Err(missing()),
            }
            let dst = parent(&root, &tt, || SharesError::NoSuchEntry(to_parent))?;
            match dirs::rename_noreplace(&src.dir, &src.name, &dst.dir, &dst.name) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(SharesError::EntryExists(to_name));
                }
                r => r.map_err(io_err("cannot move", &from_name))?,
            }
            dirs::sync_dir(&dst.dir)
                .and_then(|()| dirs::sync_dir(&src.dir))
                .map_err(io_err("cannot move", &from_name))
        })
        .await?;
        self.refreshed(&t, &[from.clone(), to.clone()]).await;
        self.log_change("share-mv", by, share, from, Some(to), None);
        Ok(())
    }

    /// Makes the directory `path`; its parent must exist.
    pub(super) async fn make_dir(
        &self,
        share: &ShareName,
        path: &RelPath,
        by: Option<PeerId>,
    ) -> Result<(), SharesError> {
        let _writing = self.write_lock(share).await?;
        let t = self.target(share)?;
        let root = open_root(&t, share)?;
        let name = shown(share, path.as_str());
        let up = parent_shown(share, path);
        let rel = path.clone();
        blocking(move || {
            let p = parent(&root, &rel, || SharesError::NoSuchEntry(up))?;
            match p.dir.create_dir(&p.name) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(SharesError::EntryExists(name));
                }
                r => r.map_err(io_err("cannot make", &name))?,
            }
            dirs::sync_dir(&p.dir).map_err(io_err("cannot make", &name))
        })
        .await?;
        self.refreshed(&t, std::slice::from_ref(path)).await;
        self.log_change("share-mkdir", by, share, path, None, None);
        Ok(())
    }

    /// The kept versions of `path` in `share`, oldest first.
    pub(super) async fn versions_of(
        &self,
        share: &ShareName,
        path: &RelPath,
    ) -> Result<Vec<VersionInfo>, SharesError> {
        self.target(share)?;
        Ok(self.versions.list(&Self::version_key(share, path)).await?)
    }

    /// Puts version `number` of `path` back: what is there now is kept as a version first,
    /// then the version's bytes (checked against its content id) replace it through a
    /// temporary file in the same directory, synced, renamed over it. A peer's restore that
    /// would take the share over its quota is refused.
    pub(super) async fn restore_version(
        &self,
        share: &ShareName,
        path: &RelPath,
        number: u64,
        by: Option<PeerId>,
    ) -> Result<(), SharesError> {
        let _writing = self.write_lock(share).await?;
        let t = self.target(share)?;
        let key = Self::version_key(share, path);
        let name = shown(share, path.as_str());
        let Some(v) = self.versions.get(&key, number).await? else {
            return Err(SharesError::NoSuchVersion { path: name, number });
        };
        let root = open_root(&t, share)?;
        let up = parent_shown(share, path);
        let quota = match (t.quota.filter(|_| by.is_some()), &t.index) {
            (Some(q), Some(ix)) => {
                // The share's total is the index's: complete once its first walk is.
                let _ = tokio::time::timeout(REFRESH_WAIT, ix.ready()).await;
                Some((q, ix.stats().totals.bytes))
            }
            (Some(q), None) => Some((q, 0)),
            (None, _) => None,
        };
        let (versions, keep, rel, quota_share) =
            (self.versions.clone(), t.keep, path.clone(), share.clone());
        blocking(move || {
            let p = parent(&root, &rel, || SharesError::NoSuchEntry(up))?;
            let now = dirs::found(&p.dir, &p.name).map_err(io_err("cannot look at", &name))?;
            let current = match now {
                Some(Found::Dir) => {
                    return Err(SharesError::WrongKind {
                        path: name,
                        what: "a directory; move it away first",
                    });
                }
                Some(Found::Other) => {
                    return Err(SharesError::WrongKind {
                        path: name,
                        what: "not a regular file",
                    });
                }
                Some(Found::File(n)) => n,
                None => 0,
            };
            if let Some((q, total)) = quota
                && total.saturating_sub(current).saturating_add(v.size) > q
            {
                return Err(SharesError::OverQuota {
                    share: quota_share,
                    quota: q,
                });
            }
            let temp = format!(
                ".p2p-restore.{}.{}",
                std::process::id(),
                TEMP.fetch_add(1, Ordering::Relaxed)
            );
            let put_back = || -> Result<(), SharesError> {
                copy_blob(&versions, &v, &p.dir, &temp).map_err(io_err("cannot restore", &name))?;
                versions.archive(&p.dir, &p.name, &key, by, &keep)?;
                dirs::rename_over(&p.dir, &temp, &p.dir, &p.name)
                    .and_then(|()| dirs::sync_dir(&p.dir))
                    .map_err(io_err("cannot restore", &name))
            };
            let r = put_back();
            if r.is_err() {
                let _ = p.dir.remove_file(&temp);
            }
            r
        })
        .await?;
        self.refreshed(&t, std::slice::from_ref(path)).await;
        self.log_change("share-restore", by, share, path, None, Some(number));
        Ok(())
    }

    /// The answer to a change (or a list of versions) asked by `peer`, whose right was
    /// checked already.
    pub(super) async fn serve_change(&self, peer: PeerId, request: Request) -> Response {
        let by = Some(peer);
        let done = |r: Result<(), SharesError>| r.map(|()| Response::Done);
        let r = match &request {
            Request::Remove { share, path } => {
                done(self.remove_entry(share, path, by).await.map(drop))
            }
            Request::Rename { share, from, to } => done(self.move_entry(share, from, to, by).await),
            Request::MakeDir { share, path } => done(self.make_dir(share, path, by).await),
            Request::Versions { share, path } => {
                self.versions_of(share, path).await.map(Response::Versions)
            }
            Request::Restore {
                share,
                path,
                version,
            } => done(self.restore_version(share, path, *version, by).await),
            other => Ok(Response::error(
                ErrorKind::Invalid,
                &format!("request {} is not a change", other.tag()),
            )),
        };
        r.unwrap_or_else(|e| change_refused(&request, &e))
    }

    /// The activity-log line of a change made.
    fn log_change(
        &self,
        op: &'static str,
        by: Option<PeerId>,
        share: &ShareName,
        path: &RelPath,
        to: Option<&RelPath>,
        version: Option<u64>,
    ) {
        let to = to.map_or_else(String::new, |t| t.to_string());
        let version = version.map_or_else(String::new, |n| n.to_string());
        match by {
            Some(id) => {
                let who = self.peer_name(id);
                tracing::info!(target: svc::logging::ACTIVITY, op, peer = %who, peer_id = %id, share = %share, path = %path, to = %to, version = %version, "share changed");
            }
            None => {
                tracing::info!(target: svc::logging::ACTIVITY, op, share = %share, path = %path, to = %to, version = %version, "share changed");
            }
        }
    }
}

/// Writes the bytes of version `v` to the new file `temp` of `dir`, checking them against
/// the version's content id, and syncs it.
fn copy_blob(versions: &VersionStore, v: &VersionInfo, dir: &Dir, temp: &str) -> io::Result<()> {
    let mut from = versions.open_blob(&v.id)?;
    let mut to = dir
        .open_with(temp, OpenOptions::new().write(true).create_new(true))?
        .into_std();
    let (id, _) = super::versions::hash(&mut from, Some(&mut to))?;
    if id != v.id {
        return Err(io::Error::other("the kept version is damaged"));
    }
    to.sync_all()
}

/// The protocol's answer for a change that failed.
fn change_refused(request: &Request, e: &SharesError) -> Response {
    let kind = match e {
        SharesError::NoSuchShare(_) => {
            let share = match request {
                Request::Remove { share, .. }
                | Request::Rename { share, .. }
                | Request::MakeDir { share, .. }
                | Request::Versions { share, .. }
                | Request::Restore { share, .. } => share,
                _ => return Response::error(ErrorKind::Invalid, "no such share"),
            };
            let right = match request {
                Request::Versions { .. } => Access::Read,
                _ => Access::Write,
            };
            return Response::Error(rules::denied(share, right));
        }
        SharesError::NoSuchEntry(_) | SharesError::NoSuchVersion { .. } => ErrorKind::NotFound,
        SharesError::EntryExists(_) => ErrorKind::Conflict,
        SharesError::NotEmpty(_)
        | SharesError::WrongKind { .. }
        | SharesError::OverQuota { .. } => ErrorKind::Invalid,
        _ => ErrorKind::Busy,
    };
    Response::error(kind, &e.to_string())
}
