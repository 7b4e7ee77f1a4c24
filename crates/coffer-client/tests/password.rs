//! Password mode end to end against the vault core, through an in-memory transport.

use std::sync::Mutex;

use coffer_client::password::{self, VaultTransport};
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
    assert_eq!(
        password::register(&v, b"hunter2", &k, KSF, None)
            .await
            .unwrap(),
        10
    );
    assert_eq!(password::recover(&v, b"hunter2").await.unwrap().key, k);
    match password::recover(&v, b"hunter3").await {
        Err(ClientError::WrongPassword { guesses_left: 9 }) => {}
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a wrong password recovered the key"),
    }
}

#[tokio::test]
async fn changing_the_password_needs_proof_and_keeps_the_key() {
    let v = vault();
    let k = BackupKey::generate().unwrap();
    password::register(&v, b"old", &k, KSF, None).await.unwrap();
    // No proof: refused.
    assert!(password::register(&v, b"new", &k, KSF, None).await.is_err());
    // Proof of the old password.
    let rec = password::recover(&v, b"old").await.unwrap();
    password::register(&v, b"new", &rec.key, KSF, Some(rec.authorization))
        .await
        .unwrap();
    assert_eq!(password::recover(&v, b"new").await.unwrap().key, k);
    // Proof of K.
    let proof = Authorization::Key(password::k_proof(&k));
    password::register(&v, b"newer", &k, KSF, Some(proof))
        .await
        .unwrap();
    assert_eq!(password::recover(&v, b"newer").await.unwrap().key, k);
}

#[tokio::test]
async fn ten_wrong_passwords_lock_the_key_away() {
    let v = vault();
    let k = BackupKey::generate().unwrap();
    password::register(&v, b"right", &k, KSF, None)
        .await
        .unwrap();
    for left in (1..10).rev() {
        assert!(matches!(
            password::recover(&v, b"wrong").await,
            Err(ClientError::WrongPassword { guesses_left }) if guesses_left == left
        ));
    }
    assert!(matches!(
        password::recover(&v, b"wrong").await,
        Err(ClientError::Locked)
    ));
    assert!(matches!(
        password::recover(&v, b"right").await,
        Err(ClientError::Locked)
    ));
}
