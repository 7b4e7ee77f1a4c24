//! A vault node over its real on-disk store.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use coffer_vault_core::{KsfParams, Request, Response, Suite};
use coffer_vault_node::{init, VaultNode};
use opaque_ke::{
    ClientLogin, ClientRegistration, ClientRegistrationFinishParameters, Identifiers,
    RegistrationResponse,
};
use rand_core::OsRng;

const KSF: KsfParams = KsfParams {
    m_cost_kib: 8,
    t_cost: 1,
    p_cost: 1,
};

fn register(node: &mut VaultNode, account: &[u8], password: &[u8]) {
    let start = ClientRegistration::<Suite>::start(&mut OsRng, password).unwrap();
    let Response::RegisterStarted { response } = node
        .process(
            account,
            Request::RegisterStart {
                request: start.message.serialize().to_vec(),
            },
        )
        .unwrap()
    else {
        panic!()
    };
    let argon = KSF.argon2().unwrap();
    let fin = start
        .state
        .finish(
            &mut OsRng,
            password,
            RegistrationResponse::deserialize(&response).unwrap(),
            ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&argon)),
        )
        .unwrap();
    let r = node
        .process(
            account,
            Request::RegisterFinish {
                upload: fin.message.serialize().to_vec(),
                k_blob: vec![1; 40],
                k_verifier: vec![2; 32],
                ksf: KSF,
                authorization: None,
            },
        )
        .unwrap();
    assert!(matches!(r, Response::Registered { .. }), "{r:?}");
}

fn start_login(node: &mut VaultNode, account: &[u8]) -> Response {
    let start = ClientLogin::<Suite>::start(&mut OsRng, b"guess").unwrap();
    node.process(
        account,
        Request::RecoverStart {
            request: start.message.serialize().to_vec(),
        },
    )
    .unwrap()
}

#[test]
fn init_makes_private_secrets_and_refuses_to_run_twice() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let info = init(d.path(), 10, &["localhost".into()]).unwrap();
    let node = VaultNode::open(d.path()).unwrap();
    assert_eq!(node.fleet().fingerprint(), info.fleet_fingerprint);
    for f in ["root.key", "fleet.sealed", "tls.key.der", "frontend.token"] {
        let mode = std::fs::metadata(d.path().join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    assert!(init(d.path(), 10, &["localhost".into()]).is_err());
    std::fs::set_permissions(
        d.path().join("root.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    assert!(
        VaultNode::open(d.path()).is_err(),
        "a world-readable root key is refused"
    );
}

#[test]
fn spent_guesses_survive_a_restart() {
    let d = tempfile::tempdir().unwrap();
    init(d.path(), 10, &["localhost".into()]).unwrap();
    let mut node = VaultNode::open(d.path()).unwrap();
    register(&mut node, b"alice", b"pw");
    for _ in 0..3 {
        start_login(&mut node, b"alice");
    }
    drop(node);
    let mut node = VaultNode::open(d.path()).unwrap();
    assert_eq!(
        node.process(b"alice", Request::Status).unwrap(),
        Response::Status {
            locked: false,
            guesses_left: 7,
            max_guesses: 10
        }
    );
}

#[test]
fn two_hundred_concurrent_attempts_get_exactly_the_budget_of_oprf_answers() {
    let d = tempfile::tempdir().unwrap();
    init(d.path(), 10, &["localhost".into()]).unwrap();
    register(&mut VaultNode::open(d.path()).unwrap(), b"bob", b"pw");
    let answered = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let dir = d.path().to_path_buf();
            let (answered, refused) = (answered.clone(), refused.clone());
            std::thread::spawn(move || {
                // Each thread is its own connection, as separate node workers would be.
                let mut node = VaultNode::open(&dir).unwrap();
                for _ in 0..25 {
                    match start_login(&mut node, b"bob") {
                        Response::RecoverStarted { .. } => answered.fetch_add(1, Ordering::SeqCst),
                        Response::Locked => refused.fetch_add(1, Ordering::SeqCst),
                        other => panic!("{other:?}"),
                    };
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(answered.load(Ordering::SeqCst), 10);
    assert_eq!(refused.load(Ordering::SeqCst), 190);
    let mut node = VaultNode::open(d.path()).unwrap();
    assert_eq!(
        node.process(b"bob", Request::Status).unwrap(),
        Response::Status {
            locked: true,
            guesses_left: 0,
            max_guesses: 10
        }
    );
}

#[test]
fn a_locked_record_stays_locked_after_a_restart() {
    let d = tempfile::tempdir().unwrap();
    init(d.path(), 10, &["localhost".into()]).unwrap();
    let mut node = VaultNode::open(d.path()).unwrap();
    register(&mut node, b"carol", b"pw");
    for _ in 0..11 {
        start_login(&mut node, b"carol");
    }
    drop(node);
    let mut node = VaultNode::open(d.path()).unwrap();
    assert_eq!(
        node.process(b"carol", Request::Status).unwrap(),
        Response::Status {
            locked: true,
            guesses_left: 0,
            max_guesses: 10
        }
    );
    assert_eq!(start_login(&mut node, b"carol"), Response::Locked);
}
