//! Accounts on SQLite, and on PostgreSQL when `COFFER_TEST_POSTGRES_URL` names a server
//! (the test script starts one).

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use coffer_frontend::accounts::{AccountError, Accounts, CODE_ATTEMPTS, CODE_TTL};
use coffer_frontend::verifier::Verifier;
use sha2::{Digest, Sha256};
use sqlx::Row;

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

/// The database URLs under test (SQLite in a fresh directory, PostgreSQL when given), so an
/// attack can open several handles on one database, as several front-ends do.
fn urls() -> Vec<(&'static str, String, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("accounts.db").display()
    );
    let mut out = vec![("sqlite", url, Some(dir))];
    match std::env::var("COFFER_TEST_POSTGRES_URL") {
        Ok(pg) => out.push(("postgres", pg, None)),
        Err(_) => {
            eprintln!("note: COFFER_TEST_POSTGRES_URL is not set; PostgreSQL not tested here")
        }
    }
    out
}

/// Four front-ends on one database.
async fn frontends(url: &str) -> Vec<Arc<Accounts>> {
    let mut out = Vec::new();
    for _ in 0..4 {
        out.push(Arc::new(Accounts::connect(url).await.unwrap()));
    }
    out
}

/// Sends `codes` for `id` all at once, spread over the front-ends.
async fn in_parallel(
    fronts: &[Arc<Accounts>],
    id: &str,
    codes: Vec<String>,
    now: i64,
) -> Vec<Result<String, AccountError>> {
    let barrier = Arc::new(tokio::sync::Barrier::new(codes.len()));
    let mut tasks = Vec::new();
    for (i, code) in codes.into_iter().enumerate() {
        let (accounts, id, barrier) = (
            fronts[i % fronts.len()].clone(),
            id.to_string(),
            barrier.clone(),
        );
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            accounts.verify(&id, &code, now).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn summary(results: &[Result<String, AccountError>]) -> String {
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let mut errors: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| e.to_string()))
        .collect();
    errors.sort();
    errors.dedup();
    format!("{ok} accepted, errors: {errors:?}")
}

fn wrong_code(code: &str) -> String {
    if code.starts_with('0') {
        code.replacen('0', "1", 1)
    } else {
        format!("0{}", &code[1..])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_a_right_code_sent_in_parallel_is_redeemed_once() {
    for (db, url, _keep) in urls() {
        let fronts = frontends(&url).await;
        let mut worst = 0;
        for round in 0..10 {
            let victim = id(&format!("double-{round}"));
            let code = fronts[0].register(&victim, 1000).await.unwrap();
            let results = in_parallel(&fronts, &victim, vec![code; 16], 1001).await;
            let accepted = results.iter().filter(|r| r.is_ok()).count();
            eprintln!("{db} round {round}: {}", summary(&results));
            worst = worst.max(accepted);
        }
        assert!(worst <= 1, "{db}: one code gave {worst} credentials");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_a_code_gets_no_more_than_five_evaluations_in_parallel() {
    for (db, url, _keep) in urls() {
        let fronts = frontends(&url).await;
        let mut worst = 0;
        for round in 0..10 {
            let victim = id(&format!("guess-{round}"));
            let code = fronts[0].register(&victim, 1000).await.unwrap();
            // Four wrong tries one after another: one evaluation is left for this code.
            for _ in 0..CODE_ATTEMPTS - 1 {
                assert!(fronts[0]
                    .verify(&victim, &wrong_code(&code), 1001)
                    .await
                    .is_err());
            }
            // Every accepted try below was one more evaluation of the code.
            let results = in_parallel(&fronts, &victim, vec![code; 16], 1002).await;
            let accepted = results.iter().filter(|r| r.is_ok()).count();
            eprintln!("{db} round {round}: {}", summary(&results));
            worst = worst.max(CODE_ATTEMPTS as usize - 1 + accepted);
        }
        assert!(
            worst <= CODE_ATTEMPTS as usize,
            "{db}: {worst} evaluations of one code"
        );
    }
}

#[tokio::test]
async fn attack_new_codes_do_not_give_new_tries_forever() {
    for (db, url, _keep) in urls() {
        let accounts = Accounts::connect(&url).await.unwrap();
        let victim = id("cap");
        let mut wrong_tries = 0;
        for round in 0..6 {
            let code = accounts.register(&victim, 1000 + round).await.unwrap();
            for _ in 0..CODE_ATTEMPTS {
                assert!(accounts
                    .verify(&victim, &wrong_code(&code), 1000 + round)
                    .await
                    .is_err());
                wrong_tries += 1;
            }
        }
        let code = accounts.register(&victim, 2000).await.unwrap();
        let last = accounts.verify(&victim, &code, 2000).await;
        assert!(
            last.is_err(),
            "{db}: the right code was still accepted after {wrong_tries} wrong tries"
        );
    }
}

#[tokio::test]
async fn attack_reading_the_database_does_not_reveal_a_pending_code() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
    let accounts = Accounts::connect(&url).await.unwrap();
    let victim = id("stolen-db");
    let code = accounts.register(&victim, 1000).await.unwrap();
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let stored: String = sqlx::query("SELECT code_hash FROM codes")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    let found = (0..1_000_000u32).map(|n| format!("{n:06}")).find(|guess| {
        let h: String = Sha256::digest(format!("{victim}\0{guess}").as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        h == stored
    });
    assert_eq!(
        found, None,
        "the database gave away the pending code {code}"
    );
}

#[tokio::test]
async fn attack_local_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("accounts.db");
    Accounts::connect(&format!("sqlite://{}?mode=rwc", db.display()))
        .await
        .unwrap();
    let codes = dir.path().join("codes.txt");
    Verifier::DevFile(codes.clone())
        .deliver("+15550100", "123456")
        .await
        .unwrap();
    for file in [db, codes] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is {mode:o}", file.display());
    }
}

#[tokio::test]
async fn attack_codes_have_eight_digits() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
    let accounts = Accounts::connect(&url).await.unwrap();
    let code = accounts.register(&id("len"), 1000).await.unwrap();
    assert_eq!(code.len(), 8, "{code}");
}
