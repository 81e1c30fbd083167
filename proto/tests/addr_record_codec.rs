//! The signed address record: pinned bytes, the size cap, the checks, round trips and garbage.

mod common;

use std::net::{Ipv6Addr, SocketAddr};

use proptest::prelude::*;
use proto::SecretKey;
use proto::addr_record::{
    ADDR_RECORD_DOMAIN, AddrRecord, AddrRecordError, MAX_ADDRS, MAX_AHEAD_SECS, MAX_ENCODED,
    SignedAddrRecord,
};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key() -> SecretKey {
    SecretKey::from_seed([7; 32])
}

fn signed(seq: u64, expiry: u64) -> SignedAddrRecord {
    AddrRecord {
        key: key().peer_id(),
        seq,
        addrs: vec!["1.2.3.4:258".parse().unwrap()],
        expiry,
    }
    .sign(&key())
}

#[test]
fn record_bytes_are_stable() {
    let s = signed(9, 300);
    let mut body = key().peer_id().as_bytes().to_vec();
    // seq varint, 1 address (V4 variant 0, 4 ip bytes, port varint), expiry varint.
    body.extend_from_slice(&[9, 1, 0, 1, 2, 3, 4, 0x82, 0x02, 0xac, 0x02]);
    let mut covered = b"p2p addr record v1\0".to_vec();
    assert_eq!(covered, ADDR_RECORD_DOMAIN);
    covered.extend_from_slice(&body);
    assert_eq!(hex(&s.record.signing_bytes()), hex(&covered));
    // Then the signature: length 64, 64 bytes.
    let mut want = body;
    want.push(64);
    want.extend_from_slice(&s.sig.0);
    assert_eq!(hex(&s.encode()), hex(&want));
    assert_eq!(SignedAddrRecord::decode(&want), Ok(s));
}

#[test]
fn the_largest_record_fits_the_dht_cap() {
    let v6 = SocketAddr::new(
        Ipv6Addr::new(
            0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
        )
        .into(),
        65535,
    );
    let s = AddrRecord {
        key: key().peer_id(),
        seq: u64::MAX,
        addrs: vec![v6; MAX_ADDRS],
        expiry: u64::MAX,
    }
    .sign(&key());
    let bytes = s.encode();
    assert!(bytes.len() <= MAX_ENCODED, "{} bytes", bytes.len());
    assert_eq!(SignedAddrRecord::decode(&bytes), Ok(s));
}

#[test]
fn too_many_addresses_or_bytes_are_refused_before_reading() {
    let mut s = signed(1, 10);
    s.record.addrs = vec!["1.2.3.4:1".parse().unwrap(); MAX_ADDRS + 1];
    let bytes = s.encode();
    assert!(matches!(
        SignedAddrRecord::decode(&bytes),
        Err(AddrRecordError::Malformed(_))
    ));
    assert_eq!(
        s.check(&key().peer_id(), 1),
        Err(AddrRecordError::TooManyAddrs {
            count: MAX_ADDRS + 1
        })
    );
    // A count claiming a huge list: refused, nothing allocated for it.
    let mut huge = key().peer_id().as_bytes().to_vec();
    huge.extend_from_slice(&[1, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(SignedAddrRecord::decode(&huge).is_err());
    assert_eq!(
        SignedAddrRecord::decode(&[0; MAX_ENCODED + 1]),
        Err(AddrRecordError::TooLong {
            len: MAX_ENCODED + 1
        })
    );
    let mut trailing = signed(1, 10).encode();
    trailing.push(0);
    assert!(matches!(
        SignedAddrRecord::decode(&trailing),
        Err(AddrRecordError::Malformed(_))
    ));
}

#[test]
fn check_refuses_forgeries_other_keys_and_bad_times() {
    let me = key().peer_id();
    let s = signed(5, 1000);
    assert_eq!(s.check(&me, 999), Ok(()));
    assert_eq!(
        s.check(&me, 1000),
        Err(AddrRecordError::Expired {
            expiry: 1000,
            now: 1000
        })
    );
    assert_eq!(
        signed(5, 1000 + MAX_AHEAD_SECS + 1).check(&me, 1000),
        Err(AddrRecordError::TooFarAhead {
            expiry: 1000 + MAX_AHEAD_SECS + 1,
            now: 1000
        })
    );
    assert_eq!(signed(5, 1000 + MAX_AHEAD_SECS).check(&me, 1000), Ok(()));
    let other = SecretKey::from_seed([8; 32]).peer_id();
    assert_eq!(
        s.check(&other, 1),
        Err(AddrRecordError::WrongKey {
            expected: other,
            got: me
        })
    );
    // Another key's record relabelled as ours: the signature no longer verifies.
    let mut relabelled = AddrRecord {
        key: other,
        ..s.record.clone()
    }
    .sign(&SecretKey::from_seed([8; 32]));
    relabelled.record.key = me;
    assert_eq!(relabelled.check(&me, 1), Err(AddrRecordError::BadSignature));
    // Every field is covered.
    let mut t = s.clone();
    t.record.seq += 1;
    assert_eq!(t.check(&me, 1), Err(AddrRecordError::BadSignature));
    let mut t = s.clone();
    t.record.expiry -= 1;
    assert_eq!(t.check(&me, 1), Err(AddrRecordError::BadSignature));
    let mut t = s.clone();
    t.record.addrs[0] = "1.2.3.5:258".parse().unwrap();
    assert_eq!(t.check(&me, 1), Err(AddrRecordError::BadSignature));
    // The record domain is its own: the same bytes signed bare do not verify.
    let mut bare = s.clone();
    bare.sig = key().sign(&s.encode()[..s.encode().len() - 65]);
    assert_eq!(bare.check(&me, 1), Err(AddrRecordError::BadSignature));
}

#[test]
fn unspecified_addresses_take_the_source_ip_or_are_dropped() {
    let r = AddrRecord {
        key: key().peer_id(),
        seq: 1,
        addrs: vec![
            "0.0.0.0:7".parse().unwrap(),
            "10.0.0.1:7".parse().unwrap(),
            "[::]:8".parse().unwrap(),
        ],
        expiry: 5,
    };
    assert_eq!(r.dial_addrs(None), vec!["10.0.0.1:7".parse().unwrap()]);
    assert_eq!(
        r.dial_addrs(Some("10.0.0.1".parse().unwrap())),
        vec![
            "10.0.0.1:7".parse().unwrap(),
            "10.0.0.1:8".parse::<SocketAddr>().unwrap()
        ]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn records_round_trip_and_verify(s in common::any_addr_record(MAX_ADDRS)) {
        let bytes = s.encode();
        prop_assert!(bytes.len() <= MAX_ENCODED);
        let back = SignedAddrRecord::decode(&bytes).unwrap();
        prop_assert!(back.verify());
        prop_assert_eq!(back, s);
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1200), now in any::<u64>()) {
        if let Ok(s) = SignedAddrRecord::decode(&bytes) {
            let _ = s.check(&s.record.key, now);
            let _ = s.record.dial_addrs(None);
        }
    }

    #[test]
    fn mutated_records_never_panic_and_never_pass(s in common::any_addr_record(MAX_ADDRS), idx in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = s.encode();
        let i = idx % bytes.len();
        let changed = bytes[i] != byte;
        bytes[i] = byte;
        if let Ok(m) = SignedAddrRecord::decode(&bytes)
            && changed
            && m != s
        {
            prop_assert!(!m.verify() || m.record.key != s.record.key);
        }
    }
}
