//! The activity records of what a share link was served: `share-list` for each listing or
//! stat answered, `share-denied` for each refused, with the peer, share and path. A browsing
//! client asks many times for the same thing, so each (operation, share, path) is recorded at
//! most once a minute per link.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use proto::PeerId;
use proto::share::{ErrorKind, Request, Response};
use tracing::info;

/// One record per (operation, share, path) per link at most this often.
const EVERY: Duration = Duration::from_secs(60);

/// Entries a link remembers before forgetting those older than [`EVERY`].
const PRUNE_AT: usize = 1024;

/// What one link has been recorded for, and when.
#[derive(Debug, Default)]
pub(super) struct Audit {
    last: HashMap<(&'static str, String, String), Instant>,
}

/// The share and path a request is about, for the requests recorded.
pub(super) fn about(request: &Request) -> Option<(String, String)> {
    match request {
        Request::ListShares => Some((String::new(), String::new())),
        Request::List { share, path, .. } | Request::Stat { share, path } => Some((
            share.as_str().to_owned(),
            path.as_ref()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
        )),
        _ => None,
    }
}

impl Audit {
    /// Records the answer to a request `about` a share and path, unless it was recorded
    /// within the last minute.
    pub(super) fn note(
        &mut self,
        name: &str,
        peer: PeerId,
        about: Option<(String, String)>,
        response: &Response,
    ) {
        let Some((share, path)) = about else {
            return;
        };
        let op = match response {
            Response::Error(e) if e.kind == ErrorKind::Denied => "share-denied",
            _ => "share-list",
        };
        let now = Instant::now();
        if self.last.len() >= PRUNE_AT {
            self.last.retain(|_, at| now.duration_since(*at) < EVERY);
        }
        let key = (op, share, path);
        if self
            .last
            .get(&key)
            .is_some_and(|at| now.duration_since(*at) < EVERY)
        {
            return;
        }
        let (_, share, path) = &key;
        info!(target: svc::logging::ACTIVITY, op, peer = %name, peer_id = %peer, share = %share, path = %path, "share request answered");
        self.last.insert(key, now);
    }
}
