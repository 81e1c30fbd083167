//! Our signed address record as the DHT value, and a value found there as a peer's checked
//! record, handed to the peer table.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use proto::addr_record::{AddrRecord, SignedAddrRecord};
use proto::api::PeerSource;
use proto::{PeerId, SecretKey};

use super::item::ItemError;
use crate::node::Node;
use crate::peers::Source;

/// The record published for us: our current record (renewed by the node when due), or,
/// when it holds an unspecified IP (p2pd listening on every interface) and the DHT told us
/// our public IPv4 address, a copy with that address in its place. A DHT lookup has no
/// source IP to fill the unspecified one in, so without it the record would give nothing to
/// dial. The copy is signed once per record and address, with a seq of its own above the
/// record's; `made` keeps it.
pub(super) fn own(
    node: &Node,
    key: &SecretKey,
    public_ip: Option<Ipv4Addr>,
    made: &mut Option<(u64, Ipv4Addr, SignedAddrRecord)>,
) -> SignedAddrRecord {
    let current = node.addr_record();
    let Some(ip) = public_ip.filter(|_| has_unspecified(&current)) else {
        return current;
    };
    if let Some((base, at, copy)) = made.as_ref()
        && *base == current.record.seq
        && *at == ip
    {
        return copy.clone();
    }
    let copy = with_ip(&current, ip, node.next_seq()).sign(key);
    *made = Some((current.record.seq, ip, copy.clone()));
    copy
}

fn has_unspecified(record: &SignedAddrRecord) -> bool {
    record.record.addrs.iter().any(|a| a.ip().is_unspecified())
}

/// `record`'s fields at `seq`, with an unspecified IPv4 address replaced by `ip`.
fn with_ip(record: &SignedAddrRecord, ip: Ipv4Addr, seq: u64) -> AddrRecord {
    let mut copy = record.record.clone();
    copy.seq = seq;
    for a in &mut copy.addrs {
        if a.ip() == IpAddr::V4(Ipv4Addr::UNSPECIFIED) {
            a.set_ip(IpAddr::V4(ip));
        }
    }
    copy
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

    #[test]
    fn an_unspecified_address_takes_the_public_one_at_a_higher_seq() {
        let bob = SecretKey::from_seed([2; 32]);
        let mut signed = record(&bob, 5, NOW + 3600);
        signed.record.addrs = vec![
            "0.0.0.0:4000".parse().unwrap(),
            "[::1]:4001".parse().unwrap(),
        ];
        assert!(has_unspecified(&signed));
        let copy = with_ip(&signed, Ipv4Addr::new(203, 0, 113, 7), 6).sign(&bob);
        assert_eq!(
            copy.record.addrs,
            [
                "203.0.113.7:4000".parse::<SocketAddr>().unwrap(),
                "[::1]:4001".parse().unwrap()
            ]
        );
        assert_eq!((copy.record.seq, copy.record.expiry), (6, NOW + 3600));
        assert_eq!(copy.check(&bob.peer_id(), NOW), Ok(()));
        assert!(!has_unspecified(&copy));
    }
}
