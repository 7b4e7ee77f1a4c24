//! The vault core driven by the real client steps, through the channel, with records sealed
//! in memory as a vault node keeps them on disk.

mod common;

use coffer_vault_core::channel;
use coffer_vault_core::client::{self, open_k_transport};
use coffer_vault_core::record::SEALED_LEN;
use coffer_vault_core::{
    handle, Failure, Fleet, KsfParams, Record, Request, Response, State, Update,
};
use common::*;
use rand_core::OsRng;

const K: [u8; 32] = [7u8; 32];

fn registered(password: &[u8]) -> MemoryVault {
    let mut v = MemoryVault::new();
    assert_eq!(
        register(&mut v, ACCOUNT, password, &K),
        Response::Registered { max_guesses: 10 }
    );
    v
}

#[test]
fn the_right_password_releases_the_k_blob_only_to_the_client() {
    let mut v = registered(b"correct horse");
    let (resp, login) = recover(&mut v, ACCOUNT, b"correct horse");
    let Response::Recovered { sealed_k_blob } = resp else {
        panic!("{resp:?}")
    };
    assert!(!sealed_k_blob.windows(K_BLOB.len()).any(|w| w == K_BLOB));
    let opened = open_k_transport(&login.unwrap().session_key, &sealed_k_blob).unwrap();
    assert_eq!(opened.as_slice(), K_BLOB);
    assert!(open_k_transport(&[9u8; 64], &sealed_k_blob).is_none());
}

#[test]
fn the_export_key_of_a_login_is_the_registrations() {
    let mut v = MemoryVault::new();
    let keys = v.keys();
    let (state, request) = client::start_registration(&mut OsRng, b"pw").unwrap();
    let Response::RegisterStarted {
        registration_id,
        response,
    } = v.call(
        ACCOUNT,
        &Request::RegisterStart {
            request,
            authorization: None,
        },
    )
    else {
        panic!()
    };
    let reg =
        client::finish_registration(&mut OsRng, state, b"pw", &response, ACCOUNT, &keys, &KSF)
            .unwrap();
    v.call(
        ACCOUNT,
        &Request::RegisterFinish {
            registration_id,
            upload: reg.upload,
            k_blob: K_BLOB.to_vec(),
            auth_key: vec![1; 32],
            ksf: KSF,
        },
    );
    let (_, login) = recover(&mut v, ACCOUNT, b"pw");
    assert_eq!(login.unwrap().export_key, reg.export_key);
}

#[test]
fn each_wrong_password_costs_one_guess_and_the_tenth_locks_for_good() {
    let mut v = registered(b"right");
    for left in (1..=9).rev() {
        assert_eq!(
            recover(&mut v, ACCOUNT, b"wrong").0,
            Response::WrongPassword { guesses_left: left }
        );
    }
    assert_eq!(recover(&mut v, ACCOUNT, b"wrong").0, Response::Locked);
    assert!(matches!(
        v.record(ACCOUNT).unwrap().state,
        State::Locked { .. }
    ));
    assert_eq!(recover(&mut v, ACCOUNT, b"right").0, Response::Locked);
    assert_eq!(
        v.call(ACCOUNT, &Request::Status { nonce: vec![] }),
        Response::Status {
            locked: true,
            guesses_left: 0,
            max_guesses: 10,
            proof: vec![]
        }
    );
}

#[test]
fn a_correct_password_restores_the_budget() {
    let mut v = registered(b"right");
    for _ in 0..9 {
        recover(&mut v, ACCOUNT, b"wrong");
    }
    assert!(matches!(
        recover(&mut v, ACCOUNT, b"right").0,
        Response::Recovered { .. }
    ));
    assert_eq!(v.guesses_left(ACCOUNT), Some(10));
}

#[test]
fn a_guess_is_spent_before_the_oprf_answer_and_abandoning_does_not_refund_it() {
    let mut v = registered(b"right");
    for left in (0..10u16).rev() {
        let (_, request) = client::start_login(&mut OsRng, b"guess").unwrap();
        let (message, pending) =
            channel::seal_request(v.fleet.keys(), ACCOUNT, &Request::RecoverStart { request })
                .unwrap();
        let handled = handle(
            &v.fleet,
            ACCOUNT,
            v.stored.get(ACCOUNT).map(Vec::as_slice),
            &message,
            &mut OsRng,
        )
        .unwrap();
        // The change that comes with the OPRF evaluation already counts the guess: the
        // node commits it before it may call `answer`.
        let Update::Put(sealed) = &handled.update else {
            panic!("no write")
        };
        let Record {
            state: State::Live(live),
            ..
        } = Record::open(sealed, &v.fleet, ACCOUNT).unwrap()
        else {
            panic!()
        };
        assert_eq!(live.guesses_left, left);
        v.stored.insert(ACCOUNT.to_vec(), sealed.clone());
        assert!(matches!(
            pending.open(&handled.answer().unwrap()).unwrap(),
            Response::RecoverStarted { guesses_left, .. } if guesses_left == left
        ));
        // Never finished.
    }
    assert_eq!(recover(&mut v, ACCOUNT, b"right").0, Response::Locked);
    assert!(matches!(
        v.record(ACCOUNT).unwrap().state,
        State::Locked { .. }
    ));
}

#[test]
fn when_the_commit_fails_no_oprf_evaluation_leaves() {
    let mut v = registered(b"right");
    let (_, request) = client::start_login(&mut OsRng, b"guess").unwrap();
    let (message, pending) =
        channel::seal_request(v.fleet.keys(), ACCOUNT, &Request::RecoverStart { request }).unwrap();
    let handled = handle(
        &v.fleet,
        ACCOUNT,
        v.stored.get(ACCOUNT).map(Vec::as_slice),
        &message,
        &mut OsRng,
    )
    .unwrap();
    // The node could not commit: it answers "unavailable", and the stored record is as
    // before.
    assert_eq!(
        pending.open(&handled.unavailable().unwrap()).unwrap(),
        Response::Failed {
            failure: Failure::Unavailable
        }
    );
    assert_eq!(v.guesses_left(ACCOUNT), Some(10));
}

#[test]
fn tampered_swapped_foreign_and_old_version_records_are_reported_as_damaged() {
    let mut v = registered(b"right");
    let good = v.stored[ACCOUNT].clone();
    let damaged = Response::Failed {
        failure: Failure::RecordDamaged,
    };
    let mut bad = good.clone();
    bad[100] ^= 1;
    v.stored.insert(ACCOUNT.to_vec(), bad);
    assert_eq!(v.call(ACCOUNT, &Request::Status { nonce: vec![] }), damaged);
    let mut old = good.clone();
    old[0] = 1;
    v.stored.insert(ACCOUNT.to_vec(), old);
    assert_eq!(v.call(ACCOUNT, &Request::Status { nonce: vec![] }), damaged);
    // The same record presented as another account's.
    v.stored.insert(b"+15550002".to_vec(), good.clone());
    assert_eq!(
        v.call(b"+15550002", &Request::Status { nonce: vec![] }),
        damaged
    );
    // Under another fleet's key.
    let other = Fleet::generate(&mut OsRng, 10).unwrap();
    assert!(Record::open(&good, &other, ACCOUNT).is_err());
    // A damaged record is never overwritten by a registration.
    v.stored.insert(ACCOUNT.to_vec(), good.clone());
    let mut bad = good.clone();
    bad[200] ^= 1;
    v.stored.insert(ACCOUNT.to_vec(), bad.clone());
    assert_eq!(register(&mut v, ACCOUNT, b"new", &K), damaged);
    assert_eq!(v.stored[ACCOUNT], bad);
}

#[test]
fn sealed_records_have_one_size_whatever_their_state() {
    let mut v = registered(b"right");
    let live = v.stored[ACCOUNT].len();
    let (_, request) = client::start_login(&mut OsRng, b"x").unwrap();
    v.call(ACCOUNT, &Request::RecoverStart { request });
    let pending = v.stored[ACCOUNT].len();
    challenge(&mut v, ACCOUNT);
    let challenged = v.stored[ACCOUNT].len();
    for _ in 0..10 {
        recover(&mut v, ACCOUNT, b"wrong");
    }
    let locked = v.stored[ACCOUNT].len();
    assert_eq!(
        (live, pending, challenged, locked),
        (SEALED_LEN, SEALED_LEN, SEALED_LEN, SEALED_LEN)
    );
}

#[test]
fn a_live_record_cannot_be_replaced_or_deleted_without_proof_of_k() {
    let mut v = registered(b"right");
    let wrong_k = [8u8; 32];
    // A hijacker (new account credential, no password, no K).
    assert_eq!(
        register(&mut v, ACCOUNT, b"hijack", &wrong_k),
        Response::Unauthorized
    );
    assert_eq!(delete(&mut v, ACCOUNT, &wrong_k), Response::Unauthorized);
    let (_, request) = client::start_registration(&mut OsRng, b"hijack").unwrap();
    assert_eq!(
        v.call(
            ACCOUNT,
            &Request::RegisterStart {
                request,
                authorization: None
            }
        ),
        Response::Unauthorized
    );
    assert_eq!(
        v.call(
            ACCOUNT,
            &Request::Delete {
                authorization: None
            }
        ),
        Response::Unauthorized
    );
    assert!(matches!(
        recover(&mut v, ACCOUNT, b"right").0,
        Response::Recovered { .. }
    ));

    // Proof of K changes the password, and the old one stops working.
    assert_eq!(
        register(&mut v, ACCOUNT, b"second", &K),
        Response::Registered { max_guesses: 10 }
    );
    assert!(matches!(
        recover(&mut v, ACCOUNT, b"right").0,
        Response::WrongPassword { .. }
    ));
    assert!(matches!(
        recover(&mut v, ACCOUNT, b"second").0,
        Response::Recovered { .. }
    ));
    assert_eq!(delete(&mut v, ACCOUNT, &K), Response::Deleted);
    assert_eq!(
        v.call(ACCOUNT, &Request::Status { nonce: vec![] }),
        Response::NotFound
    );
}

#[test]
fn a_tombstone_or_no_record_needs_no_proof() {
    let mut v = registered(b"right");
    for _ in 0..10 {
        recover(&mut v, ACCOUNT, b"wrong");
    }
    assert_eq!(
        register(&mut v, ACCOUNT, b"fresh start", &[9u8; 32]),
        Response::Registered { max_guesses: 10 }
    );
    assert!(matches!(
        recover(&mut v, ACCOUNT, b"fresh start").0,
        Response::Recovered { .. }
    ));
}

#[test]
fn a_registration_finishes_only_with_the_id_its_start_handed_out_and_only_once() {
    let mut v = MemoryVault::new();
    let keys = v.keys();
    let start = |v: &mut MemoryVault| {
        let (state, request) = client::start_registration(&mut OsRng, b"pw").unwrap();
        let Response::RegisterStarted {
            registration_id,
            response,
        } = v.call(
            ACCOUNT,
            &Request::RegisterStart {
                request,
                authorization: None,
            },
        )
        else {
            panic!()
        };
        let reg =
            client::finish_registration(&mut OsRng, state, b"pw", &response, ACCOUNT, &keys, &KSF)
                .unwrap();
        (registration_id, reg.upload)
    };
    let finish = |v: &mut MemoryVault, id: &[u8], upload: &[u8]| {
        v.call(
            ACCOUNT,
            &Request::RegisterFinish {
                registration_id: id.to_vec(),
                upload: upload.to_vec(),
                k_blob: K_BLOB.to_vec(),
                auth_key: vec![1; 32],
                ksf: KSF,
            },
        )
    };
    let (first_id, first_upload) = start(&mut v);
    let (second_id, second_upload) = start(&mut v);
    assert_ne!(first_id, second_id, "every start picks a fresh id");
    // The first id was replaced by the second start.
    assert!(matches!(
        finish(&mut v, &first_id, &first_upload),
        Response::Rejected { .. }
    ));
    let mut invented = second_id.clone();
    invented[0] ^= 1;
    assert!(matches!(
        finish(&mut v, &invented, &second_upload),
        Response::Rejected { .. }
    ));
    assert!(matches!(
        finish(&mut v, &second_id, &second_upload),
        Response::Registered { .. }
    ));
    assert!(matches!(
        finish(&mut v, &second_id, &second_upload),
        Response::Rejected { .. }
    ));
    assert!(matches!(
        recover(&mut v, ACCOUNT, b"pw").0,
        Response::Recovered { .. }
    ));
}

#[test]
fn malformed_requests_are_rejected_without_spending_a_guess() {
    let mut v = registered(b"right");
    for req in [
        Request::RecoverStart {
            request: vec![1, 2, 3],
        },
        Request::RegisterStart {
            request: vec![],
            authorization: None,
        },
        Request::RecoverFinish {
            login_id: vec![0; 16],
            finalization: vec![0; 10],
        },
    ] {
        // (A finalization for no pending login is answered "superseded": nothing changes.)
        assert!(
            matches!(
                v.call(ACCOUNT, &req),
                Response::Rejected { .. } | Response::Superseded
            ),
            "{req:?}"
        );
    }
    assert_eq!(v.guesses_left(ACCOUNT), Some(10));
    let finish = |k_blob: Vec<u8>, auth_key: Vec<u8>, ksf: KsfParams| Request::RegisterFinish {
        registration_id: vec![0; 32],
        upload: vec![0; 10],
        k_blob,
        auth_key,
        ksf,
    };
    let weak = KsfParams {
        m_cost_kib: 1,
        t_cost: 1,
        p_cost: 1,
    };
    let huge = KsfParams {
        t_cost: u32::MAX,
        ..KSF
    };
    // 8 × 2^29 lanes overflows a u32: the bound must be checked without computing it.
    let overflowing = KsfParams {
        p_cost: 1 << 29,
        ..KSF
    };
    for req in [
        finish(vec![0; 100_000], vec![0; 32], KSF),
        finish(vec![0; 10], vec![0; 31], KSF),
        finish(vec![0; 10], vec![0; 32], weak),
        finish(vec![0; 10], vec![0; 32], huge),
        finish(vec![0; 10], vec![0; 32], overflowing),
    ] {
        // 100 000 bytes do not even fit the channel; the rest is rejected inside.
        let (message, pending) = match channel::seal_request(v.fleet.keys(), ACCOUNT, &req) {
            Ok(sealed) => sealed,
            Err(channel::ChannelError::TooLarge) => continue,
            Err(e) => panic!("{e}"),
        };
        let reply = v.deliver(ACCOUNT, &message).unwrap();
        assert!(matches!(
            pending.open(&reply).unwrap(),
            Response::Rejected { .. }
        ));
    }
    assert_eq!(v.guesses_left(ACCOUNT), Some(10));
}
