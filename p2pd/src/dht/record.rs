//! Our address record as the DHT value, and a found value as a peer's checked record.
//! (Stand-in until the shared address record lands.)

use std::net::SocketAddr;

use proto::{PeerId, SecretKey};

use super::item::ItemError;
use crate::node::Node;

/// A checked record found in the DHT.
pub(super) type Found = Vec<u8>;

/// Our current record: its encoding and seq.
pub(super) fn own(_node: &Node, _key: &SecretKey) -> Option<(Vec<u8>, u64)> {
    None
}

/// The record in `value` (the item's, at `seq`), if it is a valid record of `peer`'s.
pub(super) fn check(_peer: PeerId, value: &[u8], _seq: i64) -> Result<Found, ItemError> {
    Ok(value.to_vec())
}

/// Feeds a found record to the peer table; the addresses to dial.
pub(super) fn take(_node: &Node, _found: Found) -> Option<Vec<SocketAddr>> {
    None
}
