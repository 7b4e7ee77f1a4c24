//! A front-end and one vault node in one process, with embedded stores: what
//! `coffer serve`, `coffer demo`, the benchmarks and the end-to-end tests run.
//!
//! ```text
//! DIR/vault/        the vault node (see coffer-vault-node)
//! DIR/frontend/     the front-end's development certificate and SQLite accounts
//! DIR/codes.txt     verification codes from the development verifier
//! ```

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use coffer_frontend::accounts::Accounts;
use coffer_frontend::server::{Config, VaultLink};
use coffer_frontend::verifier::Verifier;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("vault node: {0}")]
    Vault(#[from] coffer_vault_node::NodeError),
    #[error("accounts: {0}")]
    Accounts(#[from] coffer_frontend::accounts::AccountError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(#[from] coffer_tls::TlsError),
}

/// A running stack.
pub struct LocalStack {
    /// `https://localhost:PORT`
    pub url: String,
    pub addr: SocketAddr,
    /// The front-end certificate, which clients pin.
    pub tls_fingerprint: String,
    /// The vault fleet key, which clients pin.
    pub fleet_fingerprint: String,
    pub codes: PathBuf,
    pub frontend: tokio::task::JoinHandle<std::io::Result<()>>,
    pub vault: coffer_vault_node::server::Running,
}

const NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// The development certificate kept in `dir`, made on first use.
pub fn load_or_create_identity(dir: &Path) -> Result<coffer_tls::Identity, LocalError> {
    let names: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
    Ok(coffer_tls::IdentityDir::new(dir).load_or_create(&names)?)
}

/// Starts (creating on first use) the stack in `dir`, the front-end on `listen`.
pub async fn start(
    dir: &Path,
    listen: SocketAddr,
    rate_limits: bool,
) -> Result<LocalStack, LocalError> {
    let names: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
    let node_dir = dir.join("vault");
    let info =
        coffer_vault_node::init_or_open(&node_dir, coffer_vault_core::DEFAULT_MAX_GUESSES, &names)?;
    let vault =
        coffer_vault_node::server::spawn(&node_dir, "127.0.0.1:0".parse().expect("valid")).await?;
    let fe_dir = dir.join("frontend");
    let identity = load_or_create_identity(&fe_dir)?;
    let tls_fingerprint = coffer_tls::fingerprint(&identity.cert_der);
    let codes = dir.join("codes.txt");
    let accounts = Accounts::open(
        &format!(
            "sqlite://{}?mode=rwc",
            fe_dir.join("accounts.sqlite").display()
        ),
        &fe_dir.join("code.key"),
    )
    .await?;
    let config = Config {
        listen,
        identity,
        accounts,
        verifier: Verifier::DevFile(codes.clone()),
        vault: VaultLink {
            url: format!("https://127.0.0.1:{}", vault.addr.port()),
            tls_fingerprint: info.tls_fingerprint.clone(),
            token: info.token()?,
        },
        rate_limits,
    };
    let (addr, frontend) = coffer_frontend::server::spawn(config).await?;
    Ok(LocalStack {
        url: format!("https://localhost:{}", addr.port()),
        addr,
        tls_fingerprint,
        fleet_fingerprint: info.fleet_fingerprint,
        codes,
        frontend,
        vault,
    })
}

impl LocalStack {
    /// The latest development-verifier code for `account`.
    pub fn code_for(&self, account: &str) -> Option<String> {
        let text = fs::read_to_string(&self.codes).ok()?;
        text.lines()
            .rev()
            .find_map(|l| l.strip_prefix(&format!("{account} ")))
            .map(str::to_string)
    }
}
