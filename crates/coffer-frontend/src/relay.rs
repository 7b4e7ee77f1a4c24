//! The link to the vault node: HTTPS with the node's certificate pinned (the current one and,
//! during a rotation, the next) and the node token as a bearer credential. Messages cross it
//! as the client sealed them; the front-end checks only their shape.

use std::time::Duration;

use coffer_https::ApiError;
use serde::{Deserialize, Serialize};

use crate::account_id::AccountId;
use crate::server::FrontendError;

/// The channel's largest message, in bytes: a Noise ephemeral key, four padded 1 KiB
/// blocks and a tag (`coffer_vault_core::channel::MAX_MESSAGE`; `coffer-stack` checks the
/// two agree).
pub const MAX_VAULT_MESSAGE: usize = 32 + 4 * 1024 + 16;
/// The guess budgets a fleet can have (`coffer_vault_core::MAX_GUESSES_RANGE`; `coffer-stack`
/// checks the two agree).
pub const MAX_GUESSES_RANGE: std::ops::RangeInclusive<u16> = 1..=100;
/// Shortest node token accepted: 32 bytes, as `coffer vault init` makes.
pub const MIN_TOKEN_LEN: usize = 32;

/// How to reach the vault node.
#[derive(Clone)]
pub struct VaultLink {
    url: String,
    tls_fingerprints: Vec<String>,
    token: String,
}

impl std::fmt::Debug for VaultLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultLink")
            .field("url", &self.url)
            .field("tls_fingerprints", &self.tls_fingerprints)
            .finish_non_exhaustive()
    }
}

impl VaultLink {
    /// `url` is `https://host:port` (plain HTTP would carry the token in clear and skip the
    /// pin); `tls_fingerprints` are 64 hex digits each; `token` is at least 32 bytes.
    pub fn new(
        url: &str,
        tls_fingerprints: Vec<String>,
        token: &str,
    ) -> Result<VaultLink, FrontendError> {
        let config = |m: String| FrontendError::Config(m);
        match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") && !rest.is_empty() => {}
            _ => {
                return Err(config(format!(
                    "the vault node {url:?} is not an https:// address; the node token must not cross in clear"
                )))
            }
        }
        if tls_fingerprints.is_empty() {
            return Err(config(
                "the vault node's certificate fingerprint is missing".into(),
            ));
        }
        if let Some(bad) = tls_fingerprints
            .iter()
            .find(|f| !coffer_tls::is_fingerprint(f))
        {
            return Err(config(format!(
                "{bad:?} is not a certificate fingerprint (64 hex digits)"
            )));
        }
        let token = token.trim();
        if token.len() < MIN_TOKEN_LEN {
            return Err(config(format!(
                "the vault node token is {} bytes; at least {MIN_TOKEN_LEN} are required",
                token.len()
            )));
        }
        Ok(VaultLink {
            url: url.trim_end_matches('/').to_string(),
            tls_fingerprints,
            token: token.to_string(),
        })
    }
}

/// Whether `s` is lower-case hex.
fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What crosses both hops: `{"message": "<lower-case hex>"}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultMessage {
    pub message: String,
}

impl VaultMessage {
    /// Whether this is the shape of a channel message: lower-case hex of 1 to
    /// [`MAX_VAULT_MESSAGE`] bytes.
    pub fn is_well_formed(&self) -> bool {
        let m = &self.message;
        !m.is_empty() && m.len() % 2 == 0 && m.len() <= 2 * MAX_VAULT_MESSAGE && is_lower_hex(m)
    }
}

/// The fleet's public facts, as the node publishes them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    pub fingerprint: String,
    pub channel_key: String,
    pub opaque_key: String,
    pub max_guesses: u16,
}

impl Fleet {
    /// Whether this is what a vault node publishes: three 32-byte values as 64 lower-case
    /// hex digits each, and a guess budget in [`MAX_GUESSES_RANGE`]. Only such an answer is
    /// passed on, so the published schema holds whatever the node sends.
    pub fn is_well_formed(&self) -> bool {
        let hex32 = |s: &str| s.len() == 64 && is_lower_hex(s);
        hex32(&self.fingerprint)
            && hex32(&self.channel_key)
            && hex32(&self.opaque_key)
            && MAX_GUESSES_RANGE.contains(&self.max_guesses)
    }
}

pub struct VaultRelay {
    link: VaultLink,
    http: reqwest::Client,
    /// The fleet's facts never change while the node runs: asked once, then kept, so that
    /// anonymous `GET /v1/fleet` requests cost the node nothing.
    fleet: tokio::sync::OnceCell<Fleet>,
}

fn unreachable(e: reqwest::Error) -> ApiError {
    tracing::error!("vault node unreachable: {}", e.without_url());
    ApiError::bad_gateway("the vault is unreachable; retry")
}

impl VaultRelay {
    pub fn new(link: VaultLink) -> Result<VaultRelay, FrontendError> {
        let pinned = coffer_tls::pinned_client_config(&link.tls_fingerprints)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(pinned)
            // Below the node's 30 s request limit, so the node's answer, not ours, decides;
            // idle connections closed before the node's 10 s keep-alive limit.
            .timeout(Duration::from_secs(25))
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| FrontendError::Config(e.to_string()))?;
        Ok(VaultRelay {
            link,
            http,
            fleet: tokio::sync::OnceCell::new(),
        })
    }

    /// Relays a well-formed message for `account`; the answer, or the error to answer with.
    pub async fn call(
        &self,
        account: &AccountId,
        message: VaultMessage,
    ) -> Result<VaultMessage, ApiError> {
        let hex: String = account
            .as_str()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        let resp = self
            .http
            .post(format!("{}/v1/vault/{hex}", self.link.url))
            .bearer_auth(&self.link.token)
            .json(&message)
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status();
        if status.is_success() {
            return match resp.json::<VaultMessage>().await {
                Ok(answer) if answer.is_well_formed() => Ok(answer),
                _ => Err(ApiError::bad_gateway(
                    "the vault's answer was malformed; retry",
                )),
            };
        }
        Err(match status.as_u16() {
            // The node could not open the message: not sealed for this fleet and account.
            400 | 413 | 422 => ApiError::bad_request(
                "the vault could not open the message: not sealed for this fleet and account",
            ),
            401 | 403 => {
                tracing::error!("the vault node refused this front-end's token");
                ApiError::bad_gateway("the vault refused this front-end; an operator must look")
                    .with_retryable(false)
            }
            _ => ApiError::unavailable("the vault is unavailable; retry"),
        })
    }

    /// The fleet's facts, from the node the first time they are asked for (and again after
    /// a failure), then from memory.
    pub async fn fleet(&self) -> Result<Fleet, ApiError> {
        self.fleet
            .get_or_try_init(|| self.fetch_fleet())
            .await
            .cloned()
    }

    async fn fetch_fleet(&self) -> Result<Fleet, ApiError> {
        let resp = self
            .http
            .get(format!("{}/v1/fleet", self.link.url))
            .bearer_auth(&self.link.token)
            .send()
            .await
            .map_err(unreachable)?;
        if !resp.status().is_success() {
            return Err(ApiError::bad_gateway("the vault did not answer; retry"));
        }
        match resp.json::<Fleet>().await {
            Ok(fleet) if fleet.is_well_formed() => Ok(fleet),
            _ => Err(ApiError::bad_gateway(
                "the vault's answer was malformed; retry",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_https_with_real_fingerprints_and_long_tokens() {
        let fp = "ab".repeat(32);
        let token = "t".repeat(64);
        assert!(VaultLink::new("https://127.0.0.1:7443", vec![fp.clone()], &token).is_ok());
        for (url, fps, token) in [
            ("http://127.0.0.1:7443", vec![fp.clone()], token.as_str()),
            ("127.0.0.1:7443", vec![fp.clone()], token.as_str()),
            ("https://127.0.0.1:7443", vec![], token.as_str()),
            (
                "https://127.0.0.1:7443",
                vec!["0000".into()],
                token.as_str(),
            ),
            ("https://127.0.0.1:7443", vec![fp.clone()], ""),
            ("https://127.0.0.1:7443", vec![fp.clone()], "short"),
        ] {
            assert!(VaultLink::new(url, fps, token).is_err(), "{url} {token:?}");
        }
    }

    #[test]
    fn fleets_are_three_hex_keys_and_a_budget_in_range() {
        let hex = "0123456789abcdef".repeat(4);
        let fleet = |fingerprint: &str, channel_key: &str, max_guesses: u16| Fleet {
            fingerprint: fingerprint.into(),
            channel_key: channel_key.into(),
            opaque_key: hex.clone(),
            max_guesses,
        };
        assert!(fleet(&hex, &hex, 10).is_well_formed());
        assert!(fleet(&hex, &hex, 1).is_well_formed());
        assert!(fleet(&hex, &hex, 100).is_well_formed());
        assert!(!fleet(&hex, &hex, 0).is_well_formed());
        assert!(!fleet(&hex, &hex, 101).is_well_formed());
        assert!(!fleet(&hex.to_uppercase(), &hex, 10).is_well_formed());
        assert!(!fleet(&hex, &hex[2..], 10).is_well_formed());
        assert!(!fleet(&hex, &format!("{hex}00"), 10).is_well_formed());
    }

    #[test]
    fn messages_are_lower_case_hex_within_the_channel_limit() {
        let ok = |m: &str| VaultMessage { message: m.into() }.is_well_formed();
        assert!(ok("00ff"));
        assert!(ok(&"a".repeat(2 * MAX_VAULT_MESSAGE)));
        for bad in [
            "",
            "0",
            "zz",
            "00FF",
            &"a".repeat(2 * MAX_VAULT_MESSAGE + 2),
        ] {
            assert!(!ok(bad), "{bad:?}");
        }
    }
}
