//! Accounts: registration by id, verification by a one-time code, bearer credentials.
//!
//! One code path for SQLite (embedded default) and PostgreSQL (several front-ends), through
//! sqlx's `Any` driver. Codes and credentials are stored only as SHA-256 hashes. Verifying
//! an account issues a fresh credential and revokes all older ones, as a new phone logs the
//! old one out. Time comes from the caller (seconds since the Unix epoch), so the logic is
//! testable without a clock.

use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

/// How long a verification code is valid, in seconds.
pub const CODE_TTL: i64 = 10 * 60;
/// Wrong codes accepted for one issued code before it is void.
pub const CODE_ATTEMPTS: i64 = 5;
/// Longest account id, in bytes.
pub const MAX_ACCOUNT_ID: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("account ids are 1 to 128 printable characters")]
    BadId,
    #[error("the code is wrong or has expired; request a new one")]
    BadCode,
    #[error("the credential is not valid (revoked or unknown)")]
    BadCredential,
    #[error("account database: {0}")]
    Db(#[from] sqlx::Error),
}

impl AccountError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, AccountError::Db(_))
    }
}

pub struct Accounts {
    pool: AnyPool,
}

fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn check_id(id: &str) -> Result<(), AccountError> {
    if id.is_empty() || id.len() > MAX_ACCOUNT_ID || id.chars().any(|c| c.is_control()) {
        return Err(AccountError::BadId);
    }
    Ok(())
}

impl Accounts {
    /// Connects to `url` (`sqlite:///path/accounts.db?mode=rwc` or `postgres://…`) and
    /// creates the tables if needed.
    pub async fn connect(url: &str) -> Result<Accounts, AccountError> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .connect(url)
            .await?;
        let mut tx = pool.begin().await?;
        if url.starts_with("postgres") {
            // Front-ends starting together would race on CREATE TABLE IF NOT EXISTS
            // (PostgreSQL reports a duplicate type); one at a time creates the schema.
            sqlx::query("SELECT pg_advisory_xact_lock(73581)")
                .execute(&mut *tx)
                .await?;
        }
        for stmt in [
            "CREATE TABLE IF NOT EXISTS codes (
                 account TEXT PRIMARY KEY,
                 code_hash TEXT NOT NULL,
                 expires_at BIGINT NOT NULL,
                 attempts BIGINT NOT NULL
             )",
            "CREATE TABLE IF NOT EXISTS credentials (
                 credential_hash TEXT PRIMARY KEY,
                 account TEXT NOT NULL,
                 issued_at BIGINT NOT NULL
             )",
            "CREATE INDEX IF NOT EXISTS credentials_by_account ON credentials (account)",
        ] {
            sqlx::query(stmt).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(Accounts { pool })
    }

    /// Starts (or restarts) verification of `id`: returns the 6-digit code for the
    /// verifier to deliver. The previous code, if any, stops working.
    pub async fn register(&self, id: &str, now: i64) -> Result<String, AccountError> {
        check_id(id)?;
        let code = format!("{:06}", OsRng.next_u32() % 1_000_000);
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM codes WHERE account = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO codes (account, code_hash, expires_at, attempts) VALUES ($1, $2, $3, 0)",
        )
        .bind(id)
        .bind(hash(&format!("{id}\0{code}")))
        .bind(now + CODE_TTL)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(code)
    }

    /// Checks `code` for `id`. On success the code is spent, every older credential of the
    /// account is revoked, and a fresh credential is returned (shown once, stored hashed).
    pub async fn verify(&self, id: &str, code: &str, now: i64) -> Result<String, AccountError> {
        check_id(id)?;
        let mut tx = self.pool.begin().await?;
        let row: Option<AnyRow> =
            sqlx::query("SELECT code_hash, expires_at, attempts FROM codes WHERE account = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(row) = row else {
            return Err(AccountError::BadCode);
        };
        let (stored, expires_at, attempts): (String, i64, i64) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        let matches = bool::from(subtle::ConstantTimeEq::ct_eq(
            hash(&format!("{id}\0{}", code.trim())).as_bytes(),
            stored.as_bytes(),
        ));
        if !matches || now > expires_at || attempts >= CODE_ATTEMPTS {
            if attempts + 1 >= CODE_ATTEMPTS || now > expires_at {
                sqlx::query("DELETE FROM codes WHERE account = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            } else {
                sqlx::query("UPDATE codes SET attempts = attempts + 1 WHERE account = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            return Err(AccountError::BadCode);
        }
        let mut raw = [0u8; 32];
        OsRng.fill_bytes(&mut raw);
        let credential: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        sqlx::query("DELETE FROM codes WHERE account = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM credentials WHERE account = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO credentials (credential_hash, account, issued_at) VALUES ($1, $2, $3)",
        )
        .bind(hash(&credential))
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(credential)
    }

    /// The account a bearer credential belongs to.
    pub async fn authenticate(&self, credential: &str) -> Result<String, AccountError> {
        let row: Option<AnyRow> =
            sqlx::query("SELECT account FROM credentials WHERE credential_hash = $1")
                .bind(hash(credential.trim()))
                .fetch_optional(&self.pool)
                .await?;
        match row {
            Some(row) => Ok(row.try_get(0)?),
            None => Err(AccountError::BadCredential),
        }
    }
}
