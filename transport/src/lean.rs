//! A TLS 1.3 server stream that holds no buffer while idle.
//!
//! `tokio_rustls::server::TlsStream` keeps rustls' 4 KiB read buffer (and the buffered
//! connection's queues) for the life of the connection. [`LeanServerStream`] drives rustls'
//! unbuffered API instead: bytes are read from the socket into a stack array, and its own
//! three buffers (TLS bytes not yet processed, plaintext not yet read, TLS bytes not yet
//! written) are released as soon as they are empty. A connection that waits for its next
//! request therefore costs its socket and rustls' session state only, which is what a
//! server holding tens of thousands of idle peers needs.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::{CommonState, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Bytes read from the socket per call, into a stack array.
const READ_CHUNK: usize = 8 * 1024;

/// Plaintext encrypted per `poll_write` call, and the pending ciphertext past which a write
/// waits for the socket first: bounds the write buffer of a large response.
const WRITE_CHUNK: usize = 64 * 1024;

/// Room for the TLS record overhead of `len` plaintext bytes (header, tag, content type),
/// records of at most 16 KiB.
fn sealed_len(len: usize) -> usize {
    len + (len / 16_384 + 1) * 32
}

/// A server-side TLS 1.3 stream over `S` (see the module documentation).
pub struct LeanServerStream<S> {
    io: S,
    conn: UnbufferedServerConnection,
    /// TLS bytes received and not yet processed (a partial record at most, between calls).
    incoming: Vec<u8>,
    /// Decrypted bytes not yet read, from `plain_pos` on.
    plain: Vec<u8>,
    plain_pos: usize,
    /// TLS bytes to send, from `out_pos` on.
    outgoing: Vec<u8>,
    out_pos: usize,
    /// The peer sent close_notify or closed its side: reads return end of stream.
    read_eof: bool,
    /// A close_notify has been queued.
    close_sent: bool,
}

impl<S> std::fmt::Debug for LeanServerStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeanServerStream")
            .field("incoming", &self.incoming.len())
            .field("plain", &(self.plain.len() - self.plain_pos))
            .field("outgoing", &(self.outgoing.len() - self.out_pos))
            .field("read_eof", &self.read_eof)
            .finish_non_exhaustive()
    }
}

fn tls_err(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// What processing the received bytes came to.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// More bytes from the peer are needed.
    NeedInput,
    /// The handshake is over and every complete record has been processed.
    Traffic,
}

impl<S: AsyncRead + AsyncWrite + Unpin> LeanServerStream<S> {
    /// Runs the server side of a TLS handshake over `io`. Errors are I/O errors, rustls'
    /// ones of kind `InvalidData`. Not cancel-safe: put a deadline around it, not a race.
    pub async fn accept(config: Arc<ServerConfig>, io: S) -> io::Result<Self> {
        let conn = UnbufferedServerConnection::new(config).map_err(tls_err)?;
        let mut s = LeanServerStream {
            io,
            conn,
            incoming: Vec::new(),
            plain: Vec::new(),
            plain_pos: 0,
            outgoing: Vec::new(),
            out_pos: 0,
            read_eof: false,
            close_sent: false,
        };
        loop {
            let step = match s.process(None) {
                Ok(step) => step,
                Err(e) => {
                    // Best effort: the alert rustls queued on the error, if any.
                    s.drain_alert();
                    let _ = s.flush_outgoing().await;
                    return Err(e);
                }
            };
            s.flush_outgoing().await?;
            if step == Step::Traffic && !s.conn.is_handshaking() {
                return Ok(s);
            }
            if s.read_eof {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            std::future::poll_fn(|cx| s.poll_fill(cx)).await?;
        }
    }

    /// The session's state: the peer's key, the negotiated protocol.
    pub fn state(&self) -> &CommonState {
        &self.conn
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    async fn flush_outgoing(&mut self) -> io::Result<()> {
        if self.out_pos < self.outgoing.len() {
            self.io.write_all(&self.outgoing[self.out_pos..]).await?;
        }
        self.outgoing = Vec::new();
        self.out_pos = 0;
        self.io.flush().await
    }

    /// Encodes the records rustls queued after an error (its alert), ignoring what fails.
    fn drain_alert(&mut self) {
        let UnbufferedStatus { state, .. } = self.conn.process_tls_records(&mut []);
        if let Ok(ConnectionState::EncodeTlsData(mut enc)) = state {
            let _ = encode_into(&mut self.outgoing, |buf| enc.encode(buf));
        }
    }

    /// Processes every complete record in `incoming`: handshake messages (their answers
    /// go to `outgoing`), application data (to `plain`), close_notify. With `payload`,
    /// once traffic may flow, encrypts it into `outgoing` as well.
    fn process(&mut self, mut payload: Option<&[u8]>) -> io::Result<Step> {
        loop {
            let UnbufferedStatus { discard, state } =
                self.conn.process_tls_records(&mut self.incoming);
            let state = match state {
                Ok(state) => state,
                Err(e) => {
                    self.incoming.drain(..discard);
                    return Err(tls_err(e));
                }
            };
            let mut done = None;
            match state {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record.map_err(tls_err)?;
                        self.plain.extend_from_slice(record.payload);
                    }
                }
                ConnectionState::EncodeTlsData(mut enc) => {
                    encode_into(&mut self.outgoing, |buf| enc.encode(buf))?;
                }
                // The encoded records wait in `outgoing`, which is written, in order, before
                // anything encoded later.
                ConnectionState::TransmitTlsData(t) => t.done(),
                ConnectionState::BlockedHandshake => done = Some(Step::NeedInput),
                ConnectionState::WriteTraffic(mut w) => {
                    if let Some(data) = payload.take() {
                        encrypt_into(&mut self.outgoing, |buf| w.encrypt(data, buf))?;
                    }
                    done = Some(Step::Traffic);
                }
                // Reported once; the next call gives `WriteTraffic` for what is left to send.
                ConnectionState::PeerClosed => {
                    self.read_eof = true;
                    if payload.is_none() {
                        done = Some(Step::Traffic);
                    }
                }
                ConnectionState::Closed => {
                    self.read_eof = true;
                    if payload.is_some() {
                        return Err(io::ErrorKind::BrokenPipe.into());
                    }
                    done = Some(Step::Traffic);
                }
                ConnectionState::ReadEarlyData(_) => {
                    return Err(tls_err("unexpected early data"));
                }
                other => return Err(tls_err(format!("unexpected TLS state {other:?}"))),
            }
            self.incoming.drain(..discard);
            if let Some(step) = done {
                if self.incoming.is_empty() {
                    self.incoming = Vec::new();
                }
                return Ok(step);
            }
        }
    }

    /// Reads what the socket has into `incoming`. `Ready(Ok)` once something arrived or the
    /// peer closed its side (then `read_eof` is set).
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut chunk = [0u8; READ_CHUNK];
        let mut buf = ReadBuf::new(&mut chunk);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf))?;
        if buf.filled().is_empty() {
            self.read_eof = true;
        } else {
            self.incoming.extend_from_slice(buf.filled());
        }
        Poll::Ready(Ok(()))
    }

    /// Writes `outgoing` to the socket; releases it once all is written.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.outgoing.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.outgoing[self.out_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
        }
        self.outgoing = Vec::new();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }
}

/// Appends to `out` what `write` puts into the room it is given, growing the room to the
/// size `needs` reads from an error that says it was too small.
fn append<E>(
    out: &mut Vec<u8>,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, E>,
    needs: impl Fn(&E) -> Option<usize>,
) -> io::Result<()>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let start = out.len();
    let mut room = 0;
    loop {
        out.resize(start + room, 0);
        match write(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(e) => match needs(&e) {
                Some(size) if size > room => room = size,
                _ => {
                    out.truncate(start);
                    return Err(tls_err(e));
                }
            },
        }
    }
}

/// Appends a handshake record (or alert) rustls encodes.
fn encode_into(
    out: &mut Vec<u8>,
    encode: impl FnMut(&mut [u8]) -> Result<usize, EncodeError>,
) -> io::Result<()> {
    append(out, encode, |e| match e {
        EncodeError::InsufficientSize(e) => Some(e.required_size),
        _ => None,
    })
}

/// Appends records rustls encrypts.
fn encrypt_into(
    out: &mut Vec<u8>,
    encrypt: impl FnMut(&mut [u8]) -> Result<usize, EncryptError>,
) -> io::Result<()> {
    append(out, encrypt, |e| match e {
        EncryptError::InsufficientSize(e) => Some(e.required_size),
        _ => None,
    })
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for LeanServerStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.plain_pos < this.plain.len() {
                let n = buf.remaining().min(this.plain.len() - this.plain_pos);
                buf.put_slice(&this.plain[this.plain_pos..this.plain_pos + n]);
                this.plain_pos += n;
                if this.plain_pos == this.plain.len() {
                    this.plain = Vec::new();
                    this.plain_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.read_eof {
                return Poll::Ready(Ok(()));
            }
            this.process(None)?;
            // Answers to what was processed (a key update) go out without holding the read.
            if this.out_pos < this.outgoing.len()
                && let Poll::Ready(Err(e)) = this.poll_write_out(cx)
            {
                return Poll::Ready(Err(e));
            }
            if this.plain_pos < this.plain.len() || this.read_eof {
                continue;
            }
            ready!(this.poll_fill(cx))?;
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for LeanServerStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.outgoing.len() - this.out_pos >= WRITE_CHUNK {
            ready!(this.poll_write_out(cx))?;
        }
        let n = data.len().min(WRITE_CHUNK);
        this.outgoing.reserve(sealed_len(n));
        match this.process(Some(&data[..n]))? {
            Step::Traffic => {}
            Step::NeedInput => return Poll::Ready(Err(tls_err("handshake not finished"))),
        }
        // Started now so a small response leaves without waiting for a flush.
        if let Poll::Ready(Err(e)) = this.poll_write_out(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_sent {
            this.close_sent = true;
            let UnbufferedStatus { state, .. } = this.conn.process_tls_records(&mut []);
            if let Ok(ConnectionState::WriteTraffic(mut w)) = state {
                encrypt_into(&mut this.outgoing, |buf| w.queue_close_notify(buf))?;
            }
        }
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod resume_tests;
#[cfg(test)]
mod tests;
