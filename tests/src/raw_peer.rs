//! A hand-driven peer-link client: TCP, TLS 1.3 with an Ed25519 raw public key of the test's
//! choosing, the `Hello` exchange, and raw frames, so tests can be a peer p2pd has never met,
//! one claiming someone else's name, or one that misbehaves on the wire.

use std::io;
use std::net::SocketAddr;

use proto::peer::{MAX_FRAME, PROTOCOL_VERSION, PeerFrame};
use proto::{PeerId, PeerName, SecretKey};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use transport::peer_id_of;

use crate::DEADLINE;
use crate::raw::{self, Tls};

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
    /// The TLS stream.
    pub tls: Tls,
    /// The key the daemon presented.
    pub their_key: PeerId,
}

impl RawPeer {
    /// TCP and TLS to the p2pd peer port `addr`, presenting `key`.
    pub async fn connect(addr: SocketAddr, key: &SecretKey) -> io::Result<RawPeer> {
        let tcp = raw::tcp(addr).await;
        let tls = tokio::time::timeout(DEADLINE, raw::tls(tcp, key))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        let their_key =
            peer_id_of(tls.get_ref().1).ok_or_else(|| io::Error::other("p2pd presented no key"))?;
        Ok(RawPeer { tls, their_key })
    }

    /// [`RawPeer::connect`], then our `Hello` naming us `name`, then the daemon's `Hello`
    /// (checked: our protocol version). Returns the name the daemon gave.
    pub async fn hello(
        addr: SocketAddr,
        key: &SecretKey,
        name: &str,
    ) -> io::Result<(RawPeer, String)> {
        let mut peer = Self::connect(addr, key).await?;
        peer.send(&hello(name)).await?;
        match peer.recv().await? {
            Some(PeerFrame::Hello {
                version: PROTOCOL_VERSION,
                name,
            }) => Ok((peer, name.as_str().to_owned())),
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
