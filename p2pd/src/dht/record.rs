//! Our signed address record as the DHT value, and a value found there as a peer's checked
//! record, handed to the peer table.

use std::net::SocketAddr;

use proto::PeerId;
use proto::addr_record::SignedAddrRecord;
use proto::api::PeerSource;

use super::item::ItemError;
use crate::node::Node;
use crate::peers::Source;

/// Our current record (renewed by the node when due): its encoding and seq.
pub(super) fn own(node: &Node) -> (Vec<u8>, u64) {
    let record = node.addr_record();
    (record.encode(), record.record.seq)
}

/// The record in `value`, the value of an item of `peer`'s at `seq`, if it is a valid
/// record of `peer`'s at `now`: it decodes, it is `peer`'s, its signature holds, it has not
/// expired, and its seq is the item's.
pub(super) fn check(
    peer: PeerId,
    value: &[u8],
    seq: i64,
    now: u64,
) -> Result<SignedAddrRecord, ItemError> {
    let record =
        SignedAddrRecord::decode(value).map_err(|e| ItemError::BadRecord(e.to_string()))?;
    record
        .check(&peer, now)
        .map_err(|e| ItemError::BadRecord(e.to_string()))?;
    if i64::try_from(record.record.seq).ok() != Some(seq) {
        return Err(ItemError::SeqMismatch {
            record: record.record.seq,
            item: seq,
        });
    }
    Ok(record)
}

/// Hands a checked record to the peer table as a `dht` sighting. The addresses to dial are
/// the table's for the peer once it took the record (a record below a seq already seen is
/// a replay and changes nothing, so nothing is dialled on its word).
pub(super) fn take(node: &Node, record: &SignedAddrRecord) -> Option<Vec<SocketAddr>> {
    let id = record.record.key;
    node.heard(Source::Dht, record, None, None);
    node.peer(id)
        .filter(|p| p.sources.contains(&PeerSource::Dht) && !p.addrs.is_empty())
        .map(|p| p.addrs)
}

#[cfg(test)]
mod tests {
    use proto::SecretKey;
    use proto::addr_record::AddrRecord;

    use super::*;

    const NOW: u64 = 1_000_000;

    fn record(key: &SecretKey, seq: u64, expiry: u64) -> SignedAddrRecord {
        AddrRecord {
            key: key.peer_id(),
            seq,
            addrs: vec!["127.0.0.1:4000".parse().unwrap()],
            expiry,
        }
        .sign(key)
    }

    #[test]
    fn a_record_maps_to_the_item_and_back() {
        let bob = SecretKey::from_seed([2; 32]);
        let signed = record(&bob, 42, NOW + 3600);
        let item = super::super::item::make(&bob, &signed.encode(), 42).unwrap();
        let value = super::super::item::value_of(&item, bob.peer_id()).unwrap();
        assert_eq!(
            check(bob.peer_id(), value, item.seq(), NOW).unwrap(),
            signed
        );
    }

    #[test]
    fn forged_expired_and_mismatched_records_are_refused() {
        let bob = SecretKey::from_seed([2; 32]);
        let carol = SecretKey::from_seed([3; 32]);
        // Carol's own valid record, stored under bob's key.
        let theirs = record(&carol, 5, NOW + 3600).encode();
        let e = check(bob.peer_id(), &theirs, 5, NOW).unwrap_err();
        assert!(matches!(e, ItemError::BadRecord(_)), "{e}");
        // Bob's key in the record, carol's signature.
        let mut forged = record(&bob, 5, NOW + 3600);
        forged.sig = record(&carol, 5, NOW + 3600).sig;
        let e = check(bob.peer_id(), &forged.encode(), 5, NOW).unwrap_err();
        assert!(e.to_string().contains("signature"), "{e}");
        // Expired.
        let old = record(&bob, 5, NOW - 1).encode();
        let e = check(bob.peer_id(), &old, 5, NOW).unwrap_err();
        assert!(e.to_string().contains("expired"), "{e}");
        // A seq other than the item's, and garbage.
        let fine = record(&bob, 5, NOW + 3600).encode();
        assert!(matches!(
            check(bob.peer_id(), &fine, 6, NOW),
            Err(ItemError::SeqMismatch { record: 5, item: 6 })
        ));
        assert!(check(bob.peer_id(), b"\xff\xff\xff", 5, NOW).is_err());
        assert!(check(bob.peer_id(), &[], 5, NOW).is_err());
    }
}
