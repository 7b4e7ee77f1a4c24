//! Talking to a front-end over HTTPS: the account steps, the fleet's public keys, and the
//! vault relay as a [`VaultTransport`]. The front-end's TLS certificate is pinned by
//! fingerprint (the current one and, during a rotation, the next); the vault behind it is
//! pinned separately, by the fleet fingerprint, and reached through the end-to-end channel.

use coffer_vault_core::channel::Envelope;
use coffer_vault_core::FleetKeys;
use reqwest::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ClientError;
use crate::password::VaultTransport;

/// Accepts `url` as a server address: `https://` only, since the account credential and
/// the codes cross it.
pub fn check_https(url: &str) -> Result<(), ClientError> {
    match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") && !rest.is_empty() => Ok(()),
        _ => Err(ClientError::Usage(format!(
            "{url:?} is not an https:// address; Coffer servers are reached over HTTPS only"
        ))),
    }
}

pub struct Frontend {
    client: reqwest::Client,
    base: String,
}

/// Largest answer read from a server: a vault message is a few KiB; anything far larger is
/// a server misbehaving, refused before it can exhaust memory.
const MAX_ANSWER: usize = 64 * 1024;

/// The body of `resp`, read up to [`MAX_ANSWER`] bytes.
pub(crate) async fn read_capped(url: &str, mut resp: Response) -> Result<Vec<u8>, ClientError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| ClientError::Unreachable(format!("{url}: {}", e.without_url())))?
    {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(ClientError::Unreachable(format!(
                "{url}: the answer is larger than {MAX_ANSWER} bytes; refused"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The typed error body both servers send: `{"error": {"class", "message", "retryable",
/// "retry_after"}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    class: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    retry_after: Option<u64>,
}

/// What the fleet endpoint answers.
#[derive(Deserialize)]
struct FleetAnswer {
    #[serde(flatten)]
    keys: FleetKeys,
    #[allow(dead_code)]
    fingerprint: String,
    #[allow(dead_code)]
    max_guesses: u16,
}

impl Frontend {
    pub fn new<S: AsRef<str>>(base: &str, tls_fingerprints: &[S]) -> Result<Frontend, ClientError> {
        check_https(base)?;
        let tls = coffer_tls::pinned_client_config(tls_fingerprints)
            .map_err(|e| ClientError::Usage(e.to_string()))?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| ClientError::Internal(e.to_string()))?;
        Ok(Frontend {
            client,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder, url: &str) -> Result<Value, ClientError> {
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::Unreachable(format!("{url}: {}", e.without_url())))?;
        if resp.status().is_success() {
            let body = read_capped(url, resp).await?;
            return serde_json::from_slice(&body)
                .map_err(|e| ClientError::Unreachable(format!("{url}: a malformed answer: {e}")));
        }
        Err(error_from(url, resp).await)
    }

    async fn post(
        &self,
        path: &str,
        bearer: Option<&str>,
        body: Value,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.client.post(&url).json(&body);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        self.send(req, &url).await
    }

    /// Asks the server to send a verification code for `id`.
    pub async fn register_account(&self, id: &str) -> Result<(), ClientError> {
        self.post("/v1/accounts", None, json!({ "id": id }))
            .await
            .map(|_| ())
    }

    /// Trades the code for a fresh credential (older ones are revoked).
    pub async fn verify_account(&self, id: &str, code: &str) -> Result<String, ClientError> {
        let v = self
            .post(
                "/v1/accounts/verify",
                None,
                json!({ "id": id, "code": code }),
            )
            .await?;
        v["credential"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ClientError::Internal("the server sent no credential".into()))
    }

    /// The fleet's public keys as this front-end shows them: to be accepted only through
    /// [`crate::password::pin_fleet`].
    pub async fn fleet_keys(&self) -> Result<FleetKeys, ClientError> {
        let url = format!("{}/v1/fleet", self.base);
        let v = self.send(self.client.get(&url), &url).await?;
        serde_json::from_value::<FleetAnswer>(v)
            .map(|a| a.keys)
            .map_err(|e| ClientError::Unreachable(format!("{url}: a malformed answer: {e}")))
    }

    /// The vault relay for the account `credential` belongs to.
    pub fn vault(&self, credential: &str) -> FrontendVault<'_> {
        FrontendVault {
            frontend: self,
            credential: credential.to_string(),
        }
    }
}

/// A failed answer, from its status and typed body, as the error a user can act on.
async fn error_from(url: &str, resp: Response) -> ClientError {
    let status = resp.status();
    let header_wait = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body: Option<ErrorBody> = read_capped(url, resp)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let (class, message, body_wait) = match body {
        Some(b) => (b.error.class, b.error.message, b.error.retry_after),
        None => (String::new(), "no details".to_string(), None),
    };
    if status == StatusCode::TOO_MANY_REQUESTS || class == "rate-limited" {
        return ClientError::RateLimited {
            retry_after: header_wait.or(body_wait).unwrap_or(60).max(1),
        };
    }
    match status.as_u16() {
        401 | 403 => ClientError::Usage(format!(
            "the server refused: {message} (run `coffer account register` and `coffer account verify` again)"
        )),
        400 | 404 | 405 | 413 | 415 | 422 => {
            ClientError::Usage(format!("the server rejected the request: {message}"))
        }
        _ => ClientError::Unreachable(format!("{url}: {status}: {message}")),
    }
}

pub struct FrontendVault<'a> {
    frontend: &'a Frontend,
    credential: String,
}

impl VaultTransport for FrontendVault<'_> {
    async fn call(&self, message: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        let body = serde_json::to_value(Envelope { message })
            .map_err(|e| ClientError::Internal(e.to_string()))?;
        let v = self
            .frontend
            .post("/v1/vault", Some(&self.credential), body)
            .await?;
        serde_json::from_value::<Envelope>(v)
            .map(|e| e.message)
            .map_err(|_| ClientError::VaultNotAuthentic)
    }
}
