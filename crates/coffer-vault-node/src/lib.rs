//! A Backup Key Vault node: the pure vault core ([`coffer_vault_core::handle`]) wrapped
//! with durable storage and sealed fleet secrets. Every record change is committed (and
//! fsynced) before the response is sealed and returned, so a spent guess survives any crash;
//! a change that fails to commit is answered "unavailable", carrying nothing of the step.
//!
//! A node's directory is 0700 and every file in it 0600: the records, the sealed fleet
//! secrets, the root key, the TLS key and the front-end token.

mod sealing;
pub mod server;
mod store;

use std::fs;
use std::path::{Path, PathBuf};

use coffer_vault_core::channel::ChannelError;
use coffer_vault_core::{handle, Fleet, Update, VaultError};
use rand_core::OsRng;

pub use sealing::{KeyFile, NodePaths, SealingBackend};
pub use store::RecordStore;

/// Shortest front-end token a node accepts: 32 bytes, as `init` makes (64 hex digits).
pub const MIN_TOKEN_LEN: usize = 32;

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
    /// A request that does not open: nobody to answer inside the channel.
    #[error("vault channel: {0}")]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Serve(#[from] coffer_https::ServeError),
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
        match self {
            NodeError::Io { .. } | NodeError::Db(_) => true,
            NodeError::Serve(e) => e.retryable(),
            _ => false,
        }
    }
}

/// Creates `dir` (and missing parents) with mode 0700, or tightens an existing one to 0700.
pub(crate) fn private_dir(dir: &Path) -> Result<(), NodeError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| NodeError::io(dir, e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| NodeError::io(dir, e))
}

/// What `init` made, for the operator to hand out.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// The fleet key fingerprint clients pin.
    pub fleet_fingerprint: String,
    /// The TLS certificate fingerprint front-ends pin.
    pub tls_fingerprint: String,
    /// The next certificate's, when a rotation is under way (front-ends pin both).
    pub next_tls_fingerprint: Option<String>,
    /// Where the front-end token is.
    pub frontend_token: PathBuf,
}

/// Creates a node's data directory: a new root key, freshly generated fleet secrets sealed
/// under it, an empty record store, a development TLS certificate for `tls_names` and a
/// front-end token. Refuses to touch an existing node.
pub fn init(dir: &Path, max_guesses: u16, tls_names: &[String]) -> Result<NodeInfo, NodeError> {
    let paths = NodePaths::new(dir);
    private_dir(dir)?;
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
    let identity = coffer_tls::IdentityDir::new(dir)
        .load_or_create(tls_names)
        .map_err(|e| NodeError::Config(e.to_string()))?;
    let mut token = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut OsRng, &mut token);
    let token: String = token.iter().map(|b| format!("{b:02x}")).collect();
    sealing::write_private(&paths.frontend_token, token.as_bytes())?;
    Ok(NodeInfo {
        fleet_fingerprint: fleet.fingerprint(),
        tls_fingerprint: coffer_tls::fingerprint(&identity.cert_der),
        next_tls_fingerprint: None,
        frontend_token: paths.frontend_token,
    })
}

/// The facts of an existing node's directory (what `init` printed).
pub fn info(dir: &Path) -> Result<NodeInfo, NodeError> {
    let paths = NodePaths::new(dir);
    let tls = coffer_tls::IdentityDir::new(dir);
    let cert = tls
        .load()
        .map_err(|e| NodeError::Config(e.to_string()))?
        .cert_der;
    Ok(NodeInfo {
        fleet_fingerprint: VaultNode::open(dir)?.fleet().fingerprint(),
        tls_fingerprint: coffer_tls::fingerprint(&cert),
        next_tls_fingerprint: tls
            .next_fingerprint()
            .map_err(|e| NodeError::Config(e.to_string()))?,
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

    /// Handles one channel message for `account`: read, decide, commit durably, then seal
    /// the answer. A message that does not open is an error (there is nobody to answer); a
    /// store that cannot read is an error too; a change that cannot be committed is answered
    /// "unavailable" inside the channel.
    pub fn process(&mut self, account: &[u8], message: &[u8]) -> Result<Vec<u8>, NodeError> {
        let fleet = &self.fleet;
        let mut handled = None;
        let committed = self.store.transact(account, |stored| {
            let mut h = handle(fleet, account, stored, message, &mut OsRng)?;
            let update = std::mem::replace(&mut h.update, Update::None);
            handled = Some(h);
            Ok(((), update))
        });
        let Some(h) = handled else {
            return Err(committed.err().unwrap_or_else(|| {
                NodeError::Config("the request was neither handled nor refused".into())
            }));
        };
        if let Some(e) = &h.error {
            tracing::error!("vault request failed: {e}");
        }
        Ok(match committed {
            Ok(()) => h.answer()?,
            Err(e) => {
                tracing::error!("could not commit a record change: {e}");
                h.unavailable()?
            }
        })
    }
}
