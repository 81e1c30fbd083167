//! The length-prefixed frame codec used on every TCP link.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of payload; the payload
//! is the postcard encoding of one message. The message enum's variant index is the frame's
//! tag byte, so each message enum is its own tag registry (pinned by exact-bytes tests).
//! The length is checked against the caller's cap before anything is allocated.

use bytes::{Buf, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Bytes in the length prefix.
pub const HEADER_LEN: usize = 4;

/// Why a frame could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The announced length is above the cap for this link.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Announced payload length.
        len: usize,
        /// The cap in force.
        max: usize,
    },
    /// The payload is not a valid message.
    #[error("malformed frame: {0}")]
    Malformed(#[from] postcard::Error),
    /// The payload decoded but bytes were left over.
    #[error("malformed frame: {extra} trailing bytes")]
    Trailing {
        /// Bytes left after the message.
        extra: usize,
    },
    /// The peer closed the stream in the middle of a frame.
    #[error("stream ended inside a frame ({have} of {want} bytes)")]
    Truncated {
        /// Bytes received.
        have: usize,
        /// Bytes the frame needed.
        want: usize,
    },
}

/// Appends `msg` as one frame to `out`. Fails only if `msg` encodes to more than `max` bytes.
pub fn encode_into<T: Serialize>(msg: &T, out: &mut Vec<u8>, max: usize) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    let mut buf = std::mem::take(out);
    buf = postcard::to_extend(msg, buf)?;
    *out = buf;
    let len = out.len() - start - HEADER_LEN;
    if len > max {
        out.truncate(start);
        return Err(FrameError::TooLarge { len, max });
    }
    let len32 = u32::try_from(len).map_err(|_| FrameError::TooLarge { len, max })?;
    out[start..start + HEADER_LEN].copy_from_slice(&len32.to_be_bytes());
    Ok(())
}

/// Encodes `msg` as one frame.
pub fn encode<T: Serialize>(msg: &T, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::new();
    encode_into(msg, &mut out, max)?;
    Ok(out)
}

/// The payload length announced by the header at the front of `buf`, if the header is there.
/// Fails when it exceeds `max`, so a caller can refuse before reserving space.
pub fn peek_len(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(Some(len))
}

/// Takes one frame off the front of `buf`. `Ok(None)` means more bytes are needed.
/// Never panics, whatever `buf` holds.
pub fn decode<T: DeserializeOwned>(
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<T>, FrameError> {
    let Some(len) = peek_len(buf, max)? else {
        return Ok(None);
    };
    if buf.len() < HEADER_LEN + len {
        return Ok(None);
    }
    buf.advance(HEADER_LEN);
    let payload = buf.split_to(len);
    decode_payload(&payload).map(Some)
}

/// Decodes one message from a whole payload (no header), refusing trailing bytes.
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    let (msg, rest) = postcard::take_from_bytes(payload)?;
    if !rest.is_empty() {
        return Err(FrameError::Trailing { extra: rest.len() });
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn length_cap_is_checked_before_the_body_arrives() {
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        let err = decode::<u8>(&mut buf, 1024).unwrap_err();
        assert!(matches!(
            err,
            FrameError::TooLarge {
                len: 0xffff_ffff,
                max: 1024
            }
        ));
    }

    #[test]
    fn partial_frames_wait_for_more() {
        let full = encode(&(7u8, 9u16), 64).unwrap();
        for cut in 0..full.len() {
            let mut buf = BytesMut::from(&full[..cut]);
            assert!(decode::<(u8, u16)>(&mut buf, 64).unwrap().is_none());
        }
        let mut buf = BytesMut::from(&full[..]);
        assert_eq!(decode::<(u8, u16)>(&mut buf, 64).unwrap(), Some((7, 9)));
        assert!(buf.is_empty());
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut buf = BytesMut::from(&[0, 0, 0, 2, 5, 6][..]);
        assert!(matches!(
            decode::<u8>(&mut buf, 64),
            Err(FrameError::Trailing { extra: 1 })
        ));
    }

    #[test]
    fn encode_refuses_oversized() {
        assert!(matches!(
            encode(&vec![0u8; 100], 10),
            Err(FrameError::TooLarge { .. })
        ));
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut buf = BytesMut::from(&bytes[..]);
            let _ = decode::<(u64, String, Vec<u32>)>(&mut buf, 256);
        }
    }
}
