//! A share link made by hand (`p2p-share/1`), for tests that send what the CLI cannot:
//! requests by content id, hostile payloads, oversized frames. One request at a time unless
//! the test pipelines with [`ShareLink::send_payload`] and [`ShareLink::next_answer`].

use std::io;
use std::net::SocketAddr;

use proto::SecretKey;
use proto::peer::ALPN_SHARE;
use proto::share::{MAX_FRAME, Request, RequestFrame, RequestId, Response, ResponseFrame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::DEADLINE;
use crate::raw_peer::RawPeer;

/// An open share link to a daemon, as the key it was opened with.
pub struct ShareLink {
    /// The link after `Hello`.
    pub peer: RawPeer,
    next: u64,
}

impl ShareLink {
    /// Opens a share link to the daemon listening at `addr`, as `key` named `name`.
    pub async fn open(addr: SocketAddr, key: &SecretKey, name: &str) -> ShareLink {
        let (peer, _) = RawPeer::hello_alpn(addr, key, name, ALPN_SHARE)
            .await
            .expect("a share link");
        ShareLink { peer, next: 1 }
    }

    /// The payload of `request` under a fresh id, and that id.
    pub fn encode(&mut self, request: Request) -> (u64, Vec<u8>) {
        let id = self.next;
        self.next += 1;
        let frame = RequestFrame {
            id: RequestId(id),
            request,
        };
        (id, postcard::to_stdvec(&frame).expect("encode a request"))
    }

    /// Sends `payload` as one frame (its length first), whatever it holds.
    pub async fn send_payload(&mut self, payload: &[u8]) -> io::Result<()> {
        let len = u32::try_from(payload.len()).expect("a payload under 4 GiB");
        self.peer.tls.write_all(&len.to_be_bytes()).await?;
        self.peer.tls.write_all(payload).await?;
        self.peer.tls.flush().await
    }

    /// The next answer; `Ok(None)` once the daemon closed the link.
    pub async fn next_answer(&mut self) -> io::Result<Option<ResponseFrame>> {
        tokio::time::timeout(DEADLINE * 3, read_frame(&mut self.peer))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer in time"))?
    }

    /// Sends `payload` (a request made by hand with id `id`) and returns its answer.
    pub async fn ask_payload(&mut self, id: u64, payload: &[u8]) -> Response {
        self.send_payload(payload).await.expect("send a request");
        let frame = self
            .next_answer()
            .await
            .expect("an answer")
            .expect("the link stays up");
        assert_eq!(frame.id, RequestId(id), "{frame:?}");
        frame.response
    }

    /// Asks `request` and returns its answer.
    pub async fn ask(&mut self, request: Request) -> Response {
        let (id, payload) = self.encode(request);
        self.ask_payload(id, &payload).await
    }
}

/// The serving side of a share link made by hand: a hostile source that p2pd dials (at the
/// address registered for its key), answering requests as the test likes.
pub struct ShareServer {
    /// The link after `Hello`.
    pub peer: RawPeer,
}

impl ShareServer {
    /// Accepts the next share link p2pd dials to `listener`, presenting `key` and the name
    /// `name` (the one the tracker binds to `key`).
    pub async fn accept(
        listener: &tokio::net::TcpListener,
        key: &SecretKey,
        name: &str,
    ) -> io::Result<ShareServer> {
        let mut peer = RawPeer::accept(listener, key).await?;
        peer.send(&crate::raw_peer::hello(name)).await?;
        match peer.recv().await? {
            Some(proto::peer::PeerFrame::Hello { .. }) => Ok(ShareServer { peer }),
            other => Err(io::Error::other(format!("expected Hello, got {other:?}"))),
        }
    }

    /// The next request, whatever it takes; `Ok(None)` once p2pd closed the link.
    pub async fn next_request(&mut self) -> io::Result<Option<RequestFrame>> {
        read_frame(&mut self.peer).await
    }

    /// Answers request `id` with `response`.
    pub async fn answer(&mut self, id: RequestId, response: Response) -> io::Result<()> {
        let frame = ResponseFrame { id, response };
        let payload = postcard::to_stdvec(&frame).map_err(io::Error::other)?;
        let len = u32::try_from(payload.len()).map_err(io::Error::other)?;
        self.peer.tls.write_all(&len.to_be_bytes()).await?;
        self.peer.tls.write_all(&payload).await?;
        self.peer.tls.flush().await
    }
}

/// One length-prefixed frame of a share link, decoded; `Ok(None)` at a clean end of stream.
async fn read_frame<T: serde::de::DeserializeOwned>(peer: &mut RawPeer) -> io::Result<Option<T>> {
    let mut header = [0u8; 4];
    match peer.tls.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::other(format!("a {len}-byte frame")));
    }
    let mut payload = vec![0u8; len];
    peer.tls.read_exact(&mut payload).await?;
    proto::frame::decode_payload(&payload)
        .map(Some)
        .map_err(io::Error::other)
}
