//! Chunk lists from other peers: the `ChunkCvs` runs of chunk values a peer sends for a
//! content id, as a stream of frames (capped at `MAX_CHUNK_CVS_PAYLOAD`) and as one payload.
//!
//! Checks: the stream decodes the same however it is cut into reads; every run round-trips
//! through the codec and through JSON (hex values), holds at most `MAX_CVS_PER_FRAME` values
//! and ends within the chunks a file can have; the values, taken as a whole file's list for
//! lengths read from the run, merge into a content id exactly when their count fits the
//! length, and a list that checks against an id merges into that id.

#![no_main]

use libfuzzer_sys::fuzz_target;
use p2p_fuzz::frames::check_stream;
use p2p_fuzz::json::check_json_round_trip;
use proto::content::{
    CHUNK, ChunkCvs, ChunkList, ContentId, MAX_CHUNK_CVS_PAYLOAD, MAX_CVS_PER_FRAME, chunk_count,
    content_id,
};

fuzz_target!(|data: &[u8]| {
    for run in check_stream::<ChunkCvs>(data, MAX_CHUNK_CVS_PAYLOAD) {
        check_run(&run);
    }
    if let Ok(run) = ChunkCvs::decode(data) {
        let back = ChunkCvs::decode(&run.encode().expect("re-encodes")).expect("decodes back");
        assert_eq!(back, run);
        check_run(&run);
    }
});

fn check_run(run: &ChunkCvs) {
    check_json_round_trip(run);
    assert!(run.cvs.len() <= MAX_CVS_PER_FRAME);
    let end = run
        .end()
        .expect("a decoded run ends within a file's chunks");
    let n = run.cvs.len() as u64;
    assert_eq!(end, run.first + n);
    // Lengths that fit the count, lengths that do not, and `first` as a length.
    let fitting = n.saturating_mul(CHUNK).saturating_sub(run.first % CHUNK);
    for len in [fitting, fitting.saturating_add(CHUNK), run.first, u64::MAX] {
        let merged = content_id(&run.cvs, len);
        assert_eq!(
            merged.is_ok(),
            chunk_count(len) == n,
            "len {len}, {n} values"
        );
        let id = run
            .cvs
            .first()
            .map_or(ContentId::EMPTY, |cv| ContentId(cv.0));
        if ChunkList::check(&id, len, &run.cvs).is_ok() {
            assert_eq!(merged, Ok(id));
        }
    }
}
