//! Clearing out what no longer matters, so that code requests, which anyone may make, cannot
//! grow the database without bound: codes past their expiry, and failure counters that are
//! zero or whose last pause ended a week ago, for accounts that hold no code and no
//! credential. A counter with failures but no pause yet stays: forgetting it between codes
//! would hand out fresh tries with every new code.

use std::sync::atomic::Ordering;

use super::{AccountError, Accounts};

/// How often one front-end clears out, in seconds.
const EVERY: i64 = 10 * 60;
/// A failure counter idle this long (seconds past its last pause) is forgotten: the cap
/// holds against bursts, and a week of silence costs a guesser a week.
const FORGET_FAILURES_AFTER: i64 = 7 * 24 * 60 * 60;

impl Accounts {
    /// Clears out, at most once per [`EVERY`] in this process; failures are only logged,
    /// since the request that triggered it must not fail for them.
    pub(super) async fn purge_now_and_then(&self, now: i64) {
        let last = self.last_purge.load(Ordering::Relaxed);
        if now - last < EVERY
            || self
                .last_purge
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        if let Err(e) = self.purge(now).await {
            tracing::warn!("clearing out expired codes failed: {e}");
        }
    }

    /// Deletes expired codes, then idle failure counters of accounts with no code and no
    /// credential. Returns how many rows went.
    pub async fn purge(&self, now: i64) -> Result<u64, AccountError> {
        let _turn = self.writer_turn().await;
        let codes = sqlx::query("DELETE FROM pending_codes WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let guards = sqlx::query(
            "DELETE FROM verify_guard
             WHERE (failures = 0 OR (blocked_until > 0 AND blocked_until < $1))
               AND blocked_until <= $2
               AND NOT EXISTS (SELECT 1 FROM pending_codes p WHERE p.account = verify_guard.account)
               AND NOT EXISTS (SELECT 1 FROM credentials c WHERE c.account = verify_guard.account)",
        )
        .bind(now - FORGET_FAILURES_AFTER)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(codes + guards)
    }
}

#[cfg(test)]
mod tests {
    use crate::account_id::AccountId;
    use crate::accounts::{Accounts, CODE_TTL};
    use crate::code_key::CodeKey;

    #[tokio::test]
    async fn expired_codes_and_idle_counters_go_and_failure_counts_stay() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
        let accounts = Accounts::connect(&url, CodeKey::generate()).await.unwrap();
        let id = |s: &str| AccountId::parse(s).unwrap();
        // Three accounts: one that never came back, one that failed, one verified.
        accounts.register(&id("gone"), 1_000).await.unwrap();
        accounts.register(&id("failed"), 1_000).await.unwrap();
        assert!(accounts
            .verify(&id("failed"), "00000000", 1_001)
            .await
            .is_err());
        let code = accounts.register(&id("kept"), 1_000).await.unwrap();
        accounts
            .verify(&id("kept"), code.as_str(), 1_001)
            .await
            .unwrap();
        let later = 1_000 + CODE_TTL + 1;
        let count = |table: &'static str| {
            let pool = accounts.pool.clone();
            async move {
                let row: (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                row.0
            }
        };
        assert_eq!(count("verify_guard").await, 3);
        assert!(
            accounts.purge(later).await.unwrap() >= 3,
            "two codes and a counter"
        );
        assert_eq!(count("pending_codes").await, 0);
        // "failed" keeps its failure; "kept" has a credential; "gone" is gone.
        assert_eq!(count("verify_guard").await, 2);
    }

    /// The purge's race on PostgreSQL, played out: a guard row deleted while its account's
    /// fresh code is pending. The check still works, and counts.
    #[tokio::test]
    async fn a_code_whose_guard_row_was_purged_still_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
        let accounts = Accounts::connect(&url, CodeKey::generate()).await.unwrap();
        let alice = AccountId::parse("alice").unwrap();
        let code = accounts.register(&alice, 1_000).await.unwrap();
        sqlx::query("DELETE FROM verify_guard")
            .execute(&accounts.pool)
            .await
            .unwrap();
        assert!(accounts.verify(&alice, "00000000", 1_001).await.is_err());
        let failures: (i64,) = sqlx::query_as("SELECT failures FROM verify_guard")
            .fetch_one(&accounts.pool)
            .await
            .unwrap();
        assert_eq!(failures.0, 1, "the wrong code was counted");
        accounts.verify(&alice, code.as_str(), 1_002).await.unwrap();
    }
}
