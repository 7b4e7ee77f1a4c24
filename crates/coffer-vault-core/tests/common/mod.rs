//! A vault held in memory exactly as a node holds it on disk (sealed records, the channel in
//! front), and the client's flows built from `coffer_vault_core::client`.

#![allow(dead_code)]

use std::collections::HashMap;

use coffer_vault_core::channel::{self, ChannelError};
use coffer_vault_core::client::{self, Login, LoginOutcome};
use coffer_vault_core::{
    derive_auth_key, handle, Fleet, FleetKeys, KsfParams, Operation, Record, Request, Response,
    Update,
};
use rand_core::OsRng;

/// Cheap Argon2id for tests; the default is far heavier.
pub const KSF: KsfParams = KsfParams {
    m_cost_kib: 8,
    t_cost: 1,
    p_cost: 1,
};
pub const ACCOUNT: &[u8] = b"+15550001";
/// What the tests deposit as the client-sealed K blob.
pub const K_BLOB: &[u8] = b"client-sealed K blob (opaque to the vault)";

pub struct MemoryVault {
    pub fleet: Fleet,
    pub stored: HashMap<Vec<u8>, Vec<u8>>,
}

impl MemoryVault {
    pub fn new() -> MemoryVault {
        MemoryVault {
            fleet: Fleet::generate(&mut OsRng, 10).unwrap(),
            stored: HashMap::new(),
        }
    }

    pub fn keys(&self) -> FleetKeys {
        self.fleet.keys().clone()
    }

    /// What a node does with one channel message: handle, commit, answer.
    pub fn deliver(&mut self, account: &[u8], message: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let handled = handle(
            &self.fleet,
            account,
            self.stored.get(account).map(Vec::as_slice),
            message,
            &mut OsRng,
        )?;
        match &handled.update {
            Update::None => {}
            Update::Put(sealed) => {
                self.stored.insert(account.to_vec(), sealed.clone());
            }
            Update::Delete => {
                self.stored.remove(account);
            }
        }
        handled.answer()
    }

    /// One request through the channel, as an honest client sends it.
    pub fn call(&mut self, account: &[u8], request: &Request) -> Response {
        let (message, pending) =
            channel::seal_request(self.fleet.keys(), account, request).unwrap();
        let reply = self.deliver(account, &message).unwrap();
        pending.open(&reply).unwrap()
    }

    pub fn record(&self, account: &[u8]) -> Option<Record> {
        self.stored
            .get(account)
            .map(|s| Record::open(s, &self.fleet, account).unwrap())
    }

    pub fn guesses_left(&mut self, account: &[u8]) -> Option<u16> {
        match self.call(account, &Request::Status { nonce: vec![] }) {
            Response::Status { guesses_left, .. } => Some(guesses_left),
            _ => None,
        }
    }
}

/// A fresh single-use challenge, if the record is live.
pub fn challenge(v: &mut MemoryVault, account: &[u8]) -> Option<Vec<u8>> {
    match v.call(account, &Request::Challenge) {
        Response::Challenge { nonce } => Some(nonce),
        _ => None,
    }
}

/// Registers `password`, proving K (when a record is live) with `k`.
pub fn register(v: &mut MemoryVault, account: &[u8], password: &[u8], k: &[u8; 32]) -> Response {
    let auth_key = derive_auth_key(k);
    let (state, request) = client::start_registration(&mut OsRng, password).unwrap();
    let authorization = challenge(v, account).map(|nonce| {
        client::authorize(
            auth_key.as_ref(),
            account,
            &nonce,
            Operation::Replace,
            &request,
        )
    });
    let keys = v.keys();
    match v.call(
        account,
        &Request::RegisterStart {
            request,
            authorization,
        },
    ) {
        Response::RegisterStarted {
            registration_id,
            response,
        } => {
            let reg = client::finish_registration(
                &mut OsRng, state, password, &response, account, &keys, &KSF,
            )
            .unwrap();
            v.call(
                account,
                &Request::RegisterFinish {
                    registration_id,
                    upload: reg.upload,
                    k_blob: K_BLOB.to_vec(),
                    auth_key: auth_key.to_vec(),
                    ksf: KSF,
                },
            )
        }
        other => other,
    }
}

/// A whole recovery; the final response and, on success, the client's keys.
pub fn recover(v: &mut MemoryVault, account: &[u8], password: &[u8]) -> (Response, Option<Login>) {
    let (state, request) = client::start_login(&mut OsRng, password).unwrap();
    let first = v.call(account, &Request::RecoverStart { request });
    let Response::RecoverStarted {
        login_id,
        response,
        ksf,
        ..
    } = first
    else {
        return (first, None);
    };
    let keys = v.keys();
    match client::finish_login(&mut OsRng, state, password, &response, account, &keys, &ksf)
        .unwrap()
    {
        LoginOutcome::Finished(login) => (
            v.call(
                account,
                &Request::RecoverFinish {
                    login_id,
                    finalization: login.finalization.clone(),
                },
            ),
            Some(login),
        ),
        LoginOutcome::WrongPassword => (
            v.call(
                account,
                &Request::RecoverFinish {
                    login_id,
                    finalization: LoginOutcome::dummy_finalization(),
                },
            ),
            None,
        ),
    }
}

/// Deletes the live record with proof of `k`.
pub fn delete(v: &mut MemoryVault, account: &[u8], k: &[u8; 32]) -> Response {
    let authorization = challenge(v, account).map(|nonce| {
        client::authorize(
            derive_auth_key(k).as_ref(),
            account,
            &nonce,
            Operation::Delete,
            &[],
        )
    });
    v.call(account, &Request::Delete { authorization })
}
