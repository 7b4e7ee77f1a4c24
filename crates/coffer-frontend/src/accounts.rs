//! Accounts: registration by id, verification by a one-time code, bearer credentials.
//!
//! One code path for SQLite (embedded default) and PostgreSQL (several front-ends), through
//! sqlx's `Any` driver. Verifying an account issues a fresh credential and revokes all older
//! ones, as a new phone logs the old one out. Time comes from the caller (seconds since the
//! Unix epoch), so the logic is testable without a clock.
//!
//! What holds whatever the interleaving, on either database and across front-ends:
//! - a code is evaluated at most [`CODE_ATTEMPTS`] times: each evaluation first claims a try
//!   with one `UPDATE … WHERE attempts < 5 … RETURNING`, which only that many can win;
//! - a code is redeemed at most once: by a `DELETE … RETURNING` that only one transaction
//!   can win, in the same transaction that issues the credential;
//! - failed checks are counted per account across codes ([`crate::backoff`]); past
//!   [`FREE_FAILURES`] checks are refused, unevaluated, for a pause that doubles with each
//!   further failure, up to a day. A success clears the count; a new code does not.
//!
//! Every verify transaction starts by locking the account's row in `verify_guard` (its
//! first statement writes, so SQLite takes its write lock at once instead of deadlocking
//! a read that wants to become a write), so checks of one account run one at a time.
//!
//! Pending codes are stored as HMAC-SHA256 under a [`CodeKey`] that is not in the database;
//! credentials as SHA-256 (they carry 256 bits of entropy).

use std::path::Path;

use rand_core::OsRng;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::account_id::AccountId;
use crate::backoff;
pub use crate::backoff::FREE_FAILURES;
pub use crate::code::{MalformedCode, VerificationCode, CODE_DIGITS};
pub use crate::code_key::{CodeKey, CodeKeyError};
pub use crate::credential::Credential;
use crate::credential::{hex, stored_form};

/// How long a verification code is valid, in seconds.
pub const CODE_TTL: i64 = 10 * 60;
/// Evaluations of one issued code (wrong ones, or the right one) before it is void.
pub const CODE_ATTEMPTS: i64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Not 8 ASCII digits. Rejected before the database: it is no guess at any code, so it
    /// costs no try and counts as no failure.
    #[error("verification codes are exactly 8 digits")]
    MalformedCode,
    #[error("the code is wrong; {tries_left} more tries for this code")]
    WrongCode { tries_left: u32 },
    #[error(
        "no verification code is pending for this account (none was requested, it expired, \
         its tries are used up, or it was already used); request a new one"
    )]
    NoPendingCode,
    /// Too many failed checks for this account: nothing is checked, and no code is issued,
    /// for `retry_after_secs` more seconds.
    #[error("too many failed verifications for this account; retry in {retry_after_secs} s")]
    TooManyFailures { retry_after_secs: u64 },
    #[error("the credential is not valid (revoked or unknown)")]
    BadCredential,
    #[error("the account database holds an account id that is not valid")]
    CorruptRecord,
    #[error("{0}")]
    CodeKey(#[from] CodeKeyError),
    #[error("account database: {0}")]
    Db(#[from] sqlx::Error),
}

impl AccountError {
    /// Whether the same request, sent again unchanged, may succeed: after the wait for
    /// [`AccountError::TooManyFailures`], or once the database is back.
    pub fn is_retryable(&self) -> bool {
        match self {
            AccountError::TooManyFailures { .. } => true,
            AccountError::Db(e) => !matches!(e, sqlx::Error::Configuration(_)),
            _ => false,
        }
    }

    /// Seconds to wait before retrying, when the answer is a timed refusal.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            AccountError::TooManyFailures { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        }
    }
}

impl From<MalformedCode> for AccountError {
    fn from(_: MalformedCode) -> Self {
        AccountError::MalformedCode
    }
}

pub struct Accounts {
    pool: AnyPool,
    key: CodeKey,
    /// SQLite takes one writer at a time. Writers of this process queue here rather than in
    /// SQLite's busy handler, which sleeps in coarse steps and gives up after 5 s, so a
    /// burst of checks waits its turn instead of failing with "database is locked".
    sqlite_writer: Option<tokio::sync::Mutex<()>>,
    /// When this process last cleared out expired rows (seconds since the epoch).
    last_purge: std::sync::atomic::AtomicI64,
}

const SCHEMA: [&str; 5] = [
    // One row per account that ever asked for a code: failures since the last success,
    // and until when checks are refused. Locked first by every verify transaction.
    "CREATE TABLE IF NOT EXISTS verify_guard (
         account TEXT PRIMARY KEY,
         failures BIGINT NOT NULL,
         blocked_until BIGINT NOT NULL
     )",
    "CREATE TABLE IF NOT EXISTS pending_codes (
         account TEXT PRIMARY KEY,
         code_mac TEXT NOT NULL,
         expires_at BIGINT NOT NULL,
         attempts BIGINT NOT NULL
     )",
    "CREATE TABLE IF NOT EXISTS credentials (
         credential_hash TEXT PRIMARY KEY,
         account TEXT NOT NULL,
         issued_at BIGINT NOT NULL
     )",
    "CREATE INDEX IF NOT EXISTS credentials_by_account ON credentials (account)",
    "CREATE INDEX IF NOT EXISTS pending_codes_by_expiry ON pending_codes (expires_at)",
];

/// The first statement of every register or verify transaction: locks the account's guard
/// row (a write, so that SQLite takes its write lock at once), creating it when missing
/// (new accounts; or an idle row the purge removed between a code's issue and its check;
/// a transaction that then finds no code rolls back and leaves nothing). Refuses while the
/// account's checks are paused.
async fn lock_guard(
    tx: &mut Transaction<'_, Any>,
    id: &AccountId,
    now: i64,
) -> Result<(), AccountError> {
    let guard: AnyRow = sqlx::query(
        "INSERT INTO verify_guard (account, failures, blocked_until) VALUES ($1, 0, 0)
         ON CONFLICT (account) DO UPDATE SET failures = verify_guard.failures
         RETURNING blocked_until",
    )
    .bind(id.as_str())
    .fetch_one(&mut **tx)
    .await?;
    let blocked_until: i64 = guard.try_get(0)?;
    if blocked_until > now {
        return Err(AccountError::TooManyFailures {
            retry_after_secs: wait(blocked_until, now),
        });
    }
    Ok(())
}

/// Seconds from `now` to `until`, at least 1 (a refusal never says "retry in 0 s").
fn wait(until: i64, now: i64) -> u64 {
    u64::try_from(until.saturating_sub(now)).unwrap_or(0).max(1)
}

impl Accounts {
    /// Loads (creating on first use) the code key in `key_file`, then connects to `url`.
    /// Front-ends sharing a PostgreSQL database must share the key file: see [`CodeKey`].
    pub async fn open(url: &str, key_file: &Path) -> Result<Accounts, AccountError> {
        let key = CodeKey::load_or_create(key_file)?;
        Accounts::connect(url, key).await
    }

    /// Connects to `url` (`sqlite:///path/accounts.db?mode=rwc` or `postgres://…`) and
    /// creates the tables if needed. A SQLite file is created 0600 first (and tightened to
    /// 0600, with its side files, if it was looser).
    pub async fn connect(url: &str, key: CodeKey) -> Result<Accounts, AccountError> {
        if let Some(path) = crate::sqlite_file::path_of(url) {
            let tightened = crate::sqlite_file::make_private(&path).map_err(sqlx::Error::Io)?;
            for file in tightened {
                tracing::warn!(file = %file.display(), "account database was readable by others; now 0600");
            }
        }
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .connect(url)
            .await?;
        if url.starts_with("postgres") {
            // Front-ends starting together would race on CREATE TABLE IF NOT EXISTS
            // (PostgreSQL reports a duplicate type), so one at a time creates the schema,
            // under a session lock. Each statement commits on its own: a CREATE INDEX holds
            // a lock on its table until its transaction ends, and two held at once could
            // deadlock with another front-end's verification, which writes both tables.
            let mut conn = pool.acquire().await?;
            sqlx::query("SELECT pg_advisory_lock(73581)")
                .execute(&mut *conn)
                .await?;
            let mut created = Ok(());
            for stmt in SCHEMA {
                if let Err(e) = sqlx::query(stmt).execute(&mut *conn).await {
                    created = Err(e);
                    break;
                }
            }
            sqlx::query("SELECT pg_advisory_unlock(73581)")
                .execute(&mut *conn)
                .await?;
            created?;
        } else {
            let mut tx = pool.begin().await?;
            for stmt in SCHEMA {
                sqlx::query(stmt).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }
        Ok(Accounts {
            pool,
            key,
            sqlite_writer: sqlite.then(|| tokio::sync::Mutex::new(())),
            last_purge: std::sync::atomic::AtomicI64::new(0),
        })
    }

    /// Starts (or restarts) verification of `id`: returns the 8-digit code for the verifier
    /// to deliver. The previous code, if any, stops working; the account's failure count
    /// stays. Refused with [`AccountError::TooManyFailures`] while checks are paused, since
    /// such a code could not be checked anyway.
    pub async fn register(
        &self,
        id: &AccountId,
        now: i64,
    ) -> Result<VerificationCode, AccountError> {
        self.purge_now_and_then(now).await;
        let code = VerificationCode::random(&mut OsRng);
        let _turn = self.writer_turn().await;
        let mut tx = self.pool.begin().await?;
        // (On a refusal the transaction is dropped, which rolls it back.)
        lock_guard(&mut tx, id, now).await?;
        sqlx::query("DELETE FROM pending_codes WHERE account = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO pending_codes (account, code_mac, expires_at, attempts)
             VALUES ($1, $2, $3, 0)",
        )
        .bind(id.as_str())
        .bind(hex(&self.key.mac(id, &code)))
        .bind(now.saturating_add(CODE_TTL))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(code)
    }

    /// Checks `code` for `id`. On success the code is spent, every older credential of the
    /// account is revoked, and a fresh credential is returned (shown once, stored hashed).
    pub async fn verify(
        &self,
        id: &AccountId,
        code: &str,
        now: i64,
    ) -> Result<Credential, AccountError> {
        let code = VerificationCode::parse(code)?;
        let _turn = self.writer_turn().await;
        let mut tx = self.pool.begin().await?;
        // (On a refusal the transaction is dropped, which rolls it back.)
        lock_guard(&mut tx, id, now).await?;
        // Claims one of the code's tries, atomically: the code is only compared after this.
        let claimed: Option<AnyRow> = sqlx::query(
            "UPDATE pending_codes SET attempts = attempts + 1
             WHERE account = $1 AND attempts < $2 AND expires_at >= $3
             RETURNING code_mac, attempts",
        )
        .bind(id.as_str())
        .bind(CODE_ATTEMPTS)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(claimed) = claimed else {
            tx.rollback().await?;
            return Err(AccountError::NoPendingCode);
        };
        let (stored, attempts): (String, i64) = (claimed.try_get(0)?, claimed.try_get(1)?);
        let given = hex(&self.key.mac(id, &code));
        let matches = bool::from(subtle::ConstantTimeEq::ct_eq(
            given.as_bytes(),
            stored.as_bytes(),
        ));
        if matches {
            self.redeem(tx, id, &stored, now).await
        } else {
            self.record_failure(tx, id, now).await?;
            Err(AccountError::WrongCode {
                tries_left: u32::try_from(CODE_ATTEMPTS - attempts).unwrap_or(0),
            })
        }
    }

    async fn writer_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.sqlite_writer {
            Some(m) => Some(m.lock().await),
            None => None,
        }
    }

    /// The right code: spends it (once), clears the failure count, replaces the account's
    /// credentials with a fresh one, all in the caller's transaction.
    async fn redeem(
        &self,
        mut tx: Transaction<'_, Any>,
        id: &AccountId,
        code_mac: &str,
        now: i64,
    ) -> Result<Credential, AccountError> {
        let spent: Option<AnyRow> = sqlx::query(
            "DELETE FROM pending_codes WHERE account = $1 AND code_mac = $2 RETURNING account",
        )
        .bind(id.as_str())
        .bind(code_mac)
        .fetch_optional(&mut *tx)
        .await?;
        if spent.is_none() {
            // Someone else redeemed it first (cannot happen under the guard lock; this is
            // the second line of defence).
            tx.rollback().await?;
            return Err(AccountError::NoPendingCode);
        }
        sqlx::query("UPDATE verify_guard SET failures = 0, blocked_until = 0 WHERE account = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM credentials WHERE account = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        let credential = Credential::random();
        sqlx::query(
            "INSERT INTO credentials (credential_hash, account, issued_at) VALUES ($1, $2, $3)",
        )
        .bind(stored_form(credential.as_str()))
        .bind(id.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(credential)
    }

    /// A wrong code: one more failure for the account, and a pause once there are many.
    async fn record_failure(
        &self,
        mut tx: Transaction<'_, Any>,
        id: &AccountId,
        now: i64,
    ) -> Result<(), AccountError> {
        let row: AnyRow = sqlx::query(
            "UPDATE verify_guard SET failures = failures + 1 WHERE account = $1
             RETURNING failures",
        )
        .bind(id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let failures: i64 = row.try_get(0)?;
        let pause = backoff::pause_after(failures);
        if pause > 0 {
            sqlx::query("UPDATE verify_guard SET blocked_until = $1 WHERE account = $2")
                .bind(now.saturating_add(pause))
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The account a bearer credential belongs to.
    pub async fn authenticate(&self, credential: &str) -> Result<AccountId, AccountError> {
        let row: Option<AnyRow> =
            sqlx::query("SELECT account FROM credentials WHERE credential_hash = $1")
                .bind(stored_form(credential.trim()))
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else {
            return Err(AccountError::BadCredential);
        };
        let account: String = row.try_get(0)?;
        AccountId::parse(&account).map_err(|_| AccountError::CorruptRecord)
    }
}

mod purge;

#[cfg(test)]
mod tests;
