//! Caps on connections, in total and per source (one IP address, or with
//! [`ConnLimiter::per_prefix`] one IPv4 address or IPv6 /64): a connection takes a
//! [`ConnSlot`] from a [`ConnLimiter`] when accepted and gives it back when dropped.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

/// Counts open connections; [`ConnLimiter::try_acquire`] refuses over a cap.
#[derive(Debug, Clone)]
pub struct ConnLimiter {
    inner: Arc<Mutex<ConnCounts>>,
    max_total: usize,
    max_per_ip: usize,
    by_prefix: bool,
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
    /// Connections from this IP (or prefix).
    PerIp,
}

/// The source a per-prefix cap counts `ip` under: an IPv4 address itself (also when it
/// arrives IPv4-mapped on an IPv6 socket), an IPv6 address's /64 (one subscriber's network;
/// its 2^64 addresses are one user).
pub fn source_prefix(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }
}

impl ConnLimiter {
    /// A limiter allowing `max_total` connections, at most `max_per_ip` from one IP.
    pub fn new(max_total: usize, max_per_ip: usize) -> Self {
        Self {
            inner: Arc::default(),
            max_total,
            max_per_ip,
            by_prefix: false,
        }
    }

    /// Like [`ConnLimiter::new`], counting each source by [`source_prefix`]: at most
    /// `max_per_prefix` from one IPv4 address or one IPv6 /64.
    pub fn per_prefix(max_total: usize, max_per_prefix: usize) -> Self {
        Self {
            by_prefix: true,
            ..Self::new(max_total, max_per_prefix)
        }
    }

    /// Takes a slot for a connection from `ip`, unless a cap is reached.
    pub fn try_acquire(&self, ip: IpAddr) -> Result<ConnSlot, Over> {
        self.acquire(ip, true)
    }

    /// Takes a slot for a connection from `ip` under the per-source cap only: for a caller
    /// that, at the total cap, has just closed another connection to make room (the total
    /// is over the cap until that one's slot is dropped).
    pub fn try_acquire_over_total(&self, ip: IpAddr) -> Result<ConnSlot, Over> {
        self.acquire(ip, false)
    }

    fn acquire(&self, ip: IpAddr, check_total: bool) -> Result<ConnSlot, Over> {
        let ip = if self.by_prefix {
            source_prefix(ip)
        } else {
            ip
        };
        let mut c = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if check_total && c.total >= self.max_total {
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

    #[test]
    fn prefixes_group_an_ipv6_64_and_unmap_ipv4() {
        let p = |s: &str| source_prefix(s.parse().unwrap());
        assert_eq!(p("2001:db8:1:2:aaaa::1"), p("2001:db8:1:2:ffff:1:2:3"));
        assert_eq!(
            p("2001:db8:1:2::1"),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_ne!(p("2001:db8:1:2::1"), p("2001:db8:1:3::1"));
        assert_eq!(
            p("::ffff:192.0.2.1"),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
        assert_ne!(p("192.0.2.1"), p("192.0.2.2"));
    }

    #[test]
    fn a_per_prefix_limiter_caps_a_64_and_may_go_over_the_total() {
        let l = ConnLimiter::per_prefix(2, 2);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let _a = l.try_acquire(ip("2001:db8::1")).unwrap();
        let _b = l.try_acquire(ip("2001:db8::2")).unwrap();
        assert_eq!(l.try_acquire(ip("2001:db8::3")).unwrap_err(), Over::Total);
        assert_eq!(
            l.try_acquire_over_total(ip("2001:db8::3")).unwrap_err(),
            Over::PerIp
        );
        let _c = l.try_acquire_over_total(ip("2001:db8:0:1::1")).unwrap();
        assert_eq!(l.open(), 3);
        // The whole-IP limiter still counts addresses one by one.
        let w = ConnLimiter::new(9, 1);
        let _d = w.try_acquire(ip("2001:db8::1")).unwrap();
        assert!(w.try_acquire(ip("2001:db8::2")).is_ok());
    }
}
