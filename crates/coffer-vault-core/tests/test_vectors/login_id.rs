//! Login ids through the vault's `step` (the channel vectors show only their shape): a
//! `RecoverFinish` for another login than the pending one, or when none is pending, is
//! `Superseded` and leaves the record as it was, while the pending login's own id, with the
//! same finalization and record, recovers K.

use coffer_vault_core::client::{self, LoginOutcome};
use coffer_vault_core::{step, Change, Fleet, KsfParams, Record, Request, Response, State};
use rand_core::OsRng;

use crate::gen_vectors::fixtures::{self, Scripted};
use crate::{find, load_vectors};

const KSF: KsfParams = KsfParams {
    m_cost_kib: 8,
    t_cost: 1,
    p_cost: 1,
};

const ACCOUNT: &[u8] = fixtures::ACCOUNT;
const PASSWORD: &[u8] = b"correct horse battery staple";

fn put(change: Change) -> Record {
    match change {
        Change::Put(record) => *record,
        other => panic!("expected a record to store, got {other:?}"),
    }
}

fn register(fleet: &Fleet) -> Record {
    let (state, request) = client::start_registration(&mut OsRng, PASSWORD).expect("start");
    let started = step(
        fleet,
        ACCOUNT,
        None,
        Request::RegisterStart {
            request,
            authorization: None,
        },
        &mut OsRng,
    )
    .expect("step");
    let Response::RegisterStarted {
        registration_id,
        response,
    } = started.response
    else {
        panic!("RegisterStart answered {:?}", started.response);
    };
    let registration = client::finish_registration(
        &mut OsRng,
        state,
        PASSWORD,
        &response,
        ACCOUNT,
        fleet.keys(),
        &KSF,
    )
    .expect("finish");
    let finished = step(
        fleet,
        ACCOUNT,
        Some(put(started.change)),
        Request::RegisterFinish {
            registration_id,
            upload: registration.upload,
            k_blob: vec![7; 93],
            auth_key: vec![9; 32],
            ksf: KSF,
        },
        &mut OsRng,
    )
    .expect("step");
    assert!(matches!(finished.response, Response::Registered { .. }));
    put(finished.change)
}

/// A login started on `record`: the record with it pending, its id, and the client's
/// finalization.
fn start_login(fleet: &Fleet, record: Record) -> (Record, Vec<u8>, Vec<u8>) {
    let (state, request) = client::start_login(&mut OsRng, PASSWORD).expect("start");
    let started = step(
        fleet,
        ACCOUNT,
        Some(record),
        Request::RecoverStart { request },
        &mut OsRng,
    )
    .expect("step");
    let Response::RecoverStarted {
        login_id, response, ..
    } = started.response
    else {
        panic!("RecoverStart answered {:?}", started.response);
    };
    assert_eq!(login_id.len(), 16, "a login id is 16 bytes");
    let outcome = client::finish_login(
        &mut OsRng,
        state,
        PASSWORD,
        &response,
        ACCOUNT,
        fleet.keys(),
        &KSF,
    )
    .expect("finish");
    let LoginOutcome::Finished(login) = outcome else {
        panic!("the right password did not finish");
    };
    (put(started.change), login_id, login.finalization)
}

/// `RecoverFinish { login_id, finalization }` over `record` must be `Superseded`, draw no
/// randomness, and change nothing.
fn assert_superseded(fleet: &Fleet, record: &Record, login_id: Vec<u8>, finalization: &[u8]) {
    let what = format!("login id {}", crate::gen_vectors::hex(&login_id));
    let got = step(
        fleet,
        ACCOUNT,
        Some(record.clone()),
        Request::RecoverFinish {
            login_id,
            finalization: finalization.to_vec(),
        },
        &mut Scripted::new(&[]),
    )
    .expect("step");
    assert_eq!(got.response, Response::Superseded, "{what}");
    assert_eq!(got.change, Change::None, "{what}: the record changed");
}

fn recover(fleet: &Fleet, record: Record, login_id: Vec<u8>, finalization: Vec<u8>) -> Record {
    let got = step(
        fleet,
        ACCOUNT,
        Some(record),
        Request::RecoverFinish {
            login_id,
            finalization,
        },
        &mut OsRng,
    )
    .expect("step");
    assert!(
        matches!(got.response, Response::Recovered { .. }),
        "the pending login's own id answered {:?}",
        got.response
    );
    put(got.change)
}

#[test]
fn a_finalization_for_another_login_is_superseded_and_changes_nothing() {
    let fleet = fixtures::fleet_a();
    let registered = register(&fleet);
    let dummy = LoginOutcome::dummy_finalization();
    // No login pending: not even the empty id matches the record's empty one.
    for id in [Vec::new(), vec![0; 16]] {
        assert_superseded(&fleet, &registered, id, &dummy);
    }

    let (pending, login_id, finalization) = start_login(&fleet, registered);
    let mut longer = login_id.clone();
    longer.push(0);
    for wrong in [
        fixtures::flip(&login_id, 0, 0x01),
        fixtures::flip(&login_id, 15, 0x80),
        login_id[..15].to_vec(),
        longer,
        Vec::new(),
    ] {
        assert_superseded(&fleet, &pending, wrong, &finalization);
    }
    // The same record and finalization with the right id: the refusals were the id's alone.
    let recovered = recover(&fleet, pending, login_id.clone(), finalization.clone());
    // Replayed once the login is closed.
    assert_superseded(&fleet, &recovered, login_id, &finalization);

    // A second RecoverStart replaces the first login: the first one's finalization, under its
    // own id, changes nothing; the second still recovers.
    let (first, first_id, first_finalization) = start_login(&fleet, recovered);
    let (second, second_id, second_finalization) = start_login(&fleet, first);
    assert_ne!(first_id, second_id);
    assert_superseded(&fleet, &second, first_id, &first_finalization);
    let State::Live(live) = &second.state else {
        panic!("not a live record");
    };
    assert_eq!(
        live.guesses_left,
        live.max_guesses - 2,
        "both guesses spent"
    );
    recover(&fleet, second, second_id, second_finalization);
}

/// The same over the `record_live_login_pending` vector's record, as a vault node opens it.
#[test]
fn the_pending_login_vectors_record_refuses_another_login_id() {
    let vectors = load_vectors();
    let v = find(&vectors, "record_live_login_pending");
    let fleet = crate::implementation::fleet_with(Some(v.key("sealing key")), None);
    let record = Record::open(&v.bytes("sealed"), &fleet, &v.bytes("account")).expect("opens");
    let State::Live(live) = &record.state else {
        panic!("not a live record");
    };
    assert_eq!(live.pending_login_id.len(), 16);
    assert!(!live.pending_login.is_empty());
    let id = live.pending_login_id.clone();
    assert_eq!(v.bytes("account"), ACCOUNT);
    let dummy = LoginOutcome::dummy_finalization();
    assert_superseded(&fleet, &record, fixtures::flip(&id, 7, 0x04), &dummy);
    assert_superseded(&fleet, &record, Vec::new(), &dummy);
}
