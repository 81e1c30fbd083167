//! This daemon's own signed address record, as every source publishes it: our key, the
//! peer-link listen address (an unspecified IP left for the source to fill: a tracker fills
//! it with the address it sees us from, the LAN with the announcing interface's), a seq from
//! the one counter our key signs with (unique and increasing across restarts: at least the
//! time in ms), and an expiry [`LIFETIME`] ahead, renewed once less than [`RENEW_BEFORE`]
//! is left.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use proto::SecretKey;
use proto::addr_record::{AddrRecord, SignedAddrRecord};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::node::Node;

/// How long a record we sign stays valid.
pub const LIFETIME: Duration = Duration::from_secs(2 * 3600);
/// A record with less than this left is signed again (with a new seq) when next asked for.
pub const RENEW_BEFORE: Duration = Duration::from_secs(3600);
/// How often the daemon looks whether its record is due for renewal.
const CHECK_EVERY: Duration = Duration::from_secs(600);

/// The daemon's own record and its watchers.
pub struct OwnRecord {
    key: SecretKey,
    addrs: Vec<SocketAddr>,
    current: Mutex<SignedAddrRecord>,
    tx: watch::Sender<SignedAddrRecord>,
}

impl OwnRecord {
    /// A first record for `key` at `addrs`, with `seq`, signed at `now` (Unix seconds).
    pub fn new(key: SecretKey, addrs: Vec<SocketAddr>, seq: u64, now: u64) -> Self {
        let first = sign(&key, &addrs, seq, now);
        let (tx, _) = watch::channel(first.clone());
        Self {
            key,
            addrs,
            current: Mutex::new(first),
            tx,
        }
    }

    /// The record now: signed again with `next_seq()` first when less than
    /// [`RENEW_BEFORE`] of it is left at `now`, and then sent to the watchers.
    pub fn get(&self, next_seq: impl FnOnce() -> u64, now: u64) -> SignedAddrRecord {
        let mut cur = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if cur.record.expiry.saturating_sub(now) < RENEW_BEFORE.as_secs() {
            *cur = sign(&self.key, &self.addrs, next_seq(), now);
            self.tx.send_replace(cur.clone());
        }
        cur.clone()
    }

    /// Signs the record again now with `seq`, sends it to the watchers and returns it (a
    /// tracker registration takes a fresh seq and carries the record of that seq).
    pub fn renew(&self, seq: u64, now: u64) -> SignedAddrRecord {
        let mut cur = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        *cur = sign(&self.key, &self.addrs, seq, now);
        self.tx.send_replace(cur.clone());
        cur.clone()
    }

    /// A receiver that sees each new record (marked changed when one is signed).
    pub fn subscribe(&self) -> watch::Receiver<SignedAddrRecord> {
        self.tx.subscribe()
    }
}

fn sign(key: &SecretKey, addrs: &[SocketAddr], seq: u64, now: u64) -> SignedAddrRecord {
    AddrRecord {
        key: key.peer_id(),
        seq,
        addrs: addrs.to_vec(),
        expiry: now + LIFETIME.as_secs(),
    }
    .sign(key)
}

/// Renews the daemon's record when due, so watchers always hold one valid for at least
/// [`RENEW_BEFORE`] less [`CHECK_EVERY`]. Runs until cancelled.
pub async fn keep_fresh(node: Arc<Node>, cancel: CancellationToken) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(CHECK_EVERY) => {}
        }
        node.addr_record();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewed_with_a_higher_seq_when_due_and_watchers_see_it() {
        let key = SecretKey::from_seed([3; 32]);
        let addrs = vec!["0.0.0.0:7071".parse().unwrap()];
        let own = OwnRecord::new(key.clone(), addrs.clone(), 10, 1000);
        let mut rx = own.subscribe();
        let first = own.get(|| unreachable!("not due yet"), 1000 + 60);
        assert_eq!(first.check(&key.peer_id(), 1060), Ok(()));
        assert_eq!((first.record.seq, first.record.addrs), (10, addrs));
        assert_eq!(first.record.expiry, 1000 + LIFETIME.as_secs());
        assert!(!rx.has_changed().unwrap());
        let later = 1000 + LIFETIME.as_secs() - RENEW_BEFORE.as_secs() + 1;
        let second = own.get(|| 11, later);
        assert_eq!(second.record.seq, 11);
        assert_eq!(second.check(&key.peer_id(), later), Ok(()));
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), second);
    }
}
