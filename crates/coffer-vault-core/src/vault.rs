//! The vault's logic: (request, sealed record) → (response, record update). No I/O and no
//! clock; randomness comes from the caller. The I/O shell must make a [`RecordUpdate`]
//! durable before it sends the response: that is what makes a spent guess stick.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use hkdf::Hkdf;
use opaque_ke::{
    CredentialFinalization, CredentialRequest, RegistrationRequest, RegistrationUpload,
    ServerLogin, ServerLoginParameters, ServerRegistration,
};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::messages::{Authorization, Request, Response};
use crate::record::{Live, Record};
use crate::{labels, Fleet, Suite, VaultError};

/// Largest client-sealed K blob a vault stores.
pub const MAX_K_BLOB: usize = 256;

/// What the I/O shell must do with the stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordUpdate {
    Unchanged,
    /// Store this sealed record, durably, before sending the response.
    Write(Vec<u8>),
    /// Remove the record, durably, before sending the response.
    Delete,
}

/// A response and the record change that must be committed before it is sent.
#[derive(Debug)]
pub struct Outcome {
    pub response: Response,
    pub update: RecordUpdate,
}

fn reject(reason: &str) -> Outcome {
    Outcome {
        response: Response::Rejected {
            reason: reason.to_string(),
        },
        update: RecordUpdate::Unchanged,
    }
}

fn answer(response: Response) -> Outcome {
    Outcome {
        response,
        update: RecordUpdate::Unchanged,
    }
}

/// Handles one request for `account`, whose sealed record (if any) is `sealed`.
pub fn handle<R: RngCore + CryptoRng>(
    fleet: &Fleet,
    account: &[u8],
    sealed: Option<&[u8]>,
    request: Request,
    rng: &mut R,
) -> Result<Outcome, VaultError> {
    let record = sealed
        .map(|s| Record::open(s, fleet.sealing_key(), account))
        .transpose()?;
    let write = |record: &Record, response: Response, rng: &mut R| -> Result<Outcome, VaultError> {
        Ok(Outcome {
            response,
            update: RecordUpdate::Write(record.seal(fleet.sealing_key(), account, rng)?),
        })
    };
    match request {
        Request::Status => Ok(answer(match record {
            None => Response::NotFound,
            Some(Record::Locked { max_guesses }) => Response::Status {
                locked: true,
                guesses_left: 0,
                max_guesses,
            },
            Some(Record::Live(live)) => Response::Status {
                locked: false,
                guesses_left: live.guesses_left,
                max_guesses: live.max_guesses,
            },
        })),

        Request::RegisterStart { request } => {
            let Ok(request) = RegistrationRequest::<Suite>::deserialize(&request) else {
                return Ok(reject("malformed registration request"));
            };
            let started = ServerRegistration::<Suite>::start(fleet.opaque(), request, account)
                .map_err(|e| VaultError::Internal(e.to_string()))?;
            Ok(answer(Response::RegisterStarted {
                response: started.message.serialize().to_vec(),
            }))
        }

        Request::RegisterFinish {
            upload,
            k_blob,
            k_verifier,
            ksf,
            authorization,
        } => {
            if !ksf.is_sane() {
                return Ok(reject("Argon2id parameters out of bounds"));
            }
            if k_blob.is_empty() || k_blob.len() > MAX_K_BLOB || k_verifier.len() != 32 {
                return Ok(reject("malformed K blob or verifier"));
            }
            let Ok(upload) = RegistrationUpload::<Suite>::deserialize(&upload) else {
                return Ok(reject("malformed registration upload"));
            };
            // Replacing a live record (a new password) needs proof; a locked tombstone or
            // no record at all has nothing left to protect.
            if let Some(live @ Record::Live(_)) = &record {
                if !authorize(live, authorization.as_ref()) {
                    return Ok(answer(Response::Unauthorized));
                }
            }
            let max_guesses = fleet.max_guesses();
            let new = Record::Live(Live {
                registration: ServerRegistration::<Suite>::finish(upload)
                    .serialize()
                    .to_vec(),
                k_blob,
                k_verifier,
                ksf,
                max_guesses,
                guesses_left: max_guesses,
                pending_login: Vec::new(),
                session_token: Vec::new(),
            });
            write(&new, Response::Registered { max_guesses }, rng)
        }

        Request::RecoverStart { request } => {
            let mut live = match record {
                Some(Record::Live(live)) => live,
                Some(Record::Locked { .. }) => return Ok(answer(Response::Locked)),
                None => return Ok(answer(Response::NotFound)),
            };
            if live.guesses_left == 0 {
                // The last guess was spent on a login that never finished: erase now.
                let locked = Record::Locked {
                    max_guesses: live.max_guesses,
                };
                return write(&locked, Response::Locked, rng);
            }
            let Ok(request) = CredentialRequest::<Suite>::deserialize(&request) else {
                return Ok(reject("malformed credential request"));
            };
            let password_file = ServerRegistration::<Suite>::deserialize(&live.registration)
                .map_err(|_| VaultError::BadRecord)?;
            let started = ServerLogin::start(
                rng,
                fleet.opaque(),
                Some(password_file),
                request,
                account,
                ServerLoginParameters::default(),
            )
            .map_err(|e| VaultError::Internal(e.to_string()))?;
            // The guess is spent in the record that must be committed before the OPRF
            // evaluation (inside `started.message`) leaves the vault.
            live.guesses_left -= 1;
            live.pending_login = started.state.serialize().to_vec();
            let response = Response::RecoverStarted {
                response: started.message.serialize().to_vec(),
                ksf: live.ksf,
                guesses_left: live.guesses_left,
            };
            write(&Record::Live(live), response, rng)
        }

        Request::RecoverFinish { finalization } => {
            let mut live = match record {
                Some(Record::Live(live)) => live,
                Some(Record::Locked { .. }) => return Ok(answer(Response::Locked)),
                None => return Ok(answer(Response::NotFound)),
            };
            if live.pending_login.is_empty() {
                return Ok(reject("no recovery in progress"));
            }
            let login = ServerLogin::<Suite>::deserialize(&std::mem::take(&mut live.pending_login))
                .map_err(|_| VaultError::BadRecord)?;
            // Any failure here is a wrong password (or a client that gave up): the guess
            // stays spent.
            let finished = CredentialFinalization::<Suite>::deserialize(&finalization)
                .ok()
                .and_then(|fin| login.finish(fin, ServerLoginParameters::default()).ok());
            match finished {
                Some(done) => {
                    let session_key = Zeroizing::new(done.session_key.to_vec());
                    let token = derive(&session_key, labels::AUTHORIZATION);
                    let sealed_k_blob = seal_for_transport(&session_key, &live.k_blob, rng)?;
                    live.guesses_left = live.max_guesses;
                    live.session_token = Sha256::digest(token.as_slice()).to_vec();
                    write(
                        &Record::Live(live),
                        Response::Recovered { sealed_k_blob },
                        rng,
                    )
                }
                None if live.guesses_left == 0 => {
                    let locked = Record::Locked {
                        max_guesses: live.max_guesses,
                    };
                    write(&locked, Response::Locked, rng)
                }
                None => {
                    let guesses_left = live.guesses_left;
                    write(
                        &Record::Live(live),
                        Response::WrongPassword { guesses_left },
                        rng,
                    )
                }
            }
        }

        Request::Delete { authorization } => match record {
            None => Ok(answer(Response::NotFound)),
            Some(Record::Locked { .. }) => Ok(Outcome {
                response: Response::Deleted,
                update: RecordUpdate::Delete,
            }),
            Some(live) if authorize(&live, authorization.as_ref()) => Ok(Outcome {
                response: Response::Deleted,
                update: RecordUpdate::Delete,
            }),
            Some(_) => Ok(answer(Response::Unauthorized)),
        },
    }
}

/// Checks an authorization against a live record. A session token is single use: every
/// caller that accepts one replaces or deletes the record, which drops the token with it.
fn authorize(record: &Record, auth: Option<&Authorization>) -> bool {
    let (Record::Live(live), Some(auth)) = (record, auth) else {
        return false;
    };
    let (proof, expected) = match auth {
        Authorization::Key(proof) => (proof, &live.k_verifier),
        Authorization::Session(token) => (token, &live.session_token),
    };
    expected.len() == 32 && bool::from(Sha256::digest(proof).as_slice().ct_eq(expected))
}

fn derive(session_key: &[u8], label: &[u8]) -> Zeroizing<[u8; 32]> {
    let hk = Hkdf::<Sha512>::new(None, session_key);
    let mut out = Zeroizing::new([0u8; 32]);
    hk.expand(label, out.as_mut())
        .expect("32 bytes is a valid HKDF-SHA512 output length");
    out
}

/// Encrypts the K blob for the client under a key only the two ends of this OPAQUE session
/// know: `nonce (12) || ciphertext || tag (16)`.
fn seal_for_transport<R: RngCore + CryptoRng>(
    session_key: &[u8],
    k_blob: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, VaultError> {
    let key = derive(session_key, labels::K_TRANSPORT);
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

/// The client's side of [`seal_for_transport`].
pub fn open_from_transport(session_key: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < 28 {
        return None;
    }
    let key = derive(session_key, labels::K_TRANSPORT);
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

/// The single-use authorization token a client derives from its session key after a
/// successful recovery.
pub fn session_authorization(session_key: &[u8]) -> Authorization {
    Authorization::Session(derive(session_key, labels::AUTHORIZATION).to_vec())
}
