//! Authorizations and ownership proofs through the crate: the client's side
//! (`client::authorize`, `client::check_ownership`) and the vault's (`step`).

use coffer_vault_core::{
    client, step, Authorization, Change, KsfParams, Live, Operation, Record, Request, Response,
    State,
};
use rand_core::OsRng;

use super::{ensure, fleet_with, short, Outcome};
use crate::gen_vectors::fixtures::Scripted;
use crate::Vector;

fn operation(v: &Vector) -> Operation {
    match v.text("operation") {
        "replace" => Operation::Replace,
        "delete" => Operation::Delete,
        other => panic!("{}: unknown operation {other:?}", v.name),
    }
}

/// A live record holding `auth_key`, with `challenge` outstanding (empty: none).
fn live_record(auth_key: Vec<u8>, challenge: Vec<u8>) -> Record {
    Record {
        state: State::Live(Live {
            registration_id: vec![1; 32],
            password_file: vec![2; 192],
            k_blob: vec![3; 93],
            auth_key,
            ksf: KsfParams::DEFAULT,
            max_guesses: 10,
            guesses_left: 10,
            pending_login: Vec::new(),
            pending_login_id: Vec::new(),
            challenge,
        }),
        pending_registration: Vec::new(),
    }
}

/// `record` with its challenge spent (and, for an accepted replacement, the registration
/// the vault started pending): the only change an authorization may make to a record.
fn spent(record: &Record, pending_registration: Vec<u8>) -> Record {
    let mut out = record.clone();
    if let State::Live(live) = &mut out.state {
        live.challenge.clear();
    }
    out.pending_registration = pending_registration;
    out
}

/// The MAC through the client's `authorize`, then the verdict, and whether the challenge is
/// spent, through the vault's `step` over a live record holding the auth key and the
/// outstanding challenge: a spent challenge is a record stored without it (or deleted with
/// the record), an unspent one is no change at all.
pub(super) fn authorization(v: &Vector) -> Outcome {
    let auth_key = v.bytes("auth key");
    let account = v.bytes("account");
    let outstanding = v.bytes("outstanding challenge");
    let request = v.bytes("request");
    let op = operation(v);
    let ours = client::authorize(&auth_key, &account, &outstanding, op, &request);
    ensure(ours.challenge == outstanding, || {
        "authorize names another challenge".into()
    })?;
    ensure(ours.mac == v.bytes("mac"), || {
        "authorize gives another MAC".into()
    })?;
    let record = live_record(auth_key, outstanding);
    let authorization = match (
        v.opt_bytes("presented challenge"),
        v.opt_bytes("presented mac"),
    ) {
        (Some(challenge), Some(mac)) => Some(Authorization { challenge, mac }),
        _ => None,
    };
    let message = match op {
        // A Delete carries no request: the MAC signs the empty one, or the vector is not one
        // a vault can be sent.
        Operation::Delete if request.is_empty() => Request::Delete { authorization },
        Operation::Delete => return Err("a Delete vector with a request".into()),
        Operation::Replace => Request::RegisterStart {
            request,
            authorization,
        },
        Operation::Ownership => return Err("ownership is not an authorization".into()),
    };
    let fleet = fleet_with(None, None);
    let got = step(&fleet, &account, Some(record.clone()), message, &mut OsRng)
        .map_err(|e| format!("step: {e}"))?;
    let (verdict, spent_it) = match (&got.response, &got.change) {
        (Response::Deleted, Change::Delete) => ("valid", true),
        (
            Response::RegisterStarted {
                registration_id, ..
            },
            Change::Put(stored),
        ) if **stored == spent(&record, registration_id.clone()) => ("valid", true),
        (Response::Unauthorized, Change::Put(stored)) if **stored == spent(&record, vec![]) => {
            ("unauthorized", true)
        }
        (Response::Unauthorized, Change::None) => ("unauthorized", false),
        (Response::Superseded, Change::None) => ("superseded", false),
        (response, change) => {
            return Err(format!(
                "the vault answered {} and changed {change:?}",
                short(response)
            ))
        }
    };
    let spent_it = if spent_it { "yes" } else { "no" };
    ensure(
        verdict == v.expect() && spent_it == v.text("challenge spent"),
        || {
            format!(
                "the vault answered {} ({verdict}, challenge spent: {spent_it}); expected {} \
                 (challenge spent: {})",
                short(&got.response),
                v.expect(),
                v.text("challenge spent")
            )
        },
    )
}

/// The proof through the vault's `step` answering `Status { nonce }` over a live record
/// holding the auth key (and over a locked one, which proves nothing), then the verdict
/// through the client's `check_ownership`.
pub(super) fn ownership(v: &Vector) -> Outcome {
    let auth_key = v.bytes("auth key");
    let account = v.bytes("account");
    let nonce = v.bytes("nonce");
    let fleet = fleet_with(None, None);
    let status = |record: Record| {
        step(
            &fleet,
            &account,
            Some(record),
            Request::Status {
                nonce: nonce.clone(),
            },
            &mut Scripted::new(&[]),
        )
        .map_err(|e| format!("step: {e}"))
    };
    let got = status(live_record(auth_key.clone(), vec![4; 32]))?;
    match (&got.response, &got.change) {
        (
            Response::Status {
                locked: false,
                guesses_left: 10,
                max_guesses: 10,
                proof,
            },
            Change::None,
        ) => ensure(*proof == v.bytes("proof"), || {
            "the vault's proof is another".into()
        })?,
        (response, change) => {
            return Err(format!(
                "the live record answered {} and changed {change:?}",
                short(response)
            ))
        }
    }
    let locked = status(Record {
        state: State::Locked { max_guesses: 10 },
        pending_registration: Vec::new(),
    })?;
    ensure(
        matches!(&locked.response, Response::Status { locked: true, proof, .. } if proof.is_empty()),
        || format!("the locked record answered {}", short(&locked.response)),
    )?;
    let owned = client::check_ownership(&auth_key, &account, &nonce, &v.bytes("presented"));
    ensure(owned == (v.expect() == "owned"), || {
        format!("check_ownership says {owned}")
    })
}
