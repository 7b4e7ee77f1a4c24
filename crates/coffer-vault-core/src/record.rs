//! Vault records, in plaintext (what [`crate::step`] works on) and sealed at rest.
//!
//! A sealed record is `version (1) || nonce (12) || AES-256-GCM(subkey, padded record) ||
//! tag (16)`. The subkey is `HKDF-SHA256(salt "coffer/v2/vault/record-key", sealing key,
//! info len(account) || account)`, one per account, so that the random 96-bit nonces only
//! have to stay unique among one account's writes. The associated data is
//! `"coffer/v2/vault/record\0" || version || account`, so a record copied to another account's
//! slot, sealed under another fleet, or of another format version fails to open. Every record
//! is padded to [`PADDED_LEN`] bytes before sealing, so a sealed record's length says nothing
//! about its state.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use hkdf::Hkdf;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::suite::KsfParams;
use crate::{labels, Fleet, VaultError, PROTOCOL_VERSION};

/// Bytes of every record before sealing (a length prefix, the record, zero padding).
pub const PADDED_LEN: usize = 2048;
/// Bytes of every sealed record.
pub const SEALED_LEN: usize = 1 + 12 + PADDED_LEN + 16;

/// What the vault keeps per account.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub state: State,
    /// The registration id the vault handed out at the last `RegisterStart` (empty when
    /// none): the only one `RegisterFinish` accepts, once.
    #[serde(with = "crate::hex")]
    pub pending_registration: Vec<u8>,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum State {
    /// No secrets: only a registration in progress.
    Empty,
    Live(Live),
    /// Erased after too many wrong passwords: only the fact remains.
    Locked {
        max_guesses: u16,
    },
}

/// A record that still holds its secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct Live {
    /// Part of OPAQUE's credential identifier, so of the OPRF key.
    #[serde(with = "crate::hex")]
    pub registration_id: Vec<u8>,
    /// The OPAQUE `ServerRegistration` (the password file).
    #[serde(with = "crate::hex")]
    pub password_file: Vec<u8>,
    /// K, sealed by the client under a key derived from the OPAQUE export key.
    #[serde(with = "crate::hex")]
    pub k_blob: Vec<u8>,
    /// The key whose MACs authorize replacing or deleting this record (derived from K).
    #[serde(with = "crate::hex")]
    pub auth_key: Vec<u8>,
    #[zeroize(skip)]
    pub ksf: KsfParams,
    pub max_guesses: u16,
    pub guesses_left: u16,
    /// The `ServerLogin` state of a recovery whose guess is already spent (empty when none),
    /// and the id its `RecoverFinish` must name.
    #[serde(with = "crate::hex")]
    pub pending_login: Vec<u8>,
    #[serde(with = "crate::hex")]
    pub pending_login_id: Vec<u8>,
    /// The single-use nonce of the next authorization (empty when none is outstanding).
    #[serde(with = "crate::hex")]
    pub challenge: Vec<u8>,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pending = !self.pending_registration.is_empty();
        match &self.state {
            State::Empty => write!(f, "Empty {{ registration pending: {pending} }}"),
            State::Live(live) => write!(
                f,
                "Live {{ guesses_left: {}/{}, login pending: {}, registration pending: {pending} }}",
                live.guesses_left,
                live.max_guesses,
                !live.pending_login.is_empty(),
            ),
            State::Locked { .. } => write!(f, "Locked {{ registration pending: {pending} }}"),
        }
    }
}

fn subkey(fleet: &Fleet, account: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(labels::RECORD_KEY), fleet.sealing_key())
        .expand_multi_info(
            &[&(account.len() as u16).to_be_bytes(), account],
            out.as_mut(),
        )
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

fn aad(account: &[u8]) -> Vec<u8> {
    let mut aad = labels::RECORD_AAD.to_vec();
    aad.push(PROTOCOL_VERSION);
    aad.extend_from_slice(account);
    aad
}

impl Record {
    pub fn seal<R: RngCore + CryptoRng>(
        &self,
        fleet: &Fleet,
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
        out[0] = PROTOCOL_VERSION;
        rng.fill_bytes(&mut out[1..13]);
        let (head, rest) = out.split_at_mut(13);
        let (body, tag_out) = rest.split_at_mut(PADDED_LEN);
        body[..4].copy_from_slice(&(json.len() as u32).to_be_bytes());
        body[4..4 + json.len()].copy_from_slice(&json);
        let key = subkey(fleet, account);
        let tag = Aes256Gcm::new_from_slice(key.as_ref())
            .expect("32-byte key")
            .encrypt_inout_detached(
                (&head[1..13]).try_into().expect("12-byte nonce"),
                &aad(account),
                body.into(),
            )
            .map_err(|_| VaultError::Internal("sealing failed".into()))?;
        tag_out.copy_from_slice(&tag);
        Ok(out)
    }

    /// Opens a sealed record of `account`. Fails on any change, on a record sealed for
    /// another account or under another fleet, and on another format version.
    pub fn open(sealed: &[u8], fleet: &Fleet, account: &[u8]) -> Result<Record, VaultError> {
        if sealed.len() != SEALED_LEN || sealed[0] != PROTOCOL_VERSION {
            return Err(VaultError::BadRecord);
        }
        let (head, rest) = sealed.split_at(13);
        let (body, tag) = rest.split_at(PADDED_LEN);
        let mut plain = Zeroizing::new(body.to_vec());
        let key = subkey(fleet, account);
        let tag = tag.try_into().map_err(|_| VaultError::BadRecord)?;
        Aes256Gcm::new_from_slice(key.as_ref())
            .expect("32-byte key")
            .decrypt_inout_detached(
                head[1..13].try_into().map_err(|_| VaultError::BadRecord)?,
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
