//! A raw `p2p-share/1` link to alice, made with bob's own key (read from bob's state
//! directory, which this program created): TLS 1.3 with both keys, the `Hello` exchange, then
//! `List` requests timed one by one. alice admits it as bob, whom she knows from the tracker,
//! so it is served exactly as bob's daemon would be, minus bob's daemon.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use proto::peer::{ALPN_SHARE, MAX_FRAME as PEER_MAX_FRAME, PROTOCOL_VERSION, PeerFrame};
use proto::share::{
    Cursor, MAX_FRAME, Request, RequestFrame, RequestId, Response, ResponseFrame, ShareName,
};
use proto::{PeerId, PeerName, SecretKey};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use transport::FramedConn;

/// One open share link.
pub struct ShareLink {
    rt: tokio::runtime::Runtime,
    conn: FramedConn<TlsStream<TcpStream>>,
    next: u64,
}

/// What one page request returned.
pub struct PageTimed {
    /// Request written → answer read.
    pub took: Duration,
    /// Entries in the page.
    pub entries: usize,
    /// The cursor of the next page, if more follow.
    pub next: Option<Cursor>,
}

impl ShareLink {
    /// Links to the peer `want` at `addr` as the holder of the key in `key_file` (a 32-byte
    /// seed, as p2pd stores it) named `me`.
    pub fn open(key_file: &Path, me: &str, want: PeerId, addr: SocketAddr) -> anyhow::Result<Self> {
        let seed = std::fs::read(key_file)
            .with_context(|| format!("cannot read {}", key_file.display()))?;
        let key = SecretKey::from_seed_slice(&seed)?;
        let me = PeerName::new(me)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let conn = rt.block_on(async {
            let mut cfg = (*transport::client_config(&key, Some(want))?).clone();
            cfg.alpn_protocols = vec![ALPN_SHARE.to_vec()];
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let tls = TlsConnector::from(std::sync::Arc::new(cfg))
                .connect(transport::tls::server_name(), tcp)
                .await
                .context("TLS handshake")?;
            let mut conn = FramedConn::new(tls, PEER_MAX_FRAME, PEER_MAX_FRAME);
            conn.send(&PeerFrame::Hello {
                version: PROTOCOL_VERSION,
                name: me,
            })
            .await?;
            match conn.read::<PeerFrame>().await? {
                Some(PeerFrame::Hello { .. }) => {}
                other => bail!("expected the peer's Hello, got {other:?}"),
            }
            conn.set_limits(MAX_FRAME, MAX_FRAME);
            anyhow::Ok(conn)
        })?;
        Ok(ShareLink { rt, conn, next: 0 })
    }

    /// Asks for one page (the most the server gives) of the root of `share` from `cursor`,
    /// timed from the write of the request to the read of its answer.
    pub fn page(&mut self, share: &ShareName, cursor: Option<Cursor>) -> anyhow::Result<PageTimed> {
        let id = RequestId(self.next);
        self.next += 1;
        let frame = RequestFrame {
            id,
            request: Request::List {
                share: share.clone(),
                path: None,
                cursor,
                limit: 0,
            },
        };
        let conn = &mut self.conn;
        let (took, answer) = self.rt.block_on(async {
            let started = Instant::now();
            conn.send(&frame).await?;
            let answer = conn.read::<ResponseFrame>().await?;
            anyhow::Ok((started.elapsed(), answer))
        })?;
        match answer {
            Some(ResponseFrame {
                id: got,
                response: Response::Page(p),
            }) if got == id => Ok(PageTimed {
                took,
                entries: p.entries.len(),
                next: p.next,
            }),
            other => bail!("unexpected answer to List: {other:?}"),
        }
    }

    /// Every page of the root of `share`, one after the other; returns the time from the
    /// first request to the last answer and the entries counted.
    pub fn whole(&mut self, share: &ShareName) -> anyhow::Result<(Duration, usize)> {
        let started = Instant::now();
        let mut cursor = None;
        let mut n = 0;
        loop {
            let p = self.page(share, cursor)?;
            n += p.entries;
            match p.next {
                Some(c) if p.entries > 0 => cursor = Some(c),
                _ => return Ok((started.elapsed(), n)),
            }
        }
    }

    /// Closes the link.
    pub fn close(mut self) {
        let conn = &mut self.conn;
        let _ = self.rt.block_on(conn.shutdown());
    }
}
