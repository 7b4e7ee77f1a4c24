//! The front-end's handlers. Each one charges the caller's address first, before it looks
//! anything up, then checks the account id, then charges the account.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use coffer_https::{ApiError, BearerToken, JsonBody};
use serde::Deserialize;
use serde_json::json;

use crate::account_id::AccountId;
use crate::accounts::AccountError;
use crate::limits::{Action, Limited};
use crate::relay::{Fleet, VaultMessage};
use crate::server::{Shared, OPENAPI};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn limited(l: Limited) -> ApiError {
    ApiError::rate_limited(l.to_string(), l.retry_after())
}

fn account_error(e: AccountError) -> ApiError {
    match e {
        AccountError::MalformedCode => ApiError::bad_request(e.to_string()),
        AccountError::WrongCode { .. } | AccountError::NoPendingCode => {
            ApiError::unauthorized(e.to_string())
        }
        AccountError::BadCredential => ApiError::unauthorized(
            "the credential is not valid (revoked or unknown); verify the account again",
        )
        .with_challenge(coffer_https::INVALID_TOKEN_CHALLENGE),
        AccountError::TooManyFailures { retry_after_secs } => {
            ApiError::rate_limited(e.to_string(), Duration::from_secs(retry_after_secs.max(1)))
        }
        AccountError::Db(_) | AccountError::CodeKey(_) | AccountError::CorruptRecord => {
            tracing::error!("account database: {e}");
            ApiError::unavailable("the account database is unavailable; retry")
        }
    }
}

fn account_id(id: &str) -> Result<AccountId, ApiError> {
    AccountId::parse(id).map_err(|e| ApiError::bad_request(e.to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterBody {
    id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyBody {
    id: String,
    code: String,
}

pub(crate) async fn register(
    State(s): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    JsonBody(body): JsonBody<RegisterBody>,
) -> Result<Response, ApiError> {
    s.limits
        .address(Action::CodeRequest, peer.ip())
        .map_err(limited)?;
    let id = account_id(&body.id)?;
    s.limits
        .account(Action::CodeRequest, &id)
        .map_err(limited)?;
    let code = s
        .accounts
        .register(&id, now())
        .await
        .map_err(account_error)?;
    s.verifier.deliver(&id, &code).await.map_err(|e| {
        tracing::error!("{e}");
        ApiError::bad_gateway("the verification code could not be sent; retry")
    })?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "sent": true }))).into_response())
}

pub(crate) async fn verify(
    State(s): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    JsonBody(body): JsonBody<VerifyBody>,
) -> Result<Response, ApiError> {
    s.limits
        .address(Action::CodeCheck, peer.ip())
        .map_err(limited)?;
    let id = account_id(&body.id)?;
    s.limits.account(Action::CodeCheck, &id).map_err(limited)?;
    let credential = s
        .accounts
        .verify(&id, &body.code, now())
        .await
        .map_err(account_error)?;
    Ok(Json(json!({ "credential": credential.as_str() })).into_response())
}

pub(crate) async fn vault(
    State(s): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    credential: BearerToken,
    JsonBody(message): JsonBody<VaultMessage>,
) -> Result<Json<VaultMessage>, ApiError> {
    // The address pays before the credential is looked up, so a flood of made-up
    // credentials costs the database nothing past the limit.
    s.limits
        .address(Action::VaultCall, peer.ip())
        .map_err(limited)?;
    let account = s
        .accounts
        .authenticate(credential.expose())
        .await
        .map_err(account_error)?;
    s.limits
        .account(Action::VaultCall, &account)
        .map_err(limited)?;
    if !message.is_well_formed() {
        return Err(ApiError::bad_request(
            "message: lower-case hex of a vault channel message (at most 4144 bytes)",
        ));
    }
    s.vault.call(&account, message).await.map(Json)
}

pub(crate) async fn fleet(
    State(s): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Result<Json<Fleet>, ApiError> {
    // Anonymous: the address pays, from the vault calls' budget (it is their first step).
    s.limits
        .address(Action::VaultCall, peer.ip())
        .map_err(limited)?;
    s.vault.fleet().await.map(Json)
}

pub(crate) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
