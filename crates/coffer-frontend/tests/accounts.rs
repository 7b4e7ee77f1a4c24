//! Accounts on SQLite, and on PostgreSQL when `COFFER_TEST_POSTGRES_URL` names a server
//! (the test script starts one).

use coffer_frontend::accounts::{AccountError, Accounts, CODE_ATTEMPTS, CODE_TTL};

async fn stores() -> Vec<(String, Accounts, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("accounts.db").display()
    );
    let mut out = vec![(
        "sqlite".to_string(),
        Accounts::connect(&url).await.unwrap(),
        Some(dir),
    )];
    match std::env::var("COFFER_TEST_POSTGRES_URL") {
        Ok(pg) => out.push((
            "postgres".to_string(),
            Accounts::connect(&pg).await.unwrap(),
            None,
        )),
        Err(_) => {
            eprintln!("note: COFFER_TEST_POSTGRES_URL is not set; PostgreSQL not tested here")
        }
    }
    out
}

/// A fresh account id per run, so a shared PostgreSQL database needs no cleaning.
fn id(name: &str) -> String {
    format!(
        "{name}-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    )
}

#[tokio::test]
async fn verifying_issues_a_credential_and_revokes_older_ones() {
    for (db, accounts, _keep) in stores().await {
        let alice = id("alice");
        let code = accounts.register(&alice, 1000).await.unwrap();
        let first = accounts.verify(&alice, &code, 1001).await.unwrap();
        assert_eq!(accounts.authenticate(&first).await.unwrap(), alice, "{db}");
        // A new phone verifies again: the old credential stops working.
        let code = accounts.register(&alice, 2000).await.unwrap();
        let second = accounts.verify(&alice, &code, 2001).await.unwrap();
        assert_ne!(first, second);
        assert!(
            matches!(
                accounts.authenticate(&first).await,
                Err(AccountError::BadCredential)
            ),
            "{db}"
        );
        assert_eq!(accounts.authenticate(&second).await.unwrap(), alice, "{db}");
        // A code works once.
        assert!(
            matches!(
                accounts.verify(&alice, &code, 2002).await,
                Err(AccountError::BadCode)
            ),
            "{db}"
        );
    }
}

#[tokio::test]
async fn wrong_expired_and_exhausted_codes_are_refused() {
    for (db, accounts, _keep) in stores().await {
        let bob = id("bob");
        let code = accounts.register(&bob, 0).await.unwrap();
        assert!(
            matches!(
                accounts.verify(&bob, &code, CODE_TTL + 1).await,
                Err(AccountError::BadCode)
            ),
            "{db}"
        );
        let code = accounts.register(&bob, 0).await.unwrap();
        let wrong = if code == "000000" { "000001" } else { "000000" };
        for _ in 0..CODE_ATTEMPTS {
            assert!(matches!(
                accounts.verify(&bob, wrong, 1).await,
                Err(AccountError::BadCode)
            ));
        }
        // After too many wrong tries even the right code is void.
        assert!(
            matches!(
                accounts.verify(&bob, &code, 2).await,
                Err(AccountError::BadCode)
            ),
            "{db}"
        );
        assert!(matches!(
            accounts.register("", 0).await,
            Err(AccountError::BadId)
        ));
        assert!(matches!(
            accounts.register(&"x".repeat(200), 0).await,
            Err(AccountError::BadId)
        ));
        assert!(matches!(
            accounts.authenticate("nonsense").await,
            Err(AccountError::BadCredential)
        ));
    }
}
