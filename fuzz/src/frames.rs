//! The frame codec as a reader meets it: a byte stream that arrives in pieces.

use std::fmt::Debug;

use bytes::BytesMut;
use proto::frame::{self, HEADER_LEN};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What a reader got out of a stream: the messages, then the error that ended it (as text),
/// if one did.
#[derive(Debug, PartialEq)]
pub struct Decoded<T> {
    /// Messages decoded, in order.
    pub msgs: Vec<T>,
    /// The decode error that stopped the reader, if any.
    pub error: Option<String>,
    /// Bytes left in the buffer waiting for the rest of a frame.
    pub pending: usize,
}

/// Decodes frames as `FramedConn` does: append each piece to the buffer, then take frames off
/// the front until one is incomplete or an error stops the reader for good.
pub fn decode_pieces<T: DeserializeOwned>(pieces: &[&[u8]], max: usize) -> Decoded<T> {
    let mut buf = BytesMut::new();
    let mut msgs = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match frame::decode::<T>(&mut buf, max) {
                Ok(Some(msg)) => msgs.push(msg),
                Ok(None) => break,
                Err(e) => {
                    let error = Some(e.to_string());
                    return Decoded {
                        msgs,
                        error,
                        pending: buf.len(),
                    };
                }
            }
        }
    }
    Decoded {
        msgs,
        error: None,
        pending: buf.len(),
    }
}

/// Decodes `data` as one stream of frames capped at `max`, and checks that the result does
/// not depend on how the stream was cut into reads (whole, split where `data[0]` says, and
/// one byte at a time for short inputs). Returns the messages.
pub fn decode_stream<T>(data: &[u8], max: usize) -> Vec<T>
where
    T: DeserializeOwned + PartialEq + Debug,
{
    let whole = decode_pieces::<T>(&[data], max);
    if let Some(&first) = data.first() {
        let cut = usize::from(first).min(data.len());
        let split = decode_pieces::<T>(&[&data[..cut], &data[cut..]], max);
        assert_same_outcome(&whole, &split);
    }
    if data.len() <= 256 {
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_same_outcome(&whole, &decode_pieces::<T>(&bytes, max));
    }
    check_header(data, max, &whole);
    whole.msgs
}

/// An error stops the reader at the same frame however the bytes arrived; without one, the
/// same messages come out and the same bytes wait.
fn assert_same_outcome<T: PartialEq + Debug>(a: &Decoded<T>, b: &Decoded<T>) {
    assert_eq!(a.msgs, b.msgs, "messages depend on how the stream was read");
    assert_eq!(a.error, b.error, "error depends on how the stream was read");
    if a.error.is_none() {
        assert_eq!(a.pending, b.pending);
    }
}

/// The first header decides: over the cap is refused before any payload is needed.
fn check_header<T>(data: &[u8], max: usize, whole: &Decoded<T>) {
    let Some(header) = data.get(..HEADER_LEN) else {
        assert!(whole.msgs.is_empty() && whole.error.is_none());
        return;
    };
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    match frame::peek_len(data, max) {
        Ok(Some(n)) => assert!(n == len && n <= max),
        Ok(None) => unreachable!("a whole header is there"),
        Err(_) => {
            assert!(len > max);
            assert!(whole.msgs.is_empty() && whole.error.is_some());
        }
    }
}

/// Re-encodes a decoded message and checks the round trip: it encodes within `max`, decodes
/// back equal, and its encoding is a fixed point. Returns the frame's length.
pub fn check_round_trip<T>(msg: &T, max: usize) -> usize
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let bytes = frame::encode(msg, max).expect("a decoded message re-encodes within the cap");
    let mut buf = BytesMut::from(&bytes[..]);
    let back: T = frame::decode(&mut buf, max)
        .expect("a re-encoded message decodes")
        .expect("a re-encoded message is one whole frame");
    assert!(buf.is_empty(), "re-encoding left bytes behind");
    assert_eq!(&back, msg, "decode(encode(m)) != m");
    assert_eq!(
        frame::encode(&back, max).expect("encodes"),
        bytes,
        "encoding is not stable"
    );
    bytes.len()
}

/// Decodes `data` as a stream of `T` frames capped at `max` and round-trips each message;
/// re-encoding never takes more bytes than the stream they came from. Returns the messages
/// for target-specific checks.
pub fn check_stream<T>(data: &[u8], max: usize) -> Vec<T>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let msgs = decode_stream::<T>(data, max);
    let encoded: usize = msgs.iter().map(|m| check_round_trip(m, max)).sum();
    assert!(
        encoded <= data.len(),
        "re-encoding grew: {encoded} > {}",
        data.len()
    );
    msgs
}
