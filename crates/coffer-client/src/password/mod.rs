//! Password mode, client side: K deposited in the Backup Key Vault behind a password.
//!
//! [`PasswordVault`] is the one facade: enable, recover, change the password, delete,
//! status. Every request travels in the end-to-end channel to the pinned fleet
//! ([`coffer_vault_core::channel`]), so the front-end in between relays ciphertext it can
//! neither read nor alter undetected. A new password is reported set only after a full
//! recovery with it has brought K back (the escrow check).

mod k_blob;
pub mod policy;

use std::future::Future;

use coffer_format::BackupKey;
use coffer_vault_core::channel;
use coffer_vault_core::client::{self, LoginOutcome};
use coffer_vault_core::{derive_auth_key, Failure, Operation, Request, Response};
use rand_core::OsRng;
use subtle::ConstantTimeEq;

use crate::error::ClientError;

pub use coffer_vault_core::is_fingerprint as is_fleet_fingerprint;
pub use coffer_vault_core::{FleetKeys, KsfParams};
pub use k_blob::{open_k, seal_k};

/// Carries sealed channel messages to the vault (through the front-end, in production) and
/// brings back the sealed answers. It sees only ciphertext.
pub trait VaultTransport {
    fn call(&self, message: Vec<u8>) -> impl Future<Output = Result<Vec<u8>, ClientError>> + Send;
}

/// The fleet keys a front-end showed, accepted only when they are the fleet pinned as
/// `fingerprint` (from the operator's printout, a flag or the profile: never from the
/// front-end itself).
pub fn pin_fleet(keys: FleetKeys, fingerprint: &str) -> Result<FleetKeys, ClientError> {
    if keys.matches(fingerprint) {
        Ok(keys)
    } else {
        Err(ClientError::VaultKeyMismatch {
            expected: fingerprint.to_ascii_lowercase(),
            seen: keys.fingerprint(),
        })
    }
}

/// The vault's view of this account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaultStatus {
    /// No record: nothing deposited, or deleted.
    Missing,
    Live {
        guesses_left: u16,
        max_guesses: u16,
    },
    /// Erased after too many wrong passwords.
    Locked {
        max_guesses: u16,
    },
}

/// A password set, and checked by a recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enabled {
    pub max_guesses: u16,
    /// The account's record had been erased (its guesses spent by logins this device did
    /// not make) and K was deposited anew: someone may have been guessing.
    pub after_erasure: bool,
}

/// How often a proof of K is retried when another request on the account took its
/// challenge first.
const CHALLENGE_TRIES: usize = 3;

/// Why a registration is made; only the refusal's wording depends on it, since the vault
/// decides by the proof of K alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Enable,
    ChangePassword,
}

/// One account's record in the vault, reached through `transport`.
pub struct PasswordVault<T> {
    transport: T,
    account: String,
    keys: FleetKeys,
}

fn unexpected(response: Response) -> ClientError {
    match response {
        Response::Locked => ClientError::Locked,
        Response::NotFound => ClientError::VaultRecordMissing,
        Response::Unauthorized => ClientError::Usage(
            "the vault refused: replacing or deleting this record needs the backup key; run `coffer change-password` or `coffer disable` on a device that holds it"
                .into(),
        ),
        Response::Superseded => ClientError::Superseded { guesses_left: None },
        Response::Rejected { reason } => {
            ClientError::Internal(format!("the vault rejected a request: {reason}"))
        }
        other => ClientError::Internal(format!("unexpected vault response: {other:?}")),
    }
}

fn step_error(e: client::ClientStepError) -> ClientError {
    match e {
        client::ClientStepError::ServerKeyMismatch | client::ClientStepError::UnsafeKsf(_) => {
            ClientError::VaultMisbehaved(e.to_string())
        }
        other => ClientError::Internal(other.to_string()),
    }
}

impl<T: VaultTransport> PasswordVault<T> {
    /// `keys` must be the pinned fleet's ([`pin_fleet`]).
    pub fn new(transport: T, account: &str, keys: FleetKeys) -> PasswordVault<T> {
        PasswordVault {
            transport,
            account: account.to_string(),
            keys,
        }
    }

    fn account(&self) -> &[u8] {
        self.account.as_bytes()
    }

    /// One request through the channel. An answer that does not open is never taken for
    /// the vault's.
    async fn call(&self, request: &Request) -> Result<Response, ClientError> {
        let (message, pending) = channel::seal_request(&self.keys, self.account(), request)
            .map_err(|e| ClientError::Internal(e.to_string()))?;
        let reply = self.transport.call(message).await?;
        match pending.open(&reply) {
            Ok(Response::Failed {
                failure: Failure::RecordDamaged,
            }) => Err(ClientError::VaultRecordDamaged),
            Ok(Response::Failed {
                failure: Failure::Unavailable,
            }) => Err(ClientError::VaultUnavailable),
            Ok(response) => Ok(response),
            Err(_) => Err(ClientError::VaultNotAuthentic),
        }
    }

    pub async fn status(&self) -> Result<VaultStatus, ClientError> {
        Ok(self.status_with(Vec::new()).await?.0)
    }

    /// The status, and whether the account's live record is the one `k` made (not one
    /// somebody who took over the account registered over it; `None` when there is no live
    /// record), in one round trip.
    pub async fn status_of_key(
        &self,
        k: &BackupKey,
    ) -> Result<(VaultStatus, Option<bool>), ClientError> {
        let mut nonce = vec![0u8; 32];
        coffer_format::key::fill_random(&mut nonce)?;
        let (status, proof) = self.status_with(nonce.clone()).await?;
        let holds = matches!(status, VaultStatus::Live { .. }).then(|| {
            client::check_ownership(
                derive_auth_key(k.as_bytes()).as_ref(),
                self.account(),
                &nonce,
                &proof,
            )
        });
        Ok((status, holds))
    }

    /// `Status` with `nonce` (empty for no ownership proof); the status and the proof.
    async fn status_with(&self, nonce: Vec<u8>) -> Result<(VaultStatus, Vec<u8>), ClientError> {
        match self.call(&Request::Status { nonce }).await? {
            Response::NotFound => Ok((VaultStatus::Missing, Vec::new())),
            Response::Status {
                locked: true,
                max_guesses,
                ..
            } => Ok((VaultStatus::Locked { max_guesses }, Vec::new())),
            Response::Status {
                guesses_left,
                max_guesses,
                proof,
                ..
            } => Ok((
                VaultStatus::Live {
                    guesses_left,
                    max_guesses,
                },
                proof,
            )),
            other => Err(unexpected(other)),
        }
    }

    /// Deposits K behind `password` where the account has no live record (or one holding
    /// this same K, left by an earlier attempt whose answer was lost), then checks the
    /// deposit by recovering K with it.
    pub async fn enable(
        &self,
        password: &str,
        k: &BackupKey,
        ksf: KsfParams,
    ) -> Result<Enabled, ClientError> {
        policy::check_new(password)?;
        let enabled = self.register(password, k, ksf, Purpose::Enable).await?;
        self.check_escrow(password, k).await?;
        Ok(enabled)
    }

    /// Replaces the live record with one for `password`, proving K, then checks it by
    /// recovering K with the new password. K itself is unchanged.
    pub async fn change_password(
        &self,
        k: &BackupKey,
        password: &str,
        ksf: KsfParams,
    ) -> Result<Enabled, ClientError> {
        policy::check_new(password)?;
        let enabled = self
            .register(password, k, ksf, Purpose::ChangePassword)
            .await?;
        self.check_escrow(password, k).await?;
        Ok(enabled)
    }

    /// Recovers K with `password`. A wrong password costs one guess and is reported with the
    /// guesses left.
    pub async fn recover(&self, password: &str) -> Result<BackupKey, ClientError> {
        policy::check_any(password)?;
        let pw = password.as_bytes();
        let (state, request) = client::start_login(&mut OsRng, pw).map_err(step_error)?;
        let (login_id, response, ksf, guesses_left) =
            match self.call(&Request::RecoverStart { request }).await? {
                Response::RecoverStarted {
                    login_id,
                    response,
                    ksf,
                    guesses_left,
                } => (login_id, response, ksf, guesses_left),
                other => return Err(unexpected(other)),
            };
        let outcome = client::finish_login(
            &mut OsRng,
            state,
            pw,
            &response,
            self.account(),
            &self.keys,
            &ksf,
        )
        .map_err(step_error)?;
        // A wrong password cannot produce a valid finalization; a dummy one closes the
        // attempt now rather than at the next one.
        let (finalization, login) = match outcome {
            LoginOutcome::Finished(login) => (login.finalization.clone(), Some(login)),
            LoginOutcome::WrongPassword => (LoginOutcome::dummy_finalization(), None),
        };
        match (
            self.call(&Request::RecoverFinish {
                login_id,
                finalization,
            })
            .await?,
            login,
        ) {
            (Response::Recovered { sealed_k_blob }, Some(login)) => {
                let blob = client::open_k_transport(&login.session_key, &sealed_k_blob).ok_or(
                    ClientError::VaultMisbehaved(
                        "the K blob did not open under the session key".into(),
                    ),
                )?;
                open_k(&login.export_key, &blob)
            }
            (Response::WrongPassword { guesses_left }, _) => {
                Err(ClientError::WrongPassword { guesses_left })
            }
            // Another login replaced this one. When this client already knows the password
            // is wrong, that is what it says (the guess was spent at the start); otherwise
            // the attempt used a guess and judged nothing.
            (Response::Superseded, None) => Err(ClientError::WrongPassword { guesses_left }),
            (Response::Superseded, Some(_)) => Err(ClientError::Superseded {
                guesses_left: Some(guesses_left),
            }),
            (Response::Recovered { .. }, None) => Err(ClientError::VaultMisbehaved(
                "the vault accepted a login this client could not finish".into(),
            )),
            (other, _) => Err(unexpected(other)),
        }
    }

    /// Removes the record, proving K. A record already gone is fine.
    pub async fn delete(&self, k: &BackupKey) -> Result<(), ClientError> {
        for _ in 0..CHALLENGE_TRIES {
            let authorization = match self.call(&Request::Challenge).await? {
                Response::Challenge { nonce } => Some(client::authorize(
                    derive_auth_key(k.as_bytes()).as_ref(),
                    self.account(),
                    &nonce,
                    Operation::Delete,
                    &[],
                )),
                // A tombstone needs no proof; no record needs no deletion.
                Response::Locked => None,
                Response::NotFound => return Ok(()),
                other => return Err(unexpected(other)),
            };
            match self.call(&Request::Delete { authorization }).await? {
                Response::Deleted | Response::NotFound => return Ok(()),
                // Another request took the challenge meanwhile: a new one.
                Response::Superseded => continue,
                other => return Err(unexpected(other)),
            }
        }
        Err(ClientError::Superseded { guesses_left: None })
    }

    /// A registration; over a live record, with proof of K.
    async fn register(
        &self,
        password: &str,
        k: &BackupKey,
        ksf: KsfParams,
        purpose: Purpose,
    ) -> Result<Enabled, ClientError> {
        if !ksf.is_sane() {
            return Err(ClientError::Usage(format!(
                "Argon2id parameters out of bounds: {ksf:?}"
            )));
        }
        let pw = password.as_bytes();
        let auth_key = derive_auth_key(k.as_bytes());
        let mut started = None;
        let mut after_erasure = false;
        for _ in 0..CHALLENGE_TRIES {
            let (state, request) =
                client::start_registration(&mut OsRng, pw).map_err(step_error)?;
            // Proof of K for a live record; a locked or missing one needs none.
            let authorization = match self.call(&Request::Challenge).await? {
                Response::Challenge { nonce } => Some(client::authorize(
                    auth_key.as_ref(),
                    self.account(),
                    &nonce,
                    Operation::Replace,
                    &request,
                )),
                Response::Locked | Response::NotFound => None,
                other => return Err(unexpected(other)),
            };
            match self
                .call(&Request::RegisterStart {
                    request,
                    authorization,
                })
                .await?
            {
                Response::RegisterStarted {
                    registration_id,
                    response,
                } => {
                    started = Some((state, registration_id, response));
                    break;
                }
                // Another request took the challenge meanwhile: a new one.
                Response::Superseded => continue,
                // The record's guesses were all spent (by someone else's unfinished
                // logins): the vault erased it; this device, holding K, deposits it anew.
                Response::Locked => {
                    after_erasure = true;
                    continue;
                }
                Response::Unauthorized if purpose == Purpose::Enable => {
                    return Err(ClientError::Usage(
                        "the vault holds a record for this account that this device's key does not open: either password mode is on for this account on another device (recover the key with `coffer restore`), or someone who took over the account registered one (then wrong passwords will erase it)"
                            .into(),
                    ))
                }
                other => return Err(unexpected(other)),
            }
        }
        let (state, registration_id, response) =
            started.ok_or(ClientError::Superseded { guesses_left: None })?;
        let registration = client::finish_registration(
            &mut OsRng,
            state,
            pw,
            &response,
            self.account(),
            &self.keys,
            &ksf,
        )
        .map_err(step_error)?;
        let k_blob = seal_k(&registration.export_key, k)?;
        let finished = self
            .call(&Request::RegisterFinish {
                registration_id,
                upload: registration.upload,
                k_blob,
                auth_key: auth_key.to_vec(),
                ksf,
            })
            .await;
        match finished {
            Ok(Response::Registered { max_guesses }) => Ok(Enabled {
                max_guesses,
                after_erasure,
            }),
            Ok(other) => Err(unexpected(other)),
            // The vault may have committed it: only running the command again settles it
            // (its new registration voids this one if it did not land).
            Err(ClientError::Unreachable(e)) => Err(ClientError::Unreachable(format!(
                "{e}; the new password may or may not be in force: run the command again"
            ))),
            Err(e) => Err(e),
        }
    }

    /// A full recovery with the password just set must bring K back; otherwise the deposit
    /// is broken, and it must be known now rather than on the day the phone is lost.
    async fn check_escrow(&self, password: &str, k: &BackupKey) -> Result<(), ClientError> {
        let recovered = match self.recover(password).await {
            Ok(key) => key,
            Err(ClientError::WrongPassword { .. }) => {
                return Err(ClientError::EscrowBroken(
                    "the new password does not open the record the vault kept",
                ))
            }
            Err(e) => return Err(e),
        };
        if bool::from(recovered.as_bytes().ct_eq(k.as_bytes())) {
            Ok(())
        } else {
            Err(ClientError::EscrowBroken(
                "the vault gave back a different key",
            ))
        }
    }
}
