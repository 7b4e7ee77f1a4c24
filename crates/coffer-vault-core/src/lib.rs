//! The Backup Key Vault's logic (the HSM role), as a pure state machine.
//!
//! [`handle`] maps (fleet secrets, account id, sealed record, request) to a response and a
//! record update, with no I/O and no clock: randomness is passed in. A vault node wraps it
//! with storage that commits each update durably (later: through a replicated log) before
//! the response leaves. The password is checked with OPAQUE (RFC 9807), so the vault never
//! sees it; K is stored only as a blob the client sealed under the OPAQUE export key, and
//! released only inside a successful login, encrypted under its session key.

mod hex;
pub mod messages;
pub mod record;
mod suite;
mod vault;

use opaque_ke::ServerSetup;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub use messages::{Authorization, Request, Response};
pub use record::{Live, Record};
pub use suite::{KsfParams, Suite};
pub use vault::{
    handle, open_from_transport, session_authorization, Outcome, RecordUpdate, MAX_K_BLOB,
};

/// Every derivation label the vault protocol uses (HKDF-SHA512 over the OPAQUE session key,
/// or HKDF-SHA256 over K for the proof).
pub mod labels {
    /// Key that carries the K blob from vault to client.
    pub const K_TRANSPORT: &[u8] = b"coffer/v1/vault/k-transport";
    /// Single-use token that authorizes a password change or deletion after a recovery.
    pub const AUTHORIZATION: &[u8] = b"coffer/v1/vault/authorization";
    /// Proof of knowledge of K, `HKDF-SHA256(K, info)`, 32 bytes.
    pub const K_PROOF: &[u8] = b"coffer/v1/vault/k-proof";
}

/// What went wrong inside the vault (as opposed to a refusal, which is a [`Response`]).
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The stored record failed to open: altered, swapped from another account, or sealed
    /// under another key. Not retryable; the record must not be used.
    #[error("the stored record failed authentication (altered, swapped or foreign)")]
    BadRecord,
    #[error("internal vault error: {0}")]
    Internal(String),
}

/// Bounds on a fleet's guess budget.
pub const MAX_GUESSES_RANGE: std::ops::RangeInclusive<u16> = 1..=100;
/// The default guess budget.
pub const DEFAULT_MAX_GUESSES: u16 = 10;

/// The fleet secrets: the OPAQUE server setup (OPRF seed and server key pair) and the key
/// that seals records at rest.
pub struct Fleet {
    opaque: ServerSetup<Suite>,
    sealing_key: Zeroizing<[u8; 32]>,
    max_guesses: u16,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Fleet(fingerprint {}, max_guesses {})",
            self.fingerprint(),
            self.max_guesses
        )
    }
}

impl Fleet {
    pub fn generate<R: RngCore + CryptoRng>(
        rng: &mut R,
        max_guesses: u16,
    ) -> Result<Fleet, VaultError> {
        if !MAX_GUESSES_RANGE.contains(&max_guesses) {
            return Err(VaultError::Internal(format!(
                "max_guesses must be within {MAX_GUESSES_RANGE:?}"
            )));
        }
        let mut sealing_key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(sealing_key.as_mut());
        Ok(Fleet {
            opaque: ServerSetup::<Suite>::new(rng),
            sealing_key,
            max_guesses,
        })
    }

    /// Serialized secrets, for a sealing backend to keep.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::new());
        out.extend_from_slice(&self.max_guesses.to_be_bytes());
        out.extend_from_slice(self.sealing_key.as_ref());
        out.extend_from_slice(&self.opaque.serialize());
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Fleet, VaultError> {
        let bad = || VaultError::Internal("fleet secrets are malformed".into());
        if bytes.len() < 34 {
            return Err(bad());
        }
        let max_guesses = u16::from_be_bytes([bytes[0], bytes[1]]);
        if !MAX_GUESSES_RANGE.contains(&max_guesses) {
            return Err(bad());
        }
        let mut sealing_key = Zeroizing::new([0u8; 32]);
        sealing_key.copy_from_slice(&bytes[2..34]);
        let opaque = ServerSetup::<Suite>::deserialize(&bytes[34..]).map_err(|_| bad())?;
        Ok(Fleet {
            opaque,
            sealing_key,
            max_guesses,
        })
    }

    /// SHA-256 of the OPAQUE server public key, in hex: what clients pin.
    pub fn fingerprint(&self) -> String {
        Sha256::digest(self.opaque.keypair().public().serialize())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub fn max_guesses(&self) -> u16 {
        self.max_guesses
    }

    pub(crate) fn opaque(&self) -> &ServerSetup<Suite> {
        &self.opaque
    }

    pub(crate) fn sealing_key(&self) -> &[u8; 32] {
        &self.sealing_key
    }
}
