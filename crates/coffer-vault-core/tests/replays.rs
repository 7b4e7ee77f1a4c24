//! Replays, as the front-end (which relays and may keep every message) would try them:
//! every request that changes something is bound to fresh vault state, so a replayed one
//! finds that state gone.

mod common;

use coffer_vault_core::channel;
use coffer_vault_core::client;
use coffer_vault_core::{Request, Response, State};
use common::*;
use rand_core::OsRng;

const K: [u8; 32] = [7u8; 32];

/// A relay that keeps every message of a first registration, and replays them once the
/// record is locked (to refill the budget for the same password file) or deleted (to bring
/// an old password back).
#[test]
fn a_replayed_registration_neither_refills_a_locked_record_nor_restores_a_deleted_one() {
    let mut v = MemoryVault::new();
    let keys = v.keys();
    let (state, request) = client::start_registration(&mut OsRng, b"pw").unwrap();
    let start = Request::RegisterStart {
        request,
        authorization: None,
    };
    let (start_message, pending) = channel::seal_request(&keys, ACCOUNT, &start).unwrap();
    let Response::RegisterStarted {
        registration_id,
        response,
    } = pending
        .open(&v.deliver(ACCOUNT, &start_message).unwrap())
        .unwrap()
    else {
        panic!()
    };
    let reg =
        client::finish_registration(&mut OsRng, state, b"pw", &response, ACCOUNT, &keys, &KSF)
            .unwrap();
    let finish = Request::RegisterFinish {
        registration_id,
        upload: reg.upload,
        k_blob: K_BLOB.to_vec(),
        auth_key: coffer_vault_core::derive_auth_key(&K).to_vec(),
        ksf: KSF,
    };
    let (finish_message, pending) = channel::seal_request(&keys, ACCOUNT, &finish).unwrap();
    assert!(matches!(
        pending
            .open(&v.deliver(ACCOUNT, &finish_message).unwrap())
            .unwrap(),
        Response::Registered { .. }
    ));

    let replay = |v: &mut MemoryVault| {
        v.deliver(ACCOUNT, &start_message).unwrap();
        v.deliver(ACCOUNT, &finish_message).unwrap();
    };
    // Replayed over the live record: nothing changes.
    let before = v.record(ACCOUNT);
    replay(&mut v);
    assert!(
        v.record(ACCOUNT) == before,
        "a replay changed the live record"
    );

    for _ in 0..10 {
        recover(&mut v, ACCOUNT, b"guess");
    }
    assert!(matches!(
        v.record(ACCOUNT).unwrap().state,
        State::Locked { .. }
    ));
    replay(&mut v);
    assert!(
        matches!(v.record(ACCOUNT).unwrap().state, State::Locked { .. }),
        "a replay refilled a locked record"
    );
    assert_eq!(recover(&mut v, ACCOUNT, b"pw").0, Response::Locked);

    assert_eq!(delete(&mut v, ACCOUNT, &K), Response::Deleted);
    replay(&mut v);
    assert_eq!(
        v.call(ACCOUNT, &Request::Status { nonce: vec![] }),
        Response::NotFound,
        "a replay restored a deleted record"
    );
}

/// A relay that keeps an authorized password change and an authorized deletion, and replays
/// them later, after the owner chose a new password.
#[test]
fn replayed_authorizations_are_refused() {
    let mut v = MemoryVault::new();
    let keys = v.keys();
    register(&mut v, ACCOUNT, b"first", &K);
    // An authorized RegisterStart, kept by the relay and never answered to the client.
    let nonce = challenge(&mut v, ACCOUNT).unwrap();
    let (_, request) = client::start_registration(&mut OsRng, b"attacker-known").unwrap();
    let authorization = Some(client::authorize(
        coffer_vault_core::derive_auth_key(&K).as_ref(),
        ACCOUNT,
        &nonce,
        coffer_vault_core::Operation::Replace,
        &request,
    ));
    let kept = channel::seal_request(
        &keys,
        ACCOUNT,
        &Request::RegisterStart {
            request,
            authorization,
        },
    )
    .unwrap()
    .0;
    // The owner goes on: a new challenge replaces the kept one.
    assert!(matches!(
        register(&mut v, ACCOUNT, b"second", &K),
        Response::Registered { .. }
    ));
    let (message, pending) =
        channel::seal_request(&keys, ACCOUNT, &Request::Status { nonce: vec![] }).unwrap();
    let _ = pending
        .open(&v.deliver(ACCOUNT, &message).unwrap())
        .unwrap();
    v.deliver(ACCOUNT, &kept).unwrap();
    assert!(
        v.record(ACCOUNT).unwrap().pending_registration.is_empty(),
        "a replayed authorization started a registration"
    );

    // An authorized deletion, replayed after the owner registered again.
    let nonce = challenge(&mut v, ACCOUNT).unwrap();
    let authorization = Some(client::authorize(
        coffer_vault_core::derive_auth_key(&K).as_ref(),
        ACCOUNT,
        &nonce,
        coffer_vault_core::Operation::Delete,
        &[],
    ));
    let (delete_message, _) =
        channel::seal_request(&keys, ACCOUNT, &Request::Delete { authorization }).unwrap();
    v.deliver(ACCOUNT, &delete_message).unwrap();
    assert_eq!(
        v.call(ACCOUNT, &Request::Status { nonce: vec![] }),
        Response::NotFound
    );
    register(&mut v, ACCOUNT, b"third", &K);
    v.deliver(ACCOUNT, &delete_message).unwrap();
    assert!(
        matches!(
            v.call(ACCOUNT, &Request::Status { nonce: vec![] }),
            Response::Status { locked: false, .. }
        ),
        "a replayed deletion removed the new record"
    );
    // The challenge is spent by a failed attempt too: one forged MAC per challenge.
    let nonce = challenge(&mut v, ACCOUNT).unwrap();
    let forged = Some(coffer_vault_core::Authorization {
        challenge: nonce.clone(),
        mac: vec![0; 32],
    });
    assert_eq!(
        v.call(
            ACCOUNT,
            &Request::Delete {
                authorization: forged
            }
        ),
        Response::Unauthorized
    );
    let late = Some(client::authorize(
        coffer_vault_core::derive_auth_key(&K).as_ref(),
        ACCOUNT,
        &nonce,
        coffer_vault_core::Operation::Delete,
        &[],
    ));
    assert_eq!(
        v.call(
            ACCOUNT,
            &Request::Delete {
                authorization: late
            }
        ),
        Response::Superseded,
        "a spent challenge answered a second proof"
    );
}

/// Replaying the messages of a successful recovery never gives guesses back.
#[test]
fn a_replayed_recovery_refunds_no_guess() {
    let mut v = MemoryVault::new();
    let keys = v.keys();
    register(&mut v, ACCOUNT, b"pw", &K);
    let (state, request) = client::start_login(&mut OsRng, b"pw").unwrap();
    let (start_message, pending) =
        channel::seal_request(&keys, ACCOUNT, &Request::RecoverStart { request }).unwrap();
    let Response::RecoverStarted {
        login_id,
        response,
        ksf,
        ..
    } = pending
        .open(&v.deliver(ACCOUNT, &start_message).unwrap())
        .unwrap()
    else {
        panic!()
    };
    let client::LoginOutcome::Finished(login) =
        client::finish_login(&mut OsRng, state, b"pw", &response, ACCOUNT, &keys, &ksf).unwrap()
    else {
        panic!()
    };
    let (finish_message, _) = channel::seal_request(
        &keys,
        ACCOUNT,
        &Request::RecoverFinish {
            login_id,
            finalization: login.finalization,
        },
    )
    .unwrap();
    v.deliver(ACCOUNT, &finish_message).unwrap();
    assert_eq!(v.guesses_left(ACCOUNT), Some(10));
    for _ in 0..5 {
        recover(&mut v, ACCOUNT, b"wrong");
    }
    assert_eq!(v.guesses_left(ACCOUNT), Some(5));
    v.deliver(ACCOUNT, &finish_message).unwrap();
    assert_eq!(v.guesses_left(ACCOUNT), Some(5));
    v.deliver(ACCOUNT, &start_message).unwrap();
    v.deliver(ACCOUNT, &finish_message).unwrap();
    assert_eq!(
        v.guesses_left(ACCOUNT),
        Some(4),
        "a replay refunded guesses"
    );
}

/// A relay that delivers one account's message for another: it does not open.
#[test]
fn a_message_relayed_for_another_account_does_not_open() {
    let mut v = MemoryVault::new();
    register(&mut v, b"alice", b"pw", &K);
    let (message, _) =
        channel::seal_request(&v.keys(), b"alice", &Request::Status { nonce: vec![] }).unwrap();
    assert!(v.deliver(b"bob", &message).is_err());
    assert!(v.deliver(b"alice", &message).is_ok());
}
