//! The vault core driven by a real OPAQUE client, with the record kept in memory as a
//! vault node would keep it on disk.

use coffer_vault_core::record::SEALED_LEN;
use coffer_vault_core::{
    handle, open_from_transport, session_authorization, Authorization, Fleet, KsfParams, Record,
    RecordUpdate, Request, Response, Suite, VaultError,
};
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialResponse, Identifiers, RegistrationResponse,
};
use rand_core::OsRng;
use sha2::{Digest, Sha256};

/// Cheap Argon2id for tests; the default is far heavier.
const KSF: KsfParams = KsfParams {
    m_cost_kib: 8,
    t_cost: 1,
    p_cost: 1,
};
const ACCOUNT: &[u8] = b"+15550001";
const K_BLOB: &[u8] = b"client-sealed K blob (opaque to the vault)";

/// One vault node's storage for one account.
struct Node {
    fleet: Fleet,
    stored: Option<Vec<u8>>,
}

impl Node {
    fn new() -> Node {
        Node {
            fleet: Fleet::generate(&mut OsRng, 10).unwrap(),
            stored: None,
        }
    }

    fn call(&mut self, account: &[u8], request: Request) -> Response {
        let out = handle(
            &self.fleet,
            account,
            self.stored.as_deref(),
            request,
            &mut OsRng,
        )
        .unwrap();
        match out.update {
            RecordUpdate::Unchanged => {}
            RecordUpdate::Write(r) => self.stored = Some(r),
            RecordUpdate::Delete => self.stored = None,
        }
        out.response
    }

    fn record(&self) -> Record {
        Record::open(
            self.stored.as_ref().unwrap(),
            &test_sealing_key(&self.fleet),
            ACCOUNT,
        )
        .unwrap()
    }
}

/// The sealing key is private to the crate; tests read records through the fleet bytes.
fn test_sealing_key(fleet: &Fleet) -> [u8; 32] {
    let bytes = fleet.to_bytes();
    bytes[2..34].try_into().unwrap()
}

fn k_proof() -> Vec<u8> {
    vec![7u8; 32]
}

fn register(node: &mut Node, password: &[u8], auth: Option<Authorization>) -> Response {
    let argon = KSF.argon2().unwrap();
    let start = ClientRegistration::<Suite>::start(&mut OsRng, password).unwrap();
    let Response::RegisterStarted { response } = node.call(
        ACCOUNT,
        Request::RegisterStart {
            request: start.message.serialize().to_vec(),
        },
    ) else {
        panic!("no registration response")
    };
    let fin = start
        .state
        .finish(
            &mut OsRng,
            password,
            RegistrationResponse::deserialize(&response).unwrap(),
            ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&argon)),
        )
        .unwrap();
    node.call(
        ACCOUNT,
        Request::RegisterFinish {
            upload: fin.message.serialize().to_vec(),
            k_blob: K_BLOB.to_vec(),
            k_verifier: Sha256::digest(k_proof()).to_vec(),
            ksf: KSF,
            authorization: auth,
        },
    )
}

/// A whole recovery; returns the final response and, on success, the session key.
fn recover(node: &mut Node, password: &[u8]) -> (Response, Option<Vec<u8>>) {
    let start = ClientLogin::<Suite>::start(&mut OsRng, password).unwrap();
    let first = node.call(
        ACCOUNT,
        Request::RecoverStart {
            request: start.message.serialize().to_vec(),
        },
    );
    let Response::RecoverStarted { response, ksf, .. } = first else {
        return (first, None);
    };
    let argon = ksf.argon2().unwrap();
    let finished = start.state.finish(
        &mut OsRng,
        password,
        CredentialResponse::deserialize(&response).unwrap(),
        ClientLoginFinishParameters::new(None, Identifiers::default(), Some(&argon)),
    );
    match finished {
        // A wrong password: the client cannot even build a valid finalization. It still
        // sends one (garbage), as an attacker would, to learn nothing more.
        Err(_) => (
            node.call(
                ACCOUNT,
                Request::RecoverFinish {
                    finalization: vec![0u8; 64],
                },
            ),
            None,
        ),
        Ok(done) => (
            node.call(
                ACCOUNT,
                Request::RecoverFinish {
                    finalization: done.message.serialize().to_vec(),
                },
            ),
            Some(done.session_key.to_vec()),
        ),
    }
}

#[test]
fn the_right_password_releases_the_k_blob_only_to_the_client() {
    let mut node = Node::new();
    assert_eq!(
        register(&mut node, b"correct horse", None),
        Response::Registered { max_guesses: 10 }
    );
    let (resp, session) = recover(&mut node, b"correct horse");
    let Response::Recovered { sealed_k_blob } = resp else {
        panic!("{resp:?}")
    };
    // What crosses the front-end is not the blob itself.
    assert!(!sealed_k_blob.windows(K_BLOB.len()).any(|w| w == K_BLOB));
    let opened = open_from_transport(&session.unwrap(), &sealed_k_blob).unwrap();
    assert_eq!(opened.as_slice(), K_BLOB);
    assert!(open_from_transport(&[9u8; 64], &sealed_k_blob).is_none());
}

#[test]
fn each_wrong_password_costs_one_guess_and_the_tenth_locks_for_good() {
    let mut node = Node::new();
    register(&mut node, b"right", None);
    for left in (1..=9).rev() {
        assert_eq!(
            recover(&mut node, b"wrong").0,
            Response::WrongPassword { guesses_left: left }
        );
    }
    assert_eq!(recover(&mut node, b"wrong").0, Response::Locked);
    assert!(
        matches!(node.record(), Record::Locked { .. }),
        "secrets erased"
    );
    // Even the right password is too late now.
    assert_eq!(recover(&mut node, b"right").0, Response::Locked);
    assert_eq!(
        node.call(ACCOUNT, Request::Status),
        Response::Status {
            locked: true,
            guesses_left: 0,
            max_guesses: 10
        }
    );
}

#[test]
fn a_correct_password_restores_the_budget() {
    let mut node = Node::new();
    register(&mut node, b"right", None);
    for _ in 0..9 {
        recover(&mut node, b"wrong");
    }
    assert!(matches!(
        recover(&mut node, b"right").0,
        Response::Recovered { .. }
    ));
    assert_eq!(
        node.call(ACCOUNT, Request::Status),
        Response::Status {
            locked: false,
            guesses_left: 10,
            max_guesses: 10
        }
    );
}

#[test]
fn a_guess_is_spent_before_the_oprf_answer_and_abandoning_does_not_refund_it() {
    let mut node = Node::new();
    register(&mut node, b"right", None);
    for left in (0..10u16).rev() {
        let start = ClientLogin::<Suite>::start(&mut OsRng, b"guess").unwrap();
        let out = handle(
            &node.fleet,
            ACCOUNT,
            node.stored.as_deref(),
            Request::RecoverStart {
                request: start.message.serialize().to_vec(),
            },
            &mut OsRng,
        )
        .unwrap();
        // The response carrying the OPRF evaluation comes with a record that already
        // counts the guess: the shell commits it first.
        assert!(
            matches!(out.response, Response::RecoverStarted { guesses_left, .. } if guesses_left == left)
        );
        let RecordUpdate::Write(sealed) = out.update else {
            panic!("no write")
        };
        node.stored = Some(sealed);
        // Never finished.
    }
    // The eleventh start finds no guess left: the record is erased.
    let start = ClientLogin::<Suite>::start(&mut OsRng, b"right").unwrap();
    assert_eq!(
        node.call(
            ACCOUNT,
            Request::RecoverStart {
                request: start.message.serialize().to_vec()
            }
        ),
        Response::Locked
    );
    assert!(matches!(node.record(), Record::Locked { .. }));
}

#[test]
fn tampered_or_swapped_records_are_refused() {
    let mut node = Node::new();
    register(&mut node, b"right", None);
    let good = node.stored.clone().unwrap();
    let mut bad = good.clone();
    bad[100] ^= 1;
    let r = handle(
        &node.fleet,
        ACCOUNT,
        Some(&bad),
        Request::Status,
        &mut OsRng,
    );
    assert!(matches!(r, Err(VaultError::BadRecord)));
    // The same record presented as another account's.
    let r = handle(
        &node.fleet,
        b"+15550002",
        Some(&good),
        Request::Status,
        &mut OsRng,
    );
    assert!(matches!(r, Err(VaultError::BadRecord)));
    // Under another fleet's key.
    let other = Fleet::generate(&mut OsRng, 10).unwrap();
    let r = handle(&other, ACCOUNT, Some(&good), Request::Status, &mut OsRng);
    assert!(matches!(r, Err(VaultError::BadRecord)));
}

#[test]
fn sealed_records_have_one_size_whatever_their_state() {
    let mut node = Node::new();
    register(&mut node, b"right", None);
    let live = node.stored.clone().unwrap().len();
    let start = ClientLogin::<Suite>::start(&mut OsRng, b"x").unwrap();
    node.call(
        ACCOUNT,
        Request::RecoverStart {
            request: start.message.serialize().to_vec(),
        },
    );
    let pending = node.stored.clone().unwrap().len();
    for _ in 0..10 {
        recover(&mut node, b"wrong");
    }
    let locked = node.stored.clone().unwrap().len();
    assert_eq!(
        (live, pending, locked),
        (SEALED_LEN, SEALED_LEN, SEALED_LEN)
    );
}

#[test]
fn a_live_record_cannot_be_replaced_or_deleted_without_proof() {
    let mut node = Node::new();
    register(&mut node, b"right", None);
    // A hijacker (new account credential, no password, no K).
    assert_eq!(register(&mut node, b"hijack", None), Response::Unauthorized);
    assert_eq!(
        register(
            &mut node,
            b"hijack",
            Some(Authorization::Key(vec![1u8; 32]))
        ),
        Response::Unauthorized
    );
    assert_eq!(
        register(
            &mut node,
            b"hijack",
            Some(Authorization::Session(vec![1u8; 32]))
        ),
        Response::Unauthorized
    );
    assert_eq!(
        node.call(
            ACCOUNT,
            Request::Delete {
                authorization: None
            }
        ),
        Response::Unauthorized
    );
    assert!(matches!(
        recover(&mut node, b"right").0,
        Response::Recovered { .. }
    ));

    // Proof of K changes the password.
    assert_eq!(
        register(&mut node, b"second", Some(Authorization::Key(k_proof()))),
        Response::Registered { max_guesses: 10 }
    );
    assert!(matches!(
        recover(&mut node, b"right").0,
        Response::WrongPassword { .. }
    ));

    // Proof of the password (a recovery's session token) changes it too, once.
    let (_, session) = recover(&mut node, b"second");
    let token = session_authorization(&session.unwrap());
    assert!(matches!(
        register(&mut node, b"third", Some(token.clone())),
        Response::Registered { .. }
    ));
    assert_eq!(
        register(&mut node, b"fourth", Some(token)),
        Response::Unauthorized
    );

    let (_, session) = recover(&mut node, b"third");
    let token = session_authorization(&session.unwrap());
    assert_eq!(
        node.call(
            ACCOUNT,
            Request::Delete {
                authorization: Some(token)
            }
        ),
        Response::Deleted
    );
    assert_eq!(node.call(ACCOUNT, Request::Status), Response::NotFound);
}

#[test]
fn malformed_requests_are_rejected_without_spending_a_guess() {
    let mut node = Node::new();
    register(&mut node, b"right", None);
    for req in [
        Request::RecoverStart {
            request: vec![1, 2, 3],
        },
        Request::RegisterStart { request: vec![] },
        Request::RecoverFinish {
            finalization: vec![0; 10],
        },
    ] {
        assert!(matches!(node.call(ACCOUNT, req), Response::Rejected { .. }));
    }
    assert_eq!(
        node.call(ACCOUNT, Request::Status),
        Response::Status {
            locked: false,
            guesses_left: 10,
            max_guesses: 10
        }
    );
    let huge = Request::RegisterFinish {
        upload: vec![0; 10],
        k_blob: vec![0; 100_000],
        k_verifier: vec![0; 32],
        ksf: KSF,
        authorization: None,
    };
    assert!(matches!(
        node.call(ACCOUNT, huge),
        Response::Rejected { .. }
    ));
    let weak = Request::RegisterFinish {
        upload: vec![0; 10],
        k_blob: vec![0; 10],
        k_verifier: vec![0; 32],
        ksf: KsfParams {
            m_cost_kib: 1,
            t_cost: 1,
            p_cost: 1,
        },
        authorization: None,
    };
    assert!(matches!(
        node.call(ACCOUNT, weak),
        Response::Rejected { .. }
    ));
}

#[test]
fn fleet_secrets_round_trip_and_keep_their_fingerprint() {
    let fleet = Fleet::generate(&mut OsRng, 7).unwrap();
    let again = Fleet::from_bytes(&fleet.to_bytes()).unwrap();
    assert_eq!(fleet.fingerprint(), again.fingerprint());
    assert_eq!(again.max_guesses(), 7);
    assert!(Fleet::generate(&mut OsRng, 0).is_err());
    assert!(Fleet::from_bytes(&[0u8; 10]).is_err());
    assert!(!format!("{fleet:?}").contains(&format!("{:?}", &fleet.to_bytes()[2..34])));
}
