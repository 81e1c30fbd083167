//! What record-carrying sources (the LAN, the DHT, and a tracker's carried record) report: a
//! signed address record, checked here, with the name its sender claims.

use std::collections::BTreeSet;
use std::net::IpAddr;

use proto::PeerName;
use proto::addr_record::SignedAddrRecord;
use proto::api::Event;

use super::{PeerTable, Row, Source};

/// Peers online that no pin or tracker vouches for (met through the LAN or the DHT only):
/// past this many, records of keys never met are ignored, so a flood of fresh keys on the
/// LAN cannot grow the table (offline ones are capped with the other unpinned peers).
pub const UNVERIFIED_MAX: usize = 256;

impl PeerTable {
    /// `source` hands over `signed`, a peer's address record, which came from IP `from` (an
    /// unspecified address in the record takes it; `None` drops those), and the name the
    /// sender claims, if the source carries one. The single entry point for every source
    /// that carries address records.
    ///
    /// Ignored (returns `None`, changes nothing): our own key; a record that fails
    /// [`SignedAddrRecord::check`] at `now` (bad signature, expired, expiry too far ahead,
    /// too many addresses); a seq below the last one seen for that key from any source (a
    /// replay). The caller checks the record's key is the one it asked for, if it asked for
    /// one (a DHT lookup).
    ///
    /// Otherwise `source` sees the peer. Of the records seen for a key, the highest seq gives
    /// its addresses (one with no address usable from here changes none). A key already
    /// known keeps its name when a pin or a tracker bound it; an unbound one takes the
    /// claimed name. A key never met becomes a peer shown by its key and the claimed name,
    /// `verified: false` (a key never met with no claimed name is ignored: there is nothing
    /// to show it as). A claim of a name that a pin or a tracker binds to another key is
    /// recorded as a key conflict on that peer (one `link_error`), never adopted.
    ///
    /// Returns `peer_joined` when the peer comes online, `peer_updated` when its addresses
    /// or name changed, the conflict's `link_error`, or nothing.
    pub fn heard(
        &mut self,
        source: Source,
        signed: &SignedAddrRecord,
        from: Option<IpAddr>,
        claimed_name: Option<&PeerName>,
        now: u64,
    ) -> Option<Event> {
        let id = signed.record.key;
        if id == self.me || signed.check(&id, now).is_err() {
            return None;
        }
        let seq = signed.record.seq;
        let addrs = signed.record.dial_addrs(from);
        let claimed = claimed_name.filter(|n| !self.bound_elsewhere(n, id));
        if !self.rows.contains_key(&id) {
            let name = claimed_name?;
            let Some(name) = claimed else {
                return self.claim_conflict(name, id);
            };
            if self.unverified() >= UNVERIFIED_MAX {
                return None;
            }
            let mut row = Row::offline(name.clone(), now);
            row.addrs = addrs;
            row.seq = seq;
            row.sources = BTreeSet::from([source]);
            let info = Self::info(id, &row);
            self.rows.insert(id, row);
            return Some(Event::PeerJoined { peer: info });
        }
        let row = self.rows.get_mut(&id)?;
        if seq < row.seq {
            return None;
        }
        let mut changed = false;
        if (seq > row.seq || row.addrs.is_empty()) && !addrs.is_empty() && row.addrs != addrs {
            row.addrs = addrs;
            changed = true;
        }
        row.seq = seq;
        if !row.bound()
            && let Some(name) = claimed
            && row.name != *name
        {
            row.name = name.clone();
            changed = true;
        }
        let was_online = row.online();
        row.sources.insert(source);
        if !was_online {
            row.since = now;
            return Some(Event::PeerJoined {
                peer: Self::info(id, row),
            });
        }
        changed.then(|| Event::PeerUpdated {
            peer: Self::info(id, row),
        })
    }

    /// Whether a pin or a tracker binds `name` to a key other than `id`.
    pub(super) fn bound_elsewhere(&self, name: &PeerName, id: proto::PeerId) -> bool {
        self.rows
            .iter()
            .any(|(k, r)| *k != id && r.bound() && r.name == *name)
    }

    /// Peers online that neither a pin nor a tracker vouches for.
    fn unverified(&self) -> usize {
        self.rows
            .values()
            .filter(|r| !r.bound() && r.online())
            .count()
    }

    /// Key `claimer` claims `name`, which a pin or a tracker binds to another key: recorded
    /// on that peer, reported once per claiming key.
    fn claim_conflict(&mut self, name: &PeerName, claimer: proto::PeerId) -> Option<Event> {
        let (holder, row) = self
            .rows
            .iter_mut()
            .find(|(_, r)| r.bound() && r.name == *name)?;
        if row.claim_conflict == Some(claimer) {
            return None;
        }
        row.claim_conflict = Some(claimer);
        Some(Event::LinkError {
            peer: Some(*holder),
            detail: format!(
                "key {claimer} claims the name {:?}, which is bound to {holder}; ignoring the \
                 claim",
                name.as_str(),
            ),
        })
    }
}
