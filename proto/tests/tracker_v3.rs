//! Version-3 tracker frames (lookups, paged lists, watches): pinned wire bytes and the caps
//! on key lists.

use bytes::BytesMut;
use proto::frame;
use proto::tracker::{
    LookupBy, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME, MAX_WATCH_KEYS, PeerEntry, PeerMsg, Record,
    Refusal, TrackerMsg,
};
use proto::{KeyBytes, PeerId, PeerName, SecretKey};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn enc<T: serde::Serialize>(m: &T) -> Vec<u8> {
    frame::encode(m, MAX_RESPONSE_FRAME).unwrap()
}

fn key(n: u8) -> PeerId {
    SecretKey::from_seed([n; 32]).peer_id()
}

/// The frame header and tag byte of `m`, then its body.
fn split(m: &impl serde::Serialize) -> (String, Vec<u8>) {
    let b = enc(m);
    (hex(&b[..5]), b[5..].to_vec())
}

#[test]
fn v3_peer_frames_have_stable_bytes() {
    let k = key(1);
    // Watch: tag 9, req varint, key count, 32 bytes per key.
    let (head, body) = split(&PeerMsg::Watch {
        req: 7,
        keys: vec![k.key_bytes()],
    });
    assert_eq!(head, "0000002309");
    assert_eq!(body[..2], [7, 1]);
    assert_eq!(&body[2..], k.as_bytes());
    assert_eq!(
        hex(&enc(&PeerMsg::Unwatch { keys: vec![] })),
        "000000020a00"
    );
    // Lookup: tag 11, req, variant 0 = name (length-prefixed), 1 = key.
    assert_eq!(
        hex(&enc(&PeerMsg::Lookup {
            req: 2,
            by: LookupBy::Name(PeerName::new("al").unwrap())
        })),
        "000000060b020002616c"
    );
    let (head, body) = split(&PeerMsg::Lookup {
        req: 2,
        by: LookupBy::Key(k),
    });
    assert_eq!(head, "000000230b");
    assert_eq!(body[..2], [2, 1]);
    assert_eq!(&body[2..], k.as_bytes());
    // ListPage: tag 12, req, cursor option, limit varint.
    assert_eq!(
        hex(&enc(&PeerMsg::ListPage {
            req: 1,
            after: None,
            limit: 300
        })),
        "000000050c0100ac02"
    );
    let (head, body) = split(&PeerMsg::ListPage {
        req: 1,
        after: Some(k),
        limit: 5,
    });
    assert_eq!(head, "000000240c");
    assert_eq!(body[..2], [1, 1]);
    assert_eq!(&body[2..34], k.as_bytes());
    assert_eq!(body[34..], [5]);
}

#[test]
fn v3_tracker_frames_have_stable_bytes() {
    assert_eq!(
        hex(&enc(&TrackerMsg::Found {
            req: 3,
            entry: None
        })),
        "000000030b0300"
    );
    assert_eq!(
        hex(&enc(&TrackerMsg::Page {
            req: 4,
            peers: vec![],
            next: None
        })),
        "000000040c040000"
    );
    let sk = SecretKey::from_seed([7; 32]);
    let entry = PeerEntry {
        signed: Record {
            name: PeerName::new("al").unwrap(),
            key: sk.peer_id(),
            addrs: vec![],
            seq: 1,
        }
        .sign(&sk),
        observed: "10.0.0.1".parse().unwrap(),
    };
    let joined = enc(&TrackerMsg::Joined(entry.clone()));
    // Found(Some) and Page carry the entry exactly as `Joined` does.
    let found = enc(&TrackerMsg::Found {
        req: 3,
        entry: Some(entry.clone()),
    });
    assert_eq!(found[4..7], [11, 3, 1]);
    assert_eq!(found[7..], joined[5..]);
    let page = enc(&TrackerMsg::Page {
        req: 4,
        peers: vec![entry],
        next: Some(sk.peer_id()),
    });
    assert_eq!(page[4..7], [12, 4, 1]);
    let n = joined.len() - 5;
    assert_eq!(page[7..7 + n], joined[5..]);
    assert_eq!(page[7 + n], 1);
    assert_eq!(&page[8 + n..], sk.peer_id().as_bytes());
    let refused = enc(&TrackerMsg::Refused {
        reason: Refusal::TooManyWatches,
        detail: String::new(),
    });
    assert_eq!(hex(&refused), "00000003020800");
}

#[test]
fn key_lists_are_capped_before_they_are_read() {
    let at_cap = PeerMsg::Watch {
        req: 1,
        keys: vec![key(1).key_bytes(); MAX_WATCH_KEYS],
    };
    let mut buf = BytesMut::from(&enc(&at_cap)[..]);
    assert_eq!(
        frame::decode::<PeerMsg>(&mut buf, MAX_REQUEST_FRAME).unwrap(),
        Some(at_cap)
    );
    for msg in [
        PeerMsg::Watch {
            req: 1,
            keys: vec![key(1).key_bytes(); MAX_WATCH_KEYS + 1],
        },
        PeerMsg::Unwatch {
            keys: vec![key(1).key_bytes(); MAX_WATCH_KEYS + 1],
        },
    ] {
        let mut buf = BytesMut::from(&enc(&msg)[..]);
        assert!(frame::decode::<PeerMsg>(&mut buf, MAX_REQUEST_FRAME).is_err());
    }
    // A count that claims more than the cap fails without waiting for the keys.
    let mut body = vec![9u8, 1, 0xff, 0xff, 0x03];
    body.extend_from_slice(key(1).as_bytes());
    assert!(frame::decode_payload::<PeerMsg>(&body).is_err());
}

#[test]
fn watched_keys_are_bytes_not_checked_points() {
    // 32 bytes that are no Ed25519 point: a key of a Lookup is refused, a watched key is
    // decoded as it is (it can only fail to match).
    let bad = (0..=255u8)
        .map(|b| [b; 32])
        .find(|b| PeerId::from_bytes(*b).is_err())
        .unwrap();
    let watch = PeerMsg::Watch {
        req: 3,
        keys: vec![KeyBytes(bad), key(2).key_bytes()],
    };
    let mut buf = BytesMut::from(&enc(&watch)[..]);
    assert_eq!(
        frame::decode::<PeerMsg>(&mut buf, MAX_REQUEST_FRAME).unwrap(),
        Some(watch)
    );
    let mut lookup = vec![11u8, 3, 1];
    lookup.extend_from_slice(&bad);
    assert!(frame::decode_payload::<PeerMsg>(&lookup).is_err());
    let mut good = vec![11u8, 3, 1];
    good.extend_from_slice(key(2).as_bytes());
    assert!(frame::decode_payload::<PeerMsg>(&good).is_ok());
}
