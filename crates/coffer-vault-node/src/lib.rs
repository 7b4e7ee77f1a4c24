//! A Backup Key Vault node: the pure vault core ([`coffer_vault_core::handle`]) wrapped
//! with durable storage and sealed fleet secrets. Every record change is committed (and
//! fsynced) before the response is returned, so a spent guess survives any crash.

mod sealing;
pub mod server;
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

/// What `init` made, for the operator to hand out.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// The fleet key fingerprint clients pin.
    pub fleet_fingerprint: String,
    /// The TLS certificate fingerprint front-ends pin.
    pub tls_fingerprint: String,
    /// Where the front-end token is.
    pub frontend_token: PathBuf,
}

/// Creates a node's data directory: a new root key, freshly generated fleet secrets sealed
/// under it, an empty record store, a development TLS certificate for `tls_names` and a
/// front-end token. Refuses to touch an existing node.
pub fn init(dir: &Path, max_guesses: u16, tls_names: &[String]) -> Result<NodeInfo, NodeError> {
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
    let identity = coffer_tls::development_identity(tls_names)
        .map_err(|e| NodeError::Config(e.to_string()))?;
    sealing::write_private(&paths.tls_key, &identity.key_der)?;
    sealing::write_private(&paths.tls_cert, &identity.cert_der)?;
    let mut token = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut OsRng, &mut token);
    let token: String = token.iter().map(|b| format!("{b:02x}")).collect();
    sealing::write_private(&paths.frontend_token, token.as_bytes())?;
    Ok(NodeInfo {
        fleet_fingerprint: fleet.fingerprint(),
        tls_fingerprint: coffer_tls::fingerprint(&identity.cert_der),
        frontend_token: paths.frontend_token,
    })
}

/// The facts of an existing node's directory (what `init` printed).
pub fn info(dir: &Path) -> Result<NodeInfo, NodeError> {
    let paths = NodePaths::new(dir);
    let cert = fs::read(&paths.tls_cert).map_err(|e| NodeError::io(&paths.tls_cert, e))?;
    Ok(NodeInfo {
        fleet_fingerprint: VaultNode::open(dir)?.fleet().fingerprint(),
        tls_fingerprint: coffer_tls::fingerprint(&cert),
        frontend_token: paths.frontend_token,
    })
}

/// `init` unless `dir` already holds a node; then its facts.
pub fn init_or_open(
    dir: &Path,
    max_guesses: u16,
    tls_names: &[String],
) -> Result<NodeInfo, NodeError> {
    if NodePaths::new(dir).fleet.exists() {
        info(dir)
    } else {
        init(dir, max_guesses, tls_names)
    }
}

impl NodeInfo {
    /// How a front-end reaches this node serving at `addr`.
    pub fn token(&self) -> Result<String, NodeError> {
        fs::read_to_string(&self.frontend_token)
            .map(|t| t.trim().to_string())
            .map_err(|e| NodeError::io(&self.frontend_token, e))
    }
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
