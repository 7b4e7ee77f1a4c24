//! The client's side of OPAQUE, bound exactly as the vault binds it (credential identifier,
//! context, identifiers), and the client's side of the K transport and authorizations. Pure
//! functions: the client library, the tests and the benchmark all use these, so the OPAQUE
//! client exists once.

use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialResponse, RegistrationResponse,
};
use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::fleet::FleetKeys;
use crate::opaque_binding::{context, identifiers};
use crate::suite::KsfParams;
use crate::Suite;

pub use crate::authorization::authorize;
use crate::authorization::{self, Operation};
pub use crate::transport::open_from_transport as open_k_transport;

/// Bytes of a `CredentialFinalization` (a MAC under SHA-512).
const FINALIZATION_LEN: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ClientStepError {
    /// The vault's OPAQUE key is not the pinned fleet's.
    #[error("the vault's OPAQUE key is not the pinned fleet's")]
    ServerKeyMismatch,
    /// Argon2id parameters outside [`KsfParams::is_sane`]: refused before running them.
    #[error("the vault sent Argon2id parameters outside sane bounds ({0:?})")]
    UnsafeKsf(KsfParams),
    #[error("malformed {0} from the vault")]
    Malformed(&'static str),
    #[error("OPAQUE: {0}")]
    Opaque(String),
}

fn opaque(e: opaque_ke::errors::ProtocolError) -> ClientStepError {
    ClientStepError::Opaque(e.to_string())
}

fn argon(ksf: &KsfParams) -> Result<argon2::Argon2<'static>, ClientStepError> {
    if !ksf.is_sane() {
        return Err(ClientStepError::UnsafeKsf(*ksf));
    }
    ksf.argon2().map_err(|_| ClientStepError::UnsafeKsf(*ksf))
}

/// A registration's first message and the state to finish it with.
pub fn start_registration<R: RngCore + CryptoRng>(
    rng: &mut R,
    password: &[u8],
) -> Result<(ClientRegistration<Suite>, Vec<u8>), ClientStepError> {
    let start = ClientRegistration::<Suite>::start(rng, password).map_err(opaque)?;
    Ok((start.state, start.message.serialize().to_vec()))
}

/// What a finished registration gives: the upload for the vault, and the export key that
/// seals K.
pub struct Registration {
    pub upload: Vec<u8>,
    pub export_key: Zeroizing<Vec<u8>>,
}

/// Finishes a registration for `account` with the fleet `keys`; refuses a response made
/// under another OPAQUE key.
pub fn finish_registration<R: RngCore + CryptoRng>(
    rng: &mut R,
    state: ClientRegistration<Suite>,
    password: &[u8],
    response: &[u8],
    account: &[u8],
    keys: &FleetKeys,
    ksf: &KsfParams,
) -> Result<Registration, ClientStepError> {
    let argon = argon(ksf)?;
    let response = RegistrationResponse::<Suite>::deserialize(response)
        .map_err(|_| ClientStepError::Malformed("registration response"))?;
    let finish = state
        .finish(
            rng,
            password,
            response,
            ClientRegistrationFinishParameters::new(identifiers(account), Some(&argon)),
        )
        .map_err(opaque)?;
    if !bool::from(
        finish
            .server_s_pk
            .serialize()
            .as_slice()
            .ct_eq(&keys.opaque),
    ) {
        return Err(ClientStepError::ServerKeyMismatch);
    }
    Ok(Registration {
        upload: finish.message.serialize().to_vec(),
        export_key: Zeroizing::new(finish.export_key.to_vec()),
    })
}

/// A login's first message and the state to finish it with.
pub fn start_login<R: RngCore + CryptoRng>(
    rng: &mut R,
    password: &[u8],
) -> Result<(ClientLogin<Suite>, Vec<u8>), ClientStepError> {
    let start = ClientLogin::<Suite>::start(rng, password).map_err(opaque)?;
    Ok((start.state, start.message.serialize().to_vec()))
}

/// A successful login: the finalization to send, and the keys only the two ends know.
pub struct Login {
    pub finalization: Vec<u8>,
    pub session_key: Zeroizing<Vec<u8>>,
    pub export_key: Zeroizing<Vec<u8>>,
}

pub enum LoginOutcome {
    Finished(Login),
    /// The password is wrong (the envelope does not open). Send [`Self::dummy_finalization`]
    /// so that the vault closes the attempt now.
    WrongPassword,
}

impl LoginOutcome {
    /// What a client that cannot finish sends, so that its attempt is closed at once.
    pub fn dummy_finalization() -> Vec<u8> {
        vec![0u8; FINALIZATION_LEN]
    }
}

/// Finishes a login for `account` with the fleet `keys`, running Argon2id with `ksf` only
/// when they are within bounds.
#[allow(clippy::too_many_arguments)]
pub fn finish_login<R: RngCore + CryptoRng>(
    rng: &mut R,
    state: ClientLogin<Suite>,
    password: &[u8],
    response: &[u8],
    account: &[u8],
    keys: &FleetKeys,
    ksf: &KsfParams,
) -> Result<LoginOutcome, ClientStepError> {
    let argon = argon(ksf)?;
    let response = CredentialResponse::<Suite>::deserialize(response)
        .map_err(|_| ClientStepError::Malformed("credential response"))?;
    let context = context(keys);
    let finished = state.finish(
        rng,
        password,
        response,
        ClientLoginFinishParameters::new(Some(&context), identifiers(account), Some(&argon)),
    );
    let Ok(done) = finished else {
        return Ok(LoginOutcome::WrongPassword);
    };
    if !bool::from(done.server_s_pk.serialize().as_slice().ct_eq(&keys.opaque)) {
        return Err(ClientStepError::ServerKeyMismatch);
    }
    Ok(LoginOutcome::Finished(Login {
        finalization: done.message.serialize().to_vec(),
        session_key: Zeroizing::new(done.session_key.to_vec()),
        export_key: Zeroizing::new(done.export_key.to_vec()),
    }))
}

/// Whether a `Status` answer's `proof`, for the `nonce` this client sent, shows that the
/// record holds the auth key of the K whose `auth_key` this is: the record is this K's, not
/// one somebody else registered over the account.
pub fn check_ownership(auth_key: &[u8], account: &[u8], nonce: &[u8], proof: &[u8]) -> bool {
    // The vault proves only over a full 32-byte nonce; a short one proves nothing.
    nonce.len() == authorization::AUTH_LEN
        && authorization::verify(auth_key, account, nonce, Operation::Ownership, &[], proof)
}
