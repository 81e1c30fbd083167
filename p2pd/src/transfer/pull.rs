//! Pulls: a share entry a peer asked for goes out as an ordinary transfer marked as a pull;
//! the asking side expects its id and accepts that offer, from that peer only, into the
//! destination it was given (no user decision).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use proto::PeerId;
use proto::api::{Direction, TransferInfo, TransferKind, TransferState};
use proto::transfer::TransferId;
use tracing::warn;

use super::live::Live;
use super::{Decision, TransferError, Transfers};

/// The destination of an expected pull, if the offer of `id` from `peer` is the one asked
/// for: same id (the map's key) and same key. Any other offer stays an ordinary one.
fn claim(expected: Option<&(PeerId, PathBuf)>, peer: PeerId) -> Option<PathBuf> {
    expected
        .filter(|(from, _)| *from == peer)
        .map(|(_, d)| d.clone())
}

impl Transfers {
    /// The directory a pull goes into: `dest` (absolute, an existing directory, which
    /// receives the entry inside it) or the download directory.
    pub fn pull_destination(&self, dest: Option<&str>) -> Result<PathBuf, TransferError> {
        let dest = dest.map_or_else(|| self.download_dir.clone(), PathBuf::from);
        if !dest.is_absolute() {
            return Err(TransferError::Destination(format!(
                "{} is not an absolute path",
                dest.display()
            )));
        }
        if !dest.exists() {
            return Err(TransferError::Destination(format!(
                "{} does not exist (get puts the entry inside an existing directory)",
                dest.display()
            )));
        }
        if !dest.is_dir() {
            return Err(TransferError::Destination(format!(
                "{} is not a directory",
                dest.display()
            )));
        }
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
        self.send_kind(peer, text, true).await
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
        let placeholder = |name| TransferInfo {
            id,
            peer,
            peer_name: name,
            direction: Direction::In,
            state: TransferState::Queued,
            files: 0,
            sample: Vec::new(),
            total_bytes: 0,
            done_bytes: 0,
            rate: 0,
            eta_secs: None,
            local_path: Some(dest.display().to_string()),
            error: None,
            kind: TransferKind::Pull,
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
