//! A record sealed at rest:
//!
//! ```text
//! sealed    = version 0x02 (1) || nonce (12) || AES-256-GCM(subkey, padded) (2048) || tag (16)
//! subkey    = HKDF-SHA256(salt "coffer/v2/vault/record-key", ikm sealing key,
//!                         info len(account) (2, BE) || account), 32 bytes
//! aad       = "coffer/v2/vault/record\0" || version (1) || account
//! padded    = len(JSON) (4, BE) || JSON || zeros, 2048 bytes
//! ```

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use hkdf::Hkdf;
use sha2::Sha256;

use super::{labels, shape, u16_prefix, VERSION};

pub const PADDED_LEN: usize = 2048;
pub const SEALED_LEN: usize = 1 + 12 + PADDED_LEN + 16;

pub fn subkey(sealing_key: &[u8; 32], account: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut info = u16_prefix(account).to_vec();
    info.extend_from_slice(account);
    Hkdf::<Sha256>::new(Some(labels::RECORD_KEY), sealing_key)
        .expand(&info, &mut out)
        .expect("32 bytes of HKDF-SHA256");
    out
}

pub fn aad(version: u8, account: &[u8]) -> Vec<u8> {
    let mut out = labels::RECORD_AAD.to_vec();
    out.push(version);
    out.extend_from_slice(account);
    out
}

/// The 2048-byte plaintext around `json`, with any length prefix (the generator writes
/// impossible ones on purpose).
pub fn pad_with_length(json: &[u8], length: u32) -> Vec<u8> {
    let mut out = vec![0u8; PADDED_LEN];
    out[..4].copy_from_slice(&length.to_be_bytes());
    out[4..4 + json.len()].copy_from_slice(json);
    out
}

pub fn pad(json: &[u8]) -> Vec<u8> {
    pad_with_length(json, u32::try_from(json.len()).expect("a short record"))
}

/// `version || nonce || AES-256-GCM(key, plaintext, aad) || tag`, any key, AAD and version
/// byte (for the hostile vectors; an honest record is
/// `seal_raw(subkey(..), VERSION, nonce, aad(VERSION, account), padded)`).
pub fn seal_raw(
    key: &[u8; 32],
    version: u8,
    nonce: &[u8; 12],
    aad: &[u8],
    plain: &[u8],
) -> Vec<u8> {
    let mut body = plain.to_vec();
    let tag = Aes256Gcm::new_from_slice(key)
        .expect("32-byte key")
        .encrypt_inout_detached(nonce.into(), aad, body.as_mut_slice().into())
        .expect("AES-GCM seals 2048 bytes");
    let mut out = vec![version];
    out.extend_from_slice(nonce);
    out.extend_from_slice(&body);
    out.extend_from_slice(&tag);
    out
}

pub fn seal(sealing_key: &[u8; 32], account: &[u8], nonce: &[u8; 12], json: &[u8]) -> Vec<u8> {
    seal_raw(
        &subkey(sealing_key, account),
        VERSION,
        nonce,
        &aad(VERSION, account),
        &pad(json),
    )
}

/// The padded plaintext and the record's JSON, or `None` for a record that must not be
/// used. The bytes after the JSON are not checked to be zeros, as the crate does not check
/// them (no vector has others).
pub fn open(sealing_key: &[u8; 32], account: &[u8], sealed: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    if sealed.len() != SEALED_LEN || sealed[0] != VERSION {
        return None;
    }
    let nonce: [u8; 12] = sealed[1..13].try_into().ok()?;
    let mut plain = sealed[13..13 + PADDED_LEN].to_vec();
    let tag: [u8; 16] = sealed[13 + PADDED_LEN..].try_into().ok()?;
    Aes256Gcm::new_from_slice(&subkey(sealing_key, account))
        .expect("32-byte key")
        .decrypt_inout_detached(
            (&nonce).into(),
            &aad(VERSION, account),
            plain.as_mut_slice().into(),
            (&tag).into(),
        )
        .ok()?;
    let len = usize::try_from(u32::from_be_bytes(plain[..4].try_into().ok()?)).ok()?;
    if len > PADDED_LEN - 4 {
        return None;
    }
    let json = plain[4..4 + len].to_vec();
    shape::is_record(&json).then_some((plain, json))
}
