//! The activity records of what a share link was served: `share-list` for each listing,
//! stat or list of versions answered, `share-denied` for each request refused for want of a
//! right, with the peer, share and path (changes made are recorded by `write.rs`). A browsing
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

/// What a recorded request is about: its share and path, and whether it reads (recorded
/// answered or refused) or changes (recorded here only when refused as denied: a change
/// made has its own record).
pub(super) struct About {
    share: String,
    path: String,
    reads: bool,
}

/// What `request` is about, for the requests recorded.
pub(super) fn about(request: &Request) -> Option<About> {
    let at = |share: &proto::share::ShareName, path: Option<&proto::transfer::RelPath>, reads| {
        Some(About {
            share: share.as_str().to_owned(),
            path: path.map(|p| p.as_str().to_owned()).unwrap_or_default(),
            reads,
        })
    };
    match request {
        Request::ListShares => Some(About {
            share: String::new(),
            path: String::new(),
            reads: true,
        }),
        Request::List { share, path, .. } | Request::Stat { share, path } => {
            at(share, path.as_ref(), true)
        }
        Request::Versions { share, path } => at(share, Some(path), true),
        Request::Remove { share, path }
        | Request::MakeDir { share, path }
        | Request::Restore { share, path, .. }
        | Request::Rename {
            share, from: path, ..
        } => at(share, Some(path), false),
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
        about: Option<About>,
        response: &Response,
    ) {
        let Some(About { share, path, reads }) = about else {
            return;
        };
        let op = match response {
            Response::Error(e) if e.kind == ErrorKind::Denied => "share-denied",
            _ if reads => "share-list",
            _ => return,
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
