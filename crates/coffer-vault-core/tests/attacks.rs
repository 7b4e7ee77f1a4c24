//! Attacks on the guess limit and on records, run against the vault core the way an account
//! holder (a hijacker after a fresh verification) or the front-end (which relays every
//! message and holds the node token) would run them. Both can write channel messages of
//! their own, since the client end of Noise NK is anonymous; the front-end can also record
//! and replay the honest client's.

mod common;

use coffer_vault_core::channel;
use coffer_vault_core::client;
use coffer_vault_core::{Request, Response, State};
use common::*;
use hkdf::Hkdf;
use rand_core::OsRng;
use sha2::{Digest, Sha512};

const K: [u8; 32] = [7u8; 32];
const DICTIONARY: [&[u8]; 6] = [
    b"123456",
    b"password",
    b"letmein",
    b"dragon",
    b"correct horse",
    b"qwerty",
];

enum Proof {
    None,
    Forged,
    OfK,
}

/// The first 32 bytes of OPAQUE's masked response, unmasked with a candidate's masking key:
/// the server public key exactly when the candidate's OPRF output is the password's.
fn unmask_server_key(masking_key: &[u8], credential_response: &[u8]) -> Vec<u8> {
    let nonce = &credential_response[32..64];
    let masked = &credential_response[64..96];
    let mut pad = [0u8; 32];
    Hkdf::<Sha512>::from_prk(masking_key)
        .unwrap()
        .expand_multi_info(&[nonce, b"CredentialResponsePad"], &mut pad)
        .unwrap();
    pad.iter().zip(masked).map(|(p, m)| p ^ m).collect()
}

/// One guess spent on a `RecoverStart`, then a dictionary through every request type the
/// vault accepts. Against the vault before registration ids (credential identifier = the
/// account alone), `RegisterStart` evaluated the OPRF under the live record's key, and this
/// found the password at the cost of one guess.
#[test]
fn one_recover_start_then_a_dictionary_through_every_request_finds_nothing() {
    let mut v = MemoryVault::new();
    assert!(matches!(
        register(&mut v, ACCOUNT, b"correct horse", &K),
        Response::Registered { .. }
    ));
    let keys = v.keys();

    // One guess spent: the masked credential response.
    let (_, request) = client::start_login(&mut OsRng, b"anything").unwrap();
    let Response::RecoverStarted { response, .. } =
        v.call(ACCOUNT, &Request::RecoverStart { request })
    else {
        panic!("no credential response")
    };

    let mut found = None;
    for candidate in DICTIONARY {
        // A registration: an OPRF evaluation, then the candidate's masking key. Without an
        // authorization, with a forged one, and with a valid one (someone who holds K, such
        // as a device thief, must not learn the password either: it may open other doors).
        for proof in [Proof::None, Proof::Forged, Proof::OfK] {
            let (state, request) = client::start_registration(&mut OsRng, candidate).unwrap();
            let authorization = match proof {
                Proof::None => None,
                Proof::Forged => {
                    challenge(&mut v, ACCOUNT).map(|nonce| coffer_vault_core::Authorization {
                        challenge: nonce,
                        mac: vec![0; 32],
                    })
                }
                Proof::OfK => challenge(&mut v, ACCOUNT).map(|nonce| {
                    client::authorize(
                        coffer_vault_core::derive_auth_key(&K).as_ref(),
                        ACCOUNT,
                        &nonce,
                        coffer_vault_core::Operation::Replace,
                        &request,
                    )
                }),
            };
            if let Response::RegisterStarted { response: reg, .. } = v.call(
                ACCOUNT,
                &Request::RegisterStart {
                    request,
                    authorization,
                },
            ) {
                let upload = client::finish_registration(
                    &mut OsRng, state, candidate, &reg, ACCOUNT, &keys, &KSF,
                )
                .unwrap()
                .upload;
                if unmask_server_key(&upload[32..96], &response) == keys.opaque {
                    found = Some(candidate);
                }
            }
        }
        // Everything else the vault accepts, for good measure.
        v.call(ACCOUNT, &Request::Status { nonce: vec![] });
        v.call(ACCOUNT, &Request::Challenge);
        v.call(
            ACCOUNT,
            &Request::Delete {
                authorization: None,
            },
        );
        v.call(
            ACCOUNT,
            &Request::RecoverFinish {
                login_id: vec![0; 16],
                finalization: Sha512::digest(candidate).to_vec(),
            },
        );
        v.call(
            ACCOUNT,
            &Request::RegisterFinish {
                registration_id: vec![0; 32],
                upload: vec![0; 192],
                k_blob: vec![1; 40],
                auth_key: vec![2; 32],
                ksf: KSF,
            },
        );
    }
    assert_eq!(found, None, "the dictionary found the password");
    assert_eq!(v.guesses_left(ACCOUNT), Some(9), "exactly one guess spent");
    assert!(matches!(
        recover(&mut v, ACCOUNT, b"correct horse").0,
        Response::Recovered { .. }
    ));
}

/// A relay that withholds the last message of a password change (the client gives up; the
/// old password stays), spends the budget until the record is erased, then delivers the
/// withheld message: the erased record must stay erased.
#[test]
fn a_withheld_registration_cannot_revive_a_locked_record() {
    let mut v = MemoryVault::new();
    let keys = v.keys();
    register(&mut v, ACCOUNT, b"old password", &K);
    let (state, request) = client::start_registration(&mut OsRng, b"new password").unwrap();
    let nonce = challenge(&mut v, ACCOUNT).unwrap();
    let authorization = Some(client::authorize(
        coffer_vault_core::derive_auth_key(&K).as_ref(),
        ACCOUNT,
        &nonce,
        coffer_vault_core::Operation::Replace,
        &request,
    ));
    let Response::RegisterStarted {
        registration_id,
        response,
    } = v.call(
        ACCOUNT,
        &Request::RegisterStart {
            request,
            authorization,
        },
    )
    else {
        panic!()
    };
    let reg = client::finish_registration(
        &mut OsRng,
        state,
        b"new password",
        &response,
        ACCOUNT,
        &keys,
        &KSF,
    )
    .unwrap();
    let (withheld, _) = channel::seal_request(
        &keys,
        ACCOUNT,
        &Request::RegisterFinish {
            registration_id,
            upload: reg.upload,
            k_blob: K_BLOB.to_vec(),
            auth_key: coffer_vault_core::derive_auth_key(&K).to_vec(),
            ksf: KSF,
        },
    )
    .unwrap();
    // Guesses as an attacker spends them: a RecoverStart each, never a RecoverFinish (its
    // own client tells it locally that a guess is wrong), so nothing makes the vault lock.
    for _ in 0..10 {
        let (_, request) = client::start_login(&mut OsRng, b"a guess").unwrap();
        v.call(ACCOUNT, &Request::RecoverStart { request });
    }
    assert_eq!(v.guesses_left(ACCOUNT), Some(0));
    v.deliver(ACCOUNT, &withheld).unwrap();
    assert_eq!(
        v.guesses_left(ACCOUNT),
        Some(0),
        "a withheld registration refilled a spent budget"
    );
    // And once locked, it stays locked.
    recover(&mut v, ACCOUNT, b"a guess");
    assert!(matches!(
        v.record(ACCOUNT).unwrap().state,
        State::Locked { .. }
    ));
    v.deliver(ACCOUNT, &withheld).unwrap();
    assert!(
        matches!(v.record(ACCOUNT).unwrap().state, State::Locked { .. }),
        "a withheld registration revived the erased record"
    );
}

/// A withheld password change delivered after some guesses were spent must not refill the
/// budget either: the guesses between two successful recoveries stay bounded.
#[test]
fn a_password_change_keeps_the_guesses_already_spent() {
    let mut v = MemoryVault::new();
    register(&mut v, ACCOUNT, b"old password", &K);
    for _ in 0..7 {
        recover(&mut v, ACCOUNT, b"a guess");
    }
    assert_eq!(v.guesses_left(ACCOUNT), Some(3));
    assert!(matches!(
        register(&mut v, ACCOUNT, b"new password", &K),
        Response::Registered { .. }
    ));
    assert_eq!(
        v.guesses_left(ACCOUNT),
        Some(3),
        "a replacement refilled the budget"
    );
    // A successful recovery, as the client's escrow check makes at once, restores it.
    assert!(matches!(
        recover(&mut v, ACCOUNT, b"new password").0,
        Response::Recovered { .. }
    ));
    assert_eq!(v.guesses_left(ACCOUNT), Some(10));
}

/// Someone else holding the account starts a login while the owner's is in progress: the
/// owner's right password must not be reported wrong, and a stray finalization must not
/// close the owner's login.
#[test]
fn a_concurrent_login_never_makes_a_right_password_wrong() {
    let mut v = MemoryVault::new();
    let keys = v.keys();
    register(&mut v, ACCOUNT, b"the password", &K);
    let (state, request) = client::start_login(&mut OsRng, b"the password").unwrap();
    let Response::RecoverStarted {
        login_id,
        response,
        ksf,
        ..
    } = v.call(ACCOUNT, &Request::RecoverStart { request })
    else {
        panic!()
    };
    // The intruder's garbage finalization cannot close the owner's login...
    assert_eq!(
        v.call(
            ACCOUNT,
            &Request::RecoverFinish {
                login_id: vec![0; 16],
                finalization: vec![0; 64],
            },
        ),
        Response::Superseded
    );
    // ...and its own login start replaces the owner's.
    let (_, intruder) = client::start_login(&mut OsRng, b"a guess").unwrap();
    v.call(ACCOUNT, &Request::RecoverStart { request: intruder });
    let client::LoginOutcome::Finished(login) = client::finish_login(
        &mut OsRng,
        state,
        b"the password",
        &response,
        ACCOUNT,
        &keys,
        &ksf,
    )
    .unwrap() else {
        panic!()
    };
    let answer = v.call(
        ACCOUNT,
        &Request::RecoverFinish {
            login_id,
            finalization: login.finalization,
        },
    );
    assert_eq!(
        answer,
        Response::Superseded,
        "the right password was reported as {answer:?}"
    );
    // The owner simply tries again.
    assert!(matches!(
        recover(&mut v, ACCOUNT, b"the password").0,
        Response::Recovered { .. }
    ));
}
