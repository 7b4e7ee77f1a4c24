//! The vault's logic: (request, plaintext record) → (response, record change). No I/O, no
//! clock; randomness comes from the caller. The I/O shell must make a [`Change`] durable
//! before it sends the response: that is what makes a spent guess stick.
//!
//! Guess limit: the OPRF is evaluated under a live record's key only by `RecoverStart`,
//! and only together with a record that counts the guess. A registration's OPRF key comes
//! from a fresh random registration id, never a live one's.

use opaque_ke::{
    CredentialFinalization, CredentialRequest, RegistrationRequest, RegistrationUpload,
    ServerLogin, ServerLoginParameters, ServerRegistration,
};
use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::authorization::{self, Operation, AUTH_LEN};
use crate::messages::{Authorization, Request, Response};
use crate::opaque_binding::{context, credential_identifier, identifiers, REGISTRATION_ID_LEN};
use crate::record::{Live, Record, State};
use crate::suite::KsfParams;
use crate::transport::seal_for_transport;
use crate::{Fleet, Suite, VaultError};

/// Largest client-sealed K blob a vault stores.
pub const MAX_K_BLOB: usize = 256;

/// What the I/O shell must do with the stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    None,
    /// Store this record, durably, before sending the response.
    Put(Box<Record>),
    /// Remove the record, durably, before sending the response.
    Delete,
}

/// A response and the record change that must be committed before it is sent.
#[derive(Debug)]
pub struct Step {
    pub response: Response,
    pub change: Change,
}

fn answer(response: Response) -> Step {
    Step {
        response,
        change: Change::None,
    }
}

fn reject(reason: &str) -> Step {
    answer(Response::Rejected {
        reason: reason.to_string(),
    })
}

fn put(record: Record, response: Response) -> Step {
    Step {
        response,
        change: Change::Put(Box::new(record)),
    }
}

/// Handles one request for `account`, whose record (if any) is `record`.
pub fn step<R: RngCore + CryptoRng>(
    fleet: &Fleet,
    account: &[u8],
    record: Option<Record>,
    request: Request,
    rng: &mut R,
) -> Result<Step, VaultError> {
    match request {
        Request::Status { nonce } => Ok(answer(status(account, record.as_ref(), &nonce))),
        Request::Challenge => Ok(challenge(record, rng)),
        Request::RegisterStart {
            request,
            authorization,
        } => register_start(
            fleet,
            account,
            record,
            &request,
            authorization.as_ref(),
            rng,
        ),
        Request::RegisterFinish {
            registration_id,
            upload,
            k_blob,
            auth_key,
            ksf,
        } => Ok(register_finish(
            fleet,
            record,
            &registration_id,
            &upload,
            k_blob,
            auth_key,
            ksf,
        )),
        Request::RecoverStart { request } => recover_start(fleet, account, record, &request, rng),
        Request::RecoverFinish {
            login_id,
            finalization,
        } => recover_finish(fleet, account, record, &login_id, &finalization, rng),
        Request::Delete { authorization } => Ok(delete(account, record, authorization.as_ref())),
    }
}

fn status(account: &[u8], record: Option<&Record>, nonce: &[u8]) -> Response {
    match record.map(|r| &r.state) {
        None | Some(State::Empty) => Response::NotFound,
        Some(State::Locked { max_guesses }) => Response::Status {
            locked: true,
            guesses_left: 0,
            max_guesses: *max_guesses,
            proof: Vec::new(),
        },
        Some(State::Live(live)) => Response::Status {
            locked: false,
            guesses_left: live.guesses_left,
            max_guesses: live.max_guesses,
            proof: if nonce.len() == AUTH_LEN {
                authorization::mac(&live.auth_key, account, nonce, Operation::Ownership, &[])
                    .to_vec()
            } else {
                Vec::new()
            },
        },
    }
}

fn challenge<R: RngCore + CryptoRng>(record: Option<Record>, rng: &mut R) -> Step {
    match record {
        Some(mut record) => match &mut record.state {
            State::Live(live) => {
                let mut nonce = vec![0u8; AUTH_LEN];
                rng.fill_bytes(&mut nonce);
                live.challenge = nonce.clone();
                put(record, Response::Challenge { nonce })
            }
            State::Locked { .. } => answer(Response::Locked),
            State::Empty => answer(Response::NotFound),
        },
        None => answer(Response::NotFound),
    }
}

/// What an authorization presented for a live record comes to.
enum Proof {
    /// None was presented.
    Missing,
    /// It answers a challenge that is not the outstanding one (replaced since, or spent):
    /// nothing is spent, and the caller is told to retry.
    Stale,
    /// It answered the outstanding challenge, which is now spent, rightly or not.
    Spent { valid: bool },
}

/// Spends the live record's challenge on `presented`, if it answers that challenge:
/// whatever the outcome, that challenge answers no other.
fn spend_challenge(
    live: &mut Live,
    account: &[u8],
    op: Operation,
    request: &[u8],
    presented: Option<&Authorization>,
) -> Proof {
    let Some(presented) = presented else {
        return Proof::Missing;
    };
    if live.challenge.len() != AUTH_LEN
        || !bool::from(live.challenge.as_slice().ct_eq(&presented.challenge))
    {
        return Proof::Stale;
    }
    let challenge = std::mem::take(&mut live.challenge);
    Proof::Spent {
        valid: authorization::verify(
            &live.auth_key,
            account,
            &challenge,
            op,
            request,
            &presented.mac,
        ),
    }
}

fn register_start<R: RngCore + CryptoRng>(
    fleet: &Fleet,
    account: &[u8],
    record: Option<Record>,
    request: &[u8],
    authorization: Option<&Authorization>,
    rng: &mut R,
) -> Result<Step, VaultError> {
    let Ok(parsed) = RegistrationRequest::<Suite>::deserialize(request) else {
        return Ok(reject("malformed registration request"));
    };
    let mut record = record.unwrap_or(Record {
        state: State::Empty,
        pending_registration: Vec::new(),
    });
    // A live record whose guesses are all spent (by logins never finished) is erased now,
    // as the next RecoverStart would: no registration may start over it.
    if let State::Live(live) = &record.state {
        if live.guesses_left == 0 {
            let max = live.max_guesses;
            lock(&mut record, max);
            return Ok(put(record, Response::Locked));
        }
    }
    // Replacing a live record (a new password) needs proof of K; a tombstone or no record
    // has nothing left to protect.
    if let State::Live(live) = &mut record.state {
        match spend_challenge(live, account, Operation::Replace, request, authorization) {
            Proof::Spent { valid: true } => {}
            Proof::Spent { valid: false } => return Ok(put(record, Response::Unauthorized)),
            Proof::Stale => return Ok(answer(Response::Superseded)),
            Proof::Missing => return Ok(answer(Response::Unauthorized)),
        }
    }
    let mut registration_id = vec![0u8; REGISTRATION_ID_LEN];
    rng.fill_bytes(&mut registration_id);
    let started = ServerRegistration::<Suite>::start(
        fleet.opaque(),
        parsed,
        &credential_identifier(account, &registration_id),
    )
    .map_err(|e| VaultError::Internal(e.to_string()))?;
    record.pending_registration = registration_id.clone();
    Ok(put(
        record,
        Response::RegisterStarted {
            registration_id,
            response: started.message.serialize().to_vec(),
        },
    ))
}

fn register_finish(
    fleet: &Fleet,
    record: Option<Record>,
    registration_id: &[u8],
    upload: &[u8],
    k_blob: Vec<u8>,
    auth_key: Vec<u8>,
    ksf: KsfParams,
) -> Step {
    if !ksf.is_sane() {
        return reject("Argon2id parameters out of bounds");
    }
    if k_blob.is_empty() || k_blob.len() > MAX_K_BLOB || auth_key.len() != AUTH_LEN {
        return reject("malformed K blob or auth key");
    }
    let Ok(upload) = RegistrationUpload::<Suite>::deserialize(upload) else {
        return reject("malformed registration upload");
    };
    // Only the registration id this record's last RegisterStart handed out, once: a
    // replayed or invented RegisterFinish can neither restore an old password file nor
    // refill a locked record's budget.
    let pending = record
        .as_ref()
        .map(|r| r.pending_registration.as_slice())
        .unwrap_or_default();
    if registration_id.len() != REGISTRATION_ID_LEN
        || pending.len() != REGISTRATION_ID_LEN
        || !bool::from(pending.ct_eq(registration_id))
    {
        return reject("no such registration in progress");
    }
    let max_guesses = fleet.max_guesses();
    // A replacement keeps the guesses already spent since the last successful recovery
    // (the client's escrow check recovers at once, which restores them): a password change
    // held back and delivered later must not refill the budget. A record with none left
    // is erased, as the next RecoverStart would.
    let (old_left, old_max) = match record.as_ref().map(|r| &r.state) {
        Some(State::Live(old)) => (Some(old.guesses_left), old.max_guesses),
        _ => (None, max_guesses),
    };
    let guesses_left = match (old_left, record) {
        (Some(0), Some(mut spent)) => {
            lock(&mut spent, old_max);
            return put(spent, Response::Locked);
        }
        (Some(left), _) => left.min(max_guesses),
        _ => max_guesses,
    };
    let live = Live {
        registration_id: registration_id.to_vec(),
        password_file: ServerRegistration::<Suite>::finish(upload)
            .serialize()
            .to_vec(),
        k_blob,
        auth_key,
        ksf,
        max_guesses,
        guesses_left,
        pending_login: Vec::new(),
        pending_login_id: Vec::new(),
        challenge: Vec::new(),
    };
    put(
        Record {
            state: State::Live(live),
            pending_registration: Vec::new(),
        },
        Response::Registered { max_guesses },
    )
}

/// The live record, or the answer for a record that has none.
fn live_or_answer(record: Option<Record>) -> Result<Record, Response> {
    match record {
        Some(r) if matches!(r.state, State::Live(_)) => Ok(r),
        Some(Record {
            state: State::Locked { .. },
            ..
        }) => Err(Response::Locked),
        _ => Err(Response::NotFound),
    }
}

/// Erases the record's secrets. A registration started over the live record goes with
/// them: delivered later, it would bring the erased record back with a fresh budget.
fn lock(record: &mut Record, max_guesses: u16) {
    record.state = State::Locked { max_guesses };
    record.pending_registration.clear();
}

/// Bytes of a login id.
const LOGIN_ID_LEN: usize = 16;

fn recover_start<R: RngCore + CryptoRng>(
    fleet: &Fleet,
    account: &[u8],
    record: Option<Record>,
    request: &[u8],
    rng: &mut R,
) -> Result<Step, VaultError> {
    let mut record = match live_or_answer(record) {
        Ok(r) => r,
        Err(response) => return Ok(answer(response)),
    };
    let State::Live(live) = &mut record.state else {
        return Err(VaultError::Internal("not a live record".into()));
    };
    if live.guesses_left == 0 {
        // The last guess was spent on a login that never finished: erase now.
        let max = live.max_guesses;
        lock(&mut record, max);
        return Ok(put(record, Response::Locked));
    }
    let Ok(parsed) = CredentialRequest::<Suite>::deserialize(request) else {
        return Ok(reject("malformed credential request"));
    };
    let password_file = ServerRegistration::<Suite>::deserialize(&live.password_file)
        .map_err(|_| VaultError::BadRecord)?;
    let context = context(fleet.keys());
    let started = ServerLogin::start(
        rng,
        fleet.opaque(),
        Some(password_file),
        parsed,
        &credential_identifier(account, &live.registration_id),
        ServerLoginParameters {
            context: Some(&context),
            identifiers: identifiers(account),
        },
    )
    .map_err(|e| VaultError::Internal(e.to_string()))?;
    // The guess is spent in the record that must be committed before the OPRF evaluation
    // (inside `started.message`) leaves the vault.
    live.guesses_left -= 1;
    live.pending_login = started.state.serialize().to_vec();
    if live.guesses_left == 0 {
        // The budget is spent: a registration started over the record must not outlive it
        // (delivered later, it would bring the record back with fresh guesses).
        record.pending_registration.clear();
    }
    let mut login_id = vec![0u8; LOGIN_ID_LEN];
    rng.fill_bytes(&mut login_id);
    live.pending_login_id = login_id.clone();
    let response = Response::RecoverStarted {
        login_id,
        response: started.message.serialize().to_vec(),
        ksf: live.ksf,
        guesses_left: live.guesses_left,
    };
    Ok(put(record, response))
}

fn recover_finish<R: RngCore + CryptoRng>(
    fleet: &Fleet,
    account: &[u8],
    record: Option<Record>,
    login_id: &[u8],
    finalization: &[u8],
    rng: &mut R,
) -> Result<Step, VaultError> {
    let mut record = match live_or_answer(record) {
        Ok(r) => r,
        Err(response) => return Ok(answer(response)),
    };
    let State::Live(live) = &mut record.state else {
        return Err(VaultError::Internal("not a live record".into()));
    };
    // Only the pending login's own finalization closes it: one for a login another request
    // has replaced (or closed) changes nothing, and is told so rather than called wrong.
    if live.pending_login.is_empty()
        || live.pending_login_id.len() != LOGIN_ID_LEN
        || !bool::from(live.pending_login_id.as_slice().ct_eq(login_id))
    {
        return Ok(answer(Response::Superseded));
    }
    live.pending_login_id.clear();
    let login = ServerLogin::<Suite>::deserialize(&std::mem::take(&mut live.pending_login))
        .map_err(|_| VaultError::BadRecord)?;
    let context = context(fleet.keys());
    let parameters = ServerLoginParameters {
        context: Some(&context),
        identifiers: identifiers(account),
    };
    // Any failure here is a wrong password (or a client that gave up): the guess stays
    // spent.
    let finished = CredentialFinalization::<Suite>::deserialize(finalization)
        .ok()
        .and_then(|fin| login.finish(fin, parameters).ok());
    match finished {
        Some(done) => {
            let session_key = Zeroizing::new(done.session_key.to_vec());
            let sealed_k_blob = seal_for_transport(&session_key, &live.k_blob, rng)?;
            live.guesses_left = live.max_guesses;
            Ok(put(record, Response::Recovered { sealed_k_blob }))
        }
        None if live.guesses_left == 0 => {
            let max = live.max_guesses;
            lock(&mut record, max);
            Ok(put(record, Response::Locked))
        }
        None => {
            let guesses_left = live.guesses_left;
            Ok(put(record, Response::WrongPassword { guesses_left }))
        }
    }
}

fn delete(account: &[u8], record: Option<Record>, authorization: Option<&Authorization>) -> Step {
    let Some(mut record) = record else {
        return answer(Response::NotFound);
    };
    let gone = Step {
        response: Response::Deleted,
        change: Change::Delete,
    };
    let State::Live(live) = &mut record.state else {
        // A tombstone or an unfinished registration has nothing left to protect.
        return gone;
    };
    match spend_challenge(live, account, Operation::Delete, &[], authorization) {
        Proof::Spent { valid: true } => gone,
        Proof::Spent { valid: false } => put(record, Response::Unauthorized),
        Proof::Stale => answer(Response::Superseded),
        Proof::Missing => answer(Response::Unauthorized),
    }
}
