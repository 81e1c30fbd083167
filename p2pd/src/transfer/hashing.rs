//! The hashing job of an outgoing transfer: `send_files` lists the tree, answers with the
//! transfer `scanning`, and this job hashes the files listed on a low-priority thread, reports the
//! bytes hashed as `transfer_progress` events, then stores the manifest and hands the
//! transfer to its sender (`queued`). A scan error ends the transfer `failed` with the
//! reason; a cancel stops the thread at the next chunk. A daemon stopped meanwhile leaves the
//! transfer `scanning` in the store, and the next start fails it with [`INTERRUPTED`].

use std::sync::Arc;

use proto::api::TransferState;
use tracing::{info, warn};

use super::Transfers;
use super::live::Live;
use super::scan::{self, Report, ScanError};
use super::threads;

/// Why a transfer found `scanning` when the daemon starts has failed.
pub(super) const INTERRUPTED: &str = "interrupted while hashing; send it again";

/// Starts hashing what `listing` found for `live` (stored `scanning`); returns at once.
pub(super) async fn start(t: &Arc<Transfers>, live: Arc<Live>, listing: scan::Listing) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (jt, jlive) = (t.clone(), live.clone());
    let id = live.id();
    let spawned = threads::spawn("p2pd-hash", move || {
        let result = scan::hash_listing(listing, id, &mut |report| {
            if jlive.cancel.is_cancelled() {
                return false;
            }
            match report {
                Report::Listed {
                    files,
                    bytes,
                    sample,
                } => jlive.set_listing(files, bytes, sample),
                Report::Hashed(n) => jlive.set_done(n),
            }
            jt.progress(&jlive);
            true
        });
        // The receiver is gone only when the daemon has stopped.
        let _ = tx.send(result);
    });
    if let Err(e) = spawned {
        t.finish(&live, TransferState::Failed, Some(e.to_string()))
            .await;
        return;
    }
    let t = t.clone();
    t.tasks.clone().spawn(async move {
        let Ok(result) = rx.await else { return };
        match result {
            Ok((manifest, sources)) => {
                let values = sources.into_iter().map(|s| s.scanned).collect::<Vec<_>>();
                scanned(&t, live, manifest, &values).await;
            }
            // Cancelled, or the daemon stops: a cancel has recorded the end already, and a
            // stop leaves the transfer to be failed at the next start.
            Err(ScanError::Stopped) => {}
            Err(e) => {
                warn!(id = %live.id(), "cannot offer {}: {e}", live.record().local_path.unwrap_or_default());
                t.finish(&live, TransferState::Failed, Some(e.to_string()))
                    .await;
            }
        }
    });
}

/// Stores the manifest and hands the transfer to its sender, unless it ended meanwhile.
async fn scanned(
    t: &Arc<Transfers>,
    live: Arc<Live>,
    manifest: proto::transfer::Manifest,
    values: &[scan::Scanned],
) {
    match t.records.set_scanned_manifest(&manifest, values).await {
        Ok(true) => {}
        // Cancelled meanwhile.
        Ok(false) => return,
        Err(e) => {
            t.finish(&live, TransferState::Failed, Some(e.to_string()))
                .await;
            return;
        }
    }
    let (files, bytes) = (manifest.files.len(), manifest.total_size());
    live.set_manifest(manifest);
    let rec = live.record();
    info!(target: svc::logging::ACTIVITY, op = "offer-out", peer = %rec.peer_name, id = %rec.manifest.id, files, bytes, "transfer offered");
    t.finish(&live, TransferState::Queued, None).await;
    if live.state() == TransferState::Queued {
        t.spawn_sender(live);
    }
}
