//! `Noise_NK_25519_ChaChaPoly_SHA256`, one handshake (two messages) per request, computed
//! from the Noise specification:
//!
//! ```text
//! NK:
//!   <- s
//!   ...
//!   -> e, es        message 1: e.public (32) || ChaChaPoly(k1, n=0, ad=h, payload) (+16)
//!   <- e, ee        message 2: e.public (32) || ChaChaPoly(k2, n=0, ad=h, payload) (+16)
//! ```
//!
//! `h` starts as the protocol name (exactly 32 bytes, so not hashed), `ck = h`, then
//! `MixHash(prologue)`, `MixHash(rs)`. Each `e` is `MixHash(e.public)`, each DH token
//! `MixKey(DH)`, where `MixKey` is `ck, k = HKDF(ck, dh)` with HMAC-SHA256 and resets the
//! nonce to 0. Each payload is `EncryptAndHash`. ChaChaPoly's 96-bit nonce is 4 zero bytes
//! and the 64-bit counter in little-endian order.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use curve25519_dalek::MontgomeryPoint;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const PROTOCOL_NAME: &[u8; 32] = b"Noise_NK_25519_ChaChaPoly_SHA256";
const DH_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// The X25519 public key of `secret` (clamped as RFC 7748 says).
pub fn public_key(secret: &[u8; 32]) -> [u8; 32] {
    MontgomeryPoint::mul_base_clamped(*secret).to_bytes()
}

/// X25519. A low-order public key gives the all-zero output, which Noise lets through.
pub fn dh(secret: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
    MontgomeryPoint(*public).mul_clamped(*secret).to_bytes()
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// Noise's `HKDF(chaining_key, input_key_material, 2)`.
fn hkdf2(ck: &[u8; 32], ikm: &[u8]) -> ([u8; 32], [u8; 32]) {
    let temp = hmac(ck, &[ikm]);
    let one = hmac(&temp, &[&[1]]);
    let two = hmac(&temp, &[&one, &[2]]);
    (one, two)
}

fn nonce(n: u64) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[4..].copy_from_slice(&n.to_le_bytes());
    out
}

/// Noise's SymmetricState (with its CipherState).
#[derive(Clone)]
struct Symmetric {
    ck: [u8; 32],
    h: [u8; 32],
    k: Option<[u8; 32]>,
    n: u64,
}

impl Symmetric {
    /// `InitializeSymmetric(protocol_name)`, `MixHash(prologue)`, then NK's pre-message
    /// `<- s`: `MixHash(rs)`.
    fn start(prologue: &[u8], responder_static: &[u8; 32]) -> Symmetric {
        let mut s = Symmetric {
            ck: *PROTOCOL_NAME,
            h: *PROTOCOL_NAME,
            k: None,
            n: 0,
        };
        s.mix_hash(prologue);
        s.mix_hash(responder_static);
        s
    }

    fn mix_hash(&mut self, data: &[u8]) {
        let mut d = Sha256::new();
        d.update(self.h);
        d.update(data);
        self.h = d.finalize().into();
    }

    fn mix_key(&mut self, ikm: &[u8]) {
        let (ck, k) = hkdf2(&self.ck, ikm);
        self.ck = ck;
        self.k = Some(k);
        self.n = 0;
    }

    fn encrypt_and_hash(&mut self, plaintext: &[u8]) -> Vec<u8> {
        let k = self.k.expect("NK has a key before every payload");
        let mut buf = plaintext.to_vec();
        let tag = ChaCha20Poly1305::new_from_slice(&k)
            .expect("32-byte key")
            .encrypt_inout_detached((&nonce(self.n)).into(), &self.h, buf.as_mut_slice().into())
            .expect("ChaChaPoly seals any payload of a Noise message");
        buf.extend_from_slice(&tag);
        self.n += 1;
        self.mix_hash(&buf);
        buf
    }

    fn decrypt_and_hash(&mut self, ciphertext: &[u8]) -> Option<Vec<u8>> {
        let k = self.k?;
        if ciphertext.len() < TAG_LEN {
            return None;
        }
        let (body, tag) = ciphertext.split_at(ciphertext.len() - TAG_LEN);
        let mut buf = body.to_vec();
        ChaCha20Poly1305::new_from_slice(&k)
            .expect("32-byte key")
            .decrypt_inout_detached(
                (&nonce(self.n)).into(),
                &self.h,
                buf.as_mut_slice().into(),
                tag.try_into().ok()?,
            )
            .ok()?;
        self.n += 1;
        self.mix_hash(ciphertext);
        Some(buf)
    }
}

/// The initiator after message 1: what it needs to read message 2.
#[derive(Clone)]
pub struct Initiator {
    sym: Symmetric,
    ephemeral: [u8; 32],
}

/// The responder after message 1: what it needs to write message 2.
#[derive(Clone)]
pub struct Responder {
    sym: Symmetric,
    remote_ephemeral: [u8; 32],
}

/// Message 1 from the initiator's ephemeral secret.
pub fn write_request(
    responder_static: &[u8; 32],
    prologue: &[u8],
    ephemeral: &[u8; 32],
    payload: &[u8],
) -> (Vec<u8>, Initiator) {
    let e = public_key(ephemeral);
    let es = dh(ephemeral, responder_static);
    let (message, sym) = write_request_raw(responder_static, prologue, &e, &es, payload);
    (
        message,
        Initiator {
            sym,
            ephemeral: *ephemeral,
        },
    )
}

/// Message 1 with a chosen ephemeral public key and DH output (for a low-order key, whose
/// DH output everyone knows: all zeros).
pub fn write_request_with(
    responder_static: &[u8; 32],
    prologue: &[u8],
    ephemeral_public: &[u8; 32],
    es: &[u8; 32],
    payload: &[u8],
) -> Vec<u8> {
    write_request_raw(responder_static, prologue, ephemeral_public, es, payload).0
}

fn write_request_raw(
    responder_static: &[u8; 32],
    prologue: &[u8],
    e: &[u8; 32],
    es: &[u8; 32],
    payload: &[u8],
) -> (Vec<u8>, Symmetric) {
    let mut sym = Symmetric::start(prologue, responder_static);
    sym.mix_hash(e);
    sym.mix_key(es);
    let mut message = e.to_vec();
    message.extend(sym.encrypt_and_hash(payload));
    (message, sym)
}

/// Reads message 1 with the responder's static secret: the payload, or `None` when it does
/// not authenticate.
pub fn read_request(
    static_secret: &[u8; 32],
    prologue: &[u8],
    message: &[u8],
) -> Option<(Vec<u8>, Responder)> {
    if message.len() < DH_LEN + TAG_LEN {
        return None;
    }
    let mut sym = Symmetric::start(prologue, &public_key(static_secret));
    let re: [u8; 32] = message[..DH_LEN].try_into().ok()?;
    sym.mix_hash(&re);
    sym.mix_key(&dh(static_secret, &re));
    let payload = sym.decrypt_and_hash(&message[DH_LEN..])?;
    Some((
        payload,
        Responder {
            sym,
            remote_ephemeral: re,
        },
    ))
}

/// Message 2 from the responder's ephemeral secret.
pub fn write_response(state: &Responder, ephemeral: &[u8; 32], payload: &[u8]) -> Vec<u8> {
    let mut sym = state.sym.clone();
    let e = public_key(ephemeral);
    sym.mix_hash(&e);
    sym.mix_key(&dh(ephemeral, &state.remote_ephemeral));
    let mut message = e.to_vec();
    message.extend(sym.encrypt_and_hash(payload));
    message
}

/// Reads message 2: the payload, or `None` when it does not authenticate.
pub fn read_response(state: &Initiator, message: &[u8]) -> Option<Vec<u8>> {
    if message.len() < DH_LEN + TAG_LEN {
        return None;
    }
    let mut sym = state.sym.clone();
    let re: [u8; 32] = message[..DH_LEN].try_into().ok()?;
    sym.mix_hash(&re);
    sym.mix_key(&dh(&state.ephemeral, &re));
    sym.decrypt_and_hash(&message[DH_LEN..])
}
