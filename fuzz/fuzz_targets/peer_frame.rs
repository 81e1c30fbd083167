//! Peer links: the `PeerFrame`s p2pd reads from another p2pd (capped at `MAX_FRAME`).
//!
//! Checks: the frame stream decodes the same however it is cut into reads; every frame
//! round-trips through the frame codec and through JSON; message ids print and parse back;
//! names are valid and already folded; received text neutralises to something printable.
//! The whole input, read as one payload, decodes as an unknown frame only when its tag is
//! past the known ones, and otherwise exactly as the generic frame decoder decodes it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use p2p_fuzz::check_neutralize;
use p2p_fuzz::frames::check_stream;
use p2p_fuzz::json::check_json_round_trip;
use proto::PeerName;
use proto::frame::decode_payload;
use proto::peer::{Inbound, KNOWN_TAGS, MAX_FRAME, MessageId, PeerFrame};

fuzz_target!(|data: &[u8]| {
    match PeerFrame::decode(data) {
        Ok(Inbound::Unknown { tag }) => {
            assert!(tag >= KNOWN_TAGS);
            assert_eq!(
                postcard::take_from_bytes::<u32>(data).ok().map(|t| t.0),
                Some(tag)
            );
        }
        Ok(Inbound::Frame(frame)) => {
            assert!(frame.tag() < KNOWN_TAGS);
            assert_eq!(decode_payload::<PeerFrame>(data).ok(), Some(frame));
        }
        Err(_) => assert!(decode_payload::<PeerFrame>(data).is_err()),
    }
    for frame in check_stream::<PeerFrame>(data, MAX_FRAME) {
        check_json_round_trip(&frame);
        match &frame {
            PeerFrame::Hello { name, .. } => {
                assert_eq!(PeerName::new(name.as_str()).as_ref(), Ok(name));
            }
            PeerFrame::Message(m) => {
                check_id(m.id);
                check_neutralize(&m.text);
            }
            PeerFrame::Ack { id } => check_id(*id),
            PeerFrame::Refused { id, reason, detail } => {
                if let Some(id) = id {
                    check_id(*id);
                }
                assert!(!reason.describe().is_empty());
                check_neutralize(detail);
            }
            PeerFrame::Ping { .. } | PeerFrame::Pong { .. } => {}
        }
    }
});

fn check_id(id: MessageId) {
    let text = id.to_string();
    assert_eq!(text.len(), 32);
    assert_eq!(text.parse::<MessageId>(), Ok(id));
    assert_eq!(text.to_uppercase().parse::<MessageId>(), Ok(id));
}
