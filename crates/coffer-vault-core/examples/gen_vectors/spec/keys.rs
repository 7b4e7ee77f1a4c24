//! The small derivations: the auth key and its MACs, OPAQUE's credential identifier and
//! context, the fleet fingerprint, and the fleet secrets' layout.
//!
//! ```text
//! auth key      = HKDF-SHA256(no salt, ikm K, info "coffer/v2/vault/auth-key"), 32 bytes
//! mac           = HMAC-SHA256(auth key, "coffer/v2/vault/authorization\0"
//!                   || len(account) (2, BE) || account || challenge
//!                   || op (1: replace, 2: delete, 3: ownership) || len(request) (4, BE) || request)
//! authorization = {challenge, mac}, for a live record's outstanding challenge (32 bytes, or
//!                   none): none presented: unauthorized, nothing spent; a challenge other than
//!                   the outstanding one (or none outstanding): superseded, nothing spent;
//!                   otherwise the challenge is spent, and the MAC must be the 32 bytes the
//!                   inputs give over it
//! ownership     = the mac with op 3 over a Status request's nonce and the empty request, when
//!                   the nonce is 32 bytes (empty otherwise); a client takes only the 32 bytes
//!                   its own auth key, account and nonce give
//! credential id = "coffer/v2/vault/credential\0" || len(account) (2, BE) || account
//!                   || registration id (32)
//! fingerprint   = SHA-256("coffer/v2/vault/fleet\0" || channel key (32) || OPAQUE key (32))
//! context       = "coffer/v2/vault/opaque\0" || fingerprint (32)
//! fleet secrets = version 0x02 || max_guesses (2, BE, 1..=100) || sealing key (32)
//!                   || channel secret (32) || OPAQUE setup: OPRF seed (64)
//!                   || server private key (32, canonical non-zero scalar)
//!                   || dummy public key (32, Ristretto255, not the identity)
//! ```

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::CompressedRistretto;
use curve25519_dalek::Scalar;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::{labels, noise, u16_prefix, VERSION};

pub fn auth_key(k: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(None, k)
        .expand(labels::AUTH_KEY, &mut out)
        .expect("32 bytes of HKDF-SHA256");
    out
}

/// The operation's tag byte, for the operations an authorization names.
pub fn operation_tag(name: &str) -> Option<u8> {
    match name {
        "replace" => Some(1),
        "delete" => Some(2),
        _ => None,
    }
}

/// The tag of the ownership proof in a `Status` answer: not an authorization.
pub const OWNERSHIP_TAG: u8 = 3;

/// Bytes of a challenge, an ownership nonce and a MAC.
pub const NONCE_LEN: usize = 32;

pub fn authorization_mac(
    auth_key: &[u8],
    account: &[u8],
    challenge: &[u8],
    op: u8,
    request: &[u8],
) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(auth_key).expect("HMAC takes any key");
    m.update(labels::AUTHORIZATION);
    m.update(&u16_prefix(account));
    m.update(account);
    m.update(challenge);
    m.update(&[op]);
    m.update(&u32::try_from(request.len()).expect("short").to_be_bytes());
    m.update(request);
    m.finalize().into_bytes().into()
}

/// What a vault makes of an authorization presented for a live record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Unauthorized,
    Superseded,
}

impl Verdict {
    /// As a vector's `expect:` line spells it.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Unauthorized => "unauthorized",
            Verdict::Superseded => "superseded",
        }
    }
}

/// The verdict on `presented` (its challenge and MAC; `None` for no authorization) by a live
/// record holding `auth_key` whose outstanding challenge is `outstanding` (empty: none), and
/// whether that challenge is spent by it.
pub fn judge_authorization(
    auth_key: &[u8],
    account: &[u8],
    outstanding: &[u8],
    op: u8,
    request: &[u8],
    presented: Option<(&[u8], &[u8])>,
) -> (Verdict, bool) {
    let Some((challenge, mac)) = presented else {
        return (Verdict::Unauthorized, false);
    };
    if outstanding.len() != NONCE_LEN || challenge != outstanding {
        return (Verdict::Superseded, false);
    }
    let valid =
        mac.len() == 32 && mac == authorization_mac(auth_key, account, outstanding, op, request);
    let verdict = if valid {
        Verdict::Valid
    } else {
        Verdict::Unauthorized
    };
    (verdict, true)
}

/// The proof a live record holding `auth_key` puts in its answer to `Status { nonce }`.
pub fn ownership_proof(auth_key: &[u8], account: &[u8], nonce: &[u8]) -> Vec<u8> {
    if nonce.len() == NONCE_LEN {
        authorization_mac(auth_key, account, nonce, OWNERSHIP_TAG, &[]).to_vec()
    } else {
        Vec::new()
    }
}

/// Whether a client holding `auth_key`, which sent `nonce` for `account`, takes `presented`
/// as proof that the record is its own.
pub fn ownership_valid(auth_key: &[u8], account: &[u8], nonce: &[u8], presented: &[u8]) -> bool {
    presented.len() == 32
        && presented == authorization_mac(auth_key, account, nonce, OWNERSHIP_TAG, &[])
}

pub fn credential_identifier(account: &[u8], registration_id: &[u8]) -> Vec<u8> {
    let mut out = labels::CREDENTIAL_ID.to_vec();
    out.extend_from_slice(&u16_prefix(account));
    out.extend_from_slice(account);
    out.extend_from_slice(registration_id);
    out
}

pub fn fingerprint(channel_key: &[u8], opaque_key: &[u8]) -> [u8; 32] {
    let mut d = Sha256::new();
    d.update(labels::FLEET_FINGERPRINT);
    d.update(channel_key);
    d.update(opaque_key);
    d.finalize().into()
}

pub fn opaque_context(fingerprint: &[u8; 32]) -> Vec<u8> {
    let mut out = labels::OPAQUE_CONTEXT.to_vec();
    out.extend_from_slice(fingerprint);
    out
}

/// Whether a client that pinned `pinned` (64 hex digits, any case) accepts these keys: both
/// 32 bytes, and their fingerprint is the pinned one.
pub fn fingerprint_matches(channel_key: &[u8], opaque_key: &[u8], pinned: &str) -> bool {
    let hex: String = fingerprint(channel_key, opaque_key)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    channel_key.len() == 32 && opaque_key.len() == 32 && pinned.to_ascii_lowercase() == hex
}

/// What the fleet secrets hold, and the public keys they give.
pub struct FleetSecrets {
    pub max_guesses: u16,
    pub sealing_key: [u8; 32],
    pub channel_secret: [u8; 32],
    pub channel_key: [u8; 32],
    pub opaque_key: [u8; 32],
}

pub const FLEET_SECRETS_LEN: usize = 1 + 2 + 32 + 32 + 64 + 32 + 32;

/// Bytes after the 195 are ignored, as the crate ignores them (no vector has any).
pub fn fleet_secrets(bytes: &[u8]) -> Option<FleetSecrets> {
    if bytes.len() < FLEET_SECRETS_LEN || bytes[0] != VERSION {
        return None;
    }
    let max_guesses = u16::from_be_bytes([bytes[1], bytes[2]]);
    if !(1..=100).contains(&max_guesses) {
        return None;
    }
    let sealing_key: [u8; 32] = bytes[3..35].try_into().ok()?;
    let channel_secret: [u8; 32] = bytes[35..67].try_into().ok()?;
    let opaque = &bytes[67..];
    let private: [u8; 32] = opaque[64..96].try_into().ok()?;
    let scalar = Option::<Scalar>::from(Scalar::from_canonical_bytes(private))?;
    if scalar == Scalar::ZERO {
        return None;
    }
    let dummy: [u8; 32] = opaque[96..128].try_into().ok()?;
    let dummy = CompressedRistretto(dummy).decompress()?;
    if dummy == curve25519_dalek::RistrettoPoint::default() {
        return None;
    }
    Some(FleetSecrets {
        max_guesses,
        sealing_key,
        channel_secret,
        channel_key: noise::public_key(&channel_secret),
        opaque_key: (RISTRETTO_BASEPOINT_POINT * scalar).compress().to_bytes(),
    })
}
