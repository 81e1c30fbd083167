//! Transfer frames: pinned wire bytes, round trips, garbage, and manifests that must not decode.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use proto::content::{ChunkCv, ChunkCvs};
use proto::frame::{self, FrameError};
use proto::transfer::{
    CHUNK, FileEntry, FileResume, MAX_CHUNK_FRAME, MAX_TOTAL_SIZE, Manifest, RelPath,
    TransferFrame, TransferId, chunk_frame_head,
};
use serde::Serialize;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn enc(f: &TransferFrame) -> Vec<u8> {
    frame::encode(f, MAX_CHUNK_FRAME).unwrap()
}

fn dec(bytes: &[u8]) -> Result<Option<TransferFrame>, FrameError> {
    frame::decode(&mut BytesMut::from(bytes), MAX_CHUNK_FRAME)
}

#[test]
fn offer_bytes_are_stable() {
    let offer = TransferFrame::Offer(Manifest {
        id: TransferId([0x11; 16]),
        files: vec![FileEntry {
            path: RelPath::new("a.txt").unwrap(),
            size: 300,
            hash: [0xab; 32],
        }],
        dirs: Vec::new(),
    });
    // len 58; tag 0; id; 1 file: path (len 5 "a.txt"), size varint 300, 32 hash bytes.
    let want = format!(
        "0000003a00{}0105612e747874ac02{}",
        "11".repeat(16),
        "ab".repeat(32)
    );
    assert_eq!(hex(&enc(&offer)), want);
    assert_eq!(dec(&enc(&offer)).unwrap(), Some(offer));
}

#[test]
fn accept_bytes_are_stable() {
    let accept = TransferFrame::Accept {
        id: TransferId([0x22; 16]),
        resume: vec![FileResume {
            file: 1,
            verified_chunks: 128,
        }],
    };
    // len 21; tag 1; id; 1 entry: file 1, verified_chunks varint 128.
    assert_eq!(
        hex(&enc(&accept)),
        format!("0000001501{}01018001", "22".repeat(16))
    );
    let none = TransferFrame::Accept {
        id: TransferId([0x22; 16]),
        resume: vec![],
    };
    assert_eq!(hex(&enc(&none)), format!("0000001201{}00", "22".repeat(16)));
}

#[test]
fn chunk_bytes_are_stable() {
    let chunk = TransferFrame::Chunk {
        id: TransferId([0x33; 16]),
        file: 2,
        index: 3,
        data: Bytes::from_static(b"hi!"),
    };
    // len 23; tag 4; id; file 2; index 3; data as a byte string (len 3, bytes).
    assert_eq!(
        hex(&enc(&chunk)),
        format!("0000001704{}020303686921", "33".repeat(16))
    );
}

#[test]
fn a_chunk_head_plus_its_data_is_the_whole_frame() {
    for len in [0, 1, 3, 127, 128, 16_383, 16_384, CHUNK as usize] {
        for (file, index) in [(0, 0), (2, 3), (u32::MAX, u64::MAX)] {
            let data = Bytes::from(vec![0x5a; len]);
            let id = TransferId([0x33; 16]);
            let whole = enc(&TransferFrame::Chunk {
                id,
                file,
                index,
                data: data.clone(),
            });
            let mut parts = chunk_frame_head(id, file, index, len, MAX_CHUNK_FRAME).unwrap();
            parts.extend_from_slice(&data);
            assert_eq!(
                hex(&parts),
                hex(&whole),
                "len {len}, file {file}, index {index}"
            );
        }
    }
    // The pinned frame of chunk_bytes_are_stable, head first.
    let head = chunk_frame_head(TransferId([0x33; 16]), 2, 3, 3, MAX_CHUNK_FRAME).unwrap();
    assert_eq!(hex(&head), format!("0000001704{}020303", "33".repeat(16)));
    assert!(matches!(
        chunk_frame_head(TransferId([0; 16]), 0, 0, MAX_CHUNK_FRAME, MAX_CHUNK_FRAME),
        Err(FrameError::TooLarge { .. })
    ));
}

#[test]
fn a_decoded_chunk_shares_the_payload() {
    let frame = enc(&TransferFrame::Chunk {
        id: TransferId([0x33; 16]),
        file: 2,
        index: 3,
        data: Bytes::from(vec![9u8; 1000]),
    });
    let payload = Bytes::from(frame).slice(frame::HEADER_LEN..);
    let Ok(TransferFrame::Chunk { data, .. }) = TransferFrame::decode_payload(payload.clone())
    else {
        panic!("not a chunk");
    };
    assert_eq!(&data[..], &[9u8; 1000][..]);
    let range = payload.as_ptr_range();
    assert!(range.contains(&data.as_ptr()), "the data was copied");
    let mut trailing = payload.to_vec();
    trailing.push(0);
    assert!(matches!(
        TransferFrame::decode_payload(trailing.into()),
        Err(FrameError::Trailing { extra: 1 })
    ));
}

#[test]
fn every_frame_has_its_tag() {
    let id = TransferId([0x44; 16]);
    let idh = "44".repeat(16);
    let cases = [
        (
            TransferFrame::Decline {
                id,
                reason: "no".into(),
            },
            format!("02{idh}026e6f"),
        ),
        (
            TransferFrame::Cancel {
                id,
                reason: String::new(),
            },
            format!("03{idh}00"),
        ),
        (
            TransferFrame::ChunkCvs {
                id,
                file: 0,
                run: ChunkCvs {
                    first: 5,
                    cvs: vec![ChunkCv([0xcd; 32])],
                },
            },
            format!("05{idh}000501{}", "cd".repeat(32)),
        ),
        (
            TransferFrame::FileDone { id, file: 7 },
            format!("06{idh}07"),
        ),
        (TransferFrame::Done { id }, format!("07{idh}")),
        (
            TransferFrame::Failed {
                id,
                reason: "x".into(),
            },
            format!("08{idh}0178"),
        ),
    ];
    for (f, body) in cases {
        assert_eq!(hex(&enc(&f)[4..]), body, "{f:?}");
        assert_eq!(f.id(), id);
    }
}

#[test]
fn a_full_chunk_fits_the_cap_and_more_does_not() {
    let full = TransferFrame::Chunk {
        id: TransferId([0xff; 16]),
        file: u32::MAX,
        index: u64::MAX,
        data: Bytes::from(vec![7u8; CHUNK as usize]),
    };
    let bytes = enc(&full);
    assert!(bytes.len() - frame::HEADER_LEN <= MAX_CHUNK_FRAME);
    assert_eq!(dec(&bytes).unwrap(), Some(full));

    let over = TransferFrame::Chunk {
        id: TransferId([0; 16]),
        file: 0,
        index: 0,
        data: Bytes::from(vec![0u8; MAX_CHUNK_FRAME]),
    };
    assert!(matches!(
        frame::encode(&over, MAX_CHUNK_FRAME),
        Err(FrameError::TooLarge { .. })
    ));
    let header = ((MAX_CHUNK_FRAME + 1) as u32).to_be_bytes();
    assert!(matches!(dec(&header), Err(FrameError::TooLarge { .. })));
}

// ---------------------------------------------------------------------------------------------
// Manifests that must not decode. The shadow types have the same wire layout as `Offer` but
// plain strings and no validation, as a hostile peer's encoder would.

#[derive(Serialize)]
enum ShadowFrame {
    Offer(ShadowManifest),
}

#[derive(Serialize)]
struct ShadowManifest {
    id: [u8; 16],
    files: Vec<ShadowEntry>,
}

#[derive(Serialize)]
struct ShadowEntry {
    path: String,
    size: u64,
    hash: [u8; 32],
}

fn shadow_offer(files: &[(&str, u64)]) -> Vec<u8> {
    let m = ShadowManifest {
        id: [5; 16],
        files: files
            .iter()
            .map(|(path, size)| ShadowEntry {
                path: path.to_string(),
                size: *size,
                hash: [6; 32],
            })
            .collect(),
    };
    postcard::to_stdvec(&ShadowFrame::Offer(m)).unwrap()
}

#[test]
fn shadow_layout_matches() {
    let good = frame::decode_payload::<TransferFrame>(&shadow_offer(&[("dir/ok.txt", 3)]));
    let Ok(TransferFrame::Offer(m)) = good else {
        panic!("{good:?}")
    };
    assert_eq!(m.files[0].path.as_str(), "dir/ok.txt");
    assert_eq!(m.total_size(), 3);
}

#[test]
fn offers_with_hostile_paths_do_not_decode() {
    let long = "x".repeat(256);
    for path in [
        "",
        ".",
        "..",
        "../x",
        "a/../../b",
        "/etc/passwd",
        "C:\\x",
        "C:x",
        "a\\b",
        "a\0b",
        "a\nb",
        "a\u{1b}b",
        "a\u{7f}b",
        "a\u{85}b",
        &long,
        "con",
        "CON.txt",
        "com1",
        "lpt9.log",
        "aux.",
        "nul ",
        "trailing.",
        "trailing ",
        "a//b",
    ] {
        let payload = shadow_offer(&[("fine.txt", 1), (path, 1)]);
        let got = frame::decode_payload::<TransferFrame>(&payload);
        assert!(
            matches!(got, Err(FrameError::Malformed(_))),
            "{path:?} decoded: {got:?}"
        );
    }
}

#[test]
fn offers_breaking_manifest_rules_do_not_decode() {
    let cases: &[&[(&str, u64)]] = &[
        &[],
        &[("a", 1), ("a", 1)],
        &[("a", 1), ("A", 1)],
        &[("a", 1), ("a/b", 1)],
        &[("a", MAX_TOTAL_SIZE), ("b", 1)],
        &[("a", u64::MAX), ("b", u64::MAX)],
    ];
    for files in cases {
        let got = frame::decode_payload::<TransferFrame>(&shadow_offer(files));
        assert!(got.is_err(), "{files:?} decoded: {got:?}");
    }
}

#[test]
fn json_offers_are_validated_too() {
    let json = format!(
        r#"{{"Offer":{{"id":"{}","files":[{{"path":"../../.bashrc","size":1,"hash":"{}"}}]}}}}"#,
        "05".repeat(16),
        "06".repeat(32)
    );
    assert!(serde_json::from_str::<TransferFrame>(&json).is_err());
    let fixed = json.replace("../../.bashrc", "dot.bashrc");
    assert!(serde_json::from_str::<TransferFrame>(&fixed).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Properties

fn any_id() -> impl Strategy<Value = TransferId> {
    any::<[u8; 16]>().prop_map(TransferId)
}

fn any_manifest() -> impl Strategy<Value = Manifest> {
    let file = (
        any::<bool>(),
        "[a-zA-Z0-9 ._é日-]{0,10}[a-z]",
        0..=MAX_TOTAL_SIZE / 16,
        any::<[u8; 32]>(),
    );
    (any_id(), proptest::collection::vec(file, 1..8)).prop_filter_map(
        "invalid manifest",
        |(id, files)| {
            let files = files
                .into_iter()
                .enumerate()
                .map(|(i, (nested, name, size, hash))| {
                    // Distinct prefixes keep paths unique; nesting varies the depth.
                    let path = if nested {
                        format!("d{i}/{name}")
                    } else {
                        format!("{i}{name}")
                    };
                    Some(FileEntry {
                        path: RelPath::new(&path).ok()?,
                        size,
                        hash,
                    })
                })
                .collect::<Option<Vec<_>>>()?;
            let m = Manifest {
                id,
                files,
                dirs: Vec::new(),
            };
            m.validate().is_ok().then_some(m)
        },
    )
}

fn any_frame() -> impl Strategy<Value = TransferFrame> {
    let reason = ".{0,40}";
    prop_oneof![
        any_manifest().prop_map(TransferFrame::Offer),
        (
            any_id(),
            proptest::collection::vec((any::<u32>(), any::<u64>()), 0..8)
        )
            .prop_map(|(id, r)| TransferFrame::Accept {
                id,
                resume: r
                    .into_iter()
                    .map(|(file, verified_chunks)| FileResume {
                        file,
                        verified_chunks
                    })
                    .collect(),
            }),
        (any_id(), reason).prop_map(|(id, reason)| TransferFrame::Decline { id, reason }),
        (any_id(), reason).prop_map(|(id, reason)| TransferFrame::Cancel { id, reason }),
        (
            any_id(),
            any::<u32>(),
            any::<u64>(),
            proptest::collection::vec(any::<u8>(), 0..600)
        )
            .prop_map(|(id, file, index, data)| TransferFrame::Chunk {
                id,
                file,
                index,
                data: data.into(),
            }),
        (
            any_id(),
            any::<u32>(),
            any::<u64>(),
            proptest::collection::vec(any::<[u8; 32]>(), 0..8)
        )
            .prop_map(|(id, file, first, cvs)| TransferFrame::ChunkCvs {
                id,
                file,
                run: ChunkCvs {
                    first: first >> 21,
                    cvs: cvs.into_iter().map(ChunkCv).collect(),
                },
            }),
        (any_id(), any::<u32>()).prop_map(|(id, file)| TransferFrame::FileDone { id, file }),
        any_id().prop_map(|id| TransferFrame::Done { id }),
        (any_id(), reason).prop_map(|(id, reason)| TransferFrame::Failed { id, reason }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn frames_round_trip(f in any_frame()) {
        let mut buf = BytesMut::from(&enc(&f)[..]);
        prop_assert_eq!(frame::decode::<TransferFrame>(&mut buf, MAX_CHUNK_FRAME).unwrap(), Some(f.clone()));
        prop_assert!(buf.is_empty());
        let json = serde_json::to_string(&f).unwrap();
        prop_assert_eq!(serde_json::from_str::<TransferFrame>(&json).unwrap(), f);
    }

    #[test]
    fn the_bulk_decoder_agrees_with_the_generic_one(f in any_frame()) {
        let bytes = enc(&f);
        let payload = Bytes::from(bytes).slice(frame::HEADER_LEN..);
        prop_assert_eq!(TransferFrame::decode_payload(payload).unwrap(), f);
    }

    #[test]
    fn the_bulk_decoder_agrees_on_garbage(
        tag in 0u8..12,
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut payload = vec![tag];
        payload.extend_from_slice(&bytes);
        let generic = frame::decode_payload::<TransferFrame>(&payload).ok();
        let bulk = TransferFrame::decode_payload(payload.into()).ok();
        prop_assert_eq!(bulk, generic);
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = frame::decode_payload::<TransferFrame>(&bytes);
        let _ = frame::decode::<TransferFrame>(&mut BytesMut::from(&bytes[..]), MAX_CHUNK_FRAME);
    }

    #[test]
    fn garbage_after_a_tag_never_panics(
        tag in 0u8..12,
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut payload = vec![tag];
        payload.extend_from_slice(&bytes);
        let _ = frame::decode_payload::<TransferFrame>(&payload);
    }

    #[test]
    fn mutated_frames_never_panic(f in any_frame(), idx in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = enc(&f);
        let i = idx % bytes.len();
        bytes[i] = byte;
        let _ = dec(&bytes);
    }

    #[test]
    fn decoded_offers_are_always_valid(f in any_frame(), idx in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = enc(&f);
        let i = frame::HEADER_LEN + idx % (bytes.len() - frame::HEADER_LEN);
        bytes[i] = byte;
        if let Ok(TransferFrame::Offer(m)) = frame::decode_payload::<TransferFrame>(&bytes[frame::HEADER_LEN..]) {
            prop_assert!(m.validate().is_ok());
        }
    }
}
