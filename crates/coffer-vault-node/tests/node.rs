//! A vault node over its real on-disk store.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use coffer_vault_core::channel;
use coffer_vault_core::client;
use coffer_vault_core::{KsfParams, Request, Response};
use coffer_vault_node::{init, VaultNode};
use rand_core::OsRng;

const KSF: KsfParams = KsfParams {
    m_cost_kib: 8,
    t_cost: 1,
    p_cost: 1,
};

/// One request through the channel, as a client sends it through a front-end.
fn call(node: &mut VaultNode, account: &[u8], request: &Request) -> Response {
    let (message, pending) = channel::seal_request(node.fleet().keys(), account, request).unwrap();
    let reply = node.process(account, &message).unwrap();
    pending.open(&reply).unwrap()
}

fn register(node: &mut VaultNode, account: &[u8], password: &[u8]) {
    let (state, request) = client::start_registration(&mut OsRng, password).unwrap();
    let Response::RegisterStarted {
        registration_id,
        response,
    } = call(
        node,
        account,
        &Request::RegisterStart {
            request,
            authorization: None,
        },
    )
    else {
        panic!()
    };
    let keys = node.fleet().keys().clone();
    let reg =
        client::finish_registration(&mut OsRng, state, password, &response, account, &keys, &KSF)
            .unwrap();
    let r = call(
        node,
        account,
        &Request::RegisterFinish {
            registration_id,
            upload: reg.upload,
            k_blob: vec![1; 40],
            auth_key: vec![2; 32],
            ksf: KSF,
        },
    );
    assert!(matches!(r, Response::Registered { .. }), "{r:?}");
}

fn start_login(node: &mut VaultNode, account: &[u8]) -> Response {
    let (_, request) = client::start_login(&mut OsRng, b"guess").unwrap();
    call(node, account, &Request::RecoverStart { request })
}

#[test]
fn init_makes_private_secrets_and_refuses_to_run_twice() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let d = tempfile::TempDir::new_in(parent.path()).unwrap();
    // A folder the operator made with the usual umask is tightened.
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let info = init(d.path(), 10, &["localhost".into()]).unwrap();
    let node = VaultNode::open(d.path()).unwrap();
    assert_eq!(node.fleet().fingerprint(), info.fleet_fingerprint);
    let dir_mode = std::fs::metadata(d.path()).unwrap().permissions().mode();
    assert_eq!(dir_mode & 0o777, 0o700, "the data folder");
    for f in [
        "root.key",
        "fleet.sealed",
        "tls.key.der",
        "frontend.token",
        "records.sqlite",
    ] {
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
        call(&mut node, b"alice", &Request::Status { nonce: vec![] }),
        Response::Status {
            locked: false,
            guesses_left: 7,
            max_guesses: 10,
            proof: vec![]
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
        call(&mut node, b"bob", &Request::Status { nonce: vec![] }),
        Response::Status {
            locked: true,
            guesses_left: 0,
            max_guesses: 10,
            proof: vec![]
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
        call(&mut node, b"carol", &Request::Status { nonce: vec![] }),
        Response::Status {
            locked: true,
            guesses_left: 0,
            max_guesses: 10,
            proof: vec![]
        }
    );
    assert_eq!(start_login(&mut node, b"carol"), Response::Locked);
}

#[test]
fn a_message_that_does_not_open_is_refused_and_changes_nothing() {
    let d = tempfile::tempdir().unwrap();
    init(d.path(), 10, &["localhost".into()]).unwrap();
    let mut node = VaultNode::open(d.path()).unwrap();
    register(&mut node, b"erin", b"pw");
    let (_, request) = client::start_login(&mut OsRng, b"guess").unwrap();
    let (mut message, _) = channel::seal_request(
        node.fleet().keys(),
        b"erin",
        &Request::RecoverStart { request },
    )
    .unwrap();
    message[40] ^= 1;
    assert!(matches!(
        node.process(b"erin", &message),
        Err(coffer_vault_node::NodeError::Channel(_))
    ));
    assert!(matches!(
        call(&mut node, b"erin", &Request::Status { nonce: vec![] }),
        Response::Status {
            guesses_left: 10,
            ..
        }
    ));
}

#[test]
fn a_commit_that_fails_is_answered_unavailable_and_spends_nothing() {
    let d = tempfile::tempdir().unwrap();
    init(d.path(), 10, &["localhost".into()]).unwrap();
    let mut node = VaultNode::open(d.path()).unwrap();
    register(&mut node, b"frank", b"pw");
    // The disk refuses every write from here on (a trigger standing in for a full disk).
    let db = rusqlite::Connection::open(d.path().join("records.sqlite")).unwrap();
    db.execute_batch(
        "CREATE TRIGGER full_disk BEFORE UPDATE ON records BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
    )
    .unwrap();
    assert_eq!(
        start_login(&mut node, b"frank"),
        Response::Failed {
            failure: coffer_vault_core::Failure::Unavailable
        },
        "an OPRF evaluation left with no guess committed"
    );
    db.execute_batch("DROP TRIGGER full_disk;").unwrap();
    assert!(matches!(
        call(&mut node, b"frank", &Request::Status { nonce: vec![] }),
        Response::Status {
            guesses_left: 10,
            ..
        }
    ));
}
