//! The password-mode facade against the vault core, through an in-memory vault.

use std::collections::HashMap;
use std::sync::Mutex;

use coffer_client::password::{pin_fleet, KsfParams, PasswordVault, VaultStatus, VaultTransport};
use coffer_client::ClientError;
use coffer_format::BackupKey;
use coffer_vault_core::{channel, handle, step, Change, Fleet, Record, Request, Update};
use rand_core::OsRng;

const KSF: KsfParams = KsfParams {
    m_cost_kib: 8,
    t_cost: 1,
    p_cost: 1,
};
const ACCOUNT: &str = "alice";

/// A vault in memory, handling channel messages as a node does.
struct MemoryVault {
    fleet: Fleet,
    records: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
}

impl MemoryVault {
    fn new() -> MemoryVault {
        MemoryVault {
            fleet: Fleet::generate(&mut OsRng, 10).unwrap(),
            records: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self) -> PasswordVault<&MemoryVault> {
        PasswordVault::new(self, ACCOUNT, self.fleet.keys().clone())
    }
}

impl VaultTransport for &MemoryVault {
    async fn call(&self, message: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        let account = ACCOUNT.as_bytes();
        let mut records = self.records.lock().unwrap();
        let handled = handle(
            &self.fleet,
            account,
            records.get(account).map(Vec::as_slice),
            &message,
            &mut OsRng,
        )
        .map_err(|e| ClientError::Internal(e.to_string()))?;
        match &handled.update {
            Update::None => {}
            Update::Put(s) => {
                records.insert(account.to_vec(), s.clone());
            }
            Update::Delete => {
                records.remove(account);
            }
        }
        Ok(handled.answer().unwrap())
    }
}

/// A vault that does not keep what it is given (a bug, or a malicious operator): it sees
/// each request in the clear, as every vault does, and changes registrations before its
/// own logic runs.
struct ForgetfulVault {
    inner: MemoryVault,
    change: fn(&mut Request),
}

impl VaultTransport for &ForgetfulVault {
    async fn call(&self, message: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        let (fleet, account) = (&self.inner.fleet, ACCOUNT.as_bytes());
        let (mut request, responder) = channel::open_request(fleet, account, &message).unwrap();
        (self.change)(&mut request);
        let mut records = self.inner.records.lock().unwrap();
        let record = records
            .get(account)
            .map(|s| Record::open(s, fleet, account).unwrap());
        let done = step(fleet, account, record, request, &mut OsRng).unwrap();
        match done.change {
            Change::None => {}
            Change::Put(r) => {
                records.insert(
                    account.to_vec(),
                    r.seal(fleet, account, &mut OsRng).unwrap(),
                );
            }
            Change::Delete => {
                records.remove(account);
            }
        }
        Ok(responder.seal(&done.response).unwrap())
    }
}

fn key() -> BackupKey {
    BackupKey::generate().unwrap()
}

#[tokio::test]
async fn the_password_brings_back_the_key_and_only_the_password_does() {
    let v = MemoryVault::new();
    let k = key();
    let enabled = v.client().enable("hunter2hunter2", &k, KSF).await.unwrap();
    assert_eq!(enabled.max_guesses, 10);
    // The escrow check recovered once already, and refilled the budget.
    assert_eq!(
        v.client().status().await.unwrap(),
        VaultStatus::Live {
            guesses_left: 10,
            max_guesses: 10
        }
    );
    assert_eq!(v.client().recover("hunter2hunter2").await.unwrap(), k);
    // The vault proves the record is this key's, and not another's.
    let live = VaultStatus::Live {
        guesses_left: 10,
        max_guesses: 10,
    };
    assert_eq!(
        v.client().status_of_key(&k).await.unwrap(),
        (live, Some(true))
    );
    assert_eq!(
        v.client().status_of_key(&key()).await.unwrap(),
        (live, Some(false))
    );
    match v.client().recover("hunter3hunter3").await {
        Err(ClientError::WrongPassword { guesses_left: 9 }) => {}
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a wrong password recovered the key"),
    }
}

#[tokio::test]
async fn changing_the_password_needs_k_and_keeps_the_key() {
    let v = MemoryVault::new();
    let k = key();
    v.client().enable("old password", &k, KSF).await.unwrap();
    // Enabling over a live record made with another key is refused; with this same key
    // it is the retry of an enable whose answer was lost, and goes through.
    assert!(matches!(
        v.client().enable("other password", &key(), KSF).await,
        Err(ClientError::Usage(_))
    ));
    v.client().enable("old password", &k, KSF).await.unwrap();
    // Another key proves nothing.
    assert!(v
        .client()
        .change_password(&key(), "new password", KSF)
        .await
        .is_err());
    assert_eq!(v.client().recover("old password").await.unwrap(), k);
    v.client()
        .change_password(&k, "new password", KSF)
        .await
        .unwrap();
    assert_eq!(v.client().recover("new password").await.unwrap(), k);
    assert!(matches!(
        v.client().recover("old password").await,
        Err(ClientError::WrongPassword { .. })
    ));
}

#[tokio::test]
async fn ten_wrong_passwords_lock_the_key_away_and_delete_clears_the_tombstone() {
    let v = MemoryVault::new();
    let k = key();
    v.client().enable("the right one", &k, KSF).await.unwrap();
    for left in (1..10).rev() {
        assert!(matches!(
            v.client().recover("wrong").await,
            Err(ClientError::WrongPassword { guesses_left }) if guesses_left == left
        ));
    }
    assert!(matches!(
        v.client().recover("wrong").await,
        Err(ClientError::Locked)
    ));
    assert!(matches!(
        v.client().recover("the right one").await,
        Err(ClientError::Locked)
    ));
    assert_eq!(
        v.client().status().await.unwrap(),
        VaultStatus::Locked { max_guesses: 10 }
    );
    v.client().delete(&k).await.unwrap();
    assert_eq!(v.client().status().await.unwrap(), VaultStatus::Missing);
}

#[tokio::test]
async fn a_new_password_follows_the_one_policy() {
    let v = MemoryVault::new();
    for weak in ["", "short", "tab\there!"] {
        assert!(matches!(
            v.client().enable(weak, &key(), KSF).await,
            Err(ClientError::Usage(_))
        ));
    }
    assert_eq!(v.client().status().await.unwrap(), VaultStatus::Missing);
}

#[tokio::test]
async fn a_vault_that_loses_the_deposit_is_caught_at_once() {
    let swaps: [fn(&mut Request); 3] = [
        |r| {
            if let Request::RegisterFinish { k_blob, .. } = r {
                k_blob[50] ^= 1;
            }
        },
        |r| {
            if let Request::RegisterFinish { ksf, .. } = r {
                ksf.t_cost += 1;
            }
        },
        |r| {
            if let Request::RegisterFinish { k_blob, .. } = r {
                *k_blob = vec![1; 93];
            }
        },
    ];
    for change in swaps {
        let v = ForgetfulVault {
            inner: MemoryVault::new(),
            change,
        };
        let client = PasswordVault::new(&v, ACCOUNT, v.inner.fleet.keys().clone());
        match client.enable("a fine password", &key(), KSF).await {
            Err(e @ ClientError::EscrowBroken(_)) => {
                assert_eq!(e.class(), coffer_client::ErrorClass::Integrity)
            }
            other => panic!("a broken deposit was reported as {other:?}"),
        }
    }
}

#[tokio::test]
async fn only_the_pinned_fleet_is_spoken_to() {
    let real = MemoryVault::new();
    let fake = MemoryVault::new();
    // The front-end shows another fleet's keys: refused before anything is sent.
    assert!(matches!(
        pin_fleet(fake.fleet.keys().clone(), &real.fleet.fingerprint()),
        Err(ClientError::VaultKeyMismatch { .. })
    ));
    // A front-end that routes the pinned fleet's channel to another vault gets nothing
    // across: that vault cannot open the request, and its answers do not open.
    let k = key();
    let misrouted = PasswordVault::new(&fake, ACCOUNT, real.fleet.keys().clone());
    assert!(misrouted.enable("a fine password", &k, KSF).await.is_err());
    assert!(fake.records.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_record_whose_guesses_someone_spent_is_deposited_anew_and_said_so() {
    let v = MemoryVault::new();
    let k = key();
    v.client()
        .enable("the old password", &k, KSF)
        .await
        .unwrap();
    // Someone holding the account spends every guess with logins it never finishes.
    for _ in 0..10 {
        let (_, request) = coffer_vault_core::client::start_login(&mut OsRng, b"a guess").unwrap();
        let (message, _) = channel::seal_request(
            v.fleet.keys(),
            ACCOUNT.as_bytes(),
            &Request::RecoverStart { request },
        )
        .unwrap();
        (&v).call(message).await.unwrap();
    }
    let changed = v
        .client()
        .change_password(&k, "the new password", KSF)
        .await
        .unwrap();
    assert!(changed.after_erasure, "the erasure went unreported");
    assert_eq!(v.client().recover("the new password").await.unwrap(), k);
    assert!(v.client().recover("the old password").await.is_err());
}
