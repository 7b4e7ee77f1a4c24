//! The Backup Key Vault's logic (the HSM role), as pure functions, and everything the vault
//! and its clients share: messages, the end-to-end channel, and the client's OPAQUE steps.
//!
//! - [`step`] maps (fleet secrets, account id, plaintext record, request) to a response and
//!   a record change, with no I/O and no clock: randomness is passed in. A vault node wraps it
//!   with storage that commits each change durably before the response leaves.
//! - [`channel`] is the Noise NK channel that every request and response travels in, keyed to
//!   the fleet's pinned public key: the front-end relays ciphertext it can neither read nor
//!   alter undetected.
//! - [`record`] seals records at rest under per-account subkeys.
//! - [`client`] holds the client's side of OPAQUE and of the authorizations, so that the OPAQUE
//!   client exists once.
//!
//! The password is checked with OPAQUE (RFC 9807), so the vault never sees it. Every
//! registration gets a fresh random registration id, part of OPAQUE's credential identifier, so
//! that no request evaluates the OPRF under a live record's key except a login, which spends a
//! guess first.

mod authorization;
pub mod channel;
pub mod client;
mod fleet;
mod handle;
mod hex;
pub mod messages;
mod opaque_binding;
pub mod record;
mod step;
mod suite;
mod transport;

pub use authorization::{derive_auth_key, Operation};
pub use channel::ChannelError;
pub use fleet::{is_fingerprint, Fleet, FleetKeys};
pub use handle::{handle, Handled, Update};
pub use messages::{Authorization, Failure, Request, Response};
pub use record::{Live, Record, State};
pub use step::{step, Change, Step, MAX_K_BLOB};
pub use suite::{KsfParams, Suite};
#[doc(hidden)]
pub use transport::seal_for_test_vectors as seal_k_transport_for_test_vectors;

/// The protocol version: in every label, the channel's prologue, the record format and the
/// fleet secrets' format. Version 1 had no channel and no registration ids; it is not read.
pub const PROTOCOL_VERSION: u8 = 2;

/// Every derivation label the vault protocol uses, each distinct and versioned.
pub mod labels {
    /// HKDF-SHA512 over the OPAQUE session key: the key that carries the K blob to the client.
    pub const K_TRANSPORT: &[u8] = b"coffer/v2/vault/k-transport";
    /// HKDF-SHA256 over K: the key whose MACs authorize replacing or deleting a live record.
    pub const AUTH_KEY: &[u8] = b"coffer/v2/vault/auth-key";
    /// Prefix of every authorization MAC's input.
    pub const AUTHORIZATION: &[u8] = b"coffer/v2/vault/authorization\0";
    /// Prefix of OPAQUE's credential identifier (account id and registration id follow).
    pub const CREDENTIAL_ID: &[u8] = b"coffer/v2/vault/credential\0";
    /// Prefix of OPAQUE's context (the fleet fingerprint follows).
    pub const OPAQUE_CONTEXT: &[u8] = b"coffer/v2/vault/opaque\0";
    /// Prefix of the channel's Noise prologue (the account id follows).
    pub const CHANNEL_PROLOGUE: &[u8] = b"coffer/v2/vault/channel\0";
    /// Prefix of the fleet fingerprint's input (the two public keys follow).
    pub const FLEET_FINGERPRINT: &[u8] = b"coffer/v2/vault/fleet\0";
    /// HKDF-SHA256 salt for a record's per-account sealing subkey.
    pub const RECORD_KEY: &[u8] = b"coffer/v2/vault/record-key";
    /// Associated data prefix of a sealed record (the version and account id follow).
    pub const RECORD_AAD: &[u8] = b"coffer/v2/vault/record\0";
}

/// What went wrong inside the vault (as opposed to a refusal, which is a [`Response`]).
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The stored record failed to open: altered, swapped from another account, or sealed
    /// under another key. Not retryable; the record must not be used.
    #[error("the stored record failed authentication (altered, swapped or foreign)")]
    BadRecord,
    /// Fleet secrets that do not parse. Not retryable.
    #[error("the fleet secrets are malformed")]
    BadFleet,
    #[error("internal vault error: {0}")]
    Internal(String),
}

/// Bounds on a fleet's guess budget.
pub const MAX_GUESSES_RANGE: std::ops::RangeInclusive<u16> = 1..=100;
/// The default guess budget.
pub const DEFAULT_MAX_GUESSES: u16 = 10;
