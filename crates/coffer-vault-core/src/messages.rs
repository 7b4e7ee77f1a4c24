//! Requests to and responses from a vault, as the front-end relays them. OPAQUE messages
//! travel as their serialized bytes; the front-end cannot read any of them usefully.

use serde::{Deserialize, Serialize};

use crate::suite::KsfParams;

/// Proof that the caller may replace or delete a live record (spec §3.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Authorization {
    /// 32 bytes derived from K (`HKDF(K, "coffer/v1/vault/k-proof")`): proves the caller
    /// holds the backup key.
    Key(#[serde(with = "crate::hex")] Vec<u8>),
    /// 32 bytes derived from the session key of the last successful recovery: proves the
    /// caller knew the password. Single use.
    Session(#[serde(with = "crate::hex")] Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// OPAQUE registration, first message (`RegistrationRequest`).
    RegisterStart {
        #[serde(with = "crate::hex")]
        request: Vec<u8>,
    },
    /// OPAQUE registration upload, with the client-sealed K blob. Over a live record it
    /// needs an [`Authorization`] (this is also how a password is changed).
    RegisterFinish {
        #[serde(with = "crate::hex")]
        upload: Vec<u8>,
        #[serde(with = "crate::hex")]
        k_blob: Vec<u8>,
        /// SHA-256 of the K proof, so that K can later authorize changes.
        #[serde(with = "crate::hex")]
        k_verifier: Vec<u8>,
        ksf: KsfParams,
        authorization: Option<Authorization>,
    },
    /// OPAQUE login, first message (`CredentialRequest`). Consumes a guess.
    RecoverStart {
        #[serde(with = "crate::hex")]
        request: Vec<u8>,
    },
    /// OPAQUE login, final message (`CredentialFinalization`).
    RecoverFinish {
        #[serde(with = "crate::hex")]
        finalization: Vec<u8>,
    },
    /// Removes a live record (with authorization) or a locked tombstone.
    Delete {
        authorization: Option<Authorization>,
    },
    /// Whether a record exists, and its guess budget.
    Status,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    RegisterStarted {
        #[serde(with = "crate::hex")]
        response: Vec<u8>,
    },
    Registered {
        max_guesses: u16,
    },
    /// The OPAQUE `CredentialResponse`, the Argon2id parameters to use, and the guesses
    /// left after this one.
    RecoverStarted {
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
    /// A live record can only be replaced or deleted with an [`Authorization`].
    Unauthorized,
    Deleted,
    Status {
        locked: bool,
        guesses_left: u16,
        max_guesses: u16,
    },
    /// The request was malformed; nothing changed and no guess was consumed.
    Rejected {
        reason: String,
    },
}
