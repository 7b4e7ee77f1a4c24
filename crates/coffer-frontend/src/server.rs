//! The front-end's HTTPS API, on the shared server shell (`coffer-https`: HTTP/1.1 over
//! rustls, timeouts, connection caps, typed JSON errors, graceful shutdown).
//!
//! | method and path | auth | what |
//! |---|---|---|
//! | `POST /v1/accounts` `{"id"}` | — | start verification: a code goes to the verifier |
//! | `POST /v1/accounts/verify` `{"id","code"}` | — | returns `{"credential"}`, revoking older ones |
//! | `POST /v1/vault` `{"message"}` | bearer credential | relayed, unread, to the vault for the caller's account |
//! | `GET /v1/fleet` | — | the vault fleet's public keys, their fingerprint and the guess budget |
//! | `GET /openapi.json` | — | the OpenAPI document (`docs/openapi.json`) |
//!
//! Handlers are in [`crate::api`]; the link to the vault node in [`crate::relay`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::accounts::Accounts;
use crate::api;
use crate::limits::RateLimits;
use crate::relay::{VaultLink, VaultRelay};
use crate::verifier::Verifier;

/// Largest request body: a vault message is at most a few KiB of hex.
pub const MAX_BODY: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrontendError {
    #[error("{0}")]
    Config(String),
    #[error("TLS: {0}")]
    Tls(#[from] coffer_tls::TlsError),
    #[error(transparent)]
    Serve(#[from] coffer_https::ServeError),
}

impl FrontendError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, FrontendError::Serve(e) if e.retryable())
    }
}

pub struct Config {
    pub listen: SocketAddr,
    pub identity: coffer_tls::Identity,
    pub accounts: Accounts,
    pub verifier: Verifier,
    pub vault: VaultLink,
    /// Per-account and per-address rate limits; off only for capacity benchmarks and for
    /// tests that show the vault's own limits hold without them.
    pub rate_limits: bool,
    /// Timeouts, sizes and connection caps ([`limits`] for a public front-end).
    pub limits: coffer_https::Limits,
}

/// What every handler shares.
pub(crate) struct Shared {
    pub accounts: Accounts,
    pub verifier: Verifier,
    pub vault: VaultRelay,
    pub limits: RateLimits,
}

/// The OpenAPI document of this API, kept in the repository and served as is.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

fn router(shared: Arc<Shared>) -> Router {
    coffer_https::typed_fallbacks(
        Router::new()
            .route("/openapi.json", get(api::openapi))
            .route("/v1/accounts", post(api::register))
            .route("/v1/accounts/verify", post(api::verify))
            .route("/v1/vault", post(api::vault))
            .route("/v1/fleet", get(api::fleet))
            .with_state(shared),
    )
}

/// The shell's limits for a public front-end.
pub fn limits() -> coffer_https::Limits {
    coffer_https::Limits {
        max_body: MAX_BODY,
        ..coffer_https::Limits::default()
    }
}

/// Serves the front-end until `shutdown` resolves, then drains what is in flight; `ready`
/// gets the bound address.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
    ready: impl FnOnce(SocketAddr) + Send,
) -> Result<(), FrontendError> {
    let tls = coffer_tls::server_config(&config.identity)?;
    let shared = Arc::new(Shared {
        accounts: config.accounts,
        verifier: config.verifier,
        vault: VaultRelay::new(config.vault)?,
        limits: RateLimits::new(config.rate_limits),
    });
    coffer_https::serve(
        config.listen,
        tls,
        router(shared),
        limits(),
        shutdown,
        ready,
    )
    .await?;
    Ok(())
}

/// A front-end serving in a background task.
pub struct Running {
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<Result<(), FrontendError>>,
}

/// Starts serving in a background task until `shutdown`; returns once it listens.
pub async fn spawn(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, FrontendError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(serve(config, shutdown, move |a| {
        let _ = tx.send(a);
    }));
    match rx.await {
        Ok(addr) => Ok(Running { addr, task }),
        Err(_) => Err(match task.await {
            Ok(Err(e)) => e,
            _ => FrontendError::Config("the front-end stopped before it listened".into()),
        }),
    }
}
