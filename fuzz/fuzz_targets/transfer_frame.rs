//! Transfer links: the `TransferFrame`s p2pd reads while sending or receiving files (capped
//! at `MAX_CHUNK_FRAME`), including offers and the manifests they carry.
//!
//! Checks: the frame stream decodes the same however it is cut into reads; every frame
//! round-trips through the frame codec and through JSON (hex ids and hashes); a decoded
//! manifest holds only safe paths, no case duplicates, no file under another file, a bounded
//! total, and chunk ranges that tile each file.

#![no_main]

use libfuzzer_sys::fuzz_target;
use p2p_fuzz::check_neutralize;
use p2p_fuzz::frames::check_stream;
use p2p_fuzz::json::check_json_round_trip;
use p2p_fuzz::paths::check_manifest;
use proto::transfer::{MAX_CHUNK_FRAME, TransferFrame, TransferId};

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
            | TransferFrame::ChunkHashes { .. }
            | TransferFrame::FileDone { .. }
            | TransferFrame::Done { .. } => {}
        }
    }
});
