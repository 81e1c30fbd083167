//! One peer's connection: TLS handshake and `Hello` within the deadline, then requests and
//! events until either side ends it. While idle, the connection's task waits on two things
//! only: the socket and its [`LinkCtl`] (event frames, and the hub's word to close, which
//! covers displacement, eviction, shutdown and the lease checked by [`Hub::sweep`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proto::PeerId;
use proto::tracker::{
    MAX_PROTOCOL, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME, MIN_PROTOCOL_VERSION, PeerMsg, Refusal,
    SignedHandover, SignedRecord, TrackerMsg, WATCH_VERSION,
};
use svc::logging::ACTIVITY;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::{debug, info};
use transport::{ConnError, FramedConn, LeanServerStream, peer_id_of};

use crate::limits::ConnSlot;
use crate::link::{Close, LinkCtl, Signal};
use crate::registry::ConnId;
use crate::state::{Hub, RegisterResult};

/// A peer's framed TLS link.
type Link = FramedConn<LeanServerStream<TcpStream>>;

/// What every connection needs.
pub struct ConnCtx {
    /// TLS configuration with the tracker's key.
    pub tls: Arc<rustls::ServerConfig>,
    /// Shared state.
    pub hub: Hub,
    /// Time allowed for TLS plus `Hello`.
    pub handshake_timeout: Duration,
    /// Silence allowed before the peer is dropped (announced in `Hello`; [`Hub::sweep`]
    /// enforces it).
    pub lease: Duration,
}

/// Why a connection ended, for the debug log.
#[derive(Debug, thiserror::Error)]
enum EndReason {
    #[error("handshake not finished within {0:?}")]
    HandshakeTimeout(Duration),
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("no Ed25519 key presented")]
    NoKey,
    #[error("first frame was not Hello")]
    NoHello,
    #[error("unsupported protocol version {0}")]
    Version(u16),
    #[error(transparent)]
    Conn(#[from] ConnError),
    #[error("cannot sync the name bindings: {0}")]
    Sync(std::io::Error),
    #[error("lease expired")]
    Lease,
    #[error("subscriber queue overflowed")]
    SlowSubscriber,
    #[error("closed")]
    Closed,
    #[error("displaced or shutting down")]
    Cancelled,
}

impl From<Close> for EndReason {
    fn from(why: Close) -> Self {
        match why {
            Close::Cancelled => EndReason::Cancelled,
            Close::Lease => EndReason::Lease,
            Close::Slow => EndReason::SlowSubscriber,
        }
    }
}

/// Serves one accepted TCP connection until it ends, holding `slot` (its place under the
/// connection caps) until then: spawned as it is, with no wrapper keeping a second copy of
/// its arguments.
pub async fn serve(
    ctx: Arc<ConnCtx>,
    conn_id: ConnId,
    tcp: TcpStream,
    addr: SocketAddr,
    slot: ConnSlot,
) {
    let mut registered: Option<PeerId> = None;
    let result = run(&ctx, conn_id, tcp, addr, &mut registered).await;
    drop(slot);
    ctx.hub.disconnect(conn_id, registered);
    if let Some(key) = registered {
        info!(target: ACTIVITY, op = "leave", key = %key, peer = %addr, reason = %result.as_ref().err().map_or_else(|| "closed".to_string(), ToString::to_string), "peer left");
    }
    if let Err(e) = result {
        debug!(conn = conn_id, %addr, "connection ended: {e}");
    }
}

async fn run(
    ctx: &ConnCtx,
    conn_id: ConnId,
    tcp: TcpStream,
    addr: SocketAddr,
    registered: &mut Option<PeerId>,
) -> Result<(), EndReason> {
    // Boxed: the handshake's state is freed once it is over, and the TLS stream lives once
    // in this task's state, in `conn`.
    let (key, version, mut conn, link) = Box::pin(open(ctx, conn_id, tcp)).await?;
    loop {
        tokio::select! {
            signal = link.signal() => match signal {
                // Boxed: the write's state exists only while a frame is sent.
                Signal::Frame(bytes) => Box::pin(conn.send_raw(&bytes)).await?,
                Signal::Close(why) => return Err(why.into()),
            },
            // The payload, decoded in the handler: no message has a slot in this state.
            payload = conn.read_payload() => {
                let Some(payload) = payload? else { return Err(EndReason::Closed) };
                link.heard(ctx.hub.now_ms());
                // Boxed: the handler's state exists only while a message is handled.
                Box::pin(handle(ctx, (conn_id, version), key, addr, payload, &mut conn, registered)).await?;
            }
        }
    }
}

/// TLS and the `Hello` exchange, within the handshake deadline: the peer's key, the
/// version both speak, the framed link and its handle at the hub.
async fn open(
    ctx: &ConnCtx,
    conn_id: ConnId,
    tcp: TcpStream,
) -> Result<(PeerId, u16, Link, Arc<LinkCtl>), EndReason> {
    let deadline = Instant::now() + ctx.handshake_timeout;
    let late = |_| EndReason::HandshakeTimeout(ctx.handshake_timeout);
    // Rustls' unbuffered API: an idle connection keeps no TLS buffer.
    let tls = tokio::time::timeout_at(deadline, LeanServerStream::accept(ctx.tls.clone(), tcp))
        .await
        .map_err(late)?
        .map_err(EndReason::Tls)?;
    let key = peer_id_of(tls.state()).ok_or(EndReason::NoKey)?;
    let mut conn = FramedConn::new(tls, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME);
    let hello = tokio::time::timeout_at(deadline, conn.read::<PeerMsg>())
        .await
        .map_err(late)??;
    // The peer's highest version, answered with the lower of its and ours.
    let version = match hello {
        Some(PeerMsg::Hello { version }) if version >= MIN_PROTOCOL_VERSION => {
            version.min(MAX_PROTOCOL)
        }
        Some(PeerMsg::Hello { version }) => {
            let detail = format!(
                "this tracker speaks versions {MIN_PROTOCOL_VERSION} to {MAX_PROTOCOL}, not \
                 {version}"
            );
            conn.send(&TrackerMsg::Refused {
                reason: Refusal::BadVersion,
                detail,
            })
            .await?;
            return Err(EndReason::Version(version));
        }
        _ => return Err(EndReason::NoHello),
    };
    // Attached before our Hello goes out: once a peer has it, the connection can be evicted.
    let link = ctx.hub.attach(conn_id);
    let lease_secs = u32::try_from(ctx.lease.as_secs()).unwrap_or(u32::MAX);
    conn.send(&TrackerMsg::Hello {
        version,
        lease_secs,
    })
    .await?;
    Ok((key, version, conn, link))
}

#[allow(clippy::too_many_arguments)]
async fn handle<S>(
    ctx: &ConnCtx,
    (conn_id, version): (ConnId, u16),
    key: PeerId,
    addr: SocketAddr,
    payload: Bytes,
    conn: &mut FramedConn<S>,
    registered: &mut Option<PeerId>,
) -> Result<(), EndReason>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let msg: PeerMsg = proto::frame::decode_payload(&payload).map_err(ConnError::from)?;
    drop(payload);
    match msg {
        PeerMsg::Hello { .. } => return Err(EndReason::NoHello),
        PeerMsg::Register(signed) => {
            register(ctx, conn_id, key, addr, signed, None, conn, registered).await?;
        }
        PeerMsg::RegisterHandover { record, statement } => {
            register(
                ctx,
                conn_id,
                key,
                addr,
                record,
                Some(&statement),
                conn,
                registered,
            )
            .await?;
        }
        PeerMsg::Subscribe { req } => {
            if let Some(k) = registered {
                ctx.hub.note_activity(conn_id, *k);
            }
            if registered.is_none() {
                conn.send(&TrackerMsg::Refused {
                    reason: Refusal::NotRegistered,
                    detail: "subscribe after registering".into(),
                })
                .await?;
            } else {
                ctx.hub.subscribe(conn_id, req, version);
            }
        }
        PeerMsg::Watch { .. }
        | PeerMsg::Unwatch { .. }
        | PeerMsg::Lookup { .. }
        | PeerMsg::ListPage { .. } => {
            Box::pin(v3(ctx, (conn_id, version), conn, msg, *registered)).await?;
        }
        PeerMsg::List { req } => {
            if let Some(k) = registered {
                ctx.hub.note_activity(conn_id, *k);
            }
            if registered.is_none() {
                conn.send(&TrackerMsg::Refused {
                    reason: Refusal::NotRegistered,
                    detail: "list after registering".into(),
                })
                .await?;
            } else {
                conn.send(&ctx.hub.list(req)).await?;
            }
        }
        PeerMsg::GetHandovers { name } => {
            if let Some(k) = registered {
                ctx.hub.note_activity(conn_id, *k);
                let chain = ctx.hub.handovers(&name);
                conn.send(&TrackerMsg::Handovers { name, chain }).await?;
            } else {
                conn.send(&TrackerMsg::Refused {
                    reason: Refusal::NotRegistered,
                    detail: "ask for handovers after registering".into(),
                })
                .await?;
            }
        }
        PeerMsg::Ping { nonce } => conn.send(&TrackerMsg::Pong { nonce }).await?,
        PeerMsg::Pong { .. } => {}
        PeerMsg::AddrRecord(record) => {
            let refused = match registered {
                Some(k) => {
                    ctx.hub.note_activity(conn_id, *k);
                    ctx.hub.addr_record(conn_id, *k, addr.ip(), record).err()
                }
                None => Some((
                    Refusal::NotRegistered,
                    "hand over an address record after registering".into(),
                )),
            };
            if let Some((reason, detail)) = refused {
                info!(target: ACTIVITY, op = "addr-record", key = %key, peer = %addr, outcome = "refused", reason = ?reason, "{detail}");
                conn.send(&TrackerMsg::Refused { reason, detail }).await?;
            }
        }
    }
    Ok(())
}

/// Handles the requests of version 3: watches, lookups and paged lists. They need a
/// registration and a version-3 link.
async fn v3<S>(
    ctx: &ConnCtx,
    (conn_id, version): (ConnId, u16),
    conn: &mut FramedConn<S>,
    msg: PeerMsg,
    registered: Option<PeerId>,
) -> Result<(), EndReason>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let refuse = |reason, detail: &str| TrackerMsg::Refused {
        reason,
        detail: detail.into(),
    };
    if version < WATCH_VERSION {
        let detail = format!(
            "this link speaks version {version}: lookups, pages and watches need {WATCH_VERSION}"
        );
        return Ok(conn.send(&refuse(Refusal::BadVersion, &detail)).await?);
    }
    let Some(key) = registered else {
        return Ok(conn
            .send(&refuse(Refusal::NotRegistered, "register first"))
            .await?);
    };
    ctx.hub.note_activity(conn_id, key);
    match msg {
        PeerMsg::Watch { req, keys } => {
            if let Err((reason, detail)) = ctx.hub.watch(conn_id, req, version, &keys) {
                conn.send(&refuse(reason, &detail)).await?;
            }
        }
        PeerMsg::Unwatch { keys } => ctx.hub.unwatch(conn_id, &keys),
        PeerMsg::Lookup { req, by } => {
            for m in ctx.hub.lookup(req, &by) {
                conn.send(&m).await?;
            }
        }
        PeerMsg::ListPage { req, after, limit } => {
            conn.send(&ctx.hub.page(req, after, limit)).await?;
        }
        _ => {}
    }
    Ok(())
}

/// Handles a registration, with the old key's handover statement if any.
#[allow(clippy::too_many_arguments)]
async fn register<S>(
    ctx: &ConnCtx,
    conn_id: ConnId,
    key: PeerId,
    addr: SocketAddr,
    signed: SignedRecord,
    statement: Option<&SignedHandover>,
    conn: &mut FramedConn<S>,
    registered: &mut Option<PeerId>,
) -> Result<(), EndReason>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let name = signed.record.name.clone();
    match ctx.hub.register(conn_id, key, addr.ip(), signed, statement) {
        RegisterResult::Accepted(entry, ticket) => {
            *registered = Some(key);
            // Acknowledged only once a new binding is on disk, synced with its batch.
            if let Some(ticket) = ticket {
                ctx.hub.durable(ticket).await.map_err(EndReason::Sync)?;
            }
            info!(target: ACTIVITY, op = "register", name = %name, key = %key, peer = %addr, seq = entry.signed.record.seq, outcome = "ok", "registered");
            conn.send(&TrackerMsg::Registered { entry }).await?;
        }
        RegisterResult::Refused((reason, detail)) => {
            info!(target: ACTIVITY, op = "register", name = %name, key = %key, peer = %addr, outcome = "refused", reason = ?reason, "{detail}");
            conn.send(&TrackerMsg::Refused { reason, detail }).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::RateLimiter;
    use crate::store::Store;

    /// What an idle connection's task holds beyond rustls' own state is mostly this future:
    /// a bound that a timer, a second wait or a message kept in the idle loop would break.
    #[tokio::test]
    async fn the_connection_future_stays_small() {
        let dir = tempfile::tempdir().unwrap();
        let hub = Hub::new(
            Store::open(dir.path()).unwrap(),
            RateLimiter::new(1.0, 1),
            Duration::from_secs(60),
        )
        .unwrap();
        let ctx = Arc::new(ConnCtx {
            tls: transport::lean_server_config(&proto::SecretKey::from_seed([1; 32])).unwrap(),
            hub,
            handshake_timeout: Duration::from_secs(1),
            lease: Duration::from_secs(30),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let limiter = crate::limits::ConnLimiter::per_prefix(1, 1);
        let fut = serve(ctx, 1, tcp, addr, limiter.try_acquire(addr.ip()).unwrap());
        let size = std::mem::size_of_val(&fut);
        let link = std::mem::size_of::<Link>();
        println!("connection future {size} bytes, of which the framed TLS link {link}");
        // Debug builds lay futures out more loosely than release ones.
        let bound = if cfg!(debug_assertions) {
            3 * link
        } else {
            link + 600
        };
        assert!(size <= bound, "{size} bytes, over {bound}");
    }
}
