//! A [`VaultTransport`] over HTTPS straight to a vault node, as a front-end reaches it (with
//! the node token), for tests, benchmarks and single-host set-ups. The node's TLS
//! certificate is pinned by fingerprint.

use coffer_vault_core::channel::Envelope;

use crate::error::ClientError;
use crate::frontend_http::check_https;
use crate::password::VaultTransport;

pub struct VaultHttp {
    client: reqwest::Client,
    base: String,
    token: String,
    account_hex: String,
}

impl VaultHttp {
    /// `base` is `https://host:port`; `tls_fingerprint` pins the node's certificate;
    /// `token` is the front-end token; requests are for `account`.
    pub fn new(
        base: &str,
        tls_fingerprint: &str,
        token: &str,
        account: &[u8],
    ) -> Result<VaultHttp, ClientError> {
        check_https(base)?;
        let tls = coffer_tls::pinned_client_config(&[tls_fingerprint])
            .map_err(|e| ClientError::Usage(e.to_string()))?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| ClientError::Internal(e.to_string()))?;
        Ok(VaultHttp {
            client,
            base: base.trim_end_matches('/').to_string(),
            token: token.trim().to_string(),
            account_hex: account.iter().map(|b| format!("{b:02x}")).collect(),
        })
    }
}

impl VaultTransport for VaultHttp {
    async fn call(&self, message: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}/v1/vault/{}", self.base, self.account_hex);
        let unreachable = |e: reqwest::Error| ClientError::Unreachable(format!("{url}: {e}"));
        let resp = self
            .client
            .post(&url)
            .bearer_auth(&self.token)
            .json(&Envelope { message })
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status();
        let body = crate::frontend_http::read_capped(&url, resp).await?;
        if !status.is_success() {
            let body = String::from_utf8_lossy(&body);
            return Err(if status.is_server_error() {
                ClientError::Unreachable(format!("{url}: {status}: {body}"))
            } else {
                ClientError::Usage(format!("the vault node refused: {status}: {body}"))
            });
        }
        serde_json::from_slice::<Envelope>(&body)
            .map(|e| e.message)
            .map_err(|e| ClientError::Unreachable(format!("{url}: a malformed answer: {e}")))
    }
}
