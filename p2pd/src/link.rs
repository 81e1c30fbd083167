//! Establishing a peer link: TCP, TLS 1.3 with both Ed25519 keys, and the `Hello` exchange,
//! under one deadline. Which links are made and where they go is [`crate::router`]'s work.

use std::net::SocketAddr;
use std::time::Duration;

use proto::peer::{MAX_FRAME, PROTOCOL_VERSION, PeerFrame, Refusal};
use proto::{PeerId, PeerName};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use transport::{ConnError, FramedConn, peer_id_of};

/// Time allowed for TCP, TLS and `Hello` when dialing (inbound links get the configured
/// `handshake-timeout-ms`, by default the same).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS stream of either direction.
pub type LinkStream = tokio_rustls::TlsStream<TcpStream>;
/// A framed link.
pub type LinkConn = FramedConn<LinkStream>;

/// Why a link could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Nowhere to dial.
    #[error("no address known for the peer")]
    NoAddress,
    /// TCP failed for every address.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The last address tried.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The handshake took too long.
    #[error("peer link handshake timed out after {0:?}")]
    Timeout(Duration),
    /// TLS failed.
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    /// The other side showed a key other than the expected one.
    #[error("the peer at {addr} presented key {got}, but {want} was expected; no link made")]
    WrongKey {
        /// Where we dialed.
        addr: SocketAddr,
        /// The key it showed.
        got: PeerId,
        /// The key we expected.
        want: PeerId,
    },
    /// No key in the handshake.
    #[error("the peer presented no key")]
    NoKey,
    /// The dialled peer's `Hello` gave a name other than the one bound to its key here.
    #[error(
        "the peer with key {key} at {addr} calls itself {said:?}, but that key is {want:?} \
         here; no link made"
    )]
    NameMismatch {
        /// Where we dialed.
        addr: SocketAddr,
        /// Its (expected, proven) key.
        key: PeerId,
        /// The name it gave.
        said: PeerName,
        /// The name the peer table holds for the key.
        want: PeerName,
    },
    /// The first frame was not a valid `Hello`.
    #[error("peer protocol error: {0}")]
    Protocol(String),
    /// The other side refused the link.
    #[error("the peer refused the link: {detail}")]
    Refused {
        /// Why.
        reason: Refusal,
        /// Its detail.
        detail: String,
    },
    /// Framing failed.
    #[error(transparent)]
    Conn(#[from] ConnError),
}

/// Dials `want` at each of `addrs` until one answers with that key, and exchanges `Hello`.
/// The peer's name is `want_name`, the one the peer table holds for its key: a `Hello` that
/// gives another is refused, so a dialled peer can never speak under a name it chose.
pub async fn dial(
    connector: &TlsConnector,
    me: &PeerName,
    want: PeerId,
    want_name: &PeerName,
    addrs: &[SocketAddr],
) -> Result<LinkConn, LinkError> {
    let mut last = LinkError::NoAddress;
    for &addr in addrs {
        match timeout(
            HANDSHAKE_TIMEOUT,
            dial_one(connector, me, want, want_name, addr),
        )
        .await
        {
            Ok(Ok(link)) => return Ok(link),
            // A wrong key or name, or a refusal, will not get better at another address.
            Ok(Err(
                e @ (LinkError::WrongKey { .. }
                | LinkError::NameMismatch { .. }
                | LinkError::Refused { .. }),
            )) => return Err(e),
            Ok(Err(e)) => last = e,
            Err(_) => last = LinkError::Timeout(HANDSHAKE_TIMEOUT),
        }
    }
    Err(last)
}

async fn dial_one(
    connector: &TlsConnector,
    me: &PeerName,
    want: PeerId,
    want_name: &PeerName,
    addr: SocketAddr,
) -> Result<LinkConn, LinkError> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|source| LinkError::Connect { addr, source })?;
    let _ = tcp.set_nodelay(true);
    // Any key completes the handshake (its signature is still checked); the key is compared
    // before a single frame is sent, so the error can name both keys.
    let tls = connector
        .connect(transport::tls::server_name(), tcp)
        .await
        .map_err(LinkError::Tls)?;
    let got = peer_id_of(tls.get_ref().1).ok_or(LinkError::NoKey)?;
    if got != want {
        return Err(LinkError::WrongKey { addr, got, want });
    }
    let mut conn = FramedConn::new(tokio_rustls::TlsStream::Client(tls), MAX_FRAME, MAX_FRAME);
    let said = hello(&mut conn, me).await?;
    if said != *want_name {
        let e = LinkError::NameMismatch {
            addr,
            key: want,
            said,
            want: want_name.clone(),
        };
        let _ = conn
            .send(&PeerFrame::Refused {
                id: None,
                reason: Refusal::KeyMismatch,
                detail: e.to_string(),
            })
            .await;
        let _ = conn.shutdown().await;
        return Err(e);
    }
    Ok(conn)
}

/// Accepts a link on an accepted TCP connection: TLS, then `Hello`, within `deadline`.
/// Returns the framed link, the peer's key and the name it gave.
pub async fn accept(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    me: &PeerName,
    deadline: Duration,
) -> Result<(LinkConn, PeerId, PeerName), LinkError> {
    let run = async {
        let _ = tcp.set_nodelay(true);
        let tls = acceptor.accept(tcp).await.map_err(LinkError::Tls)?;
        let id = peer_id_of(tls.get_ref().1).ok_or(LinkError::NoKey)?;
        let mut conn = FramedConn::new(tokio_rustls::TlsStream::Server(tls), MAX_FRAME, MAX_FRAME);
        let name = hello(&mut conn, me).await?;
        Ok((conn, id, name))
    };
    timeout(deadline, Box::pin(run))
        .await
        .map_err(|_| LinkError::Timeout(deadline))?
}

async fn hello(conn: &mut LinkConn, me: &PeerName) -> Result<PeerName, LinkError> {
    conn.send(&PeerFrame::Hello {
        version: PROTOCOL_VERSION,
        name: me.clone(),
    })
    .await?;
    match conn.read::<PeerFrame>().await? {
        Some(PeerFrame::Hello {
            version: PROTOCOL_VERSION,
            name,
        }) => Ok(name),
        Some(PeerFrame::Hello { version, .. }) => {
            let detail = format!("this peer speaks version {PROTOCOL_VERSION}, not {version}");
            let _ = conn
                .send(&PeerFrame::Refused {
                    id: None,
                    reason: Refusal::BadVersion,
                    detail: detail.clone(),
                })
                .await;
            Err(LinkError::Protocol(detail))
        }
        Some(PeerFrame::Refused { reason, detail, .. }) => {
            Err(LinkError::Refused { reason, detail })
        }
        Some(other) => Err(LinkError::Protocol(format!(
            "expected Hello, got {other:?}"
        ))),
        None => Err(LinkError::Protocol("closed before Hello".into())),
    }
}

/// The ALPN name a link negotiated, if any.
pub fn alpn(conn: &LinkConn) -> Option<&[u8]> {
    conn.get_ref().get_ref().1.alpn_protocol()
}
