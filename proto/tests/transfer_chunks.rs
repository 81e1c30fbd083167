//! Transfer ids and chunk arithmetic through the public API.

use proto::content::{ChunkCv, ChunkCvs};
use proto::frame;
use proto::transfer::{
    BadTransferId, CHUNK, MAX_CHUNK_FRAME, MAX_HASHES_PER_FRAME, TransferFrame, TransferId,
    chunk_count, chunk_range,
};

#[test]
fn transfer_ids_print_and_parse() {
    let id = TransferId([0xab; 16]);
    assert_eq!(id.to_string(), "ab".repeat(16));
    assert_eq!(id.to_string().parse::<TransferId>().unwrap(), id);
    assert_eq!("AB".repeat(16).parse::<TransferId>().unwrap(), id);
    assert_eq!(
        format!("{id:?}"),
        format!("TransferId({})", "ab".repeat(16))
    );
    for bad in [
        "",
        "ab",
        &"zz".repeat(16),
        &"é".repeat(16),
        &"+f".repeat(16),
    ] {
        assert_eq!(bad.parse::<TransferId>(), Err(BadTransferId), "{bad:?}");
    }
}

#[test]
fn transfer_id_serde_is_hex_in_json_and_bytes_in_postcard() {
    let id = TransferId([1; 16]);
    let json = serde_json::to_string(&id).unwrap();
    assert_eq!(json, format!("\"{}\"", "01".repeat(16)));
    assert_eq!(serde_json::from_str::<TransferId>(&json).unwrap(), id);
    assert_eq!(postcard::to_stdvec(&id).unwrap(), vec![1; 16]);
    assert!(serde_json::from_str::<TransferId>("\"0102\"").is_err());
}

#[test]
fn chunk_arithmetic() {
    assert_eq!(chunk_count(0), 0);
    assert_eq!(chunk_range(0, 0), None);
    assert_eq!(chunk_count(1), 1);
    assert_eq!(chunk_range(1, 0), Some((0, 1)));
    assert_eq!(chunk_count(CHUNK), 1);
    assert_eq!(chunk_range(CHUNK, 0), Some((0, CHUNK)));
    assert_eq!(chunk_range(CHUNK, 1), None);
    assert_eq!(chunk_count(CHUNK + 1), 2);
    assert_eq!(chunk_range(CHUNK + 1, 1), Some((CHUNK, 1)));
    let last = chunk_count(u64::MAX) - 1;
    assert_eq!(chunk_range(u64::MAX, last), Some((last * CHUNK, CHUNK - 1)));
    assert_eq!(chunk_range(u64::MAX, last + 1), None);
    assert_eq!(chunk_range(u64::MAX, u64::MAX), None);
}

#[test]
fn chunks_tile_the_file() {
    for size in [1, 5, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 7] {
        let mut next = 0;
        for idx in 0..chunk_count(size) {
            let (offset, len) = chunk_range(size, idx).unwrap();
            assert_eq!(offset, next);
            assert!(len > 0 && len <= CHUNK);
            next += len;
        }
        assert_eq!(next, size);
    }
}

#[test]
fn hash_frames_fit_the_cap() {
    let run = ChunkCvs {
        first: (1 << 44) - MAX_HASHES_PER_FRAME as u64,
        cvs: vec![ChunkCv([0xff; 32]); MAX_HASHES_PER_FRAME],
    };
    let f = TransferFrame::ChunkCvs {
        id: TransferId([0xff; 16]),
        file: u32::MAX,
        run,
    };
    let bytes = frame::encode(&f, MAX_CHUNK_FRAME).unwrap();
    let mut buf = bytes::BytesMut::from(&bytes[..]);
    let back = frame::decode::<TransferFrame>(&mut buf, MAX_CHUNK_FRAME).unwrap();
    assert_eq!(back, Some(f));
}

#[test]
fn frame_ids() {
    let id = TransferId([3; 16]);
    assert_eq!(TransferFrame::Done { id }.id(), id);
    assert_eq!(
        TransferFrame::FileDone { id, file: 2 }.id(),
        TransferFrame::Failed {
            id,
            reason: String::new()
        }
        .id()
    );
}
