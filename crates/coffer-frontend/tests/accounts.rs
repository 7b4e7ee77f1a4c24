//! Accounts on SQLite, and on PostgreSQL when `COFFER_TEST_POSTGRES_URL` names a server:
//! verification, refusals, the code key, and the files they keep.

mod common;

use std::os::unix::fs::PermissionsExt;

use coffer_frontend::accounts::{
    AccountError, Accounts, CodeKey, CODE_ATTEMPTS, CODE_TTL, FREE_FAILURES,
};
use coffer_frontend::verifier::Verifier;

use common::{databases, frontend, id, wrong};

#[tokio::test]
async fn verifying_issues_a_credential_and_revokes_older_ones() {
    for (db, url, _keep) in databases() {
        let accounts = frontend(&url).await;
        let alice = id("alice");
        let code = accounts.register(&alice, 1000).await.unwrap();
        assert_eq!(code.as_str().len(), 8);
        assert!(code.as_str().bytes().all(|b| b.is_ascii_digit()));
        let first = accounts.verify(&alice, code.as_str(), 1001).await.unwrap();
        assert_eq!(
            accounts.authenticate(first.as_str()).await.unwrap(),
            alice,
            "{db}"
        );
        // A new phone verifies again: the old credential stops working.
        let code = accounts.register(&alice, 2000).await.unwrap();
        let second = accounts.verify(&alice, code.as_str(), 2001).await.unwrap();
        assert_ne!(first.as_str(), second.as_str());
        assert!(
            matches!(
                accounts.authenticate(first.as_str()).await,
                Err(AccountError::BadCredential)
            ),
            "{db}"
        );
        assert_eq!(accounts.authenticate(second.as_str()).await.unwrap(), alice);
        // A code works once.
        assert!(
            matches!(
                accounts.verify(&alice, code.as_str(), 2002).await,
                Err(AccountError::NoPendingCode)
            ),
            "{db}"
        );
        assert!(matches!(
            accounts.authenticate("nonsense").await,
            Err(AccountError::BadCredential)
        ));
    }
}

#[tokio::test]
async fn wrong_expired_exhausted_and_unknown_codes_are_refused() {
    for (db, url, _keep) in databases() {
        let accounts = frontend(&url).await;
        let bob = id("bob");
        assert!(matches!(
            accounts.verify(&bob, "12345678", 0).await,
            Err(AccountError::NoPendingCode)
        ));
        let code = accounts.register(&bob, 0).await.unwrap();
        assert!(
            matches!(
                accounts.verify(&bob, code.as_str(), CODE_TTL + 1).await,
                Err(AccountError::NoPendingCode)
            ),
            "{db}"
        );
        let code = accounts.register(&bob, 0).await.unwrap();
        for left in (0..CODE_ATTEMPTS).rev() {
            match accounts.verify(&bob, &wrong(code.as_str()), 1).await {
                Err(AccountError::WrongCode { tries_left }) => {
                    assert_eq!(i64::from(tries_left), left, "{db}")
                }
                other => panic!("{db}: {other:?}"),
            }
        }
        // After five wrong tries even the right code is void.
        assert!(
            matches!(
                accounts.verify(&bob, code.as_str(), 2).await,
                Err(AccountError::NoPendingCode)
            ),
            "{db}"
        );
        // The last second of a code's life still counts.
        let code = accounts.register(&bob, 100).await.unwrap();
        accounts
            .verify(&bob, code.as_str(), 100 + CODE_TTL)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn malformed_codes_are_refused_and_cost_nothing() {
    for (db, url, _keep) in databases() {
        let accounts = frontend(&url).await;
        let carol = id("carol");
        let code = accounts.register(&carol, 0).await.unwrap();
        let spaced = format!(" {}", code.as_str());
        let short = code.as_str()[..6].to_string();
        for _ in 0..3 * FREE_FAILURES {
            for bad in [spaced.as_str(), short.as_str(), "abcdefgh", "", "123456789"] {
                assert!(
                    matches!(
                        accounts.verify(&carol, bad, 1).await,
                        Err(AccountError::MalformedCode)
                    ),
                    "{db} {bad:?}"
                );
            }
        }
        // Neither the code's tries nor the account's failure budget were touched.
        accounts.verify(&carol, code.as_str(), 2).await.unwrap();
    }
}

/// Two front-ends with different code keys cannot check each other's codes: the key is
/// what a code is checked under, so a shared database needs a shared key file.
#[tokio::test]
async fn codes_are_checked_under_the_code_key() {
    for (db, url, _keep) in databases() {
        let ours = frontend(&url).await;
        let other = Accounts::connect(&url, CodeKey::from_bytes([1; 32]))
            .await
            .unwrap();
        let dave = id("dave");
        let code = ours.register(&dave, 0).await.unwrap();
        assert!(
            matches!(
                other.verify(&dave, code.as_str(), 1).await,
                Err(AccountError::WrongCode { .. })
            ),
            "{db}"
        );
        ours.verify(&dave, code.as_str(), 2).await.unwrap();
    }
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn attack_local_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("accounts.db");
    let key = dir.path().join("code.key");
    let accounts = Accounts::open(&format!("sqlite://{}?mode=rwc", db.display()), &key)
        .await
        .unwrap();
    let alice = id("alice");
    let code = accounts.register(&alice, 0).await.unwrap();
    let codes = dir.path().join("codes.txt");
    Verifier::DevFile(codes.clone())
        .deliver(&alice, &code)
        .await
        .unwrap();
    for file in [&db, &key, &codes] {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    // A key file anyone may read is refused; the database file is tightened.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let url = format!("sqlite://{}?mode=rwc", db.display());
    assert!(matches!(
        Accounts::open(&url, &key).await,
        Err(AccountError::CodeKey(_))
    ));
    Accounts::connect(&url, CodeKey::generate()).await.unwrap();
    assert_eq!(mode(&db), 0o600);
}

/// SQLite creates its side files with the database file's permissions: a private
/// database keeps `-wal` and `-shm` (WAL mode) and `-journal` (the default rollback
/// journal, kept here with PERSIST so that it can be looked at) private too.
#[tokio::test]
async fn sqlite_side_files_follow_the_database_file() {
    for (journal, sides) in [
        ("WAL", &["accounts.db-wal", "accounts.db-shm"][..]),
        ("PERSIST", &["accounts.db-journal"][..]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("accounts.db");
        let url = format!("sqlite://{}?mode=rwc", db.display());
        let accounts = Accounts::connect(&url, CodeKey::generate()).await.unwrap();
        let alice = id("alice");
        let code = accounts.register(&alice, 0).await.unwrap();
        accounts.verify(&alice, code.as_str(), 1).await.unwrap();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        sqlx::query(&format!("PRAGMA journal_mode={journal}"))
            .fetch_all(&pool)
            .await
            .unwrap();
        // A write through the probe connection, whose journal mode is the one set above
        // (PERSIST is per connection, WAL stays with the file).
        sqlx::query("CREATE TABLE side_file_probe (x BIGINT)")
            .execute(&pool)
            .await
            .unwrap();
        for side in sides {
            assert_eq!(mode(&dir.path().join(side)), 0o600, "{journal}: {side}");
        }
    }
}
