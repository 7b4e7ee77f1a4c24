//! The node's network shell, on the shared server shell (`coffer-https`): HTTPS for the
//! front-ends, which pin the node's certificate and authenticate with the node token.
//!
//! `POST /v1/vault/{account-hex}` takes a channel message (`{"message": hex}`, see
//! [`coffer_vault_core::channel`]) and returns the sealed answer in the same shape;
//! `GET /v1/fleet` returns the fleet's public keys, their fingerprint and the guess budget.
//! The record change a request causes is committed, fsynced, before its answer is sealed.

use std::fs;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use coffer_https::{ApiError, BearerToken, JsonBody};
use coffer_vault_core::channel::Envelope;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::{NodeError, NodePaths, VaultNode, MIN_TOKEN_LEN};

/// Largest request body (a channel message is at most a few KiB of hex).
const MAX_BODY: usize = 16 * 1024;
/// Longest account id, in bytes.
const MAX_ACCOUNT: usize = 256;

struct NodeState {
    node: Mutex<VaultNode>,
    /// What `GET /v1/fleet` answers: fixed for the node's life, so kept outside the lock.
    fleet: Value,
    token: Vec<u8>,
}

/// The node, even after a request panicked while holding it: its SQLite transaction was
/// rolled back as the panic unwound, and nothing else in it can be left half-changed. One
/// account's bad request must not take the node away from every other account.
fn node(state: &NodeState) -> std::sync::MutexGuard<'_, VaultNode> {
    state
        .node
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn check_token(state: &NodeState, presented: &BearerToken) -> Result<(), ApiError> {
    if bool::from(presented.expose().as_bytes().ct_eq(&state.token)) {
        Ok(())
    } else {
        Err(ApiError::unauthorized("wrong front-end token"))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_account(hex: &str) -> Option<Vec<u8>> {
    if hex.is_empty() || hex.len() % 2 != 0 || hex.len() > 2 * MAX_ACCOUNT {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

async fn vault_call(
    State(state): State<Arc<NodeState>>,
    UrlPath(account): UrlPath<String>,
    token: BearerToken,
    JsonBody(envelope): JsonBody<Envelope>,
) -> Result<Json<Envelope>, ApiError> {
    check_token(&state, &token)?;
    let account = decode_account(&account)
        .ok_or_else(|| ApiError::bad_request("the account id must be 1 to 256 bytes in hex"))?;
    let worker = state.clone();
    let result =
        tokio::task::spawn_blocking(move || node(&worker).process(&account, &envelope.message))
            .await
            .map_err(|_| ApiError::internal("the request handler failed"))?;
    match result {
        Ok(message) => Ok(Json(Envelope { message })),
        Err(NodeError::Channel(e)) => Err(ApiError::bad_request(e.to_string())),
        Err(e) => {
            tracing::error!("vault request failed: {e}");
            Err(ApiError::unavailable(
                "the vault could not read its store; retry",
            ))
        }
    }
}

async fn fleet_info(
    State(state): State<Arc<NodeState>>,
    token: BearerToken,
) -> Result<Json<Value>, ApiError> {
    check_token(&state, &token)?;
    Ok(Json(state.fleet.clone()))
}

fn router(state: Arc<NodeState>) -> Router {
    coffer_https::typed_fallbacks(
        Router::new()
            .route("/v1/vault/{account}", post(vault_call))
            .route("/v1/fleet", get(fleet_info))
            .with_state(state),
    )
}

/// The shell's limits for a node: its clients are a few front-ends, each of which may keep
/// many connections open, so the per-address cap is the global one.
pub fn limits() -> coffer_https::Limits {
    let defaults = coffer_https::Limits::default();
    coffer_https::Limits {
        max_body: MAX_BODY,
        max_connections_per_address: defaults.max_connections,
        ..defaults
    }
}

/// Serves the node in `dir` on `listen` until `shutdown` resolves, then drains what is in
/// flight. `ready` is called with the bound address once the node accepts connections.
pub async fn serve(
    dir: &Path,
    listen: SocketAddr,
    shutdown: impl Future<Output = ()> + Send,
    ready: impl FnOnce(SocketAddr) + Send,
) -> Result<(), NodeError> {
    serve_with(dir, listen, limits(), shutdown, ready).await
}

/// [`serve`] with other connection limits: a node behind one front-end in the same process
/// (`coffer serve`) needs only a few connections, and must leave the descriptors to it.
pub async fn serve_with(
    dir: &Path,
    listen: SocketAddr,
    limits: coffer_https::Limits,
    shutdown: impl Future<Output = ()> + Send,
    ready: impl FnOnce(SocketAddr) + Send,
) -> Result<(), NodeError> {
    let paths = NodePaths::new(dir);
    let node = VaultNode::open(dir)?;
    let identity = coffer_tls::IdentityDir::new(dir)
        .load()
        .map_err(|e| NodeError::Config(e.to_string()))?;
    let token = fs::read_to_string(&paths.frontend_token)
        .map_err(|e| NodeError::io(&paths.frontend_token, e))?
        .trim()
        .as_bytes()
        .to_vec();
    if token.len() < MIN_TOKEN_LEN {
        return Err(NodeError::Config(format!(
            "{} holds a token of {} bytes; at least {MIN_TOKEN_LEN} are required",
            paths.frontend_token.display(),
            token.len(),
        )));
    }
    let tls = coffer_tls::server_config(&identity).map_err(|e| NodeError::Config(e.to_string()))?;
    let keys = node.fleet().keys();
    let fleet = json!({
        "fingerprint": keys.fingerprint(),
        "channel_key": hex(&keys.channel),
        "opaque_key": hex(&keys.opaque),
        "max_guesses": node.fleet().max_guesses(),
    });
    let state = Arc::new(NodeState {
        node: Mutex::new(node),
        fleet,
        token,
    });
    Ok(coffer_https::serve(listen, tls, router(state), limits, shutdown, ready).await?)
}

/// A node serving in the background.
pub struct Running {
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<Result<(), NodeError>>,
}

/// Starts serving the node in `dir` on `listen` with `limits` in a background task until
/// `shutdown`; returns once it accepts connections.
pub async fn spawn(
    dir: &Path,
    listen: SocketAddr,
    limits: coffer_https::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, NodeError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let dir = dir.to_path_buf();
    let task = tokio::spawn(async move {
        serve_with(&dir, listen, limits, shutdown, move |a| {
            let _ = tx.send(a);
        })
        .await
    });
    match rx.await {
        Ok(addr) => Ok(Running { addr, task }),
        Err(_) => Err(match task.await {
            Ok(Err(e)) => e,
            _ => NodeError::Config("the vault node stopped before it listened".into()),
        }),
    }
}
