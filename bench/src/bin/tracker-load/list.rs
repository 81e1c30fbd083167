//! The list client: one extra registered client on a raw TLS stream, which times `List`
//! and `Ping` round trips apart from decoding and counts the live peers.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{Context, bail};
use bench::stats::percentiles;
use proto::tracker::{
    MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME, PROTOCOL_VERSION, PeerMsg, TrackerMsg,
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

/// `m` sequential rounds of Ping→Pong then List→Peers on one connection.
pub async fn measure_list(io: &mut RawConn, m: usize) -> anyhow::Result<ListStats> {
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
    Ok(ListStats {
        list_ms: percentiles(&mut list),
        list_decoded_ms: percentiles(&mut list_decoded),
        ping_ms: percentiles(&mut ping),
        peers_listed,
        response_bytes,
    })
}
