//! One handler per method, chosen by an exhaustive match. Handlers are async: each call
//! runs as its own task (see `server`), so one that waits (on the database, later on the
//! network) holds up no other. A peer argument is user text: it is resolved here, once,
//! and services take the key.

use std::sync::Arc;

use proto::api::{Call, MessageInfo, Status, Subscribed};
use proto::rpc::{RpcError, code};
use proto::{PeerId, PeerName};
use serde::Serialize;
use serde_json::Value;

use crate::activity::{ActivityError, ActivityLog, Filter, Follower};
use crate::chat::{Chat, ChatError};
use crate::node::{Node, PeerOpError};
use crate::peers::ResolveError;
use crate::rekey::{RekeyError, Rekeyer};
use crate::resources::Sampler;
use crate::share::{LsQuery, Shares, SharesError};
use crate::transfer::{TransferError, Transfers};

/// What a handler produced.
pub enum Reply {
    /// A result to send.
    Value(Value),
    /// A result to send, after which the connection streams events.
    Subscribe(Value),
    /// A result to send, after which the daemon restarts (a new identity key is on disk).
    Restart(Value),
    /// A result to send, after which the connection streams new activity records.
    Follow(Value, Box<Follower>),
}

/// Services the handlers reach.
pub struct Services {
    /// Shared state.
    pub node: Arc<Node>,
    /// Chat.
    pub chat: Arc<Chat>,
    /// File transfers.
    pub transfers: Arc<Transfers>,
    /// Shares: ours, and listing other peers'.
    pub shares: Arc<Shares>,
    /// Resource sampler.
    pub sampler: Sampler,
    /// Key rotation.
    pub rekey: Rekeyer,
    /// The activity log.
    pub activity: ActivityLog,
    /// The LAN source's state.
    pub lan: crate::lan::LanStatus,
    /// The DHT source, when on.
    pub dht: Option<Arc<crate::dht::DhtSource>>,
}

/// Runs one call.
pub async fn dispatch(svc: &Services, call: Call) -> Result<Reply, RpcError> {
    match call {
        Call::Status {} => to_value(status(svc)).map(Reply::Value),
        Call::Peers {} => to_value(svc.node.peers()).map(Reply::Value),
        Call::Subscribe {} => to_value(Subscribed { subscribed: true }).map(Reply::Subscribe),
        Call::SendMessage { peer, text } => {
            let id = resolve(svc, &peer).await?;
            value(svc.chat.send(id, &text).await)
        }
        Call::History { peer, limit } => {
            value(history(svc, &peer, limit.unwrap_or(DEFAULT_HISTORY)).await)
        }
        Call::Trust { peer, auto_accept } => {
            let id = resolve(svc, &peer).await?;
            let r = svc.node.set_flags(id, |p| {
                p.trusted = true;
                p.auto_accept = auto_accept;
            });
            value(r.await)
        }
        Call::Untrust { peer } => {
            let id = resolve(svc, &peer).await?;
            let r = svc.node.set_flags(id, |p| {
                p.trusted = false;
                p.auto_accept = false;
            });
            value(r.await)
        }
        Call::Block { peer } => {
            let id = resolve(svc, &peer).await?;
            value(svc.node.set_flags(id, |p| p.blocked = true).await)
        }
        Call::Unblock { peer } => {
            let id = resolve(svc, &peer).await?;
            let r = svc.node.set_flags(id, |p| p.blocked = false).await;
            if let Ok(p) = &r {
                svc.chat.nudge(p.id);
            }
            value(r)
        }
        Call::ForgetKey { peer, force } => {
            let id = resolve(svc, &peer).await?;
            value(svc.node.forget_key(id, force).await)
        }
        Call::SendFiles { peer, path, paths } => {
            let id = resolve(svc, &peer).await?;
            let all: Vec<String> = Some(path)
                .filter(|p| !p.is_empty())
                .into_iter()
                .chain(paths)
                .collect();
            value(svc.transfers.send(id, &all).await)
        }
        Call::Transfers { all } => to_value(svc.transfers.list(all)).map(Reply::Value),
        Call::TransfersClear {} => value(
            svc.transfers
                .clear_ended()
                .await
                .map(|cleared| proto::api::TransfersCleared { cleared }),
        ),
        Call::Accept { id, to, mkdir } => {
            value(svc.transfers.accept(&id, to.as_deref(), mkdir).await)
        }
        Call::Decline { id } => value(svc.transfers.decline(&id).await),
        Call::Cancel { id } => value(svc.transfers.cancel(&id).await),
        Call::Rekey {} => match value(svc.rekey.rekey(&svc.node))? {
            Reply::Value(v) => Ok(Reply::Restart(v)),
            other => Ok(other),
        },
        Call::ShareAdd {
            name,
            path,
            keep_versions,
            max_version_bytes,
            max_version_age,
            quota,
        } => {
            let settings = crate::share::ShareSettings {
                keep_versions,
                max_version_bytes,
                max_version_age,
                quota,
            };
            value(svc.shares.add(&name, &path, settings).await)
        }
        Call::ShareRm { name } => value(svc.shares.remove(&name).await),
        Call::ShareLs {} => to_value(svc.shares.list()).map(Reply::Value),
        Call::Grant { share, peer, right } => {
            let id = resolve(svc, &peer).await?;
            value(svc.shares.grant(&share, id, right).await)
        }
        Call::Revoke { share, peer } => {
            let id = resolve(svc, &peer).await?;
            value(svc.shares.revoke(&share, id).await)
        }
        Call::Ls {
            peer,
            share,
            path,
            long,
            recursive,
        } => {
            let id = resolve(svc, &peer).await?;
            let q = LsQuery {
                share,
                path,
                long,
                recursive,
            };
            value(svc.shares.ls(id, q).await)
        }
        Call::Log {
            peer,
            since,
            limit,
            follow,
        } => log(svc, peer, since, limit, follow).await,
        Call::Get {
            peer,
            share,
            path,
            dest,
            from,
        } => {
            let id = resolve(svc, &peer).await?;
            let mut sources = Vec::with_capacity(from.len());
            for p in &from {
                sources.push(resolve(svc, p).await?);
            }
            let from = sources;
            value(
                svc.shares
                    .get(id, &share, path.as_deref(), dest.as_deref(), &from)
                    .await,
            )
        }
        Call::Put {
            peer,
            share,
            path,
            src,
            force,
        } => {
            let id = resolve(svc, &peer).await?;
            value(
                svc.shares
                    .put(id, &share, path.as_deref(), &src, force)
                    .await,
            )
        }
        Call::Versions { peer, share, path } => {
            let id = match peer {
                Some(p) => Some(resolve(svc, &p).await?),
                None => None,
            };
            value(svc.shares.versions(id, &share, &path).await)
        }
        Call::Restore {
            peer,
            share,
            path,
            version,
        } => {
            let id = match peer {
                Some(p) => Some(resolve(svc, &p).await?),
                None => None,
            };
            value(svc.shares.restore(id, &share, &path, version).await)
        }
        Call::Rm { peer, share, path } => {
            let id = resolve(svc, &peer).await?;
            value(svc.shares.rm(id, &share, &path).await)
        }
        Call::Mkdir { peer, share, path } => {
            let id = resolve(svc, &peer).await?;
            value(svc.shares.mkdir(id, &share, &path).await)
        }
        Call::Mv {
            peer,
            share,
            from,
            to,
        } => {
            let id = resolve(svc, &peer).await?;
            value(svc.shares.mv(id, &share, &from, &to).await)
        }
    }
}

/// Messages `history` returns when no limit is given.
const DEFAULT_HISTORY: u32 = 50;
/// Records `log` answers when the call names no limit.
const DEFAULT_LOG_LIMIT: u32 = 1000;

/// `log`: the records that pass the filters, and with `follow` the feed of new ones, joined
/// before the files are read so that nothing written meanwhile is missed.
async fn log(
    svc: &Services,
    peer: Option<String>,
    since: Option<String>,
    limit: Option<u32>,
    follow: bool,
) -> Result<Reply, RpcError> {
    let since_ms = match since.as_deref() {
        None => None,
        Some(text) => Some(proto::timefmt::parse_ms(text).ok_or_else(|| {
            RpcError::new(
                code::INVALID_PARAMS,
                format!("since: not an RFC 3339 time (such as 2026-12-05T10:00:00Z): {text:?}"),
            )
        })?),
    };
    let peer = match peer {
        Some(p) => match svc.node.resolve(&p) {
            Ok(info) => Some((info.name.as_str().to_owned(), info.id)),
            Err(e) => return Err(AppError::from(e).into()),
        },
        None => None,
    };
    let filter = Filter { peer, since_ms };
    let follower = follow.then(|| Follower::join(filter.clone()));
    let limit = usize::try_from(limit.unwrap_or(DEFAULT_LOG_LIMIT)).unwrap_or(usize::MAX);
    let records = svc
        .activity
        .read(filter, limit)
        .await
        .map_err(AppError::from)?;
    let value = to_value(&records)?;
    match follower {
        Some(mut f) => {
            f.skip_read(&records);
            Ok(Reply::Follow(value, Box::new(f)))
        }
        None => Ok(Reply::Value(value)),
    }
}

/// The key of the peer the user named (a name or an id prefix).
async fn resolve(svc: &Services, peer: &str) -> Result<PeerId, RpcError> {
    match svc.node.resolve_or_look_up(peer).await {
        Ok(info) => Ok(info.id),
        Err(e) => Err(AppError::from(e).into()),
    }
}

/// The conversation with the peer the user named: its key's messages and those under its
/// name. A name no peer holds now still finds its past conversation; otherwise the peer
/// must resolve.
async fn history(svc: &Services, peer: &str, limit: u32) -> Result<Vec<MessageInfo>, AppError> {
    let e = match svc.node.resolve(peer) {
        Ok(info) => return Ok(svc.chat.history(Some(info.id), &info.name, limit).await?),
        Err(e) => e,
    };
    let Ok(name) = PeerName::new(peer) else {
        return Err(e.into());
    };
    let found = svc.chat.history(None, &name, limit).await?;
    if found.is_empty() {
        Err(e.into())
    } else {
        Ok(found)
    }
}

/// Maps a service result onto a reply, with an error code by kind.
fn value<T: Serialize, E: Into<AppError>>(r: Result<T, E>) -> Result<Reply, RpcError> {
    match r {
        Ok(v) => to_value(v).map(Reply::Value),
        Err(e) => Err(e.into().into()),
    }
}

/// Service errors, as the RPC layer classifies them.
pub enum AppError {
    /// No such peer.
    Resolve(ResolveError),
    /// Anything else: the operation failed.
    Failed(String),
}

impl From<ResolveError> for AppError {
    fn from(e: ResolveError) -> Self {
        AppError::Resolve(e)
    }
}

impl From<ChatError> for AppError {
    fn from(e: ChatError) -> Self {
        match e {
            ChatError::Resolve(r) => AppError::Resolve(r),
            other => AppError::Failed(other.to_string()),
        }
    }
}

impl From<PeerOpError> for AppError {
    fn from(e: PeerOpError) -> Self {
        match e {
            PeerOpError::Resolve(r) => AppError::Resolve(r),
            other => AppError::Failed(other.to_string()),
        }
    }
}

impl From<RekeyError> for AppError {
    fn from(e: RekeyError) -> Self {
        AppError::Failed(e.to_string())
    }
}

impl From<TransferError> for AppError {
    fn from(e: TransferError) -> Self {
        match e {
            TransferError::Resolve(r) => AppError::Resolve(r),
            other => AppError::Failed(other.to_string()),
        }
    }
}

impl From<ActivityError> for AppError {
    fn from(e: ActivityError) -> Self {
        AppError::Failed(e.to_string())
    }
}

impl From<SharesError> for AppError {
    fn from(e: SharesError) -> Self {
        AppError::Failed(e.to_string())
    }
}

impl From<AppError> for RpcError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Resolve(r) => RpcError::new(r.code(), r.to_string()),
            AppError::Failed(msg) => RpcError::new(code::OPERATION_FAILED, msg),
        }
    }
}

fn status(svc: &Services) -> Status {
    let node = &svc.node;
    let id = &node.identity;
    let (peers_online, peers_known) = node.peer_counts();
    Status {
        name: id.name.clone(),
        id: id.id,
        version: env!("CARGO_PKG_VERSION").to_string(),
        listen: id.listen,
        socket: id.socket.display().to_string(),
        tracker: node.tracker(),
        sources: {
            let mut sources = node.sources();
            sources.push(svc.lan.status(node.seen_by(crate::peers::Source::Lan)));
            sources.push(
                svc.dht
                    .as_ref()
                    .map_or_else(crate::dht::DhtSource::off_status, |d| d.status()),
            );
            sources
        },
        peers_online,
        peers_known,
        resources: svc.sampler.sample(node.started.elapsed().as_secs()),
    }
}

fn to_value<T: Serialize>(v: T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(|e| {
        RpcError::new(
            code::INTERNAL_ERROR,
            format!("cannot encode the result: {e}"),
        )
    })
}
