//! A framed connection over any byte stream, with capped reads.
//!
//! The read buffer is empty (no allocation) between frames, so thousands of idle
//! connections cost no buffer memory; space is reserved only once a frame's header has
//! arrived and its length passed the cap.

use bytes::{Buf, Bytes, BytesMut};
use proto::frame::{self, FrameError, HEADER_LEN};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

/// Errors on a framed connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// The socket failed.
    #[error("connection I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent a bad frame (too large, malformed, or cut short).
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// A stream that carries length-prefixed frames of at most `max_in` bytes inbound and
/// `max_out` bytes outbound.
#[derive(Debug)]
pub struct FramedConn<S> {
    io: S,
    rbuf: BytesMut,
    /// A buffer offered with [`FramedConn::recycle`] for the next large frame.
    spare: Option<BytesMut>,
    wbuf: Vec<u8>,
    max_in: usize,
    max_out: usize,
}

/// Frames at least this long are read into a recycled buffer when there is one.
const SPARE_MIN: usize = 64 * 1024;

impl<S> FramedConn<S> {
    /// Wraps `io` with the given caps. Reading needs `S: AsyncRead`, writing
    /// `S: AsyncWrite`, so each half of a split stream can be wrapped on its own.
    pub fn new(io: S, max_in: usize, max_out: usize) -> Self {
        Self {
            io,
            rbuf: BytesMut::new(),
            spare: None,
            wbuf: Vec::new(),
            max_in,
            max_out,
        }
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// Changes the frame caps (for a link that starts small and then carries bulk data).
    pub fn set_limits(&mut self, max_in: usize, max_out: usize) {
        self.max_in = max_in;
        self.max_out = max_out;
    }
}

impl<S: AsyncRead + AsyncWrite> FramedConn<S> {
    /// Splits into a reading and a writing half, so a task can read while another writes.
    /// Bytes already read stay with the reading half.
    pub fn split(self) -> (FramedConn<ReadHalf<S>>, FramedConn<WriteHalf<S>>) {
        let (r, w) = tokio::io::split(self.io);
        let reader = FramedConn {
            io: r,
            rbuf: self.rbuf,
            spare: self.spare,
            wbuf: Vec::new(),
            max_in: self.max_in,
            max_out: self.max_out,
        };
        let writer = FramedConn {
            io: w,
            rbuf: BytesMut::new(),
            spare: None,
            wbuf: self.wbuf,
            max_in: self.max_in,
            max_out: self.max_out,
        };
        (reader, writer)
    }
}

impl<S> FramedConn<S> {
    /// Whether [`FramedConn::recycle`] would keep a buffer now (none is kept yet).
    pub fn needs_spare(&self) -> bool {
        self.spare.is_none()
    }

    /// Offers `buf` (e.g. the buffer of a payload that is no longer needed) for reading the
    /// next large frame, so a link that carries large frames reuses its buffers instead of
    /// allocating one per frame. One spare is kept; small frames never use it.
    pub fn recycle(&mut self, buf: BytesMut) {
        if self
            .spare
            .as_ref()
            .is_none_or(|s| s.capacity() < buf.capacity())
        {
            self.spare = Some(buf);
        }
    }
}

impl<S: AsyncRead + Unpin> FramedConn<S> {
    /// Reads the next message. `Ok(None)` is a clean end of stream between frames.
    /// Cancel-safe: bytes already read stay buffered for the next call.
    pub async fn read<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ConnError> {
        match self.read_payload().await? {
            Some(payload) => Ok(Some(frame::decode_payload(&payload)?)),
            None => Ok(None),
        }
    }

    /// Reads the next frame's payload (without its length prefix) as it arrived, for a
    /// decoder that keeps slices of it instead of copying. `Ok(None)` is a clean end of stream
    /// between frames. Cancel-safe like [`FramedConn::read`].
    pub async fn read_payload(&mut self) -> Result<Option<Bytes>, ConnError> {
        loop {
            let want = match frame::peek_len(&self.rbuf, self.max_in)? {
                Some(len) if self.rbuf.len() >= HEADER_LEN + len => {
                    self.rbuf.advance(HEADER_LEN);
                    let payload = self.rbuf.split_to(len).freeze();
                    if self.rbuf.is_empty() {
                        // Release the buffer between frames.
                        self.rbuf = BytesMut::new();
                    }
                    return Ok(Some(payload));
                }
                Some(len) => HEADER_LEN + len,
                None => HEADER_LEN,
            };
            if self.rbuf.capacity() < want {
                match self.spare.take() {
                    Some(mut spare) if want >= SPARE_MIN => {
                        // Unshared, so reserving moves its start back instead of allocating.
                        spare.clear();
                        spare.reserve(want);
                        spare.extend_from_slice(&self.rbuf);
                        self.rbuf = spare;
                    }
                    spare => {
                        self.spare = spare;
                        self.rbuf.reserve(want - self.rbuf.len());
                    }
                }
            }
            // Never past this frame, so its payload is the only user of its buffer.
            let room = (want - self.rbuf.len()) as u64;
            if (&mut self.io).take(room).read_buf(&mut self.rbuf).await? == 0 {
                if self.rbuf.is_empty() {
                    return Ok(None);
                }
                return Err(FrameError::Truncated {
                    have: self.rbuf.len(),
                    want,
                }
                .into());
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> FramedConn<S> {
    /// Writes one message and flushes it.
    pub async fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), ConnError> {
        self.wbuf.clear();
        frame::encode_into(msg, &mut self.wbuf, self.max_out)?;
        self.io.write_all(&self.wbuf).await?;
        self.io.flush().await?;
        // Idle connections keep no write buffer.
        self.wbuf = Vec::new();
        Ok(())
    }

    /// Writes `parts` one after the other, then flushes. Together they must be whole encoded
    /// frames (e.g. a frame's head from [`proto::transfer::chunk_frame_head`], then its data
    /// from the caller's own buffer, which is not copied into a frame first).
    pub async fn send_parts(&mut self, parts: &[&[u8]]) -> Result<(), ConnError> {
        for part in parts {
            self.io.write_all(part).await?;
        }
        self.io.flush().await?;
        Ok(())
    }

    /// Writes bytes that are already one or more encoded frames, and flushes.
    pub async fn send_raw(&mut self, frames: &[u8]) -> Result<(), ConnError> {
        self.io.write_all(frames).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Flushes and shuts down the write side.
    pub async fn shutdown(&mut self) -> Result<(), ConnError> {
        self.io.shutdown().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_cross_a_duplex_and_caps_hold() {
        // Room for both frames, so each send completes before the read.
        let (a, b) = tokio::io::duplex(1024);
        let mut a = FramedConn::new(a, 1024, 1024);
        let mut b = FramedConn::new(b, 16, 1024);
        a.send(&(1u8, String::from("hi"))).await.unwrap();
        assert_eq!(
            b.read::<(u8, String)>().await.unwrap(),
            Some((1, "hi".into()))
        );
        a.send(&vec![7u8; 100]).await.unwrap();
        assert!(matches!(
            b.read::<Vec<u8>>().await,
            Err(ConnError::Frame(FrameError::TooLarge { .. }))
        ));
    }

    #[tokio::test]
    async fn a_recycled_buffer_is_read_into_and_frames_never_share_one() {
        let (a, b) = tokio::io::duplex(1 << 20);
        let mut a = FramedConn::new(a, 1 << 20, 1 << 20);
        let mut b = FramedConn::new(b, 1 << 20, 1 << 20);
        let big = vec![1u8; 100_000];
        a.send(&big).await.unwrap();
        a.send(&vec![2u8; 10]).await.unwrap();
        a.send(&big).await.unwrap();
        let first = b.read_payload().await.unwrap().unwrap();
        let at = first.as_ptr();
        assert_eq!(frame::decode_payload::<Vec<u8>>(&first).unwrap(), big);
        // Read only up to its own end, so nothing else holds its buffer.
        b.recycle(first.try_into_mut().expect("the only user of its buffer"));
        // A small frame does not take the spare; the next large one does.
        let small = b.read_payload().await.unwrap().unwrap();
        assert_eq!(
            frame::decode_payload::<Vec<u8>>(&small).unwrap(),
            vec![2u8; 10]
        );
        let third = b.read_payload().await.unwrap().unwrap();
        assert_eq!(third.as_ptr(), at);
        assert_eq!(frame::decode_payload::<Vec<u8>>(&third).unwrap(), big);
    }

    #[tokio::test]
    async fn eof_mid_frame_is_an_error_and_between_frames_is_not() {
        let (a, b) = tokio::io::duplex(64);
        let mut b = FramedConn::new(b, 1024, 1024);
        let mut a = a;
        a.write_all(&[0, 0, 0, 9, 1]).await.unwrap();
        drop(a);
        assert!(matches!(
            b.read::<u8>().await,
            Err(ConnError::Frame(FrameError::Truncated { .. }))
        ));
        let (a, b) = tokio::io::duplex(64);
        drop(a);
        let mut b = FramedConn::new(b, 1024, 1024);
        assert!(b.read::<u8>().await.unwrap().is_none());
    }
}
