//! An offer as the receiver reads it (`IncomingOffer`): pinned bytes decode to the same
//! manifest as a `TransferFrame::Offer`, or to the transfer id and the exact rule broken; it
//! agrees with `TransferFrame` on every offer; other frames and garbage do not decode.

use proptest::prelude::*;
use proto::frame;
use proto::transfer::{
    FileEntry, IncomingOffer, Manifest, ManifestError, OfferError, PathError, RelPath,
    TransferFrame, TransferId,
};
use serde::Serialize;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The payload of an `Offer` of one file at `path_hex` (the path's bytes, hex), 300 bytes,
/// hash 0xab...: tag 0; id 0x11 x 16; 1 file; path length and bytes; size varint 300; hash.
fn pinned(path_hex: &str) -> Vec<u8> {
    unhex(&format!(
        "00{}01{:02x}{path_hex}ac02{}",
        "11".repeat(16),
        path_hex.len() / 2,
        "ab".repeat(32)
    ))
}

#[test]
fn a_valid_offer_decodes_to_the_manifest_an_offer_frame_holds() {
    // The bytes of `offer_bytes_are_stable` in transfer_codec.rs, without the length prefix.
    let payload = pinned("612e747874");
    let want = Manifest {
        id: TransferId([0x11; 16]),
        files: vec![FileEntry {
            path: RelPath::new("a.txt").unwrap(),
            size: 300,
            hash: [0xab; 32],
        }],
        dirs: Vec::new(),
    };
    let got: IncomingOffer = frame::decode_payload(&payload).unwrap();
    assert_eq!(got.id, want.id);
    assert_eq!(got.manifest, Ok(want.clone()));
    assert_eq!(
        frame::decode_payload::<TransferFrame>(&payload).unwrap(),
        TransferFrame::Offer(want)
    );
}

#[test]
fn a_hostile_offer_decodes_to_its_id_and_the_rule_it_breaks() {
    // "../x"
    let payload = pinned("2e2e2f78");
    let got: IncomingOffer = frame::decode_payload(&payload).unwrap();
    assert_eq!(got.id, TransferId([0x11; 16]));
    let err = got.manifest.unwrap_err();
    assert_eq!(
        err,
        OfferError::Path {
            file: 0,
            path: "\"../x\"".into(),
            source: PathError::DotComponent {
                index: 0,
                component: "..".into()
            },
        }
    );
    assert_eq!(
        err.to_string(),
        r#"path "../x": component 0 is "..": '.' and '..' are not allowed"#
    );
    // The same bytes as a frame: refused, without the reason.
    assert!(frame::decode_payload::<TransferFrame>(&payload).is_err());

    // "a\x1b[2J": the escape is shown, never sent raw.
    let got: IncomingOffer = frame::decode_payload(&pinned("611b5b324a")).unwrap();
    let msg = got.manifest.unwrap_err().to_string();
    assert!(!msg.contains('\u{1b}'), "{msg}");
    assert!(msg.starts_with(r#"path "a\e[2J": "#), "{msg}");

    // 0xff is never UTF-8.
    let got: IncomingOffer = frame::decode_payload(&pinned("61ff")).unwrap();
    assert_eq!(got.manifest, Err(OfferError::NotUtf8 { file: 0 }));
    assert_eq!(
        OfferError::NotUtf8 { file: 0 }.to_string(),
        "the path of file 0 is not UTF-8"
    );
}

#[test]
fn manifest_rules_come_with_their_reason() {
    let entry = |p: &str| FileEntry {
        path: RelPath::new(p).unwrap(),
        size: 1,
        hash: [0; 32],
    };
    // Encoded without validation: `Manifest` serialises whatever it holds.
    let offer = |files: Vec<FileEntry>| {
        frame::encode(
            &TransferFrame::Offer(Manifest {
                id: TransferId([3; 16]),
                files,
                dirs: Vec::new(),
            }),
            1 << 20,
        )
        .unwrap()[frame::HEADER_LEN..]
            .to_vec()
    };
    let got: IncomingOffer = frame::decode_payload(&offer(vec![entry("a"), entry("A")])).unwrap();
    assert_eq!(
        got.manifest.unwrap_err().to_string(),
        "the offer lists a and A, which differ only in case"
    );
    let got: IncomingOffer = frame::decode_payload(&offer(vec![])).unwrap();
    assert_eq!(
        got.manifest,
        Err(OfferError::Manifest(ManifestError::Empty))
    );
}

#[test]
fn other_frames_are_not_offers() {
    let id = TransferId([9; 16]);
    for f in [
        TransferFrame::Done { id },
        TransferFrame::Failed {
            id,
            reason: "x".into(),
        },
        TransferFrame::Accept { id, resume: vec![] },
    ] {
        let bytes = frame::encode(&f, 1 << 20).unwrap();
        let got = frame::decode_payload::<IncomingOffer>(&bytes[frame::HEADER_LEN..]);
        assert!(got.is_err(), "{f:?} decoded as an offer: {got:?}");
    }
}

#[test]
fn json_offers_decode_the_same_way() {
    let offer = |path: &str| {
        serde_json::json!({"Offer": {
            "id": "05".repeat(16),
            "files": [{"path": path, "size": 1, "hash": "06".repeat(32)}],
        }})
    };
    let got: IncomingOffer = serde_json::from_value(offer("../../.bashrc")).unwrap();
    assert_eq!(got.id, TransferId([5; 16]));
    assert!(matches!(
        got.manifest,
        Err(OfferError::Path { file: 0, .. })
    ));
    let fine: IncomingOffer = serde_json::from_value(offer("dot.bashrc")).unwrap();
    assert!(fine.manifest.is_ok());
}

#[test]
fn unicode_spellings_and_look_alikes_in_an_offer() {
    let offer = |paths: &[&str]| {
        let files: Vec<_> = paths
            .iter()
            .map(|p| serde_json::json!({"path": p, "size": 1, "hash": "06".repeat(32)}))
            .collect();
        serde_json::json!({"Offer": {"id": "05".repeat(16), "files": files}})
    };
    // The same name composed and decomposed: a duplicate, whatever bytes each used.
    let got: IncomingOffer =
        serde_json::from_value(offer(&["d/caf\u{e9}", "d/cafe\u{301}"])).unwrap();
    assert_eq!(
        got.manifest,
        Err(OfferError::Manifest(ManifestError::Duplicate {
            path: RelPath::new("d/caf\u{e9}").unwrap()
        }))
    );
    // One decomposed name alone is accepted and comes out NFC.
    let got: IncomingOffer = serde_json::from_value(offer(&["cafe\u{301}"])).unwrap();
    assert_eq!(got.manifest.unwrap().files[0].path.as_str(), "caf\u{e9}");
    // Fullwidth "../x": refused with the character named.
    let got: IncomingOffer = serde_json::from_value(offer(&["\u{ff0e}\u{ff0e}\u{ff0f}x"])).unwrap();
    let msg = got.manifest.unwrap_err().to_string();
    assert!(msg.contains("U+FF0E FULLWIDTH FULL STOP"), "{msg}");
    // A bidi override, shown escaped in the reason.
    let got: IncomingOffer = serde_json::from_value(offer(&["cod\u{202e}fdp.exe"])).unwrap();
    let msg = got.manifest.unwrap_err().to_string();
    assert!(msg.contains("U+202E RIGHT-TO-LEFT OVERRIDE"), "{msg}");
    assert!(!msg.contains('\u{202e}'), "{msg:?}");
}

// ---------------------------------------------------------------------------------------------
// Properties

#[derive(Serialize)]
struct ShadowEntry {
    path: String,
    size: u64,
    hash: [u8; 32],
}

#[derive(Serialize)]
enum ShadowFrame {
    Offer {
        id: [u8; 16],
        files: Vec<ShadowEntry>,
    },
}

/// Paths made of fine and hostile components, so that some offers are valid and some not.
fn any_path() -> impl Strategy<Value = String> {
    let component = prop::sample::select(vec![
        "a",
        "A",
        "b.txt",
        "B.TXT",
        "..",
        ".",
        "",
        "con",
        "x:y",
        "a\\b",
        "n\u{0}l",
        "é",
        "dot.",
        "e\u{301}",
        "E\u{301}",
        "\u{ff0e}\u{ff0e}",
        "a\u{202e}b",
        "z\u{200b}",
    ]);
    (prop::collection::vec(component, 1..4), any::<bool>()).prop_map(|(parts, absolute)| {
        let joined = parts.join("/");
        if absolute {
            format!("/{joined}")
        } else {
            joined
        }
    })
}

proptest! {
    #[test]
    fn incoming_offers_agree_with_offer_frames(
        id in any::<[u8; 16]>(),
        files in prop::collection::vec((any_path(), 0u64..1 << 40), 0..5),
    ) {
        let shadow = ShadowFrame::Offer {
            id,
            files: files
                .into_iter()
                .map(|(path, size)| ShadowEntry { path, size, hash: [7; 32] })
                .collect(),
        };
        let payload = postcard::to_stdvec(&shadow).unwrap();
        let incoming: IncomingOffer = frame::decode_payload(&payload).unwrap();
        prop_assert_eq!(incoming.id, TransferId(id));
        match frame::decode_payload::<TransferFrame>(&payload) {
            Ok(TransferFrame::Offer(m)) => prop_assert_eq!(incoming.manifest, Ok(m)),
            Ok(other) => prop_assert!(false, "decoded as {:?}", other),
            Err(_) => prop_assert!(incoming.manifest.is_err()),
        }
    }

    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = frame::decode_payload::<IncomingOffer>(&bytes);
        let mut offer = vec![0u8];
        offer.extend_from_slice(&bytes);
        if let Ok(IncomingOffer { manifest: Ok(m), .. }) = frame::decode_payload(&offer) {
            prop_assert!(m.validate().is_ok());
        }
    }
}
