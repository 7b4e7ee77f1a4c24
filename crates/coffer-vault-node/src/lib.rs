//! A Backup Key Vault node: the pure vault core ([`coffer_vault_core::handle`]) wrapped
//! with durable storage and sealed fleet secrets. Every record change is committed (and
//! fsynced) before the response is returned, so a spent guess survives any crash.

mod sealing;
mod store;

use std::fs;
use std::path::{Path, PathBuf};

use coffer_vault_core::{handle, Fleet, RecordUpdate, Request, Response, VaultError};
use rand_core::OsRng;

pub use sealing::{KeyFile, NodePaths, SealingBackend};
pub use store::{RecordStore, Update};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("sealing backend: {0}")]
    Sealing(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl NodeError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> NodeError {
        NodeError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether the same request may succeed later (a busy or unavailable disk).
    pub fn is_retryable(&self) -> bool {
        matches!(self, NodeError::Io { .. } | NodeError::Db(_))
    }
}

/// Creates a node's data directory: a new root key, freshly generated fleet secrets sealed
/// under it, and an empty record store. Refuses to touch an existing node.
pub fn init(dir: &Path, max_guesses: u16) -> Result<Fleet, NodeError> {
    let paths = NodePaths::new(dir);
    fs::create_dir_all(dir).map_err(|e| NodeError::io(dir, e))?;
    if paths.fleet.exists() || paths.root_key.exists() {
        return Err(NodeError::Config(format!(
            "{} already holds a vault node",
            dir.display()
        )));
    }
    let fleet = Fleet::generate(&mut OsRng, max_guesses)?;
    let backend = KeyFile::create(&paths.root_key)?;
    sealing::write_private(&paths.fleet, &backend.seal(&fleet.to_bytes())?)?;
    RecordStore::open(&paths.records)?;
    Ok(fleet)
}

/// A running node.
pub struct VaultNode {
    fleet: Fleet,
    store: RecordStore,
}

impl VaultNode {
    /// Opens the node in `dir` with the embedded key-file sealing backend.
    pub fn open(dir: &Path) -> Result<VaultNode, NodeError> {
        let paths = NodePaths::new(dir);
        let backend = KeyFile::open(&paths.root_key)?;
        Self::open_with(&paths, &backend)
    }

    pub fn open_with(
        paths: &NodePaths,
        backend: &dyn SealingBackend,
    ) -> Result<VaultNode, NodeError> {
        let sealed = fs::read(&paths.fleet).map_err(|e| NodeError::io(&paths.fleet, e))?;
        let fleet = Fleet::from_bytes(&backend.unseal(&sealed)?)?;
        Ok(VaultNode {
            fleet,
            store: RecordStore::open(&paths.records)?,
        })
    }

    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    /// Handles one request: read, decide, commit durably, then answer.
    pub fn process(&mut self, account: &[u8], request: Request) -> Result<Response, NodeError> {
        let fleet = &self.fleet;
        self.store.transact(account, |sealed| {
            let outcome = handle(fleet, account, sealed, request, &mut OsRng)?;
            let update = match outcome.update {
                RecordUpdate::Unchanged => Update::None,
                RecordUpdate::Write(r) => Update::Put(r),
                RecordUpdate::Delete => Update::Delete,
            };
            Ok((outcome.response, update))
        })
    }
}
