//! Strategies shared by the codec tests.

use proptest::prelude::*;
use proto::SecretKey;
use proto::addr_record::{AddrRecord, SignedAddrRecord};

/// A validly signed address record of up to `max_addrs` addresses, any seq and expiry.
pub fn any_addr_record(max_addrs: usize) -> impl Strategy<Value = SignedAddrRecord> {
    (
        any::<[u8; 32]>(),
        any::<u64>(),
        proptest::collection::vec(any::<std::net::SocketAddr>(), 0..=max_addrs),
        any::<u64>(),
    )
        .prop_map(|(seed, seq, addrs, expiry)| {
            let k = SecretKey::from_seed(seed);
            AddrRecord {
                key: k.peer_id(),
                seq,
                addrs,
                expiry,
            }
            .sign(&k)
        })
}
