//! The front-end's HTTPS API (axum over rustls).
//!
//! | method and path | auth | what |
//! |---|---|---|
//! | `POST /v1/accounts` `{"id"}` | — | start verification: a code goes to the verifier |
//! | `POST /v1/accounts/verify` `{"id","code"}` | — | returns `{"credential"}`, revoking older ones |
//! | `POST /v1/vault` (a vault request) | bearer credential | relayed, unread, to the vault for the caller's account |
//! | `GET /v1/fleet` | — | the vault fleet's key fingerprint and guess budget |
//! | `GET /openapi.json` | — | the OpenAPI document (`docs/openapi.json`) |
//!
//! Vault requests are relayed as bytes: the front-end neither parses nor keeps them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::account_id::AccountId;
use crate::accounts::{AccountError, Accounts};
use crate::limits::RateLimits;
use crate::verifier::Verifier;

/// Largest request body (a vault request is a few hundred bytes).
const MAX_BODY: usize = 16 * 1024;

/// Where and how to reach the vault node.
#[derive(Debug, Clone)]
pub struct VaultLink {
    /// `https://host:port`
    pub url: String,
    pub tls_fingerprint: String,
    pub token: String,
}

pub struct Config {
    pub listen: SocketAddr,
    pub identity: coffer_tls::Identity,
    pub accounts: Accounts,
    pub verifier: Verifier,
    pub vault: VaultLink,
    /// Per-account and per-address rate limits; off only for capacity benchmarks.
    pub rate_limits: bool,
}

struct Shared {
    accounts: Accounts,
    verifier: Verifier,
    vault: VaultLink,
    vault_http: reqwest::Client,
    limits: RateLimits,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn fail(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn account_error(e: AccountError) -> Response {
    match e {
        AccountError::MalformedCode => fail(StatusCode::BAD_REQUEST, &e.to_string()),
        AccountError::WrongCode { .. }
        | AccountError::NoPendingCode
        | AccountError::BadCredential => fail(StatusCode::UNAUTHORIZED, &e.to_string()),
        AccountError::TooManyFailures { .. } => fail(StatusCode::TOO_MANY_REQUESTS, &e.to_string()),
        AccountError::Db(_) | AccountError::CodeKey(_) | AccountError::CorruptRecord => {
            tracing::error!("account database: {e}");
            fail(
                StatusCode::SERVICE_UNAVAILABLE,
                "the account database is unavailable; retry",
            )
        }
    }
}

#[derive(Deserialize)]
struct RegisterBody {
    id: String,
}

#[derive(Deserialize)]
struct VerifyBody {
    id: String,
    code: String,
}

async fn register(
    State(s): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(body): Json<RegisterBody>,
) -> Response {
    if !s.limits.allow_code(&body.id, peer.ip()) {
        return fail(
            StatusCode::TOO_MANY_REQUESTS,
            "too many verification requests; wait and retry",
        );
    }
    let id = match AccountId::parse(&body.id) {
        Ok(id) => id,
        Err(e) => return fail(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let code = match s.accounts.register(&id, now()).await {
        Ok(c) => c,
        Err(e) => return account_error(e),
    };
    if let Err(e) = s.verifier.deliver(&id, &code).await {
        tracing::error!("{e}");
        return fail(
            StatusCode::BAD_GATEWAY,
            "the verification code could not be sent; retry",
        );
    }
    (StatusCode::ACCEPTED, Json(json!({ "sent": true }))).into_response()
}

async fn verify(
    State(s): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(body): Json<VerifyBody>,
) -> Response {
    if !s.limits.allow_attempt(&body.id, peer.ip()) {
        return fail(
            StatusCode::TOO_MANY_REQUESTS,
            "too many attempts; wait and retry",
        );
    }
    let id = match AccountId::parse(&body.id) {
        Ok(id) => id,
        Err(e) => return fail(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    match s.accounts.verify(&id, &body.code, now()).await {
        Ok(credential) => Json(json!({ "credential": credential.as_str() })).into_response(),
        Err(e) => account_error(e),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

async fn vault(
    State(s): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(credential) = bearer(&headers) else {
        return fail(StatusCode::UNAUTHORIZED, "a bearer credential is required");
    };
    let account = match s.accounts.authenticate(credential).await {
        Ok(a) => a,
        Err(e) => return account_error(e),
    };
    if !s.limits.allow_attempt(account.as_str(), peer.ip()) {
        return fail(
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests for this account; wait and retry",
        );
    }
    let hex: String = account
        .as_str()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    let url = format!("{}/v1/vault/{hex}", s.vault.url);
    let sent = s
        .vault_http
        .post(&url)
        .bearer_auth(&s.vault.token)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    match sent {
        Ok(resp) => {
            let status =
                StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            match resp.bytes().await {
                Ok(bytes) => {
                    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
                }
                Err(_) => fail(
                    StatusCode::BAD_GATEWAY,
                    "the vault's answer was cut off; retry",
                ),
            }
        }
        Err(e) => {
            tracing::error!("vault unreachable: {}", e.without_url());
            fail(StatusCode::BAD_GATEWAY, "the vault is unreachable; retry")
        }
    }
}

async fn fleet(State(s): State<Arc<Shared>>) -> Response {
    let sent = s
        .vault_http
        .get(format!("{}/v1/fleet", s.vault.url))
        .bearer_auth(&s.vault.token)
        .send()
        .await;
    match sent {
        Ok(resp) if resp.status().is_success() => match resp.json::<Value>().await {
            Ok(v) => Json(v).into_response(),
            Err(_) => fail(StatusCode::BAD_GATEWAY, "the vault's answer was malformed"),
        },
        _ => fail(StatusCode::BAD_GATEWAY, "the vault is unreachable; retry"),
    }
}

/// The OpenAPI document of this API, kept in the repository and served as is.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/v1/accounts", post(register))
        .route("/v1/accounts/verify", post(verify))
        .route("/v1/vault", post(vault))
        .route("/v1/fleet", get(fleet))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared)
}

/// Serves the front-end until the process ends; `ready` gets the bound address.
pub async fn serve(config: Config, ready: impl FnOnce(SocketAddr) + Send) -> std::io::Result<()> {
    let pinned = coffer_tls::pinned_client_config(&[&config.vault.tls_fingerprint])
        .map_err(std::io::Error::other)?;
    let vault_http = reqwest::Client::builder()
        .use_preconfigured_tls(pinned)
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(std::io::Error::other)?;
    let tls = coffer_tls::server_config(&config.identity).map_err(std::io::Error::other)?;
    let shared = Arc::new(Shared {
        accounts: config.accounts,
        verifier: config.verifier,
        vault: VaultLink {
            url: config.vault.url.trim_end_matches('/').to_string(),
            ..config.vault
        },
        vault_http,
        limits: RateLimits::new(config.rate_limits),
    });
    let handle = axum_server::Handle::new();
    let server = axum_server::bind_rustls(
        config.listen,
        axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls)),
    )
    .handle(handle.clone())
    .serve(router(shared).into_make_service_with_connect_info::<SocketAddr>());
    let announce = async {
        if let Some(addr) = handle.listening().await {
            ready(addr);
        }
    };
    let (served, ()) = tokio::join!(server, announce);
    served
}

/// Starts serving in a background task; returns the bound address once it listens.
pub async fn spawn(
    config: Config,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(serve(config, move |a| {
        let _ = tx.send(a);
    }));
    match rx.await {
        Ok(addr) => Ok((addr, task)),
        Err(_) => Err(match task.await {
            Ok(Err(e)) => e,
            _ => std::io::Error::other("the front-end stopped before it listened"),
        }),
    }
}
