//! Password mode end to end against the vault core, through an in-memory transport.

use std::sync::Mutex;

use coffer_client::password::{self, FleetPin, VaultTransport};
use coffer_client::ClientError;
use coffer_format::BackupKey;
use coffer_vault_core::{handle, Authorization, Fleet, KsfParams, RecordUpdate, Request, Response};
use rand_core::OsRng;

const KSF: KsfParams = KsfParams {
    m_cost_kib: 8,
    t_cost: 1,
    p_cost: 1,
};

struct InMemoryVault {
    fleet: Fleet,
    record: Mutex<Option<Vec<u8>>>,
}

impl VaultTransport for InMemoryVault {
    async fn call(&self, request: Request) -> Result<Response, ClientError> {
        let mut record = self.record.lock().unwrap();
        let out = handle(
            &self.fleet,
            b"alice",
            record.as_deref(),
            request,
            &mut OsRng,
        )
        .map_err(|e| ClientError::Internal(e.to_string()))?;
        match out.update {
            RecordUpdate::Unchanged => {}
            RecordUpdate::Write(r) => *record = Some(r),
            RecordUpdate::Delete => *record = None,
        }
        Ok(out.response)
    }
}

fn pin(v: &InMemoryVault) -> FleetPin {
    FleetPin::Pinned(v.fleet.fingerprint())
}

fn vault() -> InMemoryVault {
    InMemoryVault {
        fleet: Fleet::generate(&mut OsRng, 10).unwrap(),
        record: Mutex::new(None),
    }
}

#[tokio::test]
async fn the_password_brings_back_the_key_and_only_the_password_does() {
    let v = vault();
    let k = BackupKey::generate().unwrap();
    let reg = password::register(&v, &FleetPin::FirstUse, b"hunter2", &k, KSF, None)
        .await
        .unwrap();
    assert_eq!(reg.max_guesses, 10);
    assert_eq!(reg.fleet_fingerprint, v.fleet.fingerprint());
    assert_eq!(
        password::recover(&v, &pin(&v), b"hunter2")
            .await
            .unwrap()
            .key,
        k
    );
    match password::recover(&v, &pin(&v), b"hunter3").await {
        Err(ClientError::WrongPassword { guesses_left: 9 }) => {}
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a wrong password recovered the key"),
    }
}

#[tokio::test]
async fn changing_the_password_needs_proof_and_keeps_the_key() {
    let v = vault();
    let k = BackupKey::generate().unwrap();
    password::register(&v, &FleetPin::FirstUse, b"old", &k, KSF, None)
        .await
        .unwrap();
    // No proof: refused.
    assert!(
        password::register(&v, &FleetPin::FirstUse, b"new", &k, KSF, None)
            .await
            .is_err()
    );
    // Proof of the old password.
    let rec = password::recover(&v, &pin(&v), b"old").await.unwrap();
    password::register(
        &v,
        &FleetPin::FirstUse,
        b"new",
        &rec.key,
        KSF,
        Some(rec.authorization),
    )
    .await
    .unwrap();
    assert_eq!(
        password::recover(&v, &pin(&v), b"new").await.unwrap().key,
        k
    );
    // Proof of K.
    let proof = Authorization::Key(password::k_proof(&k));
    password::register(&v, &FleetPin::FirstUse, b"newer", &k, KSF, Some(proof))
        .await
        .unwrap();
    assert_eq!(
        password::recover(&v, &pin(&v), b"newer").await.unwrap().key,
        k
    );
}

#[tokio::test]
async fn ten_wrong_passwords_lock_the_key_away() {
    let v = vault();
    let k = BackupKey::generate().unwrap();
    password::register(&v, &FleetPin::FirstUse, b"right", &k, KSF, None)
        .await
        .unwrap();
    for left in (1..10).rev() {
        assert!(matches!(
            password::recover(&v, &pin(&v), b"wrong").await,
            Err(ClientError::WrongPassword { guesses_left }) if guesses_left == left
        ));
    }
    assert!(matches!(
        password::recover(&v, &pin(&v), b"wrong").await,
        Err(ClientError::Locked)
    ));
    assert!(matches!(
        password::recover(&v, &pin(&v), b"right").await,
        Err(ClientError::Locked)
    ));
}

#[tokio::test]
async fn a_substituted_vault_is_refused_before_it_learns_anything_useful() {
    let real = vault();
    let k = BackupKey::generate().unwrap();
    password::register(&real, &FleetPin::FirstUse, b"pw", &k, KSF, None)
        .await
        .unwrap();
    // An attacker's vault with its own fleet key, holding a registration for the same
    // password (the worst case: it even knows the password's shape).
    let fake = vault();
    password::register(
        &fake,
        &FleetPin::FirstUse,
        b"pw",
        &BackupKey::generate().unwrap(),
        KSF,
        None,
    )
    .await
    .unwrap();
    match password::recover(&fake, &pin(&real), b"pw").await {
        Err(ClientError::VaultKeyMismatch { .. }) => {}
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a substituted vault was accepted"),
    }
    // Registering through a substituted vault is refused before K is sealed and sent.
    let res = password::register(&fake, &pin(&real), b"pw2", &k, KSF, None).await;
    assert!(matches!(res, Err(ClientError::VaultKeyMismatch { .. })));
}
