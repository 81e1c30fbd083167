//! The registry's rules, as a pure state machine: who owns which name, the last seq seen per
//! key, and which peers are live on which connection. No I/O: the server persists what
//! [`Registry::check`] says must be persisted, then [`Registry::apply`]s it.

use std::collections::HashMap;
use std::net::IpAddr;

use proto::tracker::{MAX_ADDRS, PeerEntry, Refusal, SignedRecord};
use proto::{PeerId, PeerName};

/// Identifies one tracker connection.
pub type ConnId = u64;

/// What a registration changes; produced by [`Registry::check`], consumed by
/// [`Registry::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The connection registering.
    pub conn: ConnId,
    /// The entry as served to others.
    pub entry: PeerEntry,
    /// A name bound to this key for the first time: persist before applying.
    pub new_binding: Option<(PeerName, PeerId)>,
}

/// The effect of an applied registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// True for a peer that was not live before (`Joined`), false for `Updated`.
    pub joined: bool,
    /// Another connection that held this key's live entry and must now be closed.
    pub displaced: Option<ConnId>,
}

/// A refusal with its human detail.
pub type Refused = (Refusal, String);

#[derive(Debug, Clone)]
struct Live {
    conn: ConnId,
    entry: PeerEntry,
}

/// Names, seqs and live peers.
#[derive(Debug, Default)]
pub struct Registry {
    names: HashMap<PeerName, PeerId>,
    seqs: HashMap<PeerId, u64>,
    live: HashMap<PeerId, Live>,
}

impl Registry {
    /// A registry that remembers `names` and `seqs` (loaded from disk).
    pub fn new(names: HashMap<PeerName, PeerId>, seqs: HashMap<PeerId, u64>) -> Self {
        Self {
            names,
            seqs,
            live: HashMap::new(),
        }
    }

    /// Checks a registration from connection `conn`, whose TLS key is `tls_key` and whose
    /// source IP is `observed`. Changes nothing.
    pub fn check(
        &self,
        conn: ConnId,
        tls_key: PeerId,
        observed: IpAddr,
        signed: SignedRecord,
    ) -> Result<Plan, Refused> {
        let rec = &signed.record;
        if rec.addrs.len() > MAX_ADDRS {
            return Err((
                Refusal::BadRecord,
                format!(
                    "{} addresses announced, at most {MAX_ADDRS}",
                    rec.addrs.len()
                ),
            ));
        }
        if rec.key != tls_key {
            return Err((
                Refusal::KeyMismatch,
                format!(
                    "record key {} differs from the TLS key {}",
                    rec.key.short(),
                    tls_key.short()
                ),
            ));
        }
        if !signed.verify() {
            return Err((
                Refusal::BadSignature,
                "record signature does not verify".into(),
            ));
        }
        let owner = self.names.get(&rec.name);
        if let Some(owner) = owner
            && *owner != rec.key
        {
            return Err((
                Refusal::NameTaken,
                format!(
                    "name {:?} is taken by another key ({})",
                    rec.name.as_str(),
                    owner.short()
                ),
            ));
        }
        if let Some(&last) = self.seqs.get(&rec.key)
            && rec.seq <= last
        {
            return Err((
                Refusal::StaleSeq,
                format!("seq {} is not above the last seen {last}", rec.seq),
            ));
        }
        let new_binding = owner.is_none().then(|| (rec.name.clone(), rec.key));
        Ok(Plan {
            conn,
            entry: PeerEntry { signed, observed },
            new_binding,
        })
    }

    /// Applies a checked plan.
    pub fn apply(&mut self, plan: Plan) -> Applied {
        let key = plan.entry.signed.record.key;
        if let Some((name, owner)) = plan.new_binding {
            self.names.insert(name, owner);
        }
        self.seqs.insert(key, plan.entry.signed.record.seq);
        let previous = self.live.insert(
            key,
            Live {
                conn: plan.conn,
                entry: plan.entry,
            },
        );
        Applied {
            joined: previous.is_none(),
            displaced: previous.map(|p| p.conn).filter(|&c| c != plan.conn),
        }
    }

    /// Connection `conn` closed. Returns the key that left, if it held a live entry.
    pub fn disconnect(&mut self, conn: ConnId, key: PeerId) -> Option<PeerId> {
        match self.live.get(&key) {
            Some(l) if l.conn == conn => {
                self.live.remove(&key);
                Some(key)
            }
            _ => None,
        }
    }

    /// Every live entry.
    pub fn entries(&self) -> Vec<PeerEntry> {
        self.live.values().map(|l| l.entry.clone()).collect()
    }

    /// Number of live peers.
    pub fn live_count(&self) -> usize {
        self.live.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::SecretKey;
    use proto::tracker::Record;

    fn key(n: u8) -> SecretKey {
        SecretKey::from_seed([n; 32])
    }
    fn rec(k: &SecretKey, name: &str, seq: u64) -> SignedRecord {
        Record {
            name: PeerName::new(name).unwrap(),
            key: k.peer_id(),
            addrs: vec!["0.0.0.0:4000".parse().unwrap()],
            seq,
        }
        .sign(k)
    }
    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn first_key_owns_the_name() {
        let mut r = Registry::default();
        let (a, b) = (key(1), key(2));
        let plan = r.check(1, a.peer_id(), IP, rec(&a, "alice", 1)).unwrap();
        assert!(plan.new_binding.is_some());
        assert!(r.apply(plan).joined);
        let err = r
            .check(2, b.peer_id(), IP, rec(&b, "alice", 1))
            .unwrap_err();
        assert_eq!(err.0, Refusal::NameTaken);
        // The owner may come back after disconnecting.
        assert_eq!(r.disconnect(1, a.peer_id()), Some(a.peer_id()));
        let plan = r.check(3, a.peer_id(), IP, rec(&a, "alice", 2)).unwrap();
        assert!(plan.new_binding.is_none());
        assert!(r.apply(plan).joined);
    }

    #[test]
    fn replays_and_forgeries_are_refused() {
        let mut r = Registry::default();
        let a = key(1);
        let p = r.check(1, a.peer_id(), IP, rec(&a, "alice", 5)).unwrap();
        r.apply(p);
        assert_eq!(
            r.check(1, a.peer_id(), IP, rec(&a, "alice", 5))
                .unwrap_err()
                .0,
            Refusal::StaleSeq
        );
        assert_eq!(
            r.check(1, a.peer_id(), IP, rec(&a, "alice", 4))
                .unwrap_err()
                .0,
            Refusal::StaleSeq
        );
        assert_eq!(
            r.check(1, key(9).peer_id(), IP, rec(&a, "alice", 6))
                .unwrap_err()
                .0,
            Refusal::KeyMismatch
        );
        let mut forged = rec(&a, "alice", 7);
        forged.record.seq = 8;
        assert_eq!(
            r.check(1, a.peer_id(), IP, forged).unwrap_err().0,
            Refusal::BadSignature
        );
    }

    #[test]
    fn a_new_connection_displaces_the_old_one() {
        let mut r = Registry::default();
        let a = key(1);
        let p = r.check(1, a.peer_id(), IP, rec(&a, "alice", 1)).unwrap();
        r.apply(p);
        let p = r.check(2, a.peer_id(), IP, rec(&a, "alice", 2)).unwrap();
        let applied = r.apply(p);
        assert!(!applied.joined);
        assert_eq!(applied.displaced, Some(1));
        // The displaced connection closing does not remove the new entry.
        assert_eq!(r.disconnect(1, a.peer_id()), None);
        assert_eq!(r.live_count(), 1);
    }

    #[test]
    fn entries_keep_the_signed_record_and_resolve_addresses() {
        let mut r = Registry::default();
        let a = key(1);
        let signed = rec(&a, "alice", 1);
        let p = r
            .check(1, a.peer_id(), "192.0.2.7".parse().unwrap(), signed.clone())
            .unwrap();
        r.apply(p);
        let e = &r.entries()[0];
        assert_eq!(e.signed, signed);
        assert!(e.signed.verify());
        assert_eq!(e.addrs(), vec!["192.0.2.7:4000".parse().unwrap()]);
    }
}
