//! Which backups `prune` removes: a pure function of the listing, the rules and the clock.

use std::time::{Duration, SystemTime};

use super::StoredBackup;

/// Rules for thinning out backups. A backup is removed only when every rule given lets it
/// go, and the newest backup is always kept, whatever the rules say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrunePolicy {
    /// Keep the newest N backups.
    pub keep_last: Option<usize>,
    /// Keep backups made less than this long ago.
    pub older_than: Option<Duration>,
}

impl PrunePolicy {
    pub fn is_empty(&self) -> bool {
        self.keep_last.is_none() && self.older_than.is_none()
    }
}

/// The backups to remove from `backups` (sorted oldest first, as `Storage::list` gives
/// them), oldest first. With no rule at all, nothing is removed.
pub fn plan(backups: &[StoredBackup], policy: PrunePolicy, now: SystemTime) -> Vec<&StoredBackup> {
    if policy.is_empty() || backups.is_empty() {
        return Vec::new();
    }
    let newest = backups.len() - 1;
    let keep_last = policy.keep_last.unwrap_or(0).max(1);
    backups
        .iter()
        .enumerate()
        .filter(|&(i, b)| {
            let from_newest = newest - i;
            let kept_by_count = policy.keep_last.is_some() && from_newest < keep_last;
            let kept_by_age = policy.older_than.is_some_and(|limit| {
                // A backup from the future (clock skew) counts as young.
                now.duration_since(b.created)
                    .map_or(true, |age| age < limit)
            });
            from_newest != 0 && !kept_by_count && !kept_by_age
        })
        .map(|(_, b)| b)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn backups(ages_days: &[u64], now: SystemTime) -> Vec<StoredBackup> {
        // Oldest first: ages in decreasing order.
        let mut ages = ages_days.to_vec();
        ages.sort_unstable_by(|a, b| b.cmp(a));
        ages.iter()
            .enumerate()
            .map(|(i, &d)| StoredBackup {
                id: format!("b{i:03}"),
                size: 1,
                created: now - DAY * d as u32,
                segments: None,
            })
            .collect()
    }

    fn ids(v: Vec<&StoredBackup>) -> Vec<&str> {
        v.into_iter().map(|b| b.id.as_str()).collect()
    }

    #[test]
    fn rules() {
        let now = SystemTime::UNIX_EPOCH + DAY * 1000;
        let all = backups(&[40, 30, 20, 10, 1], now);
        let keep = |n| PrunePolicy {
            keep_last: Some(n),
            older_than: None,
        };
        let older = |d: u32| PrunePolicy {
            keep_last: None,
            older_than: Some(DAY * d),
        };
        assert_eq!(ids(plan(&all, keep(2), now)), ["b000", "b001", "b002"]);
        assert_eq!(
            ids(plan(&all, keep(0), now)),
            ["b000", "b001", "b002", "b003"]
        );
        assert!(plan(&all, keep(9), now).is_empty());
        assert_eq!(ids(plan(&all, older(15), now)), ["b000", "b001", "b002"]);
        // Every backup is old: the newest still stays.
        assert_eq!(ids(plan(&all, older(0), now)).len(), 4);
        // Both rules: removed only when neither keeps it.
        let both = PrunePolicy {
            keep_last: Some(4),
            older_than: Some(DAY * 25),
        };
        assert_eq!(ids(plan(&all, both, now)), ["b000"]);
        assert!(plan(&all, PrunePolicy::default(), now).is_empty());
        assert!(plan(&[], keep(0), now).is_empty());
    }

    proptest! {
        #[test]
        fn newest_always_kept(
            ages in prop::collection::vec(0u64..400, 1..30),
            keep in prop::option::of(0usize..10),
            older in prop::option::of(0u32..500),
        ) {
            let now = SystemTime::UNIX_EPOCH + DAY * 1000;
            let all = backups(&ages, now);
            let policy = PrunePolicy { keep_last: keep, older_than: older.map(|d| DAY * d) };
            let gone = plan(&all, policy, now);
            let newest = &all[all.len() - 1];
            prop_assert!(!gone.iter().any(|b| b.id == newest.id));
            if let Some(n) = keep {
                prop_assert!(all.len() - gone.len() >= n.min(all.len()).max(1));
            }
            for b in &gone {
                if let Some(limit) = policy.older_than {
                    prop_assert!(now.duration_since(b.created).unwrap() >= limit);
                }
            }
        }
    }
}
