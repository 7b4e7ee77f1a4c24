//! Delivering verification codes: the phone-number step.
//!
//! The development verifier appends codes to a file (and the log); the webhook verifier
//! posts them to a gateway (an SMS or e-mail service) as JSON `{"account", "code"}`.

use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub enum Verifier {
    /// Appends `account code` lines to this file, and logs them.
    DevFile(PathBuf),
    /// POSTs `{"account": …, "code": …}` to this URL.
    Webhook(String),
}

#[derive(Debug, thiserror::Error)]
#[error("could not deliver the verification code: {0}")]
pub struct DeliveryError(String);

impl Verifier {
    pub async fn deliver(&self, account: &str, code: &str) -> Result<(), DeliveryError> {
        match self {
            Verifier::DevFile(path) => {
                tracing::info!(account, code, "verification code (development verifier)");
                let line = format!("{account} {code}\n");
                let path = path.clone();
                tokio::task::spawn_blocking(move || {
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                        .and_then(|mut f| f.write_all(line.as_bytes()))
                })
                .await
                .map_err(|e| DeliveryError(e.to_string()))?
                .map_err(|e| DeliveryError(e.to_string()))
            }
            Verifier::Webhook(url) => {
                let tls =
                    coffer_tls::public_client_config().map_err(|e| DeliveryError(e.to_string()))?;
                let client = reqwest::Client::builder()
                    .use_preconfigured_tls(tls)
                    .build()
                    .map_err(|e| DeliveryError(e.to_string()))?;
                let resp = client
                    .post(url)
                    .json(&serde_json::json!({ "account": account, "code": code }))
                    .timeout(std::time::Duration::from_secs(10))
                    .send()
                    .await
                    .map_err(|e| DeliveryError(e.without_url().to_string()))?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(DeliveryError(format!(
                        "the gateway answered {}",
                        resp.status()
                    )))
                }
            }
        }
    }
}
