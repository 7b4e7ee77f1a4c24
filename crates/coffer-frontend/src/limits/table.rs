//! A fixed-size table of token buckets: memory fixed at construction, a few slots examined
//! per request, whatever the traffic.
//!
//! Each bucket is one timestamp (the generic cell rate algorithm): `tat`, the time at which
//! the bucket will be full again. A request is allowed while `tat - now` leaves room for one
//! more token, and then pushes `tat` one refill interval later. A bucket whose `tat` is past
//! holds a full burst, exactly as a bucket never seen.
//!
//! The table is set-associative: a key's keyed hash picks a shard (its own lock) and a set
//! of [`WAYS`] slots within it; the key lives in one of those slots or nowhere. A key not in
//! its set takes the slot whose bucket is fullest (smallest `tat`). Empty slots and refilled
//! buckets go first, and forgetting those loses nothing; a partly drained bucket goes only
//! when all the other buckets of its set are emptier still. The hash key is random per
//! process, so nobody outside can tell which keys share a set.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Slots a key may occupy, all examined on each request.
pub(super) const WAYS: usize = 8;
/// Independent locks per table, so that requests for different keys rarely wait on each other.
const SHARDS: usize = 16;

/// `burst` requests at once, then `per_minute`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Rate {
    pub burst: u32,
    pub per_minute: u32,
}

impl Rate {
    /// Microseconds to earn one token back.
    fn interval_us(self) -> u64 {
        60_000_000 / u64::from(self.per_minute.max(1))
    }

    /// How far ahead of now `tat` may be while one more request is still allowed.
    fn tolerance_us(self) -> u64 {
        u64::from(self.burst.max(1) - 1) * self.interval_us()
    }
}

/// A key's hash (0 in an empty slot) and its bucket's full-again time in microseconds
/// since the table's origin (0 in an empty slot: full, like a bucket never seen).
#[derive(Clone, Copy, Default)]
struct Slot {
    tag: u64,
    tat: u64,
}

pub(super) struct Table {
    rate: Rate,
    hasher: RandomState,
    origin: Instant,
    sets_per_shard: usize,
    shards: Box<[Mutex<Box<[Slot]>>]>,
    /// Slots examined, so that tests can count the work a request costs.
    #[cfg(test)]
    probes: std::sync::atomic::AtomicUsize,
}

impl Table {
    /// A table of at least `slots` buckets (rounded up to whole sets), refilling at `rate`.
    /// Times passed to [`Table::take`] are measured from `origin`.
    pub fn new(rate: Rate, slots: usize, origin: Instant) -> Table {
        let sets_per_shard = slots.div_ceil(SHARDS * WAYS).max(1);
        let shards = (0..SHARDS)
            .map(|_| Mutex::new(vec![Slot::default(); sets_per_shard * WAYS].into_boxed_slice()))
            .collect();
        Table {
            rate,
            // std's keyed SipHash: keys from the operating system's randomness, different
            // for every table.
            hasher: RandomState::new(),
            origin,
            sets_per_shard,
            shards,
            #[cfg(test)]
            probes: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// How many buckets the table holds at most.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        SHARDS * self.sets_per_shard * WAYS
    }

    /// Takes one token from `key`'s bucket, or returns how long until one is available.
    pub fn take<K: Hash + ?Sized>(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let tag = self.hasher.hash_one(key);
        // High bits choose the shard, low bits the set: independent parts of one hash.
        let shard = &self.shards[(tag >> 56) as usize % SHARDS];
        let set = (tag as usize) % self.sets_per_shard;
        let now = self.micros(now);

        // The table holds plain numbers, consistent after every statement: a panic
        // elsewhere while the lock was held leaves nothing to repair.
        let mut slots = shard.lock().unwrap_or_else(PoisonError::into_inner);
        let ways = &mut slots[set * WAYS..(set + 1) * WAYS];
        let mut fullest = 0;
        let mut found = None;
        for (i, slot) in ways.iter().enumerate() {
            if slot.tag == tag {
                found = Some(i);
                break;
            }
            if slot.tat < ways[fullest].tat {
                fullest = i;
            }
        }
        #[cfg(test)]
        self.probes.fetch_add(
            found.map_or(WAYS, |i| i + 1),
            std::sync::atomic::Ordering::Relaxed,
        );
        let slot = match found {
            Some(i) => &mut ways[i],
            None => {
                ways[fullest] = Slot { tag, tat: 0 };
                &mut ways[fullest]
            }
        };

        let tat = slot.tat.max(now);
        let ahead = tat - now;
        let tolerance = self.rate.tolerance_us();
        if ahead > tolerance {
            return Err(Duration::from_micros(ahead - tolerance));
        }
        slot.tat = tat.saturating_add(self.rate.interval_us());
        Ok(())
    }

    fn micros(&self, t: Instant) -> u64 {
        let since = t.saturating_duration_since(self.origin).as_micros();
        u64::try_from(since).unwrap_or(u64::MAX)
    }

    /// Slots holding a bucket that is not full at `now` (work proportional to the table:
    /// for tests only).
    #[cfg(test)]
    pub fn draining(&self, now: Instant) -> usize {
        let now = self.micros(now);
        self.shards
            .iter()
            .map(|s| {
                let slots = s.lock().unwrap_or_else(PoisonError::into_inner);
                slots.iter().filter(|slot| slot.tat > now).count()
            })
            .sum()
    }

    /// Slots examined so far.
    #[cfg(test)]
    pub fn probes(&self) -> usize {
        self.probes.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE_THEN_ONE_A_MINUTE: Rate = Rate {
        burst: 5,
        per_minute: 1,
    };

    #[test]
    fn a_burst_then_one_per_interval() {
        let t0 = Instant::now();
        let table = Table::new(FIVE_THEN_ONE_A_MINUTE, 1024, t0);
        for _ in 0..5 {
            assert_eq!(table.take("k", t0), Ok(()));
        }
        assert_eq!(table.take("k", t0), Err(Duration::from_secs(60)));
        // Refused requests do not push the wait further.
        assert_eq!(table.take("k", t0), Err(Duration::from_secs(60)));
        let later = t0 + Duration::from_secs(45);
        assert_eq!(table.take("k", later), Err(Duration::from_secs(15)));
        let t1 = t0 + Duration::from_secs(60);
        assert_eq!(table.take("k", t1), Ok(()));
        assert!(table.take("k", t1).is_err());
        // A long pause refills the burst and no more.
        let t2 = t1 + Duration::from_secs(3600);
        let allowed = (0..20).filter(|_| table.take("k", t2).is_ok()).count();
        assert_eq!(allowed, 5);
        // Other keys are untouched.
        assert_eq!(table.take("other", t0), Ok(()));
    }

    #[test]
    fn memory_and_work_stay_fixed_under_a_flood_of_keys() {
        let t0 = Instant::now();
        let table = Table::new(FIVE_THEN_ONE_A_MINUTE, 4096, t0);
        let capacity = table.capacity();
        assert_eq!(capacity, 4096);
        for i in 0..100_000u32 {
            let before = table.probes();
            assert_eq!(table.take(&i, t0), Ok(()), "a new key holds a full burst");
            assert!(table.probes() - before <= WAYS);
        }
        assert!(table.draining(t0) <= capacity);
    }

    #[test]
    fn a_flood_of_fresh_keys_does_not_evict_a_drained_bucket() {
        let t0 = Instant::now();
        let table = Table::new(FIVE_THEN_ONE_A_MINUTE, 4096, t0);
        while table.take("drained", t0).is_ok() {}
        // 25 times the table's size in fresh keys, each with one token taken: their
        // buckets are fuller than the drained one, so they are the ones evicted.
        for i in 0..100_000u32 {
            let _ = table.take(&i, t0);
        }
        assert!(table.take("drained", t0).is_err());
    }

    #[test]
    fn an_evicted_bucket_is_forgotten_and_refills() {
        let t0 = Instant::now();
        let table = Table::new(FIVE_THEN_ONE_A_MINUTE, 1, t0);
        let capacity = table.capacity() as u32;
        assert_eq!(capacity as usize, SHARDS * WAYS);
        // Four times as many drained buckets as the table holds.
        for key in 0..capacity * 4 {
            while table.take(&key, t0).is_ok() {}
        }
        assert!(table.draining(t0) <= table.capacity());
        // At most `capacity` of them are remembered; the others start again full.
        let refused = (0..capacity * 4)
            .filter(|key| table.take(key, t0).is_err())
            .count();
        assert!(refused <= table.capacity(), "{refused}");
        assert!(refused > 0);
    }

    #[test]
    fn keys_are_hashed_with_a_random_key() {
        let t0 = Instant::now();
        let a = Table::new(FIVE_THEN_ONE_A_MINUTE, 1, t0);
        let b = Table::new(FIVE_THEN_ONE_A_MINUTE, 1, t0);
        let same = (0..64u32)
            .filter(|i| a.hasher.hash_one(i) == b.hasher.hash_one(i))
            .count();
        assert_eq!(same, 0);
    }
}
