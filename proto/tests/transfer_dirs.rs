//! The empty directories of an offer (`p2p-bulk/3`): pinned bytes (an offer without them is
//! the `p2p-bulk/2` offer, one with them adds a trailing list that a `p2p-bulk/2` decoder
//! refuses), round trips through both frame decoders and JSON, an offer of directories alone
//! (no file; neither files nor directories is refused), hostile directory entries refused
//! with their reason, the count capped before allocation, and garbage.

use bytes::Bytes;
use proptest::prelude::*;
use proto::frame;
use proto::transfer::{
    FileEntry, IncomingOffer, MAX_CHUNK_FRAME, MAX_DIRS, Manifest, ManifestError, OfferError,
    PathError, RelPath, TransferFrame, TransferId,
};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn path(p: &str) -> RelPath {
    RelPath::new(p).unwrap()
}

fn manifest(dirs: &[&str]) -> Manifest {
    Manifest {
        id: TransferId([0x11; 16]),
        files: vec![FileEntry {
            path: path("a.txt"),
            size: 300,
            hash: [0xab; 32],
        }],
        dirs: dirs.iter().map(|d| path(d)).collect(),
    }
}

/// The payload (no length prefix) of `TransferFrame::Offer(m)`, encoded without validation.
fn payload(m: Manifest) -> Vec<u8> {
    frame::encode(&TransferFrame::Offer(m), MAX_CHUNK_FRAME).unwrap()[frame::HEADER_LEN..].to_vec()
}

/// The offer of `manifest(&[])` with `tail` appended raw.
fn with_tail(tail: &[u8]) -> Vec<u8> {
    let mut p = payload(manifest(&[]));
    p.extend_from_slice(tail);
    p
}

/// `manifest(dirs)` without its file.
fn dirs_only(dirs: &[&str]) -> Manifest {
    Manifest {
        files: Vec::new(),
        ..manifest(dirs)
    }
}

/// The offer of `dirs_only(&[])` (no file, no directory) with `tail` appended raw.
fn bare_with_tail(tail: &[u8]) -> Vec<u8> {
    let mut p = payload(dirs_only(&[]));
    p.extend_from_slice(tail);
    p
}

/// A directory list of `dirs` (postcard: count, then each as a string), unchecked.
fn list(dirs: &[&str]) -> Vec<u8> {
    postcard::to_stdvec(&dirs.to_vec()).unwrap()
}

#[test]
fn offer_with_dirs_bytes_are_stable() {
    let v2 = format!("00{}0105612e747874ac02{}", "11".repeat(16), "ab".repeat(32));
    // Without directories: the bytes of p2p-bulk/2 (`offer_bytes_are_stable`).
    assert_eq!(hex(&payload(manifest(&[]))), v2);
    // With them: 1 directory, "photos/empty" (12 bytes), after the files.
    let m = manifest(&["photos/empty"]);
    let bytes = frame::encode(&TransferFrame::Offer(m.clone()), MAX_CHUNK_FRAME).unwrap();
    assert_eq!(
        hex(&bytes),
        format!("00000048{v2}010c70686f746f732f656d707479")
    );
    let body = &bytes[frame::HEADER_LEN..];
    assert_eq!(
        TransferFrame::decode_payload(Bytes::copy_from_slice(body)).unwrap(),
        TransferFrame::Offer(m.clone())
    );
    let got = IncomingOffer::from_payload(body).unwrap();
    assert_eq!(got.manifest, Ok(m));
    // A p2p-bulk/2 decoder reads the list as trailing bytes: hence the new ALPN name.
    assert!(frame::decode_payload::<TransferFrame>(body).is_err());
    assert!(frame::decode_payload::<IncomingOffer>(body).is_err());
}

#[test]
fn an_offer_of_directories_alone_is_valid_and_one_of_nothing_is_refused() {
    let id = "11".repeat(16);
    // No file (count 0), then 1 directory, "a/b/c".
    let m = dirs_only(&["a/b/c"]);
    assert_eq!(m.validate(), Ok(()));
    let body = payload(m.clone());
    assert_eq!(hex(&body), format!("00{id}000105612f622f63"));
    assert_eq!(
        TransferFrame::decode_payload(Bytes::copy_from_slice(&body)).unwrap(),
        TransferFrame::Offer(m.clone())
    );
    assert_eq!(
        IncomingOffer::from_payload(&body).unwrap().manifest,
        Ok(m.clone())
    );
    // A p2p-bulk/2 decoder reads the list as trailing bytes.
    assert!(frame::decode_payload::<TransferFrame>(&body).is_err());
    assert!(frame::decode_payload::<IncomingOffer>(&body).is_err());
    // JSON (the store) keeps it.
    let text = serde_json::to_string(&m).unwrap();
    assert_eq!(serde_json::from_str::<Manifest>(&text).unwrap(), m);

    // Neither files nor directories: the same offer with its list left out (what a
    // p2p-bulk/2 link would carry), or with an empty list, is refused by every decoder.
    let empty = Err(OfferError::Manifest(ManifestError::Empty));
    for bare in [bare_with_tail(&[]), bare_with_tail(&[0])] {
        assert_eq!(IncomingOffer::from_payload(&bare).unwrap().manifest, empty);
        assert!(TransferFrame::decode_payload(Bytes::from(bare)).is_err());
    }
    let bare = bare_with_tail(&[]);
    assert_eq!(hex(&bare), format!("00{id}00"));
    assert_eq!(
        frame::decode_payload::<IncomingOffer>(&bare)
            .unwrap()
            .manifest,
        empty
    );
    assert!(frame::decode_payload::<TransferFrame>(&bare).is_err());
    assert_eq!(dirs_only(&[]).validate(), Err(ManifestError::Empty));
    assert_eq!(
        ManifestError::Empty.to_string(),
        "the offer holds neither files nor directories"
    );
    let json = serde_json::to_string(&dirs_only(&[])).unwrap();
    assert!(serde_json::from_str::<Manifest>(&json).is_err());

    // Hostile directories with no file are refused for what they are.
    let hostile = bare_with_tail(&list(&["ok", "../../etc"]));
    assert!(matches!(
        IncomingOffer::from_payload(&hostile).unwrap().manifest,
        Err(OfferError::DirPath { dir: 1, .. })
    ));
    assert!(TransferFrame::decode_payload(Bytes::from(hostile)).is_err());
    let twice = bare_with_tail(&list(&["d", "D"]));
    assert!(matches!(
        IncomingOffer::from_payload(&twice).unwrap().manifest,
        Err(OfferError::Manifest(ManifestError::CaseCollision { .. }))
    ));
}

#[test]
fn hostile_dir_entries_are_refused_with_the_rule_they_break() {
    let id = TransferId([0x11; 16]);
    let cases: [(&[&str], OfferError); 6] = [
        (
            &["../x"],
            OfferError::DirPath {
                dir: 0,
                path: "\"../x\"".into(),
                source: PathError::DotComponent {
                    index: 0,
                    component: "..".into(),
                },
            },
        ),
        (
            &["ok", "/etc/x"],
            OfferError::DirPath {
                dir: 1,
                path: "\"/etc/x\"".into(),
                source: PathError::Absolute,
            },
        ),
        (
            &["a.txt"],
            ManifestError::Duplicate {
                path: path("a.txt"),
            }
            .into(),
        ),
        (
            &["A.TXT"],
            ManifestError::CaseCollision {
                first: path("a.txt"),
                second: path("A.TXT"),
            }
            .into(),
        ),
        (
            &["a.txt/inside"],
            ManifestError::FileIsDirectory {
                file: path("a.txt"),
                inside: path("a.txt/inside"),
            }
            .into(),
        ),
        (
            &["d", "D"],
            ManifestError::CaseCollision {
                first: path("d"),
                second: path("D"),
            }
            .into(),
        ),
    ];
    for (dirs, want) in cases {
        let bytes = with_tail(&list(dirs));
        let got = IncomingOffer::from_payload(&bytes).unwrap();
        assert_eq!(got.id, id);
        assert_eq!(got.manifest, Err(want), "{dirs:?}");
        assert!(
            TransferFrame::decode_payload(Bytes::from(bytes)).is_err(),
            "{dirs:?}"
        );
    }
    // Not UTF-8.
    let got = IncomingOffer::from_payload(&with_tail(&[1, 2, b'a', 0xff])).unwrap();
    assert_eq!(got.manifest, Err(OfferError::DirNotUtf8 { dir: 0 }));
    // A directory that is also a file's directory is implied, and harmless.
    let m = Manifest {
        files: vec![FileEntry {
            path: path("d/f"),
            size: 1,
            hash: [1; 32],
        }],
        ..manifest(&["d", "d/e"])
    };
    assert_eq!(m.validate(), Ok(()));
}

#[test]
fn the_dir_count_is_capped_before_anything_is_allocated() {
    // MAX_DIRS + 1 announced, none present: refused on the count.
    let mut tail = Vec::new();
    let mut n = (MAX_DIRS + 1) as u64;
    while n >= 0x80 {
        tail.push((n as u8) | 0x80);
        n >>= 7;
    }
    tail.push(n as u8);
    assert!(IncomingOffer::from_payload(&with_tail(&tail)).is_err());
    // A count near 2^64 as well.
    let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    assert!(IncomingOffer::from_payload(&with_tail(&huge)).is_err());
    assert!(TransferFrame::decode_payload(Bytes::from(with_tail(&huge))).is_err());
    // Exactly MAX_DIRS is a rule of the manifest.
    let many = Manifest {
        dirs: (0..=MAX_DIRS).map(|i| path(&format!("d{i}"))).collect(),
        ..manifest(&[])
    };
    assert_eq!(
        many.validate(),
        Err(ManifestError::TooManyDirs {
            count: MAX_DIRS + 1
        })
    );
    // An empty list is no list; trailing bytes after a list are refused.
    assert_eq!(
        IncomingOffer::from_payload(&with_tail(&[0]))
            .unwrap()
            .manifest,
        Ok(manifest(&[]))
    );
    let mut extra = list(&["x"]);
    extra.push(0);
    assert!(IncomingOffer::from_payload(&with_tail(&extra)).is_err());
}

#[test]
fn json_keeps_the_dirs_and_reads_manifests_stored_without_them() {
    let m = manifest(&["photos/empty", "x"]);
    let text = serde_json::to_string(&m).unwrap();
    assert!(text.contains(r#""dirs":["photos/empty","x"]"#), "{text}");
    assert_eq!(serde_json::from_str::<Manifest>(&text).unwrap(), m);
    let old = serde_json::to_string(&manifest(&[])).unwrap();
    assert!(!old.contains("dirs"), "{old}");
    assert_eq!(
        serde_json::from_str::<Manifest>(&old).unwrap(),
        manifest(&[])
    );
    let hostile = text.replace("photos/empty", "../up");
    assert!(serde_json::from_str::<Manifest>(&hostile).is_err());
}

fn any_dirs() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-zA-Z0-9 ._é日-]{0,8}[a-z]", 0..6).prop_map(|names| {
        names
            .into_iter()
            .enumerate()
            .map(|(i, n)| format!("e{i}/{n}"))
            .collect()
    })
}

proptest! {
    #[test]
    fn offers_with_dirs_round_trip(
        dirs in any_dirs(),
        id in any::<[u8; 16]>(),
        no_file in any::<bool>(),
    ) {
        let base = if no_file { dirs_only(&[]) } else { manifest(&[]) };
        let m = Manifest {
            id: TransferId(id),
            dirs: dirs.iter().map(|d| path(d)).collect(),
            ..base
        };
        prop_assume!(m.validate().is_ok());
        let body = payload(m.clone());
        prop_assert_eq!(
            TransferFrame::decode_payload(Bytes::copy_from_slice(&body)).unwrap(),
            TransferFrame::Offer(m.clone())
        );
        prop_assert_eq!(IncomingOffer::from_payload(&body).unwrap().manifest, Ok(m));
    }

    #[test]
    fn garbage_after_an_offer_never_panics(
        tail in prop::collection::vec(any::<u8>(), 0..512),
        no_file in any::<bool>(),
    ) {
        let bytes = if no_file { bare_with_tail(&tail) } else { with_tail(&tail) };
        let incoming = IncomingOffer::from_payload(&bytes);
        let framed = TransferFrame::decode_payload(Bytes::from(bytes));
        if let Ok(IncomingOffer { manifest: Ok(m), .. }) = &incoming {
            prop_assert!(m.validate().is_ok());
            prop_assert!(m.dirs.len() <= MAX_DIRS);
            prop_assert_eq!(framed.ok(), Some(TransferFrame::Offer(m.clone())));
        }
    }

    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = IncomingOffer::from_payload(&bytes);
        let _ = TransferFrame::decode_payload(Bytes::from(bytes));
    }
}
