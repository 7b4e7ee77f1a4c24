//! Password mode, client side: K deposited in the Backup Key Vault behind OPAQUE.
//!
//! The client seals K under a key derived from the OPAQUE export key, which only a client
//! that knows the password can compute, with a key commitment so that a blob opens under
//! one export key only. The vault stores that blob and hands it back, encrypted again under
//! the OPAQUE session key, only after a correct password.

use std::future::Future;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use coffer_format::BackupKey;
use coffer_vault_core::{
    labels, open_from_transport, session_authorization, Authorization, KsfParams, Request,
    Response, Suite,
};
use hkdf::Hkdf;
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialResponse, Identifiers, RegistrationResponse,
};
use rand_core::OsRng;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::ClientError;

const BLOB_VERSION: u8 = 1;
const BLOB_LEN: usize = 1 + 32 + 12 + 32 + 16;
/// HKDF-SHA512 labels over the OPAQUE export key.
const K_BLOB_KEY: &[u8] = b"coffer/v1/k-blob/key";
const K_BLOB_COMMITMENT: &[u8] = b"coffer/v1/k-blob/commitment";

/// The vault fleet key a client accepts: SHA-256 of the OPAQUE server public key, in hex
/// (what `coffer vault init` prints). OPAQUE authenticates that key inside the protocol,
/// so a front-end or network attacker cannot substitute a vault of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetPin {
    /// Accept only this fingerprint.
    Pinned(String),
    /// Trust on first use: accept any key and report it, for the caller to pin.
    FirstUse,
}

fn check_pin(pin: &FleetPin, server_public_key: &[u8]) -> Result<String, ClientError> {
    let seen: String = Sha256::digest(server_public_key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    match pin {
        FleetPin::Pinned(expected) if !expected.eq_ignore_ascii_case(&seen) => {
            Err(ClientError::VaultKeyMismatch {
                expected: expected.clone(),
                seen,
            })
        }
        _ => Ok(seen),
    }
}

/// Carries vault requests (through the front-end, in production) and brings back responses.
pub trait VaultTransport {
    fn call(&self, request: Request) -> impl Future<Output = Result<Response, ClientError>> + Send;
}

fn export_keys(export_key: &[u8]) -> (Zeroizing<[u8; 32]>, [u8; 32]) {
    let hk = Hkdf::<Sha512>::new(None, export_key);
    let mut key = Zeroizing::new([0u8; 32]);
    let mut commitment = [0u8; 32];
    hk.expand(K_BLOB_KEY, key.as_mut()).expect("valid length");
    hk.expand(K_BLOB_COMMITMENT, &mut commitment)
        .expect("valid length");
    (key, commitment)
}

/// `version (1) || commitment (32) || nonce (12) || AES-256-GCM(K) (32) || tag (16)`.
pub fn seal_k(export_key: &[u8], k: &BackupKey) -> Result<Vec<u8>, ClientError> {
    let (key, commitment) = export_keys(export_key);
    let mut out = vec![0u8; BLOB_LEN];
    out[0] = BLOB_VERSION;
    out[1..33].copy_from_slice(&commitment);
    coffer_format::key::fill_random(&mut out[33..45])?;
    let (head, rest) = out.split_at_mut(45);
    let (body, tag_out) = rest.split_at_mut(32);
    body.copy_from_slice(k.as_bytes());
    let tag = Aes256Gcm::new_from_slice(key.as_ref())
        .expect("32-byte key")
        .encrypt_inout_detached(
            (&head[33..45]).try_into().expect("12 bytes"),
            &head[..33],
            body.into(),
        )
        .map_err(|_| ClientError::Internal("sealing K failed".into()))?;
    tag_out.copy_from_slice(&tag);
    Ok(out)
}

/// Opens a K blob; the commitment is checked first, so a blob made under another export
/// key (another password) is refused before any decryption.
pub fn open_k(export_key: &[u8], blob: &[u8]) -> Result<BackupKey, ClientError> {
    let bad =
        || ClientError::Internal("the vault returned a K blob this password does not open".into());
    if blob.len() != BLOB_LEN || blob[0] != BLOB_VERSION {
        return Err(bad());
    }
    let (key, commitment) = export_keys(export_key);
    if !bool::from(commitment.ct_eq(&blob[1..33])) {
        return Err(bad());
    }
    let mut k = Zeroizing::new([0u8; 32]);
    k.copy_from_slice(&blob[45..77]);
    let tag = blob[77..].try_into().map_err(|_| bad())?;
    Aes256Gcm::new_from_slice(key.as_ref())
        .expect("32-byte key")
        .decrypt_inout_detached(
            blob[33..45].try_into().map_err(|_| bad())?,
            &blob[..33],
            k.as_mut_slice().into(),
            &tag,
        )
        .map_err(|_| bad())?;
    Ok(BackupKey::from_bytes(*k))
}

/// Proof of knowledge of K that authorizes replacing or deleting a vault record.
pub fn k_proof(k: &BackupKey) -> Vec<u8> {
    let hk = Hkdf::<Sha256>::new(None, k.as_bytes());
    let mut out = vec![0u8; 32];
    hk.expand(labels::K_PROOF, &mut out).expect("valid length");
    out
}

fn unexpected(resp: Response) -> ClientError {
    match resp {
        Response::Locked => ClientError::Locked,
        Response::NotFound => ClientError::VaultRecordMissing,
        Response::Unauthorized => ClientError::Usage(
            "the vault refused: replacing or deleting this record needs the current password or the backup key"
                .into(),
        ),
        Response::Rejected { reason } => ClientError::Internal(format!("the vault rejected a request: {reason}")),
        other => ClientError::Internal(format!("unexpected vault response: {other:?}")),
    }
}

/// A registration's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub max_guesses: u16,
    /// The fleet key the vault proved it holds (to pin on first use).
    pub fleet_fingerprint: String,
}

/// Registers `password` for this account and deposits K. Over a live record, `auth` must
/// prove knowledge of K or of the current password. Nothing is sent after the first
/// round trip unless the vault's key matches `pin`.
pub async fn register<T: VaultTransport>(
    vault: &T,
    pin: &FleetPin,
    password: &[u8],
    k: &BackupKey,
    ksf: KsfParams,
    auth: Option<Authorization>,
) -> Result<Registered, ClientError> {
    let argon = ksf
        .argon2()
        .map_err(|e| ClientError::Usage(format!("bad Argon2id parameters: {e}")))?;
    let start = ClientRegistration::<Suite>::start(&mut OsRng, password)
        .map_err(|e| ClientError::Internal(e.to_string()))?;
    let response = match vault
        .call(Request::RegisterStart {
            request: start.message.serialize().to_vec(),
        })
        .await?
    {
        Response::RegisterStarted { response } => response,
        other => return Err(unexpected(other)),
    };
    let response = RegistrationResponse::<Suite>::deserialize(&response)
        .map_err(|_| ClientError::Internal("malformed registration response".into()))?;
    let finish = start
        .state
        .finish(
            &mut OsRng,
            password,
            response,
            ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&argon)),
        )
        .map_err(|e| ClientError::Internal(e.to_string()))?;
    let fleet_fingerprint = check_pin(pin, &finish.server_s_pk.serialize())?;
    let k_blob = seal_k(&finish.export_key, k)?;
    match vault
        .call(Request::RegisterFinish {
            upload: finish.message.serialize().to_vec(),
            k_blob,
            k_verifier: Sha256::digest(k_proof(k)).to_vec(),
            ksf,
            authorization: auth,
        })
        .await?
    {
        Response::Registered { max_guesses } => Ok(Registered {
            max_guesses,
            fleet_fingerprint,
        }),
        other => Err(unexpected(other)),
    }
}

/// What a successful recovery gives back.
pub struct Recovered {
    pub key: BackupKey,
    /// The fleet key the vault proved it holds.
    pub fleet_fingerprint: String,
    /// Single-use proof of the password, for a following password change or deletion.
    pub authorization: Authorization,
}

/// Recovers K with `password`. A wrong password costs one guess and is reported with the
/// guesses left. K is accepted only from a vault whose key matches `pin`.
pub async fn recover<T: VaultTransport>(
    vault: &T,
    pin: &FleetPin,
    password: &[u8],
) -> Result<Recovered, ClientError> {
    let start = ClientLogin::<Suite>::start(&mut OsRng, password)
        .map_err(|e| ClientError::Internal(e.to_string()))?;
    let (response, ksf) = match vault
        .call(Request::RecoverStart {
            request: start.message.serialize().to_vec(),
        })
        .await?
    {
        Response::RecoverStarted { response, ksf, .. } => (response, ksf),
        other => return Err(unexpected(other)),
    };
    let argon = ksf.argon2().map_err(|e| {
        ClientError::Internal(format!("the vault sent bad Argon2id parameters: {e}"))
    })?;
    let response = CredentialResponse::<Suite>::deserialize(&response)
        .map_err(|_| ClientError::Internal("malformed credential response".into()))?;
    let finished = start.state.finish(
        &mut OsRng,
        password,
        response,
        ClientLoginFinishParameters::new(None, Identifiers::default(), Some(&argon)),
    );
    // A wrong password cannot produce a valid finalization; send a dummy one so the vault
    // closes the attempt now rather than at the next one.
    let (finalization, keys) = match finished {
        Ok(done) => {
            // A substituted vault learns that a login happened, never K: stop before
            // sending anything more.
            let seen = check_pin(pin, &done.server_s_pk.serialize())?;
            (
                done.message.serialize().to_vec(),
                Some((
                    Zeroizing::new(done.session_key.to_vec()),
                    Zeroizing::new(done.export_key.to_vec()),
                    seen,
                )),
            )
        }
        Err(_) => (vec![0u8; 64], None),
    };
    match (
        vault.call(Request::RecoverFinish { finalization }).await?,
        keys,
    ) {
        (Response::Recovered { sealed_k_blob }, Some((session_key, export_key, seen))) => {
            let blob = open_from_transport(&session_key, &sealed_k_blob).ok_or_else(|| {
                ClientError::Internal("the vault's answer did not authenticate".into())
            })?;
            Ok(Recovered {
                key: open_k(&export_key, &blob)?,
                fleet_fingerprint: seen,
                authorization: session_authorization(&session_key),
            })
        }
        (Response::WrongPassword { guesses_left }, _) => {
            Err(ClientError::WrongPassword { guesses_left })
        }
        (other, _) => Err(unexpected(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_blobs_open_only_under_their_export_key() {
        let k = BackupKey::generate().unwrap();
        let blob = seal_k(&[1u8; 64], &k).unwrap();
        assert_eq!(open_k(&[1u8; 64], &blob).unwrap(), k);
        assert!(open_k(&[2u8; 64], &blob).is_err());
        let mut bad = blob.clone();
        bad[60] ^= 1;
        assert!(open_k(&[1u8; 64], &bad).is_err());
        assert!(!blob.windows(32).any(|w| w == k.as_bytes()));
    }
}
