//! Requests to and responses from a vault. They travel only inside the end-to-end channel
//! ([`crate::channel`]), serialized as JSON with byte fields in lower-case hex; OPAQUE
//! messages are their `opaque-ke` serializations.

use serde::{Deserialize, Serialize};

use crate::suite::KsfParams;

/// Proof that the caller holds K, for replacing or deleting a live record (spec §3.4):
/// `HMAC-SHA256(auth key, label || account || challenge || operation || request)`, where the
/// auth key is derived from K and the challenge is the single-use nonce the vault issued
/// last ([`Request::Challenge`]), repeated here so that the vault can tell a proof for a
/// challenge it has since replaced (answered [`Response::Superseded`]) from a wrong one. It is
/// never a static value: each one is good for one request, once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    #[serde(with = "crate::hex")]
    pub challenge: Vec<u8>,
    #[serde(with = "crate::hex")]
    pub mac: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Request {
    /// Whether a record exists, and its guess budget. With a `nonce` (32 bytes; empty for
    /// none), a live record's answer carries a proof that it holds the auth key of a K,
    /// which a device holding K can check: the record is its own.
    Status {
        #[serde(with = "crate::hex")]
        nonce: Vec<u8>,
    },
    /// A fresh single-use nonce for the next [`Authorization`] (live records only).
    Challenge,
    /// OPAQUE registration, first message (`RegistrationRequest`). The vault picks a fresh
    /// registration id, so the OPRF is evaluated under a key no login has used. Over a live
    /// record it needs an [`Authorization`] bound to this request.
    RegisterStart {
        #[serde(with = "crate::hex")]
        request: Vec<u8>,
        authorization: Option<Authorization>,
    },
    /// OPAQUE registration upload for the registration id the vault gave at
    /// `RegisterStart`, with the client-sealed K blob, the auth key derived from K, and the
    /// Argon2id parameters used.
    RegisterFinish {
        #[serde(with = "crate::hex")]
        registration_id: Vec<u8>,
        #[serde(with = "crate::hex")]
        upload: Vec<u8>,
        #[serde(with = "crate::hex")]
        k_blob: Vec<u8>,
        #[serde(with = "crate::hex")]
        auth_key: Vec<u8>,
        ksf: KsfParams,
    },
    /// OPAQUE login, first message (`CredentialRequest`). Spends a guess.
    RecoverStart {
        #[serde(with = "crate::hex")]
        request: Vec<u8>,
    },
    /// OPAQUE login, final message (`CredentialFinalization`), for the login the vault
    /// named in `RecoverStarted`.
    RecoverFinish {
        #[serde(with = "crate::hex")]
        login_id: Vec<u8>,
        #[serde(with = "crate::hex")]
        finalization: Vec<u8>,
    },
    /// Removes a live record (with an [`Authorization`]), a locked tombstone, or a
    /// registration that never finished.
    Delete {
        authorization: Option<Authorization>,
    },
}

/// A vault-side failure, reported inside the channel so that the client knows it is the
/// vault's own word and not a relay's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Failure {
    /// The stored record failed authentication: altered, swapped or foreign. Not retryable.
    RecordDamaged,
    /// The vault could not commit the change; nothing was answered. Retryable.
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Response {
    Status {
        locked: bool,
        guesses_left: u16,
        max_guesses: u16,
        /// `HMAC-SHA256(auth key, … nonce …)` when a nonce was given and the record is live
        /// (empty otherwise): see [`crate::client::check_ownership`].
        #[serde(with = "crate::hex")]
        proof: Vec<u8>,
    },
    Challenge {
        #[serde(with = "crate::hex")]
        nonce: Vec<u8>,
    },
    /// The registration id to finish with, and OPAQUE's `RegistrationResponse`.
    RegisterStarted {
        #[serde(with = "crate::hex")]
        registration_id: Vec<u8>,
        #[serde(with = "crate::hex")]
        response: Vec<u8>,
    },
    Registered {
        max_guesses: u16,
    },
    /// The login's id (for its `RecoverFinish`), the OPAQUE `CredentialResponse`, the
    /// Argon2id parameters to use, and the guesses left after this one.
    RecoverStarted {
        #[serde(with = "crate::hex")]
        login_id: Vec<u8>,
        #[serde(with = "crate::hex")]
        response: Vec<u8>,
        ksf: KsfParams,
        guesses_left: u16,
    },
    /// The K blob, encrypted again under a key derived from the OPAQUE session key.
    Recovered {
        #[serde(with = "crate::hex")]
        sealed_k_blob: Vec<u8>,
    },
    WrongPassword {
        guesses_left: u16,
    },
    /// Too many wrong passwords: the record's secrets are erased for good.
    Locked,
    NotFound,
    /// A live record can only be replaced or deleted with a valid [`Authorization`].
    Unauthorized,
    Deleted,
    /// Another request on this account replaced what this one relied on (the pending
    /// login, or the challenge): nothing was decided and nothing changed; retry.
    Superseded,
    /// The request was malformed or out of turn; no guess was spent by it.
    Rejected {
        reason: String,
    },
    Failed {
        failure: Failure,
    },
}
