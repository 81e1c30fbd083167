//! A hand-driven tracker client: TCP, TLS with a raw public key, the `Hello` exchange and
//! registration, plus the pieces a hostile client needs (raw bytes, raw frames, waiting for
//! the tracker to close the connection).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use proto::tracker::{
    MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, PeerMsg, Record,
    SignedRecord, TrackerMsg,
};
use proto::{PeerName, SecretKey};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use transport::FramedConn;

use crate::DEADLINE;

/// A TLS stream to the tracker.
pub type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// A fresh random identity.
pub fn random_key() -> SecretKey {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("OS randomness");
    SecretKey::from_seed(seed)
}

/// A record for `key` named `name` with sequence number `seq`, announcing an unspecified
/// address (the tracker fills in the one it sees).
pub fn record(key: &SecretKey, name: &str, seq: u64) -> Record {
    Record {
        name: PeerName::new(name).expect("a valid test name"),
        key: key.peer_id(),
        addrs: vec!["0.0.0.0:4000".parse().expect("address")],
        seq,
    }
}

/// `record(key, name, seq)` signed by `key`.
pub fn signed(key: &SecretKey, name: &str, seq: u64) -> SignedRecord {
    record(key, name, seq).sign(key)
}

/// A TCP connection to `addr`.
pub async fn tcp(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"))
}

/// A TCP connection to `addr` from the local IP `from` (for example `127.0.0.2`, to look
/// like another host to per-IP limits).
pub async fn tcp_from(from: IpAddr, addr: SocketAddr) -> TcpStream {
    let socket = if from.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .expect("socket");
    socket
        .bind(SocketAddr::new(from, 0))
        .unwrap_or_else(|e| panic!("cannot bind {from}: {e}"));
    socket
        .connect(addr)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {addr} from {from}: {e}"))
}

/// The TLS handshake over `tcp`, presenting `key` and accepting any tracker key.
pub async fn tls(tcp: TcpStream, key: &SecretKey) -> io::Result<Tls> {
    let config = transport::client_config(key, None).map_err(io::Error::other)?;
    TlsConnector::from(config)
        .connect(transport::tls::server_name(), tcp)
        .await
}

/// Writes `msg` as one frame, by hand (no [`FramedConn`]).
pub async fn write_frame<S: AsyncWrite + Unpin>(s: &mut S, msg: &PeerMsg) -> io::Result<()> {
    let frame = proto::frame::encode(msg, MAX_REQUEST_FRAME).map_err(io::Error::other)?;
    s.write_all(&frame).await?;
    s.flush().await
}

/// Reads one tracker frame by hand.
pub async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> io::Result<TrackerMsg> {
    let mut header = [0u8; 4];
    s.read_exact(&mut header).await?;
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_RESPONSE_FRAME {
        return Err(io::Error::other(format!("tracker sent a {len}-byte frame")));
    }
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await?;
    proto::frame::decode_payload(&payload).map_err(io::Error::other)
}

/// Sends our `Hello` and reads the tracker's, by hand; returns the tracker's answer.
pub async fn hello_raw<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> TrackerMsg {
    write_frame(
        s,
        &PeerMsg::Hello {
            version: PROTOCOL_VERSION,
        },
    )
    .await
    .expect("send Hello");
    tokio::time::timeout(DEADLINE, read_frame(s))
        .await
        .expect("the tracker answers Hello in time")
        .expect("read the tracker's Hello")
}

/// Reads until the other side closes (end of stream, or an error such as a reset) and
/// returns how long that took, or `Err` with what was read if `timeout` passes first.
/// Anything the other side sends before closing is ignored.
pub async fn wait_closed<S: AsyncRead + Unpin>(
    s: &mut S,
    timeout: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    let mut got = 0usize;
    let closed = tokio::time::timeout(timeout, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got += n,
            }
        }
    })
    .await;
    match closed {
        Ok(()) => Ok(start.elapsed()),
        Err(_) => Err(format!(
            "still open after {timeout:?} ({got} bytes received meanwhile)"
        )),
    }
}

/// True if `tcp` is still open right now: no end of stream or error is waiting to be read.
pub fn still_open(tcp: &TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match tcp.try_read(&mut buf) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
        Ok(0) | Err(_) => false,
        // Data would mean the tracker talks first; it never does before our Hello.
        Ok(_) => true,
    }
}

/// A well-behaved tracker client after the `Hello` exchange.
pub struct Client {
    conn: FramedConn<Tls>,
    /// The lease the tracker announced in its `Hello`.
    pub lease_secs: u32,
}

impl Client {
    /// Connects to the tracker at `addr` as `key`: TCP, TLS, `Hello` both ways, in protocol
    /// version 1 (a client from before address records: it is sent none).
    pub async fn connect(addr: SocketAddr, key: &SecretKey) -> io::Result<Client> {
        Self::over(TcpStream::connect(addr).await?, key, MIN_PROTOCOL_VERSION).await
    }

    /// [`Client::connect`] in the current protocol version (address records both ways).
    pub async fn connect_current(addr: SocketAddr, key: &SecretKey) -> io::Result<Client> {
        Self::over(TcpStream::connect(addr).await?, key, PROTOCOL_VERSION).await
    }

    /// [`Client::connect`] offering protocol `version` (which the tracker must choose).
    pub async fn connect_version(
        addr: SocketAddr,
        key: &SecretKey,
        version: u16,
    ) -> io::Result<Client> {
        Self::over(TcpStream::connect(addr).await?, key, version).await
    }

    /// Like [`Client::connect`], from the local IP `from`.
    pub async fn connect_from(
        from: IpAddr,
        addr: SocketAddr,
        key: &SecretKey,
    ) -> io::Result<Client> {
        Self::over(tcp_from(from, addr).await, key, MIN_PROTOCOL_VERSION).await
    }

    async fn over(tcp: TcpStream, key: &SecretKey, version: u16) -> io::Result<Client> {
        let tls = tokio::time::timeout(DEADLINE, tls(tcp, key))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        let mut conn = FramedConn::new(tls, MAX_RESPONSE_FRAME, MAX_REQUEST_FRAME);
        conn.send(&PeerMsg::Hello { version })
            .await
            .map_err(io::Error::other)?;
        match Self::read(&mut conn).await? {
            TrackerMsg::Hello {
                version: chosen,
                lease_secs,
            } if chosen == version => Ok(Client { conn, lease_secs }),
            other => Err(io::Error::other(format!("expected Hello, got {other:?}"))),
        }
    }

    async fn read(conn: &mut FramedConn<Tls>) -> io::Result<TrackerMsg> {
        match tokio::time::timeout(DEADLINE, conn.read::<TrackerMsg>()).await {
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no frame from the tracker in time",
            )),
            Ok(Err(e)) => Err(io::Error::other(e)),
            Ok(Ok(None)) => Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(Ok(Some(msg))) => Ok(msg),
        }
    }

    /// Sends one message.
    pub async fn send(&mut self, msg: &PeerMsg) {
        self.conn.send(msg).await.expect("send to the tracker");
    }

    /// The next message from the tracker. Panics on end of stream or after [`DEADLINE`].
    pub async fn recv(&mut self) -> TrackerMsg {
        Self::read(&mut self.conn)
            .await
            .expect("a frame from the tracker")
    }

    /// Sends `Register(rec)` and returns the answer (`Registered` or `Refused`).
    pub async fn register(&mut self, rec: SignedRecord) -> TrackerMsg {
        self.send(&PeerMsg::Register(rec)).await;
        self.recv().await
    }

    /// Reads (and ignores) frames until the tracker closes the connection; `Err` listing what
    /// arrived if `timeout` passes first.
    pub async fn wait_closed(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut got = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.conn.read::<TrackerMsg>()).await {
                Err(_) => return Err(format!("still open after {timeout:?}; received {got:?}")),
                Ok(Ok(Some(msg))) => got.push(msg),
                Ok(Ok(None) | Err(_)) => return Ok(()),
            }
        }
    }

    /// A `Ping`/`Pong` round trip: proves the connection is still served.
    pub async fn ping(&mut self, nonce: u64) {
        self.send(&PeerMsg::Ping { nonce }).await;
        match self.recv().await {
            TrackerMsg::Pong { nonce: n } if n == nonce => {}
            other => panic!("expected Pong {nonce}, got {other:?}"),
        }
    }
}

/// Connects as a fresh key, registers `name`, and asserts it is accepted. Proves the tracker
/// still serves well-behaved clients.
pub async fn register_fresh(addr: SocketAddr, name: &str) -> Client {
    let key = random_key();
    let mut c = Client::connect(addr, &key)
        .await
        .unwrap_or_else(|e| panic!("a well-behaved client cannot connect: {e}"));
    let rec = signed(&key, name, 1);
    match c.register(rec.clone()).await {
        TrackerMsg::Registered { entry } => assert_eq!(entry.signed, rec),
        other => panic!("registration of {name} not accepted: {other:?}"),
    }
    c
}
