//! The K blob's extra layer on its way to the client: AES-256-GCM under a key derived from
//! the OPAQUE session key, which only the two ends of a successful login know.
//! `nonce (12) || ciphertext || tag (16)`.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use hkdf::Hkdf;
use rand_core::{CryptoRng, RngCore};
use sha2::Sha512;
use zeroize::Zeroizing;

use crate::{labels, VaultError};

fn transport_key(session_key: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha512>::new(None, session_key)
        .expand(labels::K_TRANSPORT, out.as_mut())
        .expect("32 bytes is a valid HKDF-SHA512 output length");
    out
}

pub(crate) fn seal_for_transport<R: RngCore + CryptoRng>(
    session_key: &[u8],
    k_blob: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, VaultError> {
    let key = transport_key(session_key);
    let cipher = Aes256Gcm::new_from_slice(key.as_ref()).expect("32-byte key");
    let mut out = vec![0u8; 12 + k_blob.len() + 16];
    rng.fill_bytes(&mut out[..12]);
    let (nonce, rest) = out.split_at_mut(12);
    let (body, tag_out) = rest.split_at_mut(k_blob.len());
    body.copy_from_slice(k_blob);
    let tag = cipher
        .encrypt_inout_detached(
            (&*nonce).try_into().expect("12 bytes"),
            labels::K_TRANSPORT,
            body.into(),
        )
        .map_err(|_| VaultError::Internal("transport sealing failed".into()))?;
    tag_out.copy_from_slice(&tag);
    Ok(out)
}

/// [`seal_for_transport`], reachable from outside the crate for test vectors only (a fixed
/// K blob under a fixed session key, the nonce from a scripted generator). The vault itself
/// seals only inside [`crate::step`], under the session key a login has just produced.
#[doc(hidden)]
pub fn seal_for_test_vectors<R: RngCore + CryptoRng>(
    session_key: &[u8],
    k_blob: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, VaultError> {
    seal_for_transport(session_key, k_blob, rng)
}

/// The client's side of [`seal_for_transport`].
pub fn open_from_transport(session_key: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < 28 {
        return None;
    }
    let key = transport_key(session_key);
    let cipher = Aes256Gcm::new_from_slice(key.as_ref()).expect("32-byte key");
    let (nonce, rest) = sealed.split_at(12);
    let (body, tag) = rest.split_at(rest.len() - 16);
    let mut plain = Zeroizing::new(body.to_vec());
    cipher
        .decrypt_inout_detached(
            nonce.try_into().ok()?,
            labels::K_TRANSPORT,
            plain.as_mut_slice().into(),
            &tag.try_into().ok()?,
        )
        .ok()?;
    Some(plain)
}
