//! Speaking `p2p-share/1` by hand over a [`RawPeer`] share link, as a hostile client would:
//! request payloads out as they are given, response frames in.

use std::collections::BTreeMap;
use std::time::Duration;

use proto::share::{MAX_FRAME, ResponseFrame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::raw_peer::RawPeer;

/// Sends each payload as one frame (length prefix, then the bytes), then flushes.
pub async fn send(link: &mut RawPeer, payloads: &[Vec<u8>]) {
    let mut bytes = Vec::new();
    for p in payloads {
        bytes.extend_from_slice(&u32::try_from(p.len()).expect("a frame").to_be_bytes());
        bytes.extend_from_slice(p);
    }
    link.tls.write_all(&bytes).await.expect("send requests");
    link.tls.flush().await.expect("flush");
}

/// Reads `n` responses, by request id, each within `timeout`; panics if the link ends or a
/// frame is over the cap or not a response.
pub async fn answers(
    link: &mut RawPeer,
    n: usize,
    timeout: Duration,
) -> BTreeMap<u64, ResponseFrame> {
    let mut out = BTreeMap::new();
    while out.len() < n {
        let read = async {
            let mut header = [0u8; 4];
            link.tls.read_exact(&mut header).await?;
            let len = u32::from_be_bytes(header) as usize;
            assert!(len <= MAX_FRAME, "a {len}-byte frame");
            let mut payload = vec![0u8; len];
            link.tls.read_exact(&mut payload).await?;
            Ok::<_, std::io::Error>(payload)
        };
        let payload = tokio::time::timeout(timeout, read)
            .await
            .expect("an answer in time")
            .expect("the link stays up");
        let frame: ResponseFrame =
            proto::frame::decode_payload(&payload).expect("a response frame");
        out.insert(frame.id.0, frame);
    }
    out
}
