//! Durable record storage: one SQLite file per node.
//!
//! SQLite in WAL mode with `synchronous = FULL` fsyncs every commit, survives `kill -9` at
//! any point (the write-ahead log is replayed or discarded whole), and serializes writers,
//! which is exactly the per-record ordering the guess counter needs. It is embedded, one
//! file, and well understood, which is why it was chosen over a key-value store.

use std::path::Path;

use coffer_vault_core::Update;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::NodeError;

pub struct RecordStore {
    conn: Connection,
}

impl RecordStore {
    /// Opens (creating, mode 0600, when missing) the store at `path`. SQLite gives its
    /// `-wal` and `-shm` files the database file's mode.
    pub fn open(path: &Path) -> Result<RecordStore, NodeError> {
        crate::sealing::create_private_if_missing(path)?;
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS records (
                 account BLOB PRIMARY KEY,
                 sealed  BLOB NOT NULL
             ) WITHOUT ROWID;",
        )?;
        Ok(RecordStore { conn })
    }

    /// Runs `f` on the account's sealed record inside one write transaction and commits
    /// what it returns, durably, before returning. Concurrent callers on the same file
    /// (threads or processes) are serialized by SQLite's write lock.
    pub fn transact<T>(
        &mut self,
        account: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> Result<(T, Update), NodeError>,
    ) -> Result<T, NodeError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<Vec<u8>> = tx
            .query_row(
                "SELECT sealed FROM records WHERE account = ?1",
                [account],
                |row| row.get(0),
            )
            .optional()?;
        let (value, update) = f(current.as_deref())?;
        match update {
            Update::None => {}
            Update::Put(sealed) => {
                tx.execute(
                    "INSERT INTO records (account, sealed) VALUES (?1, ?2)
                     ON CONFLICT(account) DO UPDATE SET sealed = excluded.sealed",
                    (account, sealed),
                )?;
            }
            Update::Delete => {
                tx.execute("DELETE FROM records WHERE account = ?1", [account])?;
            }
        }
        tx.commit()?;
        Ok(value)
    }
}
