//! Connection caps (total, and per source: one IPv4 address or one IPv6 /64) and a
//! per-source registration rate limit. At the total cap the server evicts the longest-idle
//! registered connection (see [`crate::registry::Registry::idlest`]) before refusing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

pub use svc::conn_limit::{ConnLimiter, ConnSlot, Over, source_prefix};

/// Token buckets per source ([`source_prefix`]). Pure: the caller passes the time.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: HashMap<IpAddr, (f64, Instant)>,
}

impl RateLimiter {
    /// `rate` tokens per second, at most `burst` saved up.
    pub fn new(rate: f64, burst: u32) -> Self {
        Self {
            rate,
            burst: f64::from(burst),
            buckets: HashMap::new(),
        }
    }

    /// Spends one token of the bucket of `ip`'s source; false when it is empty.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.buckets.len() > 100_000 {
            self.prune(now);
        }
        let source = source_prefix(ip);
        let (tokens, last) = self.buckets.entry(source).or_insert((self.burst, now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * self.rate;
        *tokens = (*tokens + refill).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Forgets buckets that have refilled completely.
    fn prune(&mut self, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.retain(|_, (tokens, last)| {
            *tokens + now.saturating_duration_since(*last).as_secs_f64() * rate < burst
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn token_bucket_refills() {
        let mut r = RateLimiter::new(2.0, 2);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        assert!(r.allow(ip, t0));
        assert!(r.allow(ip, t0));
        assert!(!r.allow(ip, t0));
        assert!(r.allow(ip, t0 + Duration::from_millis(500)));
        assert!(!r.allow(ip, t0 + Duration::from_millis(500)));
    }

    #[test]
    fn one_ipv6_64_shares_one_bucket() {
        let mut r = RateLimiter::new(1.0, 2);
        let t0 = Instant::now();
        assert!(r.allow("2001:db8::1".parse().unwrap(), t0));
        assert!(r.allow("2001:db8::2".parse().unwrap(), t0));
        assert!(!r.allow("2001:db8::3".parse().unwrap(), t0));
        assert!(r.allow("2001:db8:0:1::1".parse().unwrap(), t0));
    }
}
