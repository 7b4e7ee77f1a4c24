//! What the integration tests cannot see: what the database keeps. SQLite only; the
//! behaviour on both databases is in `tests/accounts.rs`.

use sha2::{Digest, Sha256};

use super::*;

async fn sqlite() -> (Accounts, AnyPool, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
    let accounts = Accounts::connect(&url, CodeKey::from_bytes([9; 32]))
        .await
        .unwrap();
    let pool = AnyPoolOptions::new().connect(&url).await.unwrap();
    (accounts, pool, dir)
}

fn id(s: &str) -> AccountId {
    AccountId::parse(s).unwrap()
}

#[tokio::test]
async fn pending_codes_are_stored_as_their_mac_only() {
    let (accounts, pool, _dir) = sqlite().await;
    let alice = id("+15550100");
    let code = accounts.register(&alice, 1000).await.unwrap();
    let row = sqlx::query("SELECT code_mac FROM pending_codes WHERE account = $1")
        .bind(alice.as_str())
        .fetch_one(&pool)
        .await
        .unwrap();
    let stored: String = row.get(0);
    assert_eq!(
        stored,
        hex(&CodeKey::from_bytes([9; 32]).mac(&alice, &code))
    );
    assert!(!stored.contains(code.as_str()));
    let bare = hex(&Sha256::digest(format!("{alice}\0{}", code.as_str())));
    assert_ne!(stored, bare);
}

#[tokio::test]
async fn credentials_are_stored_as_their_sha256_only() {
    let (accounts, pool, _dir) = sqlite().await;
    let alice = id("alice");
    let code = accounts.register(&alice, 1000).await.unwrap();
    let credential = accounts.verify(&alice, code.as_str(), 1001).await.unwrap();
    let stored: String = sqlx::query("SELECT credential_hash FROM credentials")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, hex(&Sha256::digest(credential.as_str().as_bytes())));
    assert_eq!(credential.as_str().len(), 64);
    assert!(!format!("{credential:?}").contains(credential.as_str()));
}

#[tokio::test]
async fn the_failure_count_lives_in_the_database() {
    let (accounts, pool, _dir) = sqlite().await;
    let bob = id("bob");
    let code = accounts.register(&bob, 1000).await.unwrap();
    let wrong = if code.as_str() == "00000000" {
        "00000001"
    } else {
        "00000000"
    };
    for _ in 0..3 {
        assert!(accounts.verify(&bob, wrong, 1001).await.is_err());
    }
    // Malformed codes are not guesses: they leave no trace.
    assert!(matches!(
        accounts.verify(&bob, "123", 1001).await,
        Err(AccountError::MalformedCode)
    ));
    let row = sqlx::query("SELECT failures, blocked_until FROM verify_guard WHERE account = $1")
        .bind(bob.as_str())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((row.get::<i64, _>(0), row.get::<i64, _>(1)), (3, 0));
}

#[test]
fn errors_say_whether_a_retry_helps() {
    let wait = AccountError::TooManyFailures {
        retry_after_secs: 120,
    };
    assert!(wait.is_retryable());
    assert_eq!(wait.retry_after_secs(), Some(120));
    assert!(wait.to_string().contains("120 s"));
    assert!(AccountError::Db(sqlx::Error::PoolTimedOut).is_retryable());
    for final_answer in [
        AccountError::MalformedCode,
        AccountError::WrongCode { tries_left: 2 },
        AccountError::NoPendingCode,
        AccountError::BadCredential,
        AccountError::CorruptRecord,
    ] {
        assert!(!final_answer.is_retryable(), "{final_answer}");
        assert_eq!(final_answer.retry_after_secs(), None);
    }
    assert_eq!(wait_secs(), 1);
}

fn wait_secs() -> u64 {
    wait(100, 100)
}
