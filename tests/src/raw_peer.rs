//! A hand-driven peer-link client: TCP, TLS 1.3 with an Ed25519 raw public key of the test's
//! choosing, the `Hello` exchange, and raw frames, so tests can be a peer p2pd has never met,
//! one claiming someone else's name, or one that misbehaves on the wire. With
//! [`RawPeer::connect_bulk`] the link asks for the bulk protocol (ALPN [`ALPN_BULK`]), the
//! kind of link a file transfer runs over.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use proto::peer::{MAX_FRAME, PROTOCOL_VERSION, PeerFrame};
use proto::{PeerId, PeerName, SecretKey};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use transport::peer_id_of;

use crate::DEADLINE;
use crate::raw;

pub use proto::peer::ALPN_BULK;

/// Our `Hello` frame, naming us `name`.
pub fn hello(name: &str) -> PeerFrame {
    PeerFrame::Hello {
        version: PROTOCOL_VERSION,
        name: PeerName::new(name).expect("a valid test name"),
    }
}

/// Writes `frame` as one peer frame, by hand.
pub async fn write_frame<S: AsyncWrite + Unpin>(s: &mut S, frame: &PeerFrame) -> io::Result<()> {
    let bytes = proto::frame::encode(frame, MAX_FRAME).map_err(io::Error::other)?;
    s.write_all(&bytes).await?;
    s.flush().await
}

/// Reads one peer frame by hand, within [`DEADLINE`]. `Ok(None)` at a clean end of stream.
pub async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> io::Result<Option<PeerFrame>> {
    let read = async {
        let mut header = [0u8; 4];
        match s.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let len = u32::from_be_bytes(header) as usize;
        if len > MAX_FRAME {
            return Err(io::Error::other(format!("p2pd sent a {len}-byte frame")));
        }
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).await?;
        proto::frame::decode_payload(&payload)
            .map(Some)
            .map_err(io::Error::other)
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no frame from p2pd in time"))?
}

/// A peer link to a p2pd made by hand, after TLS (the daemon's key accepted, whatever it is).
pub struct RawPeer {
    /// The TLS stream (we dialed, or p2pd dialed us).
    pub tls: tokio_rustls::TlsStream<tokio::net::TcpStream>,
    /// The key the daemon presented.
    pub their_key: PeerId,
}

impl RawPeer {
    /// TCP and TLS to the p2pd peer port `addr`, presenting `key`.
    pub async fn connect(addr: SocketAddr, key: &SecretKey) -> io::Result<RawPeer> {
        Self::connect_alpn(addr, key, None).await
    }

    /// Like [`RawPeer::connect`], asking for the bulk protocol ([`ALPN_BULK`]): the link
    /// p2pd hands to its transfer service after `Hello`.
    pub async fn connect_bulk(addr: SocketAddr, key: &SecretKey) -> io::Result<RawPeer> {
        Self::connect_alpn(addr, key, Some(ALPN_BULK)).await
    }

    /// TCP and TLS presenting `key`, offering `alpn` (none if `None`).
    pub async fn connect_alpn(
        addr: SocketAddr,
        key: &SecretKey,
        alpn: Option<&[u8]>,
    ) -> io::Result<RawPeer> {
        let tcp = raw::tcp(addr).await;
        let handshake = async {
            let mut config =
                (*transport::client_config(key, None).map_err(io::Error::other)?).clone();
            config.alpn_protocols = alpn.map(|a| vec![a.to_vec()]).unwrap_or_default();
            TlsConnector::from(Arc::new(config))
                .connect(transport::tls::server_name(), tcp)
                .await
        };
        let tls = tokio::time::timeout(DEADLINE, handshake)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        let their_key =
            peer_id_of(tls.get_ref().1).ok_or_else(|| io::Error::other("p2pd presented no key"))?;
        Ok(RawPeer {
            tls: tls.into(),
            their_key,
        })
    }

    /// Accepts one connection on `listener` and completes TLS presenting `key`: the link a
    /// p2pd makes when it dials the address we announced.
    pub async fn accept(listener: &TcpListener, key: &SecretKey) -> io::Result<RawPeer> {
        let handshake = async {
            let (tcp, _) = listener.accept().await?;
            let config = transport::server_config(key).map_err(io::Error::other)?;
            TlsAcceptor::from(config).accept(tcp).await
        };
        let tls = tokio::time::timeout(DEADLINE, handshake)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no dial in time"))??;
        let their_key =
            peer_id_of(tls.get_ref().1).ok_or_else(|| io::Error::other("p2pd presented no key"))?;
        Ok(RawPeer {
            tls: tls.into(),
            their_key,
        })
    }

    /// Accepts one connection on `listener` as a peer serving only the protocols `alpns`
    /// (an older daemon, say), then exchanges `Hello`s naming us `name`. Returns the link and
    /// the protocol the dialling p2pd got.
    pub async fn accept_hello_alpn(
        listener: &TcpListener,
        key: &SecretKey,
        name: &str,
        alpns: &[&[u8]],
    ) -> io::Result<(RawPeer, Vec<u8>)> {
        let handshake = async {
            let (tcp, _) = listener.accept().await?;
            let mut config = (*transport::server_config(key).map_err(io::Error::other)?).clone();
            config.alpn_protocols = alpns.iter().map(|a| a.to_vec()).collect();
            TlsAcceptor::from(Arc::new(config)).accept(tcp).await
        };
        let tls = tokio::time::timeout(DEADLINE, handshake)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no dial in time"))??;
        let alpn = tls.get_ref().1.alpn_protocol().unwrap_or_default().to_vec();
        let their_key =
            peer_id_of(tls.get_ref().1).ok_or_else(|| io::Error::other("p2pd presented no key"))?;
        let peer = RawPeer {
            tls: tls.into(),
            their_key,
        };
        let (peer, _) = peer.exchange_hello(name).await?;
        Ok((peer, alpn))
    }

    /// [`RawPeer::connect`], then our `Hello` naming us `name`, then the daemon's `Hello`
    /// (checked: our protocol version). Returns the name the daemon gave.
    pub async fn hello(
        addr: SocketAddr,
        key: &SecretKey,
        name: &str,
    ) -> io::Result<(RawPeer, String)> {
        let peer = Self::connect(addr, key).await?;
        peer.exchange_hello(name).await
    }

    /// [`RawPeer::hello`] on a bulk link ([`RawPeer::connect_bulk`]): after it, the link
    /// carries transfer frames.
    pub async fn hello_bulk(
        addr: SocketAddr,
        key: &SecretKey,
        name: &str,
    ) -> io::Result<(RawPeer, String)> {
        let peer = Self::connect_bulk(addr, key).await?;
        peer.exchange_hello(name).await
    }

    /// [`RawPeer::hello`] on a link asking for the protocol `alpn` (such as `p2p-share/1`).
    pub async fn hello_alpn(
        addr: SocketAddr,
        key: &SecretKey,
        name: &str,
        alpn: &[u8],
    ) -> io::Result<(RawPeer, String)> {
        let peer = Self::connect_alpn(addr, key, Some(alpn)).await?;
        peer.exchange_hello(name).await
    }

    /// Our `Hello`, then the daemon's (checked: our protocol version).
    async fn exchange_hello(mut self, name: &str) -> io::Result<(RawPeer, String)> {
        self.send(&hello(name)).await?;
        match self.recv().await? {
            Some(PeerFrame::Hello {
                version: PROTOCOL_VERSION,
                name,
            }) => Ok((self, name.as_str().to_owned())),
            other => Err(io::Error::other(format!("expected Hello, got {other:?}"))),
        }
    }

    /// Sends one frame.
    pub async fn send(&mut self, frame: &PeerFrame) -> io::Result<()> {
        write_frame(&mut self.tls, frame).await
    }

    /// Writes bytes as they are (no framing).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.tls.write_all(bytes).await?;
        self.tls.flush().await
    }

    /// The next frame, skipping keepalive `Ping`s (answered). `Ok(None)` at end of stream.
    pub async fn recv(&mut self) -> io::Result<Option<PeerFrame>> {
        loop {
            match read_frame(&mut self.tls).await? {
                Some(PeerFrame::Ping { nonce }) => self.send(&PeerFrame::Pong { nonce }).await?,
                other => return Ok(other),
            }
        }
    }
}
