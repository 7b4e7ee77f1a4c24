//! Talking to a front-end over HTTPS: the account steps, and the vault relay as a
//! [`VaultTransport`]. The front-end's TLS certificate is pinned by fingerprint; the vault
//! behind it is pinned separately, through OPAQUE ([`crate::password::FleetPin`]).

use coffer_vault_core::{Request, Response};
use serde_json::{json, Value};

use crate::error::ClientError;
use crate::password::VaultTransport;

pub struct Frontend {
    client: reqwest::Client,
    base: String,
}

impl Frontend {
    pub fn new(base: &str, tls_fingerprint: &str) -> Result<Frontend, ClientError> {
        let tls = coffer_tls::pinned_client_config(tls_fingerprint)
            .map_err(|e| ClientError::Internal(e.to_string()))?;
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
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::Unreachable(format!("{url}: {}", e.without_url())))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let message = body["error"].as_str().unwrap_or("no details").to_string();
        Err(match status.as_u16() {
            401 => ClientError::Usage(format!("the server refused: {message}")),
            400 | 413 => ClientError::Usage(format!("the server rejected the request: {message}")),
            429 => ClientError::Storage {
                action: "reach the server",
                message: format!("rate limited: {message}"),
                retryable: true,
            },
            _ => ClientError::Unreachable(format!("{url}: {status}: {message}")),
        })
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

    /// The vault relay for the account `credential` belongs to.
    pub fn vault(&self, credential: &str) -> FrontendVault<'_> {
        FrontendVault {
            frontend: self,
            credential: credential.to_string(),
        }
    }
}

pub struct FrontendVault<'a> {
    frontend: &'a Frontend,
    credential: String,
}

impl VaultTransport for FrontendVault<'_> {
    async fn call(&self, request: Request) -> Result<Response, ClientError> {
        let body =
            serde_json::to_value(&request).map_err(|e| ClientError::Internal(e.to_string()))?;
        let v = self
            .frontend
            .post("/v1/vault", Some(&self.credential), body)
            .await?;
        serde_json::from_value(v)
            .map_err(|e| ClientError::Internal(format!("malformed vault answer: {e}")))
    }
}
