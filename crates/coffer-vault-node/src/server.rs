//! The node's network shell: HTTPS (rustls) for the front-ends, which authenticate with a
//! bearer token and pin the node's TLS certificate.
//!
//! `POST /v1/vault/{account-hex}` takes a channel message (`{"message": hex}`, see
//! [`coffer_vault_core::channel`]) and returns the sealed answer in the same shape;
//! `GET /v1/fleet` returns the fleet's public keys, their fingerprint and the guess budget.
//! The record change a request causes is committed, fsynced, before its answer is sealed.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use coffer_vault_core::channel::Envelope;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::{NodeError, NodePaths, VaultNode};

/// Largest request body accepted (OPAQUE messages and a K blob are a few hundred bytes).
const MAX_BODY: usize = 16 * 1024;
/// Longest account id, in bytes.
const MAX_ACCOUNT: usize = 256;

struct Shared {
    node: Mutex<VaultNode>,
    token: Vec<u8>,
}

type ApiError = (StatusCode, Json<Value>);

fn error(status: StatusCode, message: &str) -> ApiError {
    (status, Json(json!({ "error": message })))
}

fn check_token(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(presented.as_bytes().ct_eq(&shared.token)) {
        Ok(())
    } else {
        Err(error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong front-end token",
        ))
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
    State(shared): State<Arc<Shared>>,
    UrlPath(account): UrlPath<String>,
    headers: HeaderMap,
    Json(envelope): Json<Envelope>,
) -> Result<Json<Envelope>, ApiError> {
    check_token(&shared, &headers)?;
    let account = decode_account(&account).ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "the account id must be 1 to 256 bytes in hex",
        )
    })?;
    let worker = shared.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut node = worker
            .node
            .lock()
            .map_err(|_| NodeError::Config("node lock poisoned".into()))?;
        node.process(&account, &envelope.message)
    })
    .await
    .map_err(|_| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request handler failed",
        )
    })?;
    match result {
        Ok(message) => Ok(Json(Envelope { message })),
        Err(NodeError::Channel(e)) => Err(error(StatusCode::BAD_REQUEST, &e.to_string())),
        Err(e) => {
            tracing::error!("vault request failed: {e}");
            Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the vault could not commit the request; retry",
            ))
        }
    }
}

async fn fleet_info(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    check_token(&shared, &headers)?;
    let node = shared
        .node
        .lock()
        .map_err(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "node lock poisoned"))?;
    let keys = node.fleet().keys();
    Ok(Json(json!({
        "fingerprint": keys.fingerprint(),
        "channel_key": hex(&keys.channel),
        "opaque_key": hex(&keys.opaque),
        "max_guesses": node.fleet().max_guesses(),
    })))
}

/// The router, for tests and for embedding.
fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/vault/{account}", post(vault_call))
        .route("/v1/fleet", get(fleet_info))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared)
}

/// Serves the node in `dir` on `listen` until the process ends. `ready` is called with the
/// bound address once the node accepts connections.
pub async fn serve(
    dir: &Path,
    listen: SocketAddr,
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
    if token.len() < crate::MIN_TOKEN_LEN {
        return Err(NodeError::Config(format!(
            "{} holds a token of {} bytes; at least {} are required",
            paths.frontend_token.display(),
            token.len(),
            crate::MIN_TOKEN_LEN
        )));
    }
    let tls = coffer_tls::server_config(&identity).map_err(|e| NodeError::Config(e.to_string()))?;
    let shared = Arc::new(Shared {
        node: Mutex::new(node),
        token,
    });
    let handle = axum_server::Handle::new();
    let server = axum_server::bind_rustls(
        listen,
        axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls)),
    )
    .handle(handle.clone())
    .serve(router(shared).into_make_service());
    let announce = async {
        if let Some(addr) = handle.listening().await {
            ready(addr);
        }
    };
    let (served, ()) = tokio::join!(server, announce);
    served.map_err(|e| NodeError::io(Path::new("listener"), e))
}

/// A node serving in the background.
pub struct Running {
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<Result<(), NodeError>>,
}

/// Starts serving the node in `dir` on `listen` in a background task; returns once it
/// accepts connections.
pub async fn spawn(dir: &Path, listen: SocketAddr) -> Result<Running, NodeError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let dir = dir.to_path_buf();
    let task = tokio::spawn(async move {
        serve(&dir, listen, move |a| {
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
