//! The `p2p-share/1` handler: reads the requests of one inbound share link in order, checks
//! each against the grants as they are when it is served (so a revoke holds from the next
//! request on), and answers it under its id. Listings and stats come from the share's index,
//! content by id from `content.rs`; changes (`Remove`, `Rename`, `MakeDir`, `Restore`) and
//! `Versions` are made by `write.rs`. Puts (`put.rs`) keep their state per link: a `Put` is
//! answered after its last chunk, so one request may get no answer at once and a later one
//! two. Requests this version knows but does not serve yet get `Invalid`; the link stays up.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proto::PeerId;
use proto::share::rules::{self, page_limit};
use proto::share::{
    Cursor, Entry, EntryKind, EntryName, ErrorKind, Incoming, MAX_FRAME, Request, RequestFrame,
    Response, ResponseFrame, ShareName,
};
use tracing::debug;

use super::Shares;
use super::index::{self, IndexError, ShareIndex};
use crate::router::{PeerLink, Protocol};

/// An idle share link is closed after this long.
const IDLE: Duration = Duration::from_secs(120);

/// How long a listing waits for a share's first walk before answering `Busy`.
const READY_WAIT: Duration = Duration::from_secs(20);

impl Protocol for Shares {
    fn handle(self: Arc<Self>, link: PeerLink) {
        let tasks = self.tasks.clone();
        tasks.spawn(async move { self.serve(link).await });
    }
}

impl Shares {
    async fn serve(self: Arc<Self>, mut link: PeerLink) {
        link.conn.set_limits(MAX_FRAME, MAX_FRAME);
        let peer = link.key;
        let mut audit = super::audit::Audit::default();
        let mut puts = super::put::LinkPuts::default();
        'link: loop {
            let read = tokio::select! {
                () = self.cancel.cancelled() => break,
                r = tokio::time::timeout(IDLE, link.conn.read_payload()) => r,
            };
            let payload = match read {
                Ok(Ok(Some(p))) => p,
                Ok(Ok(None)) => break,
                Ok(Err(e)) => {
                    debug!(peer = %link.name, "share link: {e}");
                    break;
                }
                Err(_) => {
                    debug!(peer = %link.name, "share link idle; closing it");
                    break;
                }
            };
            let incoming = match RequestFrame::decode(&payload) {
                Ok(i) => i,
                Err(e) => {
                    debug!(peer = %link.name, "share link: unreadable request: {e}");
                    break;
                }
            };
            let answers = match (incoming.refusal(), incoming) {
                (Some(refusal), _) => vec![refusal],
                (None, Incoming::Request(f)) => match f.request {
                    request @ (Request::Put { .. } | Request::PutChunk { .. }) => {
                        self.serve_put(peer, f.id, request, &mut puts).await
                    }
                    Request::Cancel { request } if puts.cancel(request) => vec![ResponseFrame {
                        id: f.id,
                        response: Response::Done,
                    }],
                    request => {
                        let about = super::audit::about(&request);
                        let response = self.answer(peer, request).await;
                        audit.note(link.name.as_str(), peer, about, &response);
                        vec![ResponseFrame { id: f.id, response }]
                    }
                },
                (None, other) => vec![ResponseFrame {
                    id: other.id(),
                    response: Response::error(ErrorKind::Invalid, "unreadable request"),
                }],
            };
            for answer in &answers {
                if let Err(e) = link.conn.send(answer).await {
                    debug!(peer = %link.name, "share link: {e}");
                    break 'link;
                }
            }
        }
        // Puts left unfinished leave nothing: their staging files go with them.
        drop(puts);
        let _ = link.conn.shutdown().await;
    }

    /// The answer to one request from `peer`, with the rights as they are now.
    async fn answer(&self, peer: PeerId, request: Request) -> Response {
        if super::content::by_content(&request) {
            return self.serve_content(peer, request).await;
        }
        // The check, and a list of shares, under one look at the grants.
        let listed = {
            let live = self.lock();
            if let Err(e) = rules::check(&*live, &peer, &request, None) {
                if let Request::Pull { share, path } = &request {
                    self.log_pull_refused(peer, share, path.as_ref(), e.message.as_str());
                }
                return Response::Error(e);
            }
            (request == Request::ListShares).then(|| rules::list_shares(&*live, &peer))
        };
        match request {
            Request::ListShares => Response::Shares(listed.unwrap_or_default()),
            Request::List {
                share,
                path,
                cursor,
                limit,
            } => {
                let after = match cursor.map(|c| String::from_utf8(c.0)) {
                    None => None,
                    Some(Ok(name)) => Some(name),
                    Some(Err(_)) => {
                        return Response::error(ErrorKind::Invalid, "not a cursor of this server");
                    }
                };
                let index = match self.ready_index(&share).await {
                    Ok(ix) => ix,
                    Err(r) => return r,
                };
                match index.list(path.as_ref(), after.as_deref(), page_limit(limit)) {
                    Ok(page) => Response::Page(proto::share::Page {
                        entries: page.entries.iter().filter_map(|e| entry(e, None)).collect(),
                        next: page.next.map(|n| Cursor(n.into_bytes())),
                    }),
                    Err(e) => index_error(&e),
                }
            }
            Request::Stat { share, path } => {
                let index = match self.ready_index(&share).await {
                    Ok(ix) => ix,
                    Err(r) => return r,
                };
                let stat = index.stat(path.as_ref());
                match stat.map(|e| entry(&e, path.is_none().then_some(&share))) {
                    Ok(Some(e)) => Response::Stat(e),
                    Ok(None) => Response::error(ErrorKind::NotFound, "no such entry"),
                    Err(e) => index_error(&e),
                }
            }
            Request::Pull { share, path } => self.serve_pull(peer, &share, path.as_ref()).await,
            Request::Remove { .. }
            | Request::Rename { .. }
            | Request::MakeDir { .. }
            | Request::Versions { .. }
            | Request::Restore { .. } => self.serve_change(peer, request).await,
            // Requests are answered in order, so none is left to cancel.
            Request::Cancel { .. } => Response::Done,
            other => Response::error(
                ErrorKind::Invalid,
                &format!("request {} is not supported yet by this peer", other.tag()),
            ),
        }
    }

    /// The index of `share` once its first walk is done, or the answer to give instead.
    async fn ready_index(&self, share: &ShareName) -> Result<Arc<ShareIndex>, Response> {
        let index = match self.lock().get(share).map(|s| s.index.clone()) {
            Some(Ok(ix)) => ix,
            Some(Err(_)) => {
                return Err(Response::error(
                    ErrorKind::Busy,
                    &format!("{share} cannot be served now"),
                ));
            }
            // Removed since the check: as if never granted.
            None => return Err(Response::Error(rules::denied(share, rules::Access::Read))),
        };
        match tokio::time::timeout(READY_WAIT, index.ready()).await {
            Ok(Ok(())) => Ok(index),
            Ok(Err(e)) => Err(index_error(&e)),
            Err(_) => Err(index_error(&IndexError::NotReady)),
        }
    }
}

/// An index entry as the protocol gives it; the root is named `root`. `None` for a name
/// the protocol cannot carry (the index serves none such).
fn entry(e: &index::Entry, root: Option<&ShareName>) -> Option<Entry> {
    let name = match root {
        Some(share) => EntryName::new(share.as_str()),
        None => EntryName::new(&e.name),
    }
    .ok()?;
    let file = e.kind == index::Kind::File;
    Some(Entry {
        name,
        kind: if file {
            EntryKind::File
        } else {
            EntryKind::Dir
        },
        size: if file { e.size } else { 0 },
        mtime: unix_ms(e.mtime),
        id: e.hash.map(proto::share::ContentId),
    })
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn index_error(e: &IndexError) -> Response {
    let kind = match e {
        IndexError::NotFound { .. } => ErrorKind::NotFound,
        IndexError::NotADirectory { .. } | IndexError::NotAFile { .. } => ErrorKind::Invalid,
        _ => ErrorKind::Busy,
    };
    Response::error(kind, &e.to_string())
}
