//! Bounds on what Coffer reads from a provider, whatever the provider sends.
//!
//! A provider is trusted to store bytes, not to be reasonable: it could send a segment list
//! of gigabytes, a listing that never ends, or a download a byte at a time. Memory is
//! bounded by caps on sizes and counts, and time by deadlines that grow with what is
//! read, so that a slow but honest link still gets through (docs/STORAGE.md, "Limits").

use std::future::Future;
use std::time::{Duration, Instant};

/// Entries read from one listing (`backups/`, `incomplete/`, `segments/`, a backup's
/// segment folder). One backup is one entry, so this is 100,000 backups: one an hour for
/// eleven years without a prune. A listing that goes past it is refused, not cut short:
/// a partial listing could make `prune` delete the real newest backup.
pub const MAX_LISTING_ENTRIES: usize = 100_000;
/// Bytes of one answer that OpenDAL reads whole (a listing page, an error message). An S3
/// page of 1,000 entries is about 300 KB; a WebDAV folder listing comes in one answer, of
/// about 860 bytes an entry (wsgidav), so a WebDAV folder can list about 19,000 entries.
pub const MAX_ANSWER_BYTES: u64 = 16 << 20;
/// Bytes of an error answer (any status but 2xx) that are read: far more than any real
/// error message, of which Coffer shows only the first line, cut short.
pub const MAX_ERROR_ANSWER_BYTES: u64 = 64 << 10;
/// Characters of a provider's own words that an error or notice repeats.
pub const MAX_DETAIL_CHARS: usize = 300;
/// The slowest transfer a download must keep up, in bytes per second (128 kbit/s: a
/// phone on EDGE is faster).
pub const MIN_RATE: u64 = 16 << 10;
/// What one listing entry is taken to cost at [`MIN_RATE`]: more than a WebDAV or S3
/// listing sends for one.
pub const LISTING_ENTRY_BYTES: u64 = 1 << 10;
/// The time every download and listing gets besides what it received at [`MIN_RATE`]:
/// enough for the connection, and the retries of a request (15 to 30 s with their backoff).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(120);

/// The time [`MIN_RATE`] takes for `bytes`.
pub(super) fn time_at_min_rate(bytes: u64) -> Duration {
    let nanos = (bytes % MIN_RATE) * 1_000_000_000 / MIN_RATE;
    Duration::from_secs(bytes / MIN_RATE).saturating_add(Duration::from_nanos(nanos))
}

/// Time allowed for waiting on a provider: a base, and more for every byte or entry that
/// has arrived. Only what arrived counts, never a size the provider lists (nothing
/// authenticates it: a backup listed as 1 TB would otherwise buy a trickle years), so a
/// provider slower than [`MIN_RATE`] runs out of time soon after the base, whatever it
/// lists, and one at least that fast never does. Only time spent waiting counts, not time
/// that the caller spends on what it got (a slow disk during a restore is no fault of the
/// provider).
#[derive(Debug, Clone)]
pub(super) struct Deadline {
    base: Duration,
    allowed: Duration,
    waited: Duration,
}

impl Deadline {
    pub(super) fn new(base: Duration) -> Deadline {
        Deadline {
            base,
            allowed: base,
            waited: Duration::ZERO,
        }
    }

    /// `bytes` more arrived: allows the time they take at [`MIN_RATE`].
    pub(super) fn received(&mut self, bytes: u64) {
        self.allowed = self.allowed.saturating_add(time_at_min_rate(bytes));
    }

    /// One more listing entry arrived: allows the time it takes.
    pub(super) fn received_entry(&mut self) {
        self.received(LISTING_ENTRY_BYTES);
    }

    pub(super) fn base(&self) -> Duration {
        self.base
    }

    pub(super) fn waited(&self) -> Duration {
        self.waited
    }

    /// Waits for `fut` within the time left; `None` when that ran out first.
    pub(super) async fn wait<F: Future>(&mut self, fut: F) -> Option<F::Output> {
        let left = self.allowed.saturating_sub(self.waited);
        if left.is_zero() {
            return None;
        }
        let start = Instant::now();
        let out = tokio::time::timeout(left, fut).await.ok();
        self.waited += start.elapsed();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_grows_with_size() {
        assert_eq!(time_at_min_rate(0), Duration::ZERO);
        assert_eq!(time_at_min_rate(MIN_RATE), Duration::from_secs(1));
        assert_eq!(time_at_min_rate(MIN_RATE / 2), Duration::from_millis(500));
        // A 1 GiB backup: 18 h 12 min.
        assert_eq!(time_at_min_rate(1 << 30), Duration::from_secs(65_536));
        // Never overflows.
        let mut d = Deadline::new(Duration::MAX);
        d.received(u64::MAX);
        assert_eq!(d.allowed, Duration::MAX);
    }

    #[tokio::test]
    async fn a_deadline_ends_a_wait_and_grows() {
        let mut d = Deadline::new(Duration::from_millis(30));
        // A ready future is taken whatever the time left.
        assert_eq!(d.wait(async { 7 }).await, Some(7));
        assert_eq!(d.wait(std::future::pending::<()>()).await, None);
        assert!(d.waited() >= Duration::from_millis(30));
        // Once spent, nothing more is waited for, until more arrived.
        assert_eq!(d.wait(async { 8 }).await, None);
        d.received(10 * MIN_RATE);
        assert_eq!(d.wait(async { 9 }).await, Some(9));
    }
}
