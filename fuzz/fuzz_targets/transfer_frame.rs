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

use bytes::Bytes;
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
    // As p2p-bulk/2 reads one payload, then as p2p-bulk/3 does (empty directories after the
    // files of an offer).
    check_incoming_offer(
        decode_payload::<IncomingOffer>(data).ok(),
        decode_payload::<TransferFrame>(data).ok(),
    );
    let dirs = TransferFrame::decode_payload(Bytes::copy_from_slice(data)).ok();
    if let Some(TransferFrame::Offer(m)) = &dirs {
        check_manifest(m);
    }
    check_incoming_offer(IncomingOffer::from_payload(data).ok(), dirs);
});

/// One payload read both ways: as the offer a receiver checks, and as a frame.
fn check_incoming_offer(incoming: Option<IncomingOffer>, frame: Option<TransferFrame>) {
    match (&incoming, &frame) {
        (Some(offer), Some(TransferFrame::Offer(m))) => {
            assert_eq!(offer.manifest.as_ref(), Ok(m));
            assert_eq!(offer.id, m.id);
        }
        (Some(offer), None) => {
            let err = offer
                .manifest
                .as_ref()
                .expect_err("a manifest IncomingOffer accepts, Offer refused");
            let msg = err.to_string();
            p2p_fuzz::assert_no_control(&msg);
            assert!(msg.len() <= 1024, "error message of {} bytes", msg.len());
        }
        (Some(_), Some(other)) => panic!("IncomingOffer decoded from {other:?}"),
        (None, Some(TransferFrame::Offer(m))) => panic!("IncomingOffer refused {m:?}"),
        (None, _) => {}
    }
}
