//! The K blob on its way to the client, under the OPAQUE session key (64 bytes):
//!
//! ```text
//! key    = HKDF-SHA512(no salt, ikm session key, info "coffer/v2/vault/k-transport"), 32 bytes
//! sealed = nonce (12) || AES-256-GCM(key, K blob, aad "coffer/v2/vault/k-transport") || tag (16)
//! ```

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use hkdf::Hkdf;
use sha2::Sha512;

use super::labels;

pub fn key(session_key: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    Hkdf::<Sha512>::new(None, session_key)
        .expand(labels::K_TRANSPORT, &mut out)
        .expect("32 bytes of HKDF-SHA512");
    out
}

/// `nonce || AES-256-GCM(key, blob, aad) || tag` with any key and AAD.
pub fn seal_raw(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], blob: &[u8]) -> Vec<u8> {
    let mut body = blob.to_vec();
    let tag = Aes256Gcm::new_from_slice(key)
        .expect("32-byte key")
        .encrypt_inout_detached(nonce.into(), aad, body.as_mut_slice().into())
        .expect("AES-GCM seals a K blob");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&body);
    out.extend_from_slice(&tag);
    out
}

pub fn open(session_key: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < 12 + 16 {
        return None;
    }
    let (nonce, rest) = sealed.split_at(12);
    let (body, tag) = rest.split_at(rest.len() - 16);
    let nonce: [u8; 12] = nonce.try_into().ok()?;
    let tag: [u8; 16] = tag.try_into().ok()?;
    let mut plain = body.to_vec();
    Aes256Gcm::new_from_slice(&key(session_key))
        .expect("32-byte key")
        .decrypt_inout_detached(
            (&nonce).into(),
            labels::K_TRANSPORT,
            plain.as_mut_slice().into(),
            (&tag).into(),
        )
        .ok()?;
    Some(plain)
}
