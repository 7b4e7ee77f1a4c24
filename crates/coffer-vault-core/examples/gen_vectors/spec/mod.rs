//! The vault protocol's wire and storage formats written again from their descriptions (the
//! doc comments of `coffer-vault-core`, quoted in `tests/test_vectors/main.rs`), with no
//! code of the crate: the labels are spelled out here, the Noise handshake is computed by
//! hand from the Noise specification (revision 34) over RustCrypto primitives, and JSON
//! messages are checked against the field lists of `messages.rs`.
//!
//! The generator uses it to build the hostile messages the crate refuses to make (authentic
//! but badly framed payloads, records with impossible lengths); the runner uses it as the
//! independent decoder that every vector must also satisfy. The product never uses it.

pub mod keys;
pub mod noise;
pub mod record;
pub mod shape;
pub mod transport;
pub mod wire;

/// Every label, as the formats' descriptions spell them (the runner checks them against
/// `coffer_vault_core::labels`).
pub mod labels {
    pub const K_TRANSPORT: &[u8] = b"coffer/v2/vault/k-transport";
    pub const AUTH_KEY: &[u8] = b"coffer/v2/vault/auth-key";
    pub const AUTHORIZATION: &[u8] = b"coffer/v2/vault/authorization\0";
    pub const CREDENTIAL_ID: &[u8] = b"coffer/v2/vault/credential\0";
    pub const OPAQUE_CONTEXT: &[u8] = b"coffer/v2/vault/opaque\0";
    pub const CHANNEL_PROLOGUE: &[u8] = b"coffer/v2/vault/channel\0";
    pub const FLEET_FINGERPRINT: &[u8] = b"coffer/v2/vault/fleet\0";
    pub const RECORD_KEY: &[u8] = b"coffer/v2/vault/record-key";
    pub const RECORD_AAD: &[u8] = b"coffer/v2/vault/record\0";
}

/// The protocol version, in the record's first byte and its associated data, and in the
/// fleet secrets' first byte.
pub const VERSION: u8 = 2;

/// `len(bytes)` as the 2-byte big-endian prefix the formats put before an account id.
pub fn u16_prefix(bytes: &[u8]) -> [u8; 2] {
    u16::try_from(bytes.len())
        .expect("an account id of at most 65535 bytes")
        .to_be_bytes()
}
