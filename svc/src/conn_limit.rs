//! Caps on connections, in total and per source IP: a connection takes a [`ConnSlot`]
//! from a [`ConnLimiter`] when accepted and gives it back when dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Counts open connections; [`ConnLimiter::try_acquire`] refuses over a cap.
#[derive(Debug, Clone)]
pub struct ConnLimiter {
    inner: Arc<Mutex<ConnCounts>>,
    max_total: usize,
    max_per_ip: usize,
}

#[derive(Debug, Default)]
struct ConnCounts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Held by a connection; releases its slot when dropped.
#[derive(Debug)]
pub struct ConnSlot {
    inner: Arc<Mutex<ConnCounts>>,
    ip: IpAddr,
}

/// Which cap refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// All connections.
    Total,
    /// Connections from this IP.
    PerIp,
}

impl ConnLimiter {
    /// A limiter allowing `max_total` connections, at most `max_per_ip` from one IP.
    pub fn new(max_total: usize, max_per_ip: usize) -> Self {
        Self {
            inner: Arc::default(),
            max_total,
            max_per_ip,
        }
    }

    /// Takes a slot for a connection from `ip`, unless a cap is reached.
    pub fn try_acquire(&self, ip: IpAddr) -> Result<ConnSlot, Over> {
        let mut c = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if c.total >= self.max_total {
            return Err(Over::Total);
        }
        let n = c.per_ip.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return Err(Over::PerIp);
        }
        *n += 1;
        c.total += 1;
        Ok(ConnSlot {
            inner: self.inner.clone(),
            ip,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut c = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_and_slots_release() {
        let l = ConnLimiter::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = l.try_acquire(a).unwrap();
        let _s2 = l.try_acquire(a).unwrap();
        assert_eq!(l.try_acquire(a).unwrap_err(), Over::PerIp);
        let _s3 = l.try_acquire(b).unwrap();
        assert_eq!(l.try_acquire(b).unwrap_err(), Over::Total);
        assert_eq!(l.open(), 3);
        drop(s1);
        assert!(l.try_acquire(a).is_ok());
    }
}
