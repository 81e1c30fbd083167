//! The wire form of chunk lists (`ChunkCvs`): pinned bytes, round trips, caps and garbage.

use bytes::BytesMut;
use proptest::prelude::*;
use proto::content::{
    CHUNK, ChunkCv, ChunkCvs, ChunkList, MAX_CHUNK_CVS_PAYLOAD, MAX_CVS_PER_FRAME, chunk_count,
};
use proto::frame::{self, FrameError};
use proto::transfer::MAX_CHUNK_FRAME;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn run(first: u64, values: &[u8]) -> ChunkCvs {
    ChunkCvs {
        first,
        cvs: values.iter().map(|v| ChunkCv([*v; 32])).collect(),
    }
}

fn round_trip(r: &ChunkCvs) -> ChunkCvs {
    ChunkCvs::decode(&r.encode().unwrap()).unwrap()
}

#[test]
fn chunk_cvs_bytes_are_stable() {
    // first varint 3, count varint 2, then 32 bytes per value.
    let two = run(3, &[0xab, 0xcd]);
    let want = format!("0302{}{}", "ab".repeat(32), "cd".repeat(32));
    assert_eq!(hex(&two.encode().unwrap()), want);
    assert_eq!(round_trip(&two), two);
    // first varint 300, no values.
    assert_eq!(hex(&run(300, &[]).encode().unwrap()), "ac0200");
    // As a frame: 4-byte length, then the payload.
    let framed = frame::encode(&two, MAX_CHUNK_CVS_PAYLOAD).unwrap();
    assert_eq!(hex(&framed), format!("00000042{want}"));
}

#[test]
fn chunk_cvs_json_is_hex() {
    let one = run(7, &[0x01]);
    let json = serde_json::to_string(&one).unwrap();
    assert_eq!(
        json,
        format!("{{\"first\":7,\"cvs\":[\"{}\"]}}", "01".repeat(32))
    );
    assert_eq!(serde_json::from_str::<ChunkCvs>(&json).unwrap(), one);
}

#[test]
fn a_full_run_fits_its_caps() {
    let full = ChunkCvs {
        first: u64::MAX / CHUNK + 1 - MAX_CVS_PER_FRAME as u64,
        cvs: vec![ChunkCv([0xee; 32]); MAX_CVS_PER_FRAME],
    };
    let bytes = full.encode().unwrap();
    assert!(bytes.len() <= MAX_CHUNK_CVS_PAYLOAD);
    const { assert!(MAX_CHUNK_CVS_PAYLOAD <= MAX_CHUNK_FRAME) };
    assert_eq!(round_trip(&full), full);
    assert_eq!(full.end(), Some(chunk_count(u64::MAX)));
    assert!(full.fits(u64::MAX));
}

#[test]
fn more_values_than_the_cap_are_refused_before_they_arrive() {
    // first 0, count 16,385 (varint 81 80 01), and no values at all.
    let head = [0x00, 0x81, 0x80, 0x01];
    assert!(matches!(
        ChunkCvs::decode(&head),
        Err(FrameError::Malformed(_))
    ));
    // The same with all the values present.
    let mut full = head.to_vec();
    full.resize(head.len() + 32 * (MAX_CVS_PER_FRAME + 1), 0);
    assert!(ChunkCvs::decode(&full).is_err());
    // A count of 2^63 is refused as quickly.
    let huge = [
        0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
    ];
    assert!(ChunkCvs::decode(&huge).is_err());
    let over = ChunkCvs {
        first: 0,
        cvs: vec![ChunkCv([0; 32]); MAX_CVS_PER_FRAME + 1],
    };
    assert!(matches!(over.encode(), Err(FrameError::TooLarge { .. })));
    // JSON has no announced length: the cap holds while reading.
    let json = serde_json::to_string(&over).unwrap();
    assert!(serde_json::from_str::<ChunkCvs>(&json).is_err());
}

#[test]
fn a_run_past_the_last_chunk_is_refused() {
    let last = u64::MAX / CHUNK;
    let ok = run(last, &[1]);
    assert_eq!(round_trip(&ok), ok);
    for bad in [run(last + 1, &[1]), run(last, &[1, 2]), run(u64::MAX, &[1])] {
        let payload = postcard::to_stdvec(&bad).unwrap();
        assert!(ChunkCvs::decode(&payload).is_err(), "{}", bad.first);
        assert_eq!(bad.end(), None);
    }
    // An empty run at the very end is fine.
    assert_eq!(round_trip(&run(last + 1, &[])).end(), Some(last + 1));
}

#[test]
fn trailing_bytes_and_oversized_payloads_are_refused() {
    let mut bytes = run(0, &[9]).encode().unwrap();
    bytes.push(0);
    assert!(matches!(
        ChunkCvs::decode(&bytes),
        Err(FrameError::Trailing { extra: 1 })
    ));
    let big = vec![0u8; MAX_CHUNK_CVS_PAYLOAD + 1];
    assert!(matches!(
        ChunkCvs::decode(&big),
        Err(FrameError::TooLarge { .. })
    ));
}

#[test]
fn runs_cover_a_list_in_order_and_reassemble() {
    let n = 2 * MAX_CVS_PER_FRAME + 5;
    let cvs: Vec<ChunkCv> = (0..n).map(|i| ChunkCv([(i % 251) as u8; 32])).collect();
    let runs: Vec<ChunkCvs> = ChunkCvs::runs(&cvs).collect();
    assert_eq!(
        runs.iter()
            .map(|r| (r.first, r.cvs.len()))
            .collect::<Vec<_>>(),
        vec![
            (0, MAX_CVS_PER_FRAME),
            (MAX_CVS_PER_FRAME as u64, MAX_CVS_PER_FRAME),
            (2 * MAX_CVS_PER_FRAME as u64, 5)
        ]
    );
    let back: Vec<ChunkCv> = runs.iter().flat_map(|r| round_trip(r).cvs).collect();
    assert_eq!(back, cvs);
    assert_eq!(ChunkCvs::runs(&[]).count(), 0);
    let len = n as u64 * CHUNK;
    assert!(runs.iter().all(|r| r.fits(len)));
    assert!(!runs[2].fits(len - CHUNK));
}

#[test]
fn a_real_list_survives_the_wire_and_still_checks() {
    let data: Vec<u8> = (0..3 * CHUNK as usize + 5)
        .map(|i| (i % 251) as u8)
        .collect();
    let list = ChunkList::of(&data);
    let sent: Vec<Vec<u8>> = ChunkCvs::runs(list.cvs())
        .map(|r| r.encode().unwrap())
        .collect();
    let got: Vec<ChunkCv> = sent
        .iter()
        .flat_map(|p| ChunkCvs::decode(p).unwrap().cvs)
        .collect();
    assert_eq!(
        ChunkList::check(&list.id(), data.len() as u64, &got),
        Ok(())
    );
}

fn any_run() -> impl Strategy<Value = ChunkCvs> {
    (
        prop_oneof![0..1000u64, 0..=(u64::MAX / CHUNK + 1 - 64)],
        proptest::collection::vec(any::<[u8; 32]>(), 0..64),
    )
        .prop_map(|(first, cvs)| ChunkCvs {
            first,
            cvs: cvs.into_iter().map(ChunkCv).collect(),
        })
}

proptest! {
    #[test]
    fn chunk_cvs_round_trip(r in any_run()) {
        prop_assert_eq!(round_trip(&r), r.clone());
        let json = serde_json::to_string(&r).unwrap();
        prop_assert_eq!(serde_json::from_str::<ChunkCvs>(&json).unwrap(), r.clone());
        let framed = frame::encode(&r, MAX_CHUNK_CVS_PAYLOAD).unwrap();
        let mut buf = BytesMut::from(&framed[..]);
        prop_assert_eq!(frame::decode::<ChunkCvs>(&mut buf, MAX_CHUNK_CVS_PAYLOAD).unwrap(), Some(r));
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        if let Ok(r) = ChunkCvs::decode(&bytes) {
            prop_assert!(r.cvs.len() <= MAX_CVS_PER_FRAME);
            prop_assert!(r.end().is_some());
            // Postcard reads overlong varints too, so compare values, not bytes.
            prop_assert_eq!(round_trip(&r), r);
        }
        let _ = serde_json::from_slice::<ChunkCvs>(&bytes);
    }
}
