//! Pulls: a share entry a peer asked for goes out as an ordinary transfer marked as a pull;
//! the asking side expects its id and accepts that offer, from that peer only, into the
//! destination it was given (no user decision).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use proto::api::{Direction, TransferInfo, TransferKind, TransferState};
use proto::transfer::{FileEntry, Manifest, RelPath, TransferId};
use proto::{PeerId, PeerName};
use tracing::warn;

use super::live::Live;
use super::{Decision, TransferError, Transfers};

/// How a pull this side asked for is first listed: from `peer`, into `local_path`, in
/// `state`, stored at `created_ms`; nothing known yet of what it carries.
pub(crate) fn pull_info(
    id: TransferId,
    peer: PeerId,
    peer_name: PeerName,
    state: TransferState,
    local_path: String,
    created_ms: u64,
) -> TransferInfo {
    TransferInfo {
        id,
        peer,
        peer_name,
        direction: Direction::In,
        state,
        files: 0,
        sample: Vec::new(),
        total_bytes: 0,
        done_bytes: 0,
        rate: 0,
        eta_secs: None,
        local_path: Some(local_path),
        error: None,
        kind: TransferKind::Pull,
        created_at: Some(proto::timefmt::format_ms(created_ms)),
        ended_at: None,
        landed: Vec::new(),
        sources: Vec::new(),
        dirs_left_out: 0,
    }
}

/// What a path is on disk, as [`placement`] needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// A directory (or a symlink to one).
    Dir,
    /// Something else: a file, a special file.
    Other,
    /// Nothing.
    Nothing,
}

/// What is at `path` now.
pub(crate) fn look(path: &Path) -> Found {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Found::Dir,
        Ok(_) => Found::Other,
        Err(_) => Found::Nothing,
    }
}

/// Where a pulled entry lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Inside this existing directory, under the entry's own name.
    Into(PathBuf),
    /// In the directory `dir`, named `name` (a directory's content lands in a new
    /// directory `name`).
    Named {
        /// The existing directory.
        dir: PathBuf,
        /// The result's name.
        name: String,
    },
}

/// Where a pull into `dest` lands, as `cp -r` places things: an existing directory
/// (`at_dest`) receives the entry inside it; a path that does not exist names the result,
/// in its parent (`at_parent`), which must be an existing directory. Nothing is replaced: an
/// existing file is refused. `Err` is the message for the user.
pub fn placement(dest: &Path, at_dest: Found, at_parent: Found) -> Result<Placement, String> {
    let shown = dest.display();
    if !dest.is_absolute() {
        return Err(format!("{shown} is not an absolute path"));
    }
    match at_dest {
        Found::Dir => return Ok(Placement::Into(dest.to_owned())),
        Found::Other => {
            return Err(format!(
                "{shown} exists and is not a directory (get never replaces a file)"
            ));
        }
        Found::Nothing => {}
    }
    let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
        return Err(format!("{shown} cannot name the result"));
    };
    if at_parent != Found::Dir {
        return Err(format!(
            "{} does not exist or is not a directory (the directory of DEST must exist)",
            parent.display()
        ));
    }
    let name = name
        .to_str()
        .filter(|n| RelPath::new(n).is_ok_and(|p| p.components().count() == 1))
        .ok_or_else(|| format!("{shown}: its last component cannot name a received file"))?;
    Ok(Placement::Named {
        dir: parent.to_owned(),
        name: name.to_owned(),
    })
}

/// `manifest` with the first component of every path (the pulled entry's name) replaced by
/// `name`; `None` if a path would break the naming rules.
fn renamed(manifest: &Manifest, name: &str) -> Option<Manifest> {
    let rename = |p: &RelPath| {
        let path = match p.as_str().split_once('/') {
            Some((_, rest)) => format!("{name}/{rest}"),
            None => name.to_owned(),
        };
        RelPath::new(&path).ok()
    };
    let files = manifest
        .files
        .iter()
        .map(|f| {
            Some(FileEntry {
                path: rename(&f.path)?,
                ..f.clone()
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let dirs = manifest
        .dirs
        .iter()
        .map(rename)
        .collect::<Option<Vec<_>>>()?;
    Some(Manifest {
        id: manifest.id,
        files,
        dirs,
    })
}

/// The destination of an expected pull, if the offer of `id` from `peer` is the one asked
/// for: same id (the map's key) and same key. Any other offer stays an ordinary one.
fn claim(expected: Option<&(PeerId, PathBuf)>, peer: PeerId) -> Option<PathBuf> {
    expected
        .filter(|(from, _)| *from == peer)
        .map(|(_, d)| d.clone())
}

impl Transfers {
    /// Where a pull goes: `dest` (absolute) or the download directory, checked by
    /// [`placement`] (an existing directory receives the entry inside it; a path that does not
    /// exist, in an existing directory, names the result).
    pub fn pull_destination(&self, dest: Option<&str>) -> Result<PathBuf, TransferError> {
        let dest = dest.map_or_else(|| self.download_dir.clone(), PathBuf::from);
        let parent = dest.parent().map_or(Found::Nothing, look);
        placement(&dest, look(&dest), parent).map_err(TransferError::Destination)?;
        Ok(dest)
    }

    /// Sends the share entry at `path` (absolute, already checked) to `peer`, who asked for
    /// it; as [`send`](Self::send) otherwise.
    pub async fn serve_pull(
        self: &Arc<Self>,
        peer: PeerId,
        path: &Path,
    ) -> Result<TransferInfo, TransferError> {
        let text = path
            .to_str()
            .ok_or_else(|| TransferError::Destination("the path is not UTF-8".into()))?;
        Ok(self
            .send_kind(peer, &[text.to_owned()], true)
            .await?
            .transfer)
    }

    /// Ends every outgoing pull not ended yet whose asker and entry `ends` picks (the asker
    /// lost its right to the entry). Each ends cancelled with `reason`, which the receiver is
    /// told at once (it then drops its part files). Returns how many were ended.
    pub async fn end_pulls(&self, ends: impl Fn(PeerId, &Path) -> bool, reason: &str) -> usize {
        let ended: Vec<Arc<Live>> = self
            .lock()
            .values()
            .filter(|l| {
                let rec = l.record();
                rec.pull
                    && rec.direction == Direction::Out
                    && !rec.state.is_final()
                    && rec
                        .local_path
                        .as_deref()
                        .is_some_and(|at| ends(rec.peer, Path::new(at)))
            })
            .cloned()
            .collect();
        for live in &ended {
            // The reason is recorded first: the sending task tells it to the receiver.
            self.finish(live, TransferState::Cancelled, Some(reason.into()))
                .await;
            let _ = live.decision.send_replace(Decision::Cancel);
            live.cancel.cancel();
        }
        ended.len()
    }

    /// Takes back the pulls asked for before a restart whose offer has not come yet.
    pub(super) async fn load_expected_pulls(&self) {
        match self.records.expected_pulls().await {
            Ok(rows) => {
                let mut g = self.lock_expected();
                for (id, peer, dest) in rows {
                    g.insert(id, (peer, PathBuf::from(dest)));
                }
            }
            Err(e) => warn!("cannot load the expected pulls: {e}"),
        }
    }

    /// Expects the offer of transfer `id` from `peer` (the answer to a pull) and accepts it
    /// into `dest` when it comes, or now if it came first. Returns the transfer as known now.
    pub async fn expect_pull(
        &self,
        peer: PeerId,
        id: TransferId,
        dest: PathBuf,
    ) -> Result<TransferInfo, TransferError> {
        let placeholder = |name| {
            pull_info(
                id,
                peer,
                name,
                TransferState::Queued,
                dest.display().to_string(),
                svc::unix_millis(),
            )
        };
        self.records
            .expect_pull(id, peer, dest.display().to_string())
            .await?;
        self.lock_expected().insert(id, (peer, dest.clone()));
        // The offer may have come before the answer: whoever takes the entry accepts.
        let arrived = self.lock().get(&id).cloned();
        if let Some(live) = arrived
            && self.claim_pull(&live, peer).await
        {
            return Ok(live.info());
        }
        let name = self
            .node
            .peer(peer)
            .map(|p| p.name)
            .ok_or_else(|| TransferError::Unknown(peer.to_string()))?;
        Ok(self
            .lock()
            .get(&id)
            .map_or_else(|| placeholder(name), |l| l.info()))
    }

    /// The directory an expected pull is accepted into, by [`placement`] as the disk is now;
    /// a pull that names its result has its stored manifest renamed first (the receiver's
    /// copy only: chunks name files by index).
    async fn place(&self, live: &Live, dest: PathBuf) -> PathBuf {
        let parent = dest.parent().map_or(Found::Nothing, look);
        let Ok(Placement::Named { dir, name }) = placement(&dest, look(&dest), parent) else {
            return dest;
        };
        let stored = match self.records.get(live.id()).await {
            Ok(Some(rec)) => renamed(&rec.manifest, &name),
            _ => None,
        };
        let Some(manifest) = stored else {
            warn!(
                "cannot name pull {} {name}: it goes into {}",
                live.id(),
                dest.display()
            );
            return dest;
        };
        match self.records.set_offered_manifest(&manifest).await {
            Ok(true) => dir,
            Ok(false) => dest,
            Err(e) => {
                warn!("cannot name pull {} {name}: {e}", live.id());
                dest
            }
        }
    }

    /// If `live` (an incoming offer from `peer`) is a pull this side expects, marks it so and
    /// accepts it into its destination; true then.
    pub(super) async fn claim_pull(&self, live: &Arc<Live>, peer: PeerId) -> bool {
        let rec = live.record();
        if rec.direction != Direction::In || rec.state != TransferState::Offered {
            return false;
        }
        let dest = {
            let mut g = self.lock_expected();
            let dest = claim(g.get(&live.id()), peer);
            if dest.is_some() {
                g.remove(&live.id());
            }
            dest
        };
        let Some(dest) = dest else { return false };
        let dest = self.place(live, dest).await;
        if let Err(e) = self.records.forget_pull(live.id()).await {
            warn!("cannot forget the expected pull {}: {e}", live.id());
        }
        live.mark_pull();
        if let Err(e) = self.records.set_pull(live.id()).await {
            warn!("cannot store transfer {} as a pull: {e}", live.id());
        }
        let _ = live.decision.send_replace(Decision::Accept(dest));
        self.held().offers.remove(live.id());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::SecretKey;

    #[test]
    fn a_pull_lands_as_cp_r_places_things() {
        use Found::{Dir, Nothing, Other};
        let p = Path::new;
        assert_eq!(
            placement(p("/in"), Dir, Dir),
            Ok(Placement::Into("/in".into()))
        );
        let named = Placement::Named {
            dir: "/in".into(),
            name: "new".into(),
        };
        assert_eq!(placement(p("/in/new"), Nothing, Dir), Ok(named));
        let err = |dest, at, parent| placement(p(dest), at, parent).unwrap_err();
        assert!(err("/in/f", Other, Dir).contains("not a directory"));
        assert!(err("/no/new", Nothing, Nothing).contains("/no does not exist"));
        assert!(err("/in/f/new", Nothing, Other).contains("/in/f does not exist"));
        assert!(err("in/new", Nothing, Dir).contains("not an absolute path"));
        assert!(err("/", Nothing, Nothing).contains("cannot name"));
        assert!(err("/in/..", Nothing, Dir).contains("cannot name"));
        assert!(err("/in/a\u{202e}b", Nothing, Dir).contains("cannot name a received file"));
    }

    #[test]
    fn a_named_pull_renames_the_entry_only() {
        let file = |path: &str| FileEntry {
            path: RelPath::new(path).unwrap(),
            size: 1,
            hash: [0; 32],
        };
        let dir = Manifest {
            id: TransferId([1; 16]),
            files: vec![file("sub/a.bin"), file("sub/deeper/b.txt")],
            dirs: Vec::new(),
        };
        let got = renamed(&dir, "copy").unwrap();
        let paths: Vec<&str> = got.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["copy/a.bin", "copy/deeper/b.txt"]);
        let one = Manifest {
            id: TransferId([2; 16]),
            files: vec![file("report.pdf")],
            dirs: Vec::new(),
        };
        assert_eq!(
            renamed(&one, "r.pdf").unwrap().files[0].path.as_str(),
            "r.pdf"
        );
        assert_eq!(renamed(&one, "../x"), None);
    }

    #[test]
    fn only_the_asked_peer_claims_an_expected_pull() {
        let alice = SecretKey::from_seed([1; 32]).peer_id();
        let mallory = SecretKey::from_seed([2; 32]).peer_id();
        let dest = PathBuf::from("/tmp/in");
        let expected = (alice, dest.clone());
        assert_eq!(claim(Some(&expected), alice), Some(dest));
        assert_eq!(claim(Some(&expected), mallory), None);
        assert_eq!(claim(None, alice), None);
    }
}
