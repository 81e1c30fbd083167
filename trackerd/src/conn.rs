//! One peer's connection: TLS handshake and `Hello` within the deadline, then requests,
//! events and the lease until either side ends it.

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
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};
use transport::{ConnError, FramedConn, LeanServerStream, peer_id_of};

use crate::events::LinkQueue;
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
    /// Silence allowed before the peer is dropped.
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

/// Serves one accepted TCP connection until it ends.
pub async fn serve(
    ctx: Arc<ConnCtx>,
    conn_id: ConnId,
    tcp: TcpStream,
    addr: SocketAddr,
    cancel: CancellationToken,
) {
    let mut registered: Option<PeerId> = None;
    let result = run(&ctx, conn_id, tcp, addr, &cancel, &mut registered).await;
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
    cancel: &CancellationToken,
    registered: &mut Option<PeerId>,
) -> Result<(), EndReason> {
    // Boxed: the handshake's state is freed once it is over, and the TLS stream lives once
    // in this task's state, in `conn`.
    let (key, version, mut conn) = Box::pin(open(ctx, conn_id, tcp, cancel)).await?;
    let mut events: Option<Arc<LinkQueue>> = None;
    let mut lease_end = Instant::now() + ctx.lease;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return Err(EndReason::Cancelled),
            () = sleep_until(lease_end) => return Err(EndReason::Lease),
            frame = next_event(&mut events) => match frame {
                Some(bytes) => conn.send_raw(&bytes).await?,
                None => return Err(EndReason::SlowSubscriber),
            },
            // The payload, decoded in the handler: no message has a slot in this state.
            payload = conn.read_payload() => {
                let Some(payload) = payload? else { return Err(EndReason::Closed) };
                lease_end = Instant::now() + ctx.lease;
                // Boxed: the handler's state exists only while a message is handled.
                Box::pin(handle(ctx, (conn_id, version), key, addr, payload, &mut conn, &mut events, registered)).await?;
            }
        }
    }
}

/// TLS and the `Hello` exchange, within the handshake deadline: the peer's key, the
/// version both speak, and the framed link.
async fn open(
    ctx: &ConnCtx,
    conn_id: ConnId,
    tcp: TcpStream,
    cancel: &CancellationToken,
) -> Result<(PeerId, u16, Link), EndReason> {
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
    ctx.hub.attach(conn_id, cancel.clone());
    let lease_secs = u32::try_from(ctx.lease.as_secs()).unwrap_or(u32::MAX);
    conn.send(&TrackerMsg::Hello {
        version,
        lease_secs,
    })
    .await?;
    Ok((key, version, conn))
}

/// The next queued event frame; pending forever when not subscribed.
async fn next_event(events: &mut Option<Arc<LinkQueue>>) -> Option<Bytes> {
    match events {
        Some(q) => q.recv().await,
        None => std::future::pending().await,
    }
}

#[allow(clippy::too_many_arguments)]
async fn handle<S>(
    ctx: &ConnCtx,
    (conn_id, version): (ConnId, u16),
    key: PeerId,
    addr: SocketAddr,
    payload: Bytes,
    conn: &mut FramedConn<S>,
    events: &mut Option<Arc<LinkQueue>>,
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
            } else if let Some(rx) = ctx.hub.subscribe(conn_id, req, version) {
                *events = Some(rx);
            }
        }
        PeerMsg::Watch { .. }
        | PeerMsg::Unwatch { .. }
        | PeerMsg::Lookup { .. }
        | PeerMsg::ListPage { .. } => {
            Box::pin(v3(ctx, (conn_id, version), conn, msg, events, *registered)).await?;
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
    events: &mut Option<Arc<LinkQueue>>,
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
        PeerMsg::Watch { req, keys } => match ctx.hub.watch(conn_id, req, version, &keys) {
            Ok(Some(rx)) => *events = Some(rx),
            Ok(None) => {}
            Err((reason, detail)) => conn.send(&refuse(reason, &detail)).await?,
        },
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
