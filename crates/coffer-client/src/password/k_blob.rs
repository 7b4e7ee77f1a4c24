//! The K blob: K sealed by the client under a key derived from the OPAQUE export key, which
//! only a client that knows the password can compute, with a key commitment so that a blob
//! opens under one export key only. The vault stores it and hands it back only after a
//! correct password.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use coffer_format::BackupKey;
use hkdf::Hkdf;
use sha2::Sha512;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::ClientError;

const BLOB_VERSION: u8 = 1;
const BLOB_LEN: usize = 1 + 32 + 12 + 32 + 16;
/// HKDF-SHA512 labels over the OPAQUE export key.
const K_BLOB_KEY: &[u8] = b"coffer/v1/k-blob/key";
const K_BLOB_COMMITMENT: &[u8] = b"coffer/v1/k-blob/commitment";

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
        || ClientError::EscrowBroken("the vault returned a K blob this password does not open");
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
