//! Vault records and their sealed form at rest.
//!
//! A sealed record is `nonce (12) || AES-256-GCM(sealing key, padded record) || tag (16)`,
//! with the account id as associated data, so that a record copied to another account's
//! slot fails to open. Every record is padded to [`PADDED_LEN`] bytes before sealing, so a
//! sealed record's length says nothing about its state.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::suite::KsfParams;
use crate::VaultError;

/// Bytes of every record before sealing (a length prefix, the record, zero padding).
pub const PADDED_LEN: usize = 2048;
/// Bytes of every sealed record.
pub const SEALED_LEN: usize = 12 + PADDED_LEN + 16;
const AAD_LABEL: &[u8] = b"coffer/v1/vault/record\0";

/// What the vault keeps per account.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    Live(Live),
    /// Erased after too many wrong passwords: only the fact remains.
    Locked {
        max_guesses: u16,
    },
}

/// A record that still holds its secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Live {
    /// The OPAQUE `ServerRegistration` (the password file).
    #[serde(with = "crate::hex")]
    pub registration: Vec<u8>,
    /// K, sealed by the client under a key derived from the OPAQUE export key.
    #[serde(with = "crate::hex")]
    pub k_blob: Vec<u8>,
    /// SHA-256 of the K proof.
    #[serde(with = "crate::hex")]
    pub k_verifier: Vec<u8>,
    pub ksf: KsfParams,
    pub max_guesses: u16,
    pub guesses_left: u16,
    /// The `ServerLogin` state of a recovery whose guess is already spent.
    #[serde(with = "crate::hex")]
    pub pending_login: Vec<u8>,
    /// SHA-256 of the single-use token from the last successful recovery.
    #[serde(with = "crate::hex")]
    pub session_token: Vec<u8>,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Record::Live(live) => write!(
                f,
                "Live {{ guesses_left: {}/{}, login pending: {} }}",
                live.guesses_left,
                live.max_guesses,
                !live.pending_login.is_empty()
            ),
            Record::Locked { .. } => write!(f, "Locked"),
        }
    }
}

fn aad(account: &[u8]) -> Vec<u8> {
    let mut aad = AAD_LABEL.to_vec();
    aad.extend_from_slice(account);
    aad
}

impl Record {
    pub fn seal<R: RngCore + CryptoRng>(
        &self,
        sealing_key: &[u8; 32],
        account: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, VaultError> {
        let json = Zeroizing::new(
            serde_json::to_vec(self).map_err(|e| VaultError::Internal(e.to_string()))?,
        );
        if 4 + json.len() > PADDED_LEN {
            return Err(VaultError::Internal(format!(
                "record of {} bytes does not fit the {PADDED_LEN}-byte padding",
                json.len()
            )));
        }
        let mut out = vec![0u8; SEALED_LEN];
        rng.fill_bytes(&mut out[..12]);
        let (nonce, rest) = out.split_at_mut(12);
        let (body, tag_out) = rest.split_at_mut(PADDED_LEN);
        body[..4].copy_from_slice(&(json.len() as u32).to_be_bytes());
        body[4..4 + json.len()].copy_from_slice(&json);
        let cipher = Aes256Gcm::new_from_slice(sealing_key).expect("32-byte key");
        let tag = cipher
            .encrypt_inout_detached(
                (&*nonce).try_into().expect("12-byte nonce"),
                &aad(account),
                body.into(),
            )
            .map_err(|_| VaultError::Internal("sealing failed".into()))?;
        tag_out.copy_from_slice(&tag);
        Ok(out)
    }

    /// Opens a sealed record of `account`. Fails on any change, and on a record sealed for
    /// another account or under another key.
    pub fn open(
        sealed: &[u8],
        sealing_key: &[u8; 32],
        account: &[u8],
    ) -> Result<Record, VaultError> {
        if sealed.len() != SEALED_LEN {
            return Err(VaultError::BadRecord);
        }
        let (nonce, rest) = sealed.split_at(12);
        let (body, tag) = rest.split_at(PADDED_LEN);
        let mut plain = Zeroizing::new(body.to_vec());
        let cipher = Aes256Gcm::new_from_slice(sealing_key).expect("32-byte key");
        let tag = tag.try_into().map_err(|_| VaultError::BadRecord)?;
        cipher
            .decrypt_inout_detached(
                nonce.try_into().map_err(|_| VaultError::BadRecord)?,
                &aad(account),
                plain.as_mut_slice().into(),
                &tag,
            )
            .map_err(|_| VaultError::BadRecord)?;
        let len = u32::from_be_bytes([plain[0], plain[1], plain[2], plain[3]]) as usize;
        if 4 + len > PADDED_LEN {
            return Err(VaultError::BadRecord);
        }
        serde_json::from_slice(&plain[4..4 + len]).map_err(|_| VaultError::BadRecord)
    }
}
