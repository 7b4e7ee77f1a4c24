//! Per-account and per-address rate limits (token buckets in memory).
//!
//! They slow down code guessing and request floods; the vault's guess budget, not these
//! limits, is what bounds password guesses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// A bucket of `burst` tokens refilled at `per_minute`.
#[derive(Clone, Copy)]
struct Rate {
    burst: f64,
    per_minute: f64,
}

const CODES_PER_ACCOUNT: Rate = Rate {
    burst: 5.0,
    per_minute: 1.0,
};
const CODES_PER_ADDRESS: Rate = Rate {
    burst: 20.0,
    per_minute: 10.0,
};
const ATTEMPTS_PER_ACCOUNT: Rate = Rate {
    burst: 30.0,
    per_minute: 30.0,
};
const ATTEMPTS_PER_ADDRESS: Rate = Rate {
    burst: 300.0,
    per_minute: 600.0,
};
#[cfg(test)]
static SCANNED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// Buckets kept before idle ones are dropped.
const MAX_BUCKETS: usize = 100_000;

pub struct RateLimits {
    enabled: bool,
    buckets: Mutex<HashMap<(u8, String), (f64, Instant)>>,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits::new(true)
    }
}

impl RateLimits {
    /// `enabled: false` allows everything (for capacity benchmarks only).
    pub fn new(enabled: bool) -> Self {
        RateLimits {
            enabled,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn take(&self, kind: u8, key: String, rate: Rate) -> bool {
        if !self.enabled {
            return true;
        }
        let Ok(mut buckets) = self.buckets.lock() else {
            return false;
        };
        let now = Instant::now();
        if buckets.len() > MAX_BUCKETS {
            // Forget full buckets: they would allow a request anyway.
            buckets.retain(|(k, _), (tokens, at)| {
                #[cfg(test)]
                SCANNED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let r = rate_of(*k);
                *tokens + at.elapsed().as_secs_f64() * r.per_minute / 60.0 < r.burst
            });
        }
        let (tokens, at) = buckets.entry((kind, key)).or_insert((rate.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate.per_minute / 60.0)
            .min(rate.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// A verification code request.
    pub fn allow_code(&self, account: &str, addr: IpAddr) -> bool {
        self.take(0, account.to_string(), CODES_PER_ACCOUNT)
            && self.take(1, addr.to_string(), CODES_PER_ADDRESS)
    }

    /// A code check or a vault request.
    pub fn allow_attempt(&self, account: &str, addr: IpAddr) -> bool {
        self.take(2, account.to_string(), ATTEMPTS_PER_ACCOUNT)
            && self.take(3, addr.to_string(), ATTEMPTS_PER_ADDRESS)
    }
}

fn rate_of(kind: u8) -> Rate {
    match kind {
        0 => CODES_PER_ACCOUNT,
        1 => CODES_PER_ADDRESS,
        2 => ATTEMPTS_PER_ACCOUNT,
        _ => ATTEMPTS_PER_ADDRESS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_are_allowed_then_refused() {
        let l = RateLimits::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let allowed = (0..20).filter(|_| l.allow_code("alice", ip)).count();
        assert_eq!(allowed, 5);
        // Another account from the same address still has its own budget.
        assert!(l.allow_code("bob", ip));
    }

    // Attacks found in review, written against this limiter before it was replaced.

    #[test]
    fn attack_one_address_creates_unbounded_buckets_and_every_request_scans_them() {
        let l = RateLimits::default();
        let attacker: IpAddr = "203.0.113.7".parse().unwrap();
        // The per-address limit refuses the attacker after 20 requests, yet every request
        // still leaves a bucket for its id behind.
        let refused = (0..MAX_BUCKETS + 1_000)
            .filter(|i| !l.allow_code(&format!("id-{i}"), attacker))
            .count();
        let count = l.buckets.lock().unwrap().len();
        let before = SCANNED.load(std::sync::atomic::Ordering::Relaxed);
        let _ = l.allow_code("alice", "198.51.100.1".parse().unwrap());
        let scanned = SCANNED.load(std::sync::atomic::Ordering::Relaxed) - before;
        assert!(
            count <= MAX_BUCKETS && scanned < 100,
            "{count} buckets from one address ({refused} of its requests were refused); \
             one more request from another address scanned {scanned} buckets"
        );
    }

    #[test]
    fn attack_wrong_codes_lock_the_victim_out_of_the_vault() {
        let l = RateLimits::default();
        let attacker: IpAddr = "203.0.113.7".parse().unwrap();
        let victim: IpAddr = "198.51.100.1".parse().unwrap();
        for _ in 0..100 {
            l.allow_attempt("victim", attacker); // a wrong code check
        }
        assert!(
            l.allow_attempt("victim", victim), // the victim's vault call
            "the victim's vault call is refused after wrong codes from elsewhere"
        );
    }

    #[test]
    fn attack_one_ipv6_host_rotates_addresses() {
        let l = RateLimits::default();
        let allowed = (0..100u32)
            .filter(|i| {
                let ip: IpAddr = format!("2001:db8:0:1::{i:x}").parse().unwrap();
                l.allow_code(&format!("id-{i}"), ip)
            })
            .count();
        assert!(allowed <= 20, "{allowed} code requests from one /64");
    }
}
