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
use coffer_frontend::relay::VaultLink;
use coffer_frontend::server::{Config, FrontendError};
use coffer_frontend::verifier::Verifier;
use tokio::sync::watch;

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
    #[error("front-end: {0}")]
    Frontend(#[from] FrontendError),
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
    /// Where the development verifier writes codes (when it is the one in use).
    pub codes: PathBuf,
    pub frontend: tokio::task::JoinHandle<Result<(), FrontendError>>,
    pub vault: coffer_vault_node::server::Running,
    stop: watch::Sender<bool>,
}

const NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// The development certificate kept in `dir`, made on first use.
pub fn load_or_create_identity(dir: &Path) -> Result<coffer_tls::Identity, LocalError> {
    let names: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
    Ok(coffer_tls::IdentityDir::new(dir).load_or_create(&names)?)
}

/// Connections the embedded node takes: only the front-end beside it connects.
const NODE_CONNECTIONS: usize = 64;

/// The two servers' limits when they share one process, and so one open-file limit: the
/// node takes a few connections, and the front-end's cap leaves room for them (the node's
/// side and the front-end's own side of each).
fn limits() -> (coffer_https::Limits, coffer_https::Limits) {
    let node = coffer_https::Limits {
        max_connections: NODE_CONNECTIONS,
        max_connections_per_address: NODE_CONNECTIONS,
        ..coffer_vault_node::server::limits()
    };
    let mut frontend = coffer_frontend::server::limits();
    if let Some(limit) = coffer_https::raise_descriptor_limit() {
        if let Some(budget) = coffer_https::descriptor_budget(frontend.max_connections, limit) {
            frontend.max_connections = budget.saturating_sub(2 * NODE_CONNECTIONS).max(1);
        }
    }
    (node, frontend)
}

/// Creates `dir` with mode 0700, or tightens it: it holds the codes file and the stores.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// How the stack delivers verification codes.
#[derive(Debug, Clone)]
pub enum Codes {
    /// To `DIR/codes.txt` (mode 0600): development only.
    DevFile,
    /// POSTed to this gateway.
    Webhook(String),
}

/// A future that resolves once `stop` is told to.
async fn stopped(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Starts (creating on first use) the stack in `dir`, the front-end on `listen`.
pub async fn start(
    dir: &Path,
    listen: SocketAddr,
    rate_limits: bool,
    codes_to: Codes,
) -> Result<LocalStack, LocalError> {
    let names: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
    private_dir(dir)?;
    let node_dir = dir.join("vault");
    let info =
        coffer_vault_node::init_or_open(&node_dir, coffer_vault_core::DEFAULT_MAX_GUESSES, &names)?;
    let (stop, rx) = watch::channel(false);
    let (node_limits, frontend_limits) = limits();
    let vault = coffer_vault_node::server::spawn(
        &node_dir,
        "127.0.0.1:0".parse().expect("valid"),
        node_limits,
        stopped(rx.clone()),
    )
    .await?;
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
    let mut node_certificates = vec![info.tls_fingerprint.clone()];
    node_certificates.extend(info.next_tls_fingerprint.clone());
    let config = Config {
        listen,
        identity,
        accounts,
        verifier: match codes_to {
            Codes::DevFile => Verifier::DevFile(codes.clone()),
            Codes::Webhook(url) => Verifier::Webhook(url),
        },
        vault: VaultLink::new(
            &format!("https://127.0.0.1:{}", vault.addr.port()),
            node_certificates,
            &info.token()?,
        )?,
        rate_limits,
        limits: frontend_limits,
    };
    let coffer_frontend::server::Running {
        addr,
        task: frontend,
    } = coffer_frontend::server::spawn(config, stopped(rx)).await?;
    Ok(LocalStack {
        url: format!("https://localhost:{}", addr.port()),
        addr,
        tls_fingerprint,
        fleet_fingerprint: info.fleet_fingerprint,
        codes,
        frontend,
        vault,
        stop,
    })
}

impl LocalStack {
    /// Stops both servers: no new connections at once, requests in flight drained.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.frontend.await;
        let _ = self.vault.task.await;
    }

    /// The latest development-verifier code for `account`.
    pub fn code_for(&self, account: &str) -> Option<String> {
        let text = fs::read_to_string(&self.codes).ok()?;
        text.lines()
            .rev()
            .find_map(|l| l.strip_prefix(&format!("{account} ")))
            .map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_front_end_and_the_channel_agree_on_the_largest_message() {
        assert_eq!(
            coffer_frontend::relay::MAX_VAULT_MESSAGE,
            coffer_vault_core::channel::MAX_MESSAGE
        );
    }

    #[test]
    fn the_front_end_and_the_vault_agree_on_the_guess_budgets() {
        assert_eq!(
            coffer_frontend::relay::MAX_GUESSES_RANGE,
            coffer_vault_core::MAX_GUESSES_RANGE
        );
    }
}
