//! Content ids and chunk values: what `b3sum` prints, the merge of chunk values against
//! `blake3::hash`, refusal of tampered lists and lengths, and garbage that must not panic.

use proptest::prelude::*;
use proto::content::{
    CHUNK, ChunkCv, ChunkList, ContentError, ContentId, chunk_count, chunk_cv, chunk_cvs,
    chunk_range, content_id,
};

const MIB: usize = 1 << 20;

/// The input of the official BLAKE3 test vectors: byte `i` is `i % 251`.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// `len` pseudo-random bytes from `seed` (splitmix64): cheap enough for many MiB per case.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The chunks of `data`, as a receiver gets them.
fn chunks(data: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    data.chunks(CHUNK as usize).zip(0u64..).map(|(c, i)| (i, c))
}

/// Asserts every property the design promises for `data`: the merged chunk values equal
/// `blake3::hash`, the list checks against the id, and every chunk verifies on its own.
fn assert_content_properties(data: &[u8]) {
    let len = data.len() as u64;
    let cvs = chunk_cvs(data);
    assert_eq!(cvs.len() as u64, chunk_count(len));
    let id = content_id(&cvs, len).unwrap();
    assert_eq!(id.as_bytes(), blake3::hash(data).as_bytes(), "len {len}");
    assert_eq!(ChunkList::check(&id, len, &cvs), Ok(()));
    let list = ChunkList::new(id, len, cvs.clone()).unwrap();
    assert_eq!(list, ChunkList::of(data));
    for (index, bytes) in chunks(data) {
        assert_eq!(list.verify_chunk(index, bytes), Ok(()), "chunk {index}");
    }
}

#[test]
fn ids_are_what_b3sum_prints() {
    // Printed by the BLAKE3 reference C implementation (portable build) for `pattern(len)`.
    let vectors = [
        (
            0,
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
        ),
        (
            1,
            "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213",
        ),
        (
            1024,
            "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7",
        ),
        (
            MIB - 1,
            "f32b849d19684c18c138cf13e29dbadc776f4bc2a56b477680ef546b39ac3f71",
        ),
        (
            MIB,
            "74cb441fd087764ca9c3694da742ebe30cbeb3060a17009ca81825c7a8d10343",
        ),
        (
            MIB + 1,
            "2f053cd7472cf0cd2f9adaf45c1180255b91b9a865404a63671a0ee5f792ed33",
        ),
        (
            2 * MIB,
            "96fbba37478c16b7614c890b26832f67b541cf14e69ab8ebf0c739818588c9f1",
        ),
        (
            3 * MIB + 5,
            "a7bb55bed0c04f58879d1fc1cafb27e14e931f4411fe63baf5b2d5a60357bffb",
        ),
        (
            9 * MIB,
            "8516f8a0ae9a7a21cdd69df13aaa9b2a22a499848fb3185cea4cae496ce4d91a",
        ),
    ];
    for (len, want) in vectors {
        let data = pattern(len);
        let list = ChunkList::of(&data);
        assert_eq!(list.id().to_string(), want, "len {len}");
        assert_eq!(ContentId::of(&data).to_string(), want, "len {len}");
        assert_content_properties(&data);
    }
    assert_eq!(ContentId::EMPTY.to_string(), vectors[0].1);
}

#[test]
fn lengths_around_the_chunk_boundaries_merge_to_the_hash() {
    let mut lengths = vec![0, 1, 1024, MIB - 1, MIB, MIB + 1, 2 * MIB, 3 * MIB + 5];
    // Every tree shape up to 9 chunks, each with a full and a short last chunk.
    for n in 2..=9 {
        lengths.extend([n * MIB, n * MIB - 7]);
    }
    for len in lengths {
        assert_content_properties(&random_bytes(len as u64, len));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn merged_chunk_values_equal_blake3_hash(
        seed in any::<u64>(),
        len in prop_oneof![
            Just(0usize),
            Just(1),
            Just(1024),
            Just(MIB - 1),
            Just(MIB),
            Just(MIB + 1),
            (MIB - 2048..MIB + 2048),
            (0..4 * MIB),
            (4 * MIB..9 * MIB + 1),
        ],
    ) {
        assert_content_properties(&random_bytes(seed, len));
    }
}

#[test]
fn a_one_chunk_file_is_checked_by_its_root_hash() {
    for len in [1, 1024, MIB - 1, MIB] {
        let data = random_bytes(7, len);
        let id = ContentId::of(&data);
        let list = ChunkList::of(&data);
        assert_eq!(list.cvs(), &[ChunkCv(id.0)]);
        assert_eq!(chunk_cv(0, &data, true), Ok(ChunkCv(id.0)));
        // The chunk's non-root value is no substitute for the root hash.
        let non_root = chunk_cv(0, &data, false).unwrap();
        assert_ne!(non_root.0, id.0);
        assert_eq!(
            ChunkList::check(&id, len as u64, &[non_root]),
            Err(ContentError::IdMismatch { id })
        );
        let mut other = data.clone();
        other[len / 2] ^= 1;
        assert_eq!(
            list.verify_chunk(0, &other),
            Err(ContentError::ChunkMismatch { index: 0 })
        );
    }
    assert_eq!(
        chunk_cv(1, b"x", true),
        Err(ContentError::BadIndex { index: 1 })
    );
}

#[test]
fn the_empty_file_has_no_chunks() {
    assert_eq!(chunk_cvs(b""), Vec::<ChunkCv>::new());
    assert_eq!(content_id(&[], 0), Ok(ContentId::EMPTY));
    assert_eq!(ChunkList::check(&ContentId::EMPTY, 0, &[]), Ok(()));
    let other = ContentId([1; 32]);
    assert_eq!(
        ChunkList::check(&other, 0, &[]),
        Err(ContentError::IdMismatch { id: other })
    );
    assert_eq!(
        content_id(&[ChunkCv(ContentId::EMPTY.0)], 0),
        Err(ContentError::WrongCount {
            len: 0,
            got: 1,
            want: 0
        })
    );
    assert_eq!(chunk_cv(0, b"", true), Err(ContentError::EmptyChunk));
    assert_eq!(chunk_cv(3, b"", false), Err(ContentError::EmptyChunk));
    let list = ChunkList::of(b"");
    assert!(list.is_empty());
    assert_eq!(
        list.verify_chunk(0, b""),
        Err(ContentError::IndexPastEnd { index: 0, len: 0 })
    );
}

#[test]
fn a_tampered_list_is_refused() {
    let len = 5 * MIB + 3;
    let data = random_bytes(11, len);
    let list = ChunkList::of(&data);
    let (id, len) = (list.id(), len as u64);
    for i in 0..list.cvs().len() {
        for bit in [0, 77, 255] {
            let mut cvs = list.cvs().to_vec();
            cvs[i].0[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                ChunkList::check(&id, len, &cvs),
                Err(ContentError::IdMismatch { id }),
                "value {i}, bit {bit}"
            );
        }
    }
    let mut swapped = list.cvs().to_vec();
    swapped.swap(1, 2);
    assert!(ChunkList::new(id, len, swapped).is_err());
    // The right values under another id.
    let other = ContentId::of(b"something else");
    assert_eq!(
        ChunkList::check(&other, len, list.cvs()),
        Err(ContentError::IdMismatch { id: other })
    );
    // One value missing, one too many.
    let short = &list.cvs()[..5];
    assert!(matches!(
        ChunkList::check(&id, len, short),
        Err(ContentError::WrongCount {
            got: 5,
            want: 6,
            ..
        })
    ));
    let mut long = list.cvs().to_vec();
    long.push(long[0]);
    assert!(matches!(
        ChunkList::check(&id, len, &long),
        Err(ContentError::WrongCount {
            got: 7,
            want: 6,
            ..
        })
    ));
}

#[test]
fn a_wrong_length_is_refused() {
    let len = 3 * MIB + 5;
    let data = random_bytes(13, len);
    let list = ChunkList::of(&data);
    let id = list.id();
    // A length with another chunk count fails the list check.
    for wrong in [0, 1, 2 * MIB, 3 * MIB, 4 * MIB + 1, u64::MAX as usize] {
        assert!(
            matches!(
                ChunkList::check(&id, wrong as u64, list.cvs()),
                Err(ContentError::WrongCount { .. })
            ),
            "{wrong}"
        );
    }
    // A length within the same last chunk leaves the tree's shape as it is, so the list
    // passes, but the last chunk can then never verify: it is `id`'s own last chunk or not.
    for wrong in [3 * MIB + 1, 3 * MIB + 4, 3 * MIB + 6, 4 * MIB] {
        let lying = ChunkList::new(id, wrong as u64, list.cvs().to_vec()).unwrap();
        let (offset, last_len) = chunk_range(wrong as u64, 3).unwrap();
        assert_eq!(offset, 3 * CHUNK);
        let mut last = data[3 * MIB..].to_vec();
        last.resize(last_len as usize, 0);
        assert_eq!(
            lying.verify_chunk(3, &last),
            Err(ContentError::ChunkMismatch { index: 3 }),
            "{wrong}"
        );
        // The true last chunk has the wrong length for the lie.
        assert!(matches!(
            lying.verify_chunk(3, &data[3 * MIB..]),
            Err(ContentError::WrongChunkLen { index: 3, .. })
        ));
    }
}

#[test]
fn a_chunk_is_verified_at_its_own_index() {
    let data = random_bytes(17, 4 * MIB);
    let list = ChunkList::of(&data);
    let chunk1 = &data[MIB..2 * MIB];
    assert_eq!(list.verify_chunk(1, chunk1), Ok(()));
    // The same bytes claimed for another index.
    assert_eq!(
        list.verify_chunk(2, chunk1),
        Err(ContentError::ChunkMismatch { index: 2 })
    );
    assert_eq!(
        list.verify_chunk(1, &chunk1[1..]),
        Err(ContentError::WrongChunkLen {
            index: 1,
            got: MIB - 1,
            want: CHUNK
        })
    );
    assert_eq!(
        list.verify_chunk(4, chunk1),
        Err(ContentError::IndexPastEnd {
            index: 4,
            len: 4 * CHUNK
        })
    );
    assert_eq!(
        chunk_cv(0, &vec![0; MIB + 1], false),
        Err(ContentError::ChunkTooLong { len: MIB + 1 })
    );
}

#[test]
fn ids_print_and_parse_as_hex() {
    let id = ContentId([0xab; 32]);
    assert_eq!(id.to_string(), "ab".repeat(32));
    assert_eq!(format!("{id:?}"), format!("ContentId({})", "ab".repeat(32)));
    assert_eq!("AB".repeat(32).parse::<ContentId>(), Ok(id));
    let cv = ChunkCv([0x01; 32]);
    assert_eq!(cv.to_string().parse::<ChunkCv>(), Ok(cv));
    assert_eq!(format!("{cv:?}"), format!("ChunkCv({})", "01".repeat(32)));
    for bad in [
        String::new(),
        "ab".repeat(31),
        "ab".repeat(33),
        "zz".repeat(32),
        format!("{}é", "a".repeat(62)),
        format!(" {}", "a".repeat(63)),
    ] {
        assert_eq!(
            bad.parse::<ContentId>(),
            Err(ContentError::BadHex { what: "content id" }),
            "{bad:?}"
        );
    }
}

#[test]
fn ids_are_hex_in_json_and_bytes_in_postcard() {
    let id = ContentId::of(b"abc");
    let json = serde_json::to_string(&id).unwrap();
    assert_eq!(
        json,
        "\"6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85\""
    );
    assert_eq!(serde_json::from_str::<ContentId>(&json).unwrap(), id);
    assert_eq!(postcard::to_stdvec(&id).unwrap(), id.0.to_vec());
    assert_eq!(postcard::from_bytes::<ContentId>(&id.0).unwrap(), id);
    assert!(serde_json::from_str::<ContentId>("\"6437\"").is_err());
    assert!(serde_json::from_str::<ChunkCv>("17").is_err());
}

proptest! {
    #[test]
    fn garbage_lists_never_panic(
        cvs in proptest::collection::vec(any::<[u8; 32]>(), 0..40),
        len in prop_oneof![
            any::<u64>(),
            (0..40 * CHUNK),
            (u64::MAX - 4 * CHUNK..=u64::MAX),
        ],
        id in any::<[u8; 32]>(),
    ) {
        let cvs: Vec<ChunkCv> = cvs.into_iter().map(ChunkCv).collect();
        let merged = content_id(&cvs, len);
        prop_assert_eq!(merged.is_ok(), cvs.len() as u64 == chunk_count(len));
        let checked = ChunkList::check(&ContentId(id), len, &cvs);
        prop_assert!(checked.is_err() || merged == Ok(ContentId(id)));
    }

    #[test]
    fn garbage_chunks_never_panic(
        index in prop_oneof![
            any::<u64>(),
            (0..64u64),
            (u64::MAX / CHUNK - 2..=u64::MAX / CHUNK + 2),
        ],
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        only in any::<bool>(),
        len in any::<u64>(),
    ) {
        let _ = chunk_cv(index, &bytes, only);
        let list = ChunkList::of(&bytes);
        let _ = list.verify_chunk(index, &bytes);
        if let Ok(lying) = ChunkList::new(list.id(), len, list.cvs().to_vec()) {
            let _ = lying.verify_chunk(index, &bytes);
        }
    }
}

#[test]
fn the_last_chunk_a_file_can_have_hashes() {
    let last = u64::MAX / CHUNK;
    assert_eq!(chunk_count(u64::MAX), last + 1);
    // Chunk `last` may hold CHUNK - 1 bytes, no more: the file would pass 2^64 - 1 bytes.
    assert!(chunk_cv(last, &vec![0; MIB - 1], false).is_ok());
    assert_eq!(
        chunk_cv(last, &vec![0; MIB], false),
        Err(ContentError::BadIndex { index: last })
    );
    assert_eq!(
        chunk_cv(last + 1, b"x", false),
        Err(ContentError::BadIndex { index: last + 1 })
    );
}

/// Hashing 256 MiB as chunk values plus a merge against `blake3::hash` in one pass, one
/// thread each. Run with
/// `cargo test --release -p proto --test content_id -- --ignored --nocapture bench`.
#[test]
#[ignore = "a benchmark; run it by hand in release mode"]
fn bench_chunk_values_against_one_pass() {
    use std::time::{Duration, Instant};
    const LEN: usize = 256 * MIB;
    let data = random_bytes(1, LEN); // writing it warms the memory it sits in
    let mut best = [Duration::MAX; 2];
    for round in 0..7 {
        let start = Instant::now();
        let via_cvs = content_id(&chunk_cvs(&data), LEN as u64).unwrap();
        let t_cvs = start.elapsed();
        let start = Instant::now();
        let one_pass = blake3::hash(&data);
        let t_one = start.elapsed();
        assert_eq!(via_cvs.as_bytes(), one_pass.as_bytes());
        if round > 0 {
            best[0] = best[0].min(t_cvs);
            best[1] = best[1].min(t_one);
        }
    }
    let rate = |d: Duration| LEN as f64 / d.as_secs_f64() / 1e6;
    println!(
        "256 MiB, best of 6: chunk values + merge {:?} ({:.0} MB/s); blake3::hash {:?} ({:.0} MB/s)",
        best[0],
        rate(best[0]),
        best[1],
        rate(best[1])
    );
}
