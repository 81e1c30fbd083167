//! The list client: one extra registered client on a raw TLS stream, which times `List`,
//! `Ping`, `Lookup` and `ListPage` round trips apart from decoding and counts the live peers.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{Context, bail};
use bench::stats::percentiles;
use proto::PeerName;
use proto::tracker::{
    LookupBy, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME, PROTOCOL_VERSION, PeerMsg, TrackerMsg,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::clients::{Prepared, connect_tls};

/// List and Ping round trips from one extra client.
pub struct ListStats {
    /// Send of `List` to the last byte of `Peers` received (no decoding), p50/p99 ms.
    pub list_ms: (f64, f64),
    /// The same round trip plus this client decoding the list, p50/p99 ms.
    pub list_decoded_ms: (f64, f64),
    /// Send of `Ping` to the last byte of `Pong`, p50/p99 ms.
    pub ping_ms: (f64, f64),
    /// Peers in the last `Peers` answer.
    pub peers_listed: usize,
    /// The `Peers` frame, header included.
    pub response_bytes: usize,
    /// Send of `Lookup` by name to the last byte of `Found`, p50/p99 ms.
    pub lookup_ms: (f64, f64),
    /// Send of `ListPage` to the last byte of `Page`, p50/p99 ms.
    pub page_ms: (f64, f64),
    /// The largest `Page` frame, header included.
    pub page_bytes: usize,
}

/// Writes one message as a frame and flushes.
async fn send_frame<S: AsyncWrite + Unpin>(io: &mut S, msg: &PeerMsg) -> anyhow::Result<()> {
    let frame = proto::frame::encode(msg, MAX_REQUEST_FRAME)?;
    io.write_all(&frame).await?;
    io.flush().await?;
    Ok(())
}

/// Reads one whole frame's payload into `buf` without decoding it.
async fn read_frame<S: AsyncRead + Unpin>(io: &mut S, buf: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut header = [0u8; proto::frame::HEADER_LEN];
    io.read_exact(&mut header).await?;
    let len = proto::frame::peek_len(&header, MAX_RESPONSE_FRAME)?.context("no frame header")?;
    buf.resize(len, 0);
    io.read_exact(buf).await?;
    Ok(())
}

/// The list client: a raw TLS stream whose frames are read and written by hand, so that a
/// round trip can be timed apart from decoding.
pub type RawConn = TlsStream<TcpStream>;

/// Connects and registers `p` on a raw TLS stream.
pub async fn register_raw(addr: SocketAddr, p: &Prepared) -> anyhow::Result<RawConn> {
    let mut tls = connect_tls(addr, p).await?;
    let mut buf = Vec::new();
    send_frame(
        &mut tls,
        &PeerMsg::Hello {
            version: PROTOCOL_VERSION,
        },
    )
    .await?;
    read_frame(&mut tls, &mut buf).await?;
    match proto::frame::decode_payload::<TrackerMsg>(&buf)? {
        TrackerMsg::Hello { version, .. } if version == PROTOCOL_VERSION => {}
        other => bail!("expected the tracker's Hello, got {other:?}"),
    }
    send_frame(&mut tls, &p.first).await?;
    read_frame(&mut tls, &mut buf).await?;
    match proto::frame::decode_payload::<TrackerMsg>(&buf)? {
        TrackerMsg::Registered { .. } => Ok(tls),
        other => bail!("expected Registered, got {other:?}"),
    }
}

/// Live peers the tracker lists now.
pub async fn live_count(io: &mut RawConn) -> anyhow::Result<usize> {
    let mut buf = Vec::new();
    send_frame(io, &PeerMsg::List { req: u32::MAX }).await?;
    read_frame(io, &mut buf).await?;
    match proto::frame::decode_payload::<TrackerMsg>(&buf)? {
        TrackerMsg::Peers { peers, .. } => Ok(peers.len()),
        other => bail!("expected Peers, got {other:?}"),
    }
}

/// `m` sequential rounds of Ping→Pong then List→Peers on one connection, then `m` lookups
/// by name (of `names` in turn) and `m` pages of `page` entries (walking the list from the
/// start again whenever it ends).
pub async fn measure_list(
    io: &mut RawConn,
    m: usize,
    names: &[String],
    page: u16,
) -> anyhow::Result<ListStats> {
    let mut list = Vec::with_capacity(m);
    let mut list_decoded = Vec::with_capacity(m);
    let mut ping = Vec::with_capacity(m);
    let mut peers_listed = 0;
    let mut response_bytes = 0;
    let mut buf = Vec::new();
    for i in 0..m {
        let nonce = i as u64;
        let t = Instant::now();
        send_frame(io, &PeerMsg::Ping { nonce }).await?;
        read_frame(io, &mut buf).await?;
        ping.push(t.elapsed());
        match proto::frame::decode_payload::<TrackerMsg>(&buf)? {
            TrackerMsg::Pong { nonce: n } if n == nonce => {}
            other => bail!("expected Pong {nonce}, got {other:?}"),
        }

        let req = u32::try_from(i)?;
        let t = Instant::now();
        send_frame(io, &PeerMsg::List { req }).await?;
        read_frame(io, &mut buf).await?;
        list.push(t.elapsed());
        let msg = proto::frame::decode_payload::<TrackerMsg>(&buf)?;
        list_decoded.push(t.elapsed());
        match msg {
            TrackerMsg::Peers { req: r, peers } if r == req => peers_listed = peers.len(),
            other => bail!("expected Peers {req}, got {other:?}"),
        }
        response_bytes = proto::frame::HEADER_LEN + buf.len();
    }
    let mut lookup = Vec::with_capacity(m);
    for i in 0..m {
        let name = &names[(i * 7919) % names.len().max(1)];
        let req = u32::try_from(i)?;
        let t = Instant::now();
        let by = LookupBy::Name(PeerName::new(name)?);
        send_frame(io, &PeerMsg::Lookup { req, by }).await?;
        read_frame(io, &mut buf).await?;
        lookup.push(t.elapsed());
        match proto::frame::decode_payload::<TrackerMsg>(&buf)? {
            TrackerMsg::Found {
                req: r,
                entry: Some(_),
            } if r == req => {}
            other => bail!("expected Found {req} for {name}, got {other:?}"),
        }
    }
    let mut pages = Vec::with_capacity(m);
    let mut page_bytes = 0;
    let mut after = None;
    for i in 0..m {
        let req = u32::try_from(i)?;
        let t = Instant::now();
        let limit = page;
        send_frame(io, &PeerMsg::ListPage { req, after, limit }).await?;
        read_frame(io, &mut buf).await?;
        pages.push(t.elapsed());
        page_bytes = page_bytes.max(proto::frame::HEADER_LEN + buf.len());
        match proto::frame::decode_payload::<TrackerMsg>(&buf)? {
            TrackerMsg::Page { req: r, next, .. } if r == req => after = next,
            other => bail!("expected Page {req}, got {other:?}"),
        }
    }
    Ok(ListStats {
        lookup_ms: percentiles(&mut lookup),
        page_ms: percentiles(&mut pages),
        page_bytes,
        list_ms: percentiles(&mut list),
        list_decoded_ms: percentiles(&mut list_decoded),
        ping_ms: percentiles(&mut ping),
        peers_listed,
        response_bytes,
    })
}
