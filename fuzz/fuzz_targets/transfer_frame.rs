//! Transfer links: the `TransferFrame`s p2pd reads while sending or receiving files (capped
//! at `MAX_CHUNK_FRAME`), including offers and the manifests they carry, and the first frame
//! of a bulk link as a receiver reads it (`IncomingOffer`).
//!
//! Checks: the frame stream decodes the same however it is cut into reads; every frame
//! round-trips through the frame codec and through JSON (hex ids and hashes); a decoded
//! manifest holds only safe paths, no case duplicates, no file under another file, a bounded
//! total, and chunk ranges that tile each file. The input as one payload: `IncomingOffer`
//! accepts exactly the manifests `TransferFrame::Offer` accepts, decodes from nothing but an
//! offer, and says why in a bounded, printable message when it refuses one.

#![no_main]

use libfuzzer_sys::fuzz_target;
use p2p_fuzz::check_neutralize;
use p2p_fuzz::frames::check_stream;
use p2p_fuzz::json::check_json_round_trip;
use p2p_fuzz::paths::check_manifest;
use proto::frame::decode_payload;
use proto::transfer::{IncomingOffer, MAX_CHUNK_FRAME, TransferFrame, TransferId};

fuzz_target!(|data: &[u8]| {
    for frame in check_stream::<TransferFrame>(data, MAX_CHUNK_FRAME) {
        check_json_round_trip(&frame);
        let id = frame.id();
        assert_eq!(id.to_string().parse::<TransferId>(), Ok(id));
        match &frame {
            TransferFrame::Offer(m) => check_manifest(m),
            TransferFrame::Decline { reason, .. }
            | TransferFrame::Cancel { reason, .. }
            | TransferFrame::Failed { reason, .. } => check_neutralize(reason),
            TransferFrame::Accept { .. }
            | TransferFrame::Chunk { .. }
            | TransferFrame::ChunkCvs { .. }
            | TransferFrame::FileDone { .. }
            | TransferFrame::Done { .. } => {}
        }
    }
    check_incoming_offer(data);
});

/// `data` as one payload, read both ways.
fn check_incoming_offer(data: &[u8]) {
    let frame = decode_payload::<TransferFrame>(data);
    let incoming = decode_payload::<IncomingOffer>(data);
    match (&incoming, &frame) {
        (Ok(offer), Ok(TransferFrame::Offer(m))) => {
            assert_eq!(offer.manifest.as_ref(), Ok(m));
            assert_eq!(offer.id, m.id);
        }
        (Ok(offer), Err(_)) => {
            let err = offer
                .manifest
                .as_ref()
                .expect_err("a manifest IncomingOffer accepts, Offer refused");
            let msg = err.to_string();
            p2p_fuzz::assert_no_control(&msg);
            assert!(msg.len() <= 1024, "error message of {} bytes", msg.len());
        }
        (Ok(_), Ok(other)) => panic!("IncomingOffer decoded from {other:?}"),
        (Err(_), Ok(TransferFrame::Offer(m))) => panic!("IncomingOffer refused {m:?}"),
        (Err(_), _) => {}
    }
}
