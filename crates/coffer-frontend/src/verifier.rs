//! Delivering verification codes: the phone-number step.
//!
//! The development verifier appends codes to a file only the server's user can read; the
//! webhook verifier posts them to a gateway (an SMS or e-mail service) as JSON
//! `{"account", "code"}`. Codes never go to the log.

use std::io::Write;
use std::path::PathBuf;

use crate::account_id::AccountId;
use crate::code::VerificationCode;

#[derive(Debug, Clone)]
pub enum Verifier {
    /// Appends `account code` lines to this file. It is created 0600; an existing file open
    /// to group or others (as earlier versions made it) is tightened to 0600 on the next
    /// delivery, with a warning: the codes it held are short-lived, so closing it from now
    /// on is what matters, and refusing would stop every older development setup.
    DevFile(PathBuf),
    /// POSTs `{"account": …, "code": …}` to this URL.
    Webhook(String),
}

#[derive(Debug, thiserror::Error)]
#[error("could not deliver the verification code: {0}")]
pub struct DeliveryError(String);

impl Verifier {
    pub async fn deliver(
        &self,
        account: &AccountId,
        code: &VerificationCode,
    ) -> Result<(), DeliveryError> {
        match self {
            Verifier::DevFile(path) => {
                let line = zeroize::Zeroizing::new(format!("{account} {}\n", code.as_str()));
                let file = path.clone();
                let was = tokio::task::spawn_blocking(move || {
                    let (mut f, was) = crate::private_file::open_append(&file)?;
                    f.write_all(line.as_bytes())?;
                    Ok::<_, std::io::Error>(was)
                })
                .await
                .map_err(|e| DeliveryError(e.to_string()))?
                .map_err(|e| DeliveryError(format!("{}: {e}", path.display())))?;
                if let Some(mode) = was {
                    tracing::warn!(
                        file = %path.display(),
                        "development codes file was mode {mode:o}; now 0600"
                    );
                }
                tracing::info!(%account, file = %path.display(), "verification code written (development verifier)");
                Ok(())
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
                    .json(
                        &serde_json::json!({ "account": account.as_str(), "code": code.as_str() }),
                    )
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &std::path::Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn the_codes_file_is_created_0600_and_a_loose_one_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("codes.txt");
        let alice = AccountId::parse("+15550100").unwrap();
        let code = VerificationCode::parse("01234567").unwrap();
        let verifier = Verifier::DevFile(path.clone());
        verifier.deliver(&alice, &code).await.unwrap();
        assert_eq!(mode(&path), 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        verifier.deliver(&alice, &code).await.unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "+15550100 01234567\n+15550100 01234567\n"
        );
    }

    #[tokio::test]
    async fn an_unwritable_codes_file_is_a_delivery_error() {
        let dir = tempfile::tempdir().unwrap();
        let alice = AccountId::parse("a").unwrap();
        let code = VerificationCode::parse("01234567").unwrap();
        let err = Verifier::DevFile(dir.path().join("missing").join("codes.txt"))
            .deliver(&alice, &code)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("codes.txt"), "{err}");
    }
}
