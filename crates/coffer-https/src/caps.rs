//! Connection caps: a global one and one per client address, checked at accept time so that
//! a connection over a cap is closed before any TLS work.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Whom a connection counts against: an IPv4 address, or an IPv6 /64 (one customer usually
/// holds a whole /64, so counting single IPv6 addresses would be no cap at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AddressKey {
    V4(u32),
    V6Prefix(u64),
}

impl AddressKey {
    pub(crate) fn of(ip: IpAddr) -> Self {
        // An IPv4 client on a dual-stack socket arrives as ::ffff:a.b.c.d.
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::V4(u32::from(v4)),
            IpAddr::V6(v6) => Self::V6Prefix((u128::from(v6) >> 64) as u64),
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_address: HashMap<AddressKey, usize>,
}

/// Open connections, counted globally and per address.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionCaps {
    max_total: usize,
    max_per_address: usize,
    counts: Arc<Mutex<Counts>>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OverCap {
    Total,
    Address,
}

impl ConnectionCaps {
    pub(crate) fn new(max_total: usize, max_per_address: usize) -> Self {
        Self {
            max_total,
            // A cap of 0 would refuse everyone; it can only be a mistake.
            max_per_address: max_per_address.max(1),
            counts: Arc::default(),
        }
    }

    /// Counts a connection from `ip`, or refuses it; the count lasts as long as the slot.
    pub(crate) fn admit(&self, ip: IpAddr) -> Result<Slot, OverCap> {
        let key = AddressKey::of(ip);
        // The counts stay consistent whatever panicked while holding the lock: each update
        // is a single increment or decrement.
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if counts.total >= self.max_total {
            return Err(OverCap::Total);
        }
        let here = counts.by_address.entry(key).or_insert(0);
        if *here >= self.max_per_address {
            return Err(OverCap::Address);
        }
        *here += 1;
        counts.total += 1;
        Ok(Slot {
            key,
            counts: self.counts.clone(),
        })
    }

    #[cfg(test)]
    fn total(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

/// One admitted connection; dropping it frees its place under both caps.
#[derive(Debug)]
pub(crate) struct Slot {
    key: AddressKey,
    counts: Arc<Mutex<Counts>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(here) = counts.by_address.get_mut(&self.key) {
            *here = here.saturating_sub(1);
            if *here == 0 {
                counts.by_address.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_is_keyed_by_its_64_prefix() {
        assert_eq!(
            AddressKey::of(ip("2001:db8:1:2::1")),
            AddressKey::of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_ne!(
            AddressKey::of(ip("2001:db8:1:2::1")),
            AddressKey::of(ip("2001:db8:1:3::1"))
        );
    }

    #[test]
    fn mapped_ipv4_is_ipv4() {
        assert_eq!(
            AddressKey::of(ip("::ffff:192.0.2.7")),
            AddressKey::of(ip("192.0.2.7"))
        );
        assert_ne!(
            AddressKey::of(ip("192.0.2.7")),
            AddressKey::of(ip("192.0.2.8"))
        );
    }

    #[test]
    fn caps_count_and_release() {
        let caps = ConnectionCaps::new(3, 2);
        let a1 = caps.admit(ip("10.0.0.1")).unwrap();
        let _a2 = caps.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(caps.admit(ip("10.0.0.1")).unwrap_err(), OverCap::Address);
        let _b1 = caps.admit(ip("10.0.0.2")).unwrap();
        assert_eq!(caps.admit(ip("10.0.0.3")).unwrap_err(), OverCap::Total);
        drop(a1);
        assert_eq!(caps.total(), 2);
        let _a3 = caps.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(caps.total(), 3);
    }

    #[test]
    fn one_v6_prefix_shares_one_cap() {
        let caps = ConnectionCaps::new(100, 1);
        let _first = caps.admit(ip("2001:db8::1")).unwrap();
        assert_eq!(caps.admit(ip("2001:db8::2")).unwrap_err(), OverCap::Address);
        assert!(caps.admit(ip("2001:db8:0:1::1")).is_ok());
    }
}
