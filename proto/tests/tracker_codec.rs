//! Tracker frames: pinned wire bytes for every frame kind, round trips, and garbage.

mod common;

use bytes::BytesMut;
use proptest::prelude::*;
use proto::addr_record::AddrRecord;
use proto::frame::{self, FrameError};
use proto::tracker::{
    HANDOVER_DOMAIN, Handover, LookupBy, MAX_HANDOVER_CHAIN, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME,
    PeerEntry, PeerMsg, RECORD_DOMAIN, Record, Refusal, SignedHandover, SignedRecord, TrackerMsg,
};
use proto::{PeerName, SecretKey};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key() -> SecretKey {
    SecretKey::from_seed([7; 32])
}

fn signed(seq: u64) -> SignedRecord {
    Record {
        name: PeerName::new("al").unwrap(),
        key: key().peer_id(),
        addrs: vec!["1.2.3.4:258".parse().unwrap()],
        seq,
    }
    .sign(&key())
}

fn enc<T: serde::Serialize>(m: &T) -> Vec<u8> {
    frame::encode(m, MAX_RESPONSE_FRAME).unwrap()
}

#[test]
fn peer_frames_have_stable_bytes() {
    assert_eq!(hex(&enc(&PeerMsg::Hello { version: 1 })), "000000020001");
    assert_eq!(hex(&enc(&PeerMsg::Subscribe { req: 5 })), "000000020205");
    assert_eq!(hex(&enc(&PeerMsg::List { req: 300 })), "0000000303ac02");
    assert_eq!(hex(&enc(&PeerMsg::Ping { nonce: 1 })), "000000020401");
    assert_eq!(hex(&enc(&PeerMsg::Pong { nonce: 2 })), "000000020502");
}

#[test]
fn register_frame_layout() {
    let s = signed(9);
    let bytes = enc(&PeerMsg::Register(s.clone()));
    let body = &bytes[4..];
    // tag 1, name (len 2 "al"), 32 key bytes, 1 address (V4 variant 0, 4 ip bytes, port varint),
    // seq varint, signature (len 64, 64 bytes).
    let mut want = vec![1u8, 2, b'a', b'l'];
    want.extend_from_slice(key().peer_id().as_bytes());
    want.extend_from_slice(&[1, 0, 1, 2, 3, 4, 0x82, 0x02, 9, 64]);
    want.extend_from_slice(&s.sig.0);
    assert_eq!(hex(body), hex(&want));
    assert_eq!(
        u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize,
        want.len()
    );
}

fn new_key() -> SecretKey {
    SecretKey::from_seed([8; 32])
}

fn handover(seq: u64) -> SignedHandover {
    Handover {
        name: PeerName::new("al").unwrap(),
        old_key: key().peer_id(),
        new_key: new_key().peer_id(),
        seq,
    }
    .sign(&key())
}

#[test]
fn handover_signing_bytes_and_frame_layout() {
    let h = handover(5);
    let mut covered = b"p2p tracker handover v1\0".to_vec();
    covered.extend_from_slice(&[2, b'a', b'l']);
    covered.extend_from_slice(key().peer_id().as_bytes());
    covered.extend_from_slice(new_key().peer_id().as_bytes());
    covered.push(5);
    assert_eq!(hex(&h.handover.signing_bytes()), hex(&covered));
    assert!(h.verify());

    let rec = signed(9);
    let bytes = enc(&PeerMsg::RegisterHandover {
        record: rec.clone(),
        statement: h.clone(),
    });
    // tag 6, the record as in `Register`, then the statement and its signature.
    let mut want = vec![6u8];
    want.extend_from_slice(&enc(&PeerMsg::Register(rec))[5..]);
    want.extend_from_slice(&covered[b"p2p tracker handover v1\0".len()..]);
    want.push(64);
    want.extend_from_slice(&h.sig.0);
    assert_eq!(hex(&bytes[4..]), hex(&want));
}

#[test]
fn handover_chain_frames_have_stable_bytes() {
    let name = PeerName::new("al").unwrap();
    assert_eq!(
        hex(&enc(&PeerMsg::GetHandovers { name: name.clone() })),
        "000000040702616c"
    );
    assert_eq!(
        hex(&enc(&TrackerMsg::Handovers {
            name: name.clone(),
            chain: vec![]
        })),
        "000000050902616c00"
    );
    // tag 9, the name, the count, then each statement as in `RegisterHandover`.
    let (a, b) = (handover(5), handover(6));
    let bytes = enc(&TrackerMsg::Handovers {
        name,
        chain: vec![a.clone(), b.clone()],
    });
    let mut want = vec![9u8, 2, b'a', b'l', 2];
    for h in [&a, &b] {
        want.extend_from_slice(&h.handover.signing_bytes()[HANDOVER_DOMAIN.len()..]);
        want.push(64);
        want.extend_from_slice(&h.sig.0);
    }
    assert_eq!(hex(&bytes[4..]), hex(&want));
}

#[test]
fn a_chain_longer_than_the_cap_is_refused_before_it_is_read() {
    let full = TrackerMsg::Handovers {
        name: PeerName::new("al").unwrap(),
        chain: vec![handover(1); MAX_HANDOVER_CHAIN],
    };
    let mut buf = BytesMut::from(&enc(&full)[..]);
    assert_eq!(
        frame::decode::<TrackerMsg>(&mut buf, MAX_RESPONSE_FRAME).unwrap(),
        Some(full)
    );
    let over = TrackerMsg::Handovers {
        name: PeerName::new("al").unwrap(),
        chain: vec![handover(1); MAX_HANDOVER_CHAIN + 1],
    };
    let mut buf = BytesMut::from(&enc(&over)[..]);
    assert!(matches!(
        frame::decode::<TrackerMsg>(&mut buf, MAX_RESPONSE_FRAME),
        Err(FrameError::Malformed(_))
    ));
    // A count of u32::MAX with nothing behind it: refused, nothing reserved for it.
    let mut body = vec![9u8, 2, b'a', b'l', 0xff, 0xff, 0xff, 0xff, 0x0f];
    let mut framed = (body.len() as u32).to_be_bytes().to_vec();
    framed.append(&mut body);
    let mut buf = BytesMut::from(&framed[..]);
    assert!(frame::decode::<TrackerMsg>(&mut buf, MAX_RESPONSE_FRAME).is_err());
}

#[test]
fn handover_signatures_cover_every_field_and_the_domain() {
    let h = handover(1);
    let mut t = h.clone();
    t.handover.name = PeerName::new("am").unwrap();
    assert!(!t.verify());
    let mut t = h.clone();
    t.handover.new_key = SecretKey::from_seed([9; 32]).peer_id();
    assert!(!t.verify());
    let mut t = h.clone();
    t.handover.seq = 2;
    assert!(!t.verify());
    // Signed by the new key instead of the old one.
    let forged = h.handover.clone().sign(&new_key());
    assert!(!forged.verify());
    // A record signature is never a valid handover signature, and the reverse.
    let rec = signed(1);
    let as_handover = SignedHandover {
        handover: h.handover.clone(),
        sig: rec.sig,
    };
    assert!(!as_handover.verify());
    assert!(!h.handover.signing_bytes().starts_with(RECORD_DOMAIN));
    assert!(!rec.record.signing_bytes().starts_with(HANDOVER_DOMAIN));
}

#[test]
fn tracker_frames_have_stable_bytes() {
    assert_eq!(
        hex(&enc(&TrackerMsg::Hello {
            version: 1,
            lease_secs: 30
        })),
        "0000000300011e"
    );
    assert_eq!(
        hex(&enc(&TrackerMsg::Refused {
            reason: Refusal::NameTaken,
            detail: "x".into()
        })),
        "0000000402030178"
    );
    assert_eq!(
        hex(&enc(&TrackerMsg::Peers {
            req: 1,
            peers: vec![]
        })),
        "00000003030100"
    );
    let left = enc(&TrackerMsg::Left {
        key: key().peer_id(),
    });
    assert_eq!(hex(&left[..5]), "0000002106");
    assert_eq!(&left[5..], key().peer_id().as_bytes());
    assert_eq!(hex(&enc(&TrackerMsg::Ping { nonce: 3 })), "000000020703");
    assert_eq!(hex(&enc(&TrackerMsg::Pong { nonce: 4 })), "000000020804");
    let entry = PeerEntry {
        signed: signed(1),
        observed: "10.0.0.1".parse().unwrap(),
    };
    for (msg, tag) in [
        (
            TrackerMsg::Registered {
                entry: entry.clone(),
            },
            1u8,
        ),
        (TrackerMsg::Joined(entry.clone()), 4),
        (TrackerMsg::Updated(entry), 5),
    ] {
        assert_eq!(enc(&msg)[4], tag);
    }
}

#[test]
fn signatures_cover_every_field() {
    let s = signed(1);
    assert!(s.verify());
    let mut t = s.clone();
    t.record.addrs[0] = "1.2.3.4:259".parse().unwrap();
    assert!(!t.verify());
    let mut t = s.clone();
    t.record.name = PeerName::new("am").unwrap();
    assert!(!t.verify());
    let mut t = s;
    t.record.seq = 2;
    assert!(!t.verify());
}

#[test]
fn request_cap_refuses_big_frames_before_reading_them() {
    let mut buf = BytesMut::from(&((MAX_REQUEST_FRAME as u32 + 1).to_be_bytes())[..]);
    assert!(matches!(
        frame::decode::<PeerMsg>(&mut buf, MAX_REQUEST_FRAME),
        Err(FrameError::TooLarge { .. })
    ));
}

fn any_record() -> impl Strategy<Value = SignedRecord> {
    (
        "[a-z0-9][a-z0-9_-]{0,31}",
        any::<[u8; 32]>(),
        proptest::collection::vec(any::<std::net::SocketAddr>(), 0..8),
        any::<u64>(),
    )
        .prop_map(|(name, seed, addrs, seq)| {
            let k = SecretKey::from_seed(seed);
            // The wire carries IP and port only: IPv6 flow labels and scope ids are local.
            let addrs = addrs
                .into_iter()
                .map(|a| std::net::SocketAddr::new(a.ip(), a.port()))
                .collect();
            Record {
                name: PeerName::new(&name).unwrap(),
                key: k.peer_id(),
                addrs,
                seq,
            }
            .sign(&k)
        })
}

#[test]
fn address_record_frames_carry_the_record_bytes_unchanged() {
    let rec = AddrRecord {
        key: key().peer_id(),
        seq: 9,
        addrs: vec!["0.0.0.0:258".parse().unwrap()],
        expiry: 300,
    }
    .sign(&key());
    let bytes = enc(&PeerMsg::AddrRecord(rec.clone()));
    let mut want = vec![8u8];
    want.extend_from_slice(&rec.encode());
    assert_eq!(hex(&bytes[4..]), hex(&want));
    let bytes = enc(&TrackerMsg::AddrRecord {
        record: rec.clone(),
        observed: "1.2.3.4".parse().unwrap(),
    });
    let mut want = vec![10u8];
    want.extend_from_slice(&rec.encode());
    want.extend_from_slice(&[0, 1, 2, 3, 4]);
    assert_eq!(hex(&bytes[4..]), hex(&want));
}

fn any_peer_msg() -> impl Strategy<Value = PeerMsg> {
    prop_oneof![
        any::<u16>().prop_map(|version| PeerMsg::Hello { version }),
        any_record().prop_map(PeerMsg::Register),
        any::<u32>().prop_map(|req| PeerMsg::Subscribe { req }),
        any::<u32>().prop_map(|req| PeerMsg::List { req }),
        any::<u64>().prop_map(|nonce| PeerMsg::Ping { nonce }),
        any::<u64>().prop_map(|nonce| PeerMsg::Pong { nonce }),
        (any_record(), any::<[u8; 32]>(), any::<u64>()).prop_map(|(record, seed, seq)| {
            let old = SecretKey::from_seed(seed);
            let statement = Handover {
                name: record.record.name.clone(),
                old_key: old.peer_id(),
                new_key: record.record.key,
                seq,
            }
            .sign(&old);
            PeerMsg::RegisterHandover { record, statement }
        }),
        "[a-z0-9][a-z0-9_-]{0,31}".prop_map(|n| PeerMsg::GetHandovers {
            name: PeerName::new(&n).unwrap()
        }),
        common::any_addr_record(4).prop_map(PeerMsg::AddrRecord),
        (
            any::<u32>(),
            proptest::collection::vec(any_key_bytes(), 0..8)
        )
            .prop_map(|(req, keys)| PeerMsg::Watch { req, keys }),
        proptest::collection::vec(any_key_bytes(), 0..8).prop_map(|keys| PeerMsg::Unwatch { keys }),
        (any::<u32>(), any_key()).prop_map(|(req, k)| PeerMsg::Lookup {
            req,
            by: LookupBy::Key(k)
        }),
        (any::<u32>(), "[a-z0-9][a-z0-9_-]{0,31}").prop_map(|(req, n)| PeerMsg::Lookup {
            req,
            by: LookupBy::Name(PeerName::new(&n).unwrap())
        }),
        (any::<u32>(), proptest::option::of(any_key()), any::<u16>())
            .prop_map(|(req, after, limit)| PeerMsg::ListPage { req, after, limit }),
    ]
}

fn any_key() -> impl Strategy<Value = proto::PeerId> {
    any::<[u8; 32]>().prop_map(|s| SecretKey::from_seed(s).peer_id())
}

/// Watched keys: any 32 bytes, points or not, round-trip unchanged.
fn any_key_bytes() -> impl Strategy<Value = proto::KeyBytes> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(proto::KeyBytes),
        any_key().prop_map(proto::KeyBytes::from),
    ]
}

fn any_handover() -> impl Strategy<Value = SignedHandover> {
    (
        "[a-z0-9][a-z0-9_-]{0,31}",
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        any::<u64>(),
    )
        .prop_map(|(name, old, new, seq)| {
            let old = SecretKey::from_seed(old);
            Handover {
                name: PeerName::new(&name).unwrap(),
                old_key: old.peer_id(),
                new_key: SecretKey::from_seed(new).peer_id(),
                seq,
            }
            .sign(&old)
        })
}

fn any_refusal() -> impl Strategy<Value = Refusal> {
    prop_oneof![
        Just(Refusal::BadVersion),
        Just(Refusal::BadSignature),
        Just(Refusal::KeyMismatch),
        Just(Refusal::NameTaken),
        Just(Refusal::StaleSeq),
        Just(Refusal::RateLimited),
        Just(Refusal::NotRegistered),
        Just(Refusal::BadRecord),
        Just(Refusal::TooManyWatches),
    ]
}

fn any_entry() -> impl Strategy<Value = PeerEntry> {
    (any_record(), any::<std::net::IpAddr>())
        .prop_map(|(signed, observed)| PeerEntry { signed, observed })
}

fn any_tracker_msg() -> impl Strategy<Value = TrackerMsg> {
    prop_oneof![
        (any::<u16>(), any::<u32>()).prop_map(|(version, lease_secs)| TrackerMsg::Hello {
            version,
            lease_secs
        }),
        any_entry().prop_map(|entry| TrackerMsg::Registered { entry }),
        (any_refusal(), ".{0,40}")
            .prop_map(|(reason, detail)| TrackerMsg::Refused { reason, detail }),
        (any::<u32>(), proptest::collection::vec(any_entry(), 0..4))
            .prop_map(|(req, peers)| TrackerMsg::Peers { req, peers }),
        any_entry().prop_map(TrackerMsg::Joined),
        any_entry().prop_map(TrackerMsg::Updated),
        any::<[u8; 32]>().prop_map(|s| TrackerMsg::Left {
            key: SecretKey::from_seed(s).peer_id()
        }),
        any::<u64>().prop_map(|nonce| TrackerMsg::Ping { nonce }),
        any::<u64>().prop_map(|nonce| TrackerMsg::Pong { nonce }),
        (
            "[a-z0-9][a-z0-9_-]{0,31}",
            proptest::collection::vec(any_handover(), 0..=MAX_HANDOVER_CHAIN)
        )
            .prop_map(|(n, chain)| TrackerMsg::Handovers {
                name: PeerName::new(&n).unwrap(),
                chain
            }),
        (common::any_addr_record(4), any::<std::net::IpAddr>())
            .prop_map(|(record, observed)| TrackerMsg::AddrRecord { record, observed }),
        (any::<u32>(), proptest::option::of(any_entry()))
            .prop_map(|(req, entry)| TrackerMsg::Found { req, entry }),
        (
            any::<u32>(),
            proptest::collection::vec(any_entry(), 0..4),
            proptest::option::of(any_key())
        )
            .prop_map(|(req, peers, next)| TrackerMsg::Page { req, peers, next }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn peer_messages_round_trip(m in any_peer_msg()) {
        let mut buf = BytesMut::from(&enc(&m)[..]);
        prop_assert_eq!(frame::decode::<PeerMsg>(&mut buf, MAX_RESPONSE_FRAME).unwrap(), Some(m));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn tracker_messages_round_trip(m in any_tracker_msg()) {
        let mut buf = BytesMut::from(&enc(&m)[..]);
        prop_assert_eq!(frame::decode::<TrackerMsg>(&mut buf, MAX_RESPONSE_FRAME).unwrap(), Some(m));
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut a = BytesMut::from(&bytes[..]);
        let _ = frame::decode::<PeerMsg>(&mut a, MAX_REQUEST_FRAME);
        let mut b = BytesMut::from(&bytes[..]);
        let _ = frame::decode::<TrackerMsg>(&mut b, MAX_RESPONSE_FRAME);
        let _ = frame::decode_payload::<PeerMsg>(&bytes);
        let _ = frame::decode_payload::<TrackerMsg>(&bytes);
    }

    #[test]
    fn mutated_peer_frames_never_panic(m in any_peer_msg(), idx in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = enc(&m);
        let i = idx % bytes.len();
        bytes[i] = byte;
        let mut buf = BytesMut::from(&bytes[..]);
        let _ = frame::decode::<PeerMsg>(&mut buf, MAX_REQUEST_FRAME);
    }

    #[test]
    fn mutated_frames_never_panic(m in any_tracker_msg(), idx in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = enc(&m);
        let i = idx % bytes.len();
        bytes[i] = byte;
        let mut buf = BytesMut::from(&bytes[..]);
        let _ = frame::decode::<TrackerMsg>(&mut buf, MAX_RESPONSE_FRAME);
    }
}
