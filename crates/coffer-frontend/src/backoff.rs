//! The per-account failure cap: how long verification stays closed after many failures.
//!
//! Counted per account across codes, in the account database, so requesting a new code
//! or asking another front-end buys no new tries. Pure arithmetic: the database code
//! keeps the count and applies the answer.

/// Failed checks an account may have (since its last success) before checks pause.
pub const FREE_FAILURES: i64 = 10;
/// The first pause, in seconds; each further failure doubles it.
pub const FIRST_BACKOFF: i64 = 60;
/// The longest pause, in seconds.
pub const MAX_BACKOFF: i64 = 24 * 60 * 60;

/// Seconds checks stay closed after the account's `failures`-th failure: none before
/// [`FREE_FAILURES`], then 60 s, 120 s, 240 s, … up to a day.
pub fn pause_after(failures: i64) -> i64 {
    if failures < FREE_FAILURES {
        return 0;
    }
    // 2^11 * 60 s is past a day already; the cap also keeps the shift in range.
    let doublings = (failures - FREE_FAILURES).min(11);
    (FIRST_BACKOFF << doublings).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_failures_then_doubling_pauses_up_to_a_day() {
        for f in 0..FREE_FAILURES {
            assert_eq!(pause_after(f), 0, "{f}");
        }
        assert_eq!(pause_after(FREE_FAILURES), 60);
        assert_eq!(pause_after(FREE_FAILURES + 1), 120);
        assert_eq!(pause_after(FREE_FAILURES + 2), 240);
        assert_eq!(pause_after(FREE_FAILURES + 10), 61_440);
        for f in [FREE_FAILURES + 11, FREE_FAILURES + 12, 1_000, i64::MAX] {
            assert_eq!(pause_after(f), MAX_BACKOFF, "{f}");
        }
        let mut last = 0;
        for f in 0..100 {
            assert!(pause_after(f) >= last);
            last = pause_after(f);
        }
    }
}
