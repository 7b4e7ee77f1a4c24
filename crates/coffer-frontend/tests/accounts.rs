//! Accounts on SQLite, and on PostgreSQL when `COFFER_TEST_POSTGRES_URL` names a server
//! (the test script starts one). Several `Accounts` on one database stand for several
//! front-ends sharing it.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use coffer_frontend::account_id::AccountId;
use coffer_frontend::accounts::{
    AccountError, Accounts, CodeKey, Credential, CODE_ATTEMPTS, CODE_TTL, FREE_FAILURES,
};
use coffer_frontend::backoff::{pause_after, MAX_BACKOFF};
use coffer_frontend::verifier::Verifier;
use sha2::{Digest, Sha256};
use sqlx::Row;

/// The databases under test: SQLite in a fresh directory, and PostgreSQL when given.
fn databases() -> Vec<(&'static str, String, Option<tempfile::TempDir>)> {
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

const KEY: [u8; 32] = [0x5a; 32];

async fn frontend(url: &str) -> Accounts {
    Accounts::connect(url, CodeKey::from_bytes(KEY))
        .await
        .unwrap()
}

/// Four front-ends on one database, sharing the code key as they must.
async fn frontends(url: &str) -> Vec<Arc<Accounts>> {
    let mut out = Vec::new();
    for _ in 0..4 {
        out.push(Arc::new(frontend(url).await));
    }
    out
}

/// A fresh account id per run, so a shared PostgreSQL database needs no cleaning.
fn id(name: &str) -> AccountId {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    AccountId::parse(&format!("{name}-{}-{nanos}", std::process::id())).unwrap()
}

/// A well-formed code that is not `code`.
fn wrong(code: &str) -> String {
    let last = (code.as_bytes()[7] - b'0' + 1) % 10;
    format!("{}{last}", &code[..7])
}

/// Sends `codes` for `id` all at once (released together), spread over the front-ends.
async fn in_parallel(
    fronts: &[Arc<Accounts>],
    id: &AccountId,
    codes: Vec<String>,
    now: i64,
) -> Vec<Result<Credential, AccountError>> {
    let barrier = Arc::new(tokio::sync::Barrier::new(codes.len()));
    let mut tasks = Vec::new();
    for (i, code) in codes.into_iter().enumerate() {
        let accounts = fronts[i % fronts.len()].clone();
        let (id, barrier) = (id.clone(), barrier.clone());
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

/// (accepted, wrong-code answers, no-pending-code answers); anything else fails the test.
fn tally(db: &str, results: &[Result<Credential, AccountError>]) -> (usize, usize, usize) {
    let mut counts = (0, 0, 0);
    for r in results {
        match r {
            Ok(_) => counts.0 += 1,
            Err(AccountError::WrongCode { .. }) => counts.1 += 1,
            Err(AccountError::NoPendingCode) => counts.2 += 1,
            Err(e) => panic!("{db}: unexpected answer {e}"),
        }
    }
    counts
}

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

/// Attack (b): the right code sent many times at once, to several front-ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_a_right_code_sent_in_parallel_is_redeemed_once() {
    for (db, url, _keep) in databases() {
        let fronts = frontends(&url).await;
        for round in 0..10 {
            let victim = id(&format!("double-{round}"));
            let code = fronts[0].register(&victim, 1000).await.unwrap();
            let results = in_parallel(&fronts, &victim, vec![code.as_str().into(); 16], 1001).await;
            let (accepted, _, _) = tally(db, &results);
            assert_eq!(
                accepted, 1,
                "{db} round {round}: one code, {accepted} credentials"
            );
            let credential = results.iter().find_map(|r| r.as_ref().ok()).unwrap();
            assert_eq!(
                fronts[1].authenticate(credential.as_str()).await.unwrap(),
                victim
            );
        }
    }
}

/// Attack (a): many guesses at once, across front-ends, get at most five evaluations.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_a_code_gets_no_more_than_five_evaluations_in_parallel() {
    for (db, url, _keep) in databases() {
        let fronts = frontends(&url).await;
        for round in 0..5 {
            // Only wrong guesses: exactly five are evaluated, the rest find the code void.
            let victim = id(&format!("guess-{round}"));
            let code = fronts[0].register(&victim, 1000).await.unwrap();
            let guesses = (0..40).map(|_| wrong(code.as_str())).collect();
            let results = in_parallel(&fronts, &victim, guesses, 1001).await;
            let (accepted, wrong_answers, void) = tally(db, &results);
            assert_eq!(
                (accepted, wrong_answers, void),
                (0, 5, 35),
                "{db} round {round}"
            );
            assert!(matches!(
                fronts[1].verify(&victim, code.as_str(), 1002).await,
                Err(AccountError::NoPendingCode)
            ));

            // The right one among 39 wrong ones: it only wins as one of the five evaluations.
            let victim = id(&format!("mixed-{round}"));
            let code = fronts[0].register(&victim, 1000).await.unwrap();
            let mut guesses: Vec<String> = (0..39).map(|_| wrong(code.as_str())).collect();
            guesses.push(code.as_str().into());
            let results = in_parallel(&fronts, &victim, guesses, 1001).await;
            let (accepted, wrong_answers, _) = tally(db, &results);
            assert!(
                accepted + wrong_answers <= 5,
                "{db}: {accepted} + {wrong_answers}"
            );

            // One try left, then the right code many times: one evaluation, one credential.
            let victim = id(&format!("last-try-{round}"));
            let code = fronts[0].register(&victim, 1000).await.unwrap();
            for _ in 0..CODE_ATTEMPTS - 1 {
                assert!(fronts[0]
                    .verify(&victim, &wrong(code.as_str()), 1001)
                    .await
                    .is_err());
            }
            let results = in_parallel(&fronts, &victim, vec![code.as_str().into(); 16], 1002).await;
            assert_eq!(tally(db, &results), (1, 0, 15), "{db} round {round}");
        }
    }
}

/// New codes do not buy new tries: failures count per account, across codes and
/// front-ends, and past a threshold checks pause for longer and longer.
#[tokio::test]
async fn attack_new_codes_do_not_give_new_tries_forever() {
    for (db, url, _keep) in databases() {
        let (a, b) = (frontend(&url).await, frontend(&url).await);
        let victim = id("cap");
        let mut t = 1000;
        // Ten wrong tries over two codes, half of them at another front-end.
        for front in [&a, &b] {
            let code = front.register(&victim, t).await.unwrap();
            for _ in 0..CODE_ATTEMPTS {
                assert!(matches!(
                    front.verify(&victim, &wrong(code.as_str()), t).await,
                    Err(AccountError::WrongCode { .. })
                ));
            }
        }
        assert_eq!(2 * CODE_ATTEMPTS, FREE_FAILURES);
        // Paused: no code is issued, none is checked, at either front-end.
        for front in [&a, &b] {
            let refused = front.register(&victim, t).await.unwrap_err();
            assert_eq!(refused.retry_after_secs(), Some(60), "{db}: {refused}");
            assert!(refused.is_retryable());
        }
        t += 59;
        assert_eq!(
            a.register(&victim, t).await.unwrap_err().retry_after_secs(),
            Some(1)
        );
        t += 1;
        let code = a.register(&victim, t).await.unwrap();
        // Each further failure doubles the pause, and the refusal evaluates nothing: the
        // right code is turned away too, without spending one of its tries.
        let mut pause = 60;
        for failure in FREE_FAILURES + 1..FREE_FAILURES + 3 {
            assert!(matches!(
                b.verify(&victim, &wrong(code.as_str()), t).await,
                Err(AccountError::WrongCode { .. })
            ));
            pause *= 2;
            assert_eq!(pause, pause_after(failure));
            match a.verify(&victim, code.as_str(), t).await {
                Err(AccountError::TooManyFailures { retry_after_secs }) => {
                    assert_eq!(retry_after_secs, pause as u64, "{db}")
                }
                other => panic!("{db}: {other:?}"),
            }
            t += pause;
        }
        // The code has had 2 evaluations; its third, after the pause, succeeds, and a
        // success clears the count: ten free failures again.
        assert!(t <= 1060 + CODE_TTL);
        a.verify(&victim, code.as_str(), t).await.unwrap();
        let mut failures = 0;
        while failures < FREE_FAILURES - 1 {
            let code = b.register(&victim, t).await.unwrap();
            for _ in 0..CODE_ATTEMPTS.min(FREE_FAILURES - 1 - failures) {
                assert!(matches!(
                    b.verify(&victim, &wrong(code.as_str()), t).await,
                    Err(AccountError::WrongCode { .. })
                ));
                failures += 1;
            }
        }
        let code = b.register(&victim, t).await.unwrap();
        b.verify(&victim, code.as_str(), t).await.unwrap();
        assert_eq!(pause_after(1000), MAX_BACKOFF);
    }
}

/// Failures past the threshold, sent in parallel, do not slip through before the pause.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_parallel_guesses_stop_at_the_failure_threshold() {
    for (db, url, _keep) in databases() {
        let fronts = frontends(&url).await;
        let victim = id("cap-parallel");
        let code = fronts[0].register(&victim, 1000).await.unwrap();
        for _ in 0..CODE_ATTEMPTS {
            let _ = fronts[0].verify(&victim, &wrong(code.as_str()), 1000).await;
        }
        let code = fronts[0].register(&victim, 1000).await.unwrap();
        for _ in 0..CODE_ATTEMPTS - 1 {
            let _ = fronts[0].verify(&victim, &wrong(code.as_str()), 1000).await;
        }
        // Nine failures: one more is allowed, then everything pauses.
        let guesses = (0..24).map(|_| wrong(code.as_str())).collect();
        let results = in_parallel(&fronts, &victim, guesses, 1000).await;
        let evaluated = results
            .iter()
            .filter(|r| matches!(r, Err(AccountError::WrongCode { .. })))
            .count();
        let paused = results
            .iter()
            .filter(|r| matches!(r, Err(AccountError::TooManyFailures { .. })))
            .count();
        assert_eq!((evaluated, paused), (1, 23), "{db}");
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

/// Whoever reads the database cannot tell a pending code from any other: without the
/// key there is nothing to test guesses against (before, a bare SHA-256 of id and code
/// gave it away in under a second).
#[tokio::test]
async fn attack_reading_the_database_does_not_reveal_a_pending_code() {
    for (db, url, _keep) in databases() {
        let accounts = frontend(&url).await;
        let victim = id("stolen-db");
        let code = accounts.register(&victim, 1000).await.unwrap();
        let pool = sqlx::any::AnyPoolOptions::new()
            .connect(&url)
            .await
            .unwrap();
        let stored: String = sqlx::query("SELECT code_mac FROM pending_codes WHERE account = $1")
            .bind(victim.as_str())
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
        // The attacker's best case: the code is one of a thousand candidates they know.
        let n: u32 = code.as_str().parse().unwrap();
        let found = (0..1000u32)
            .map(|k| format!("{:08}", (n + k) % 100_000_000))
            .find(|guess| {
                let framings = [
                    format!("{victim}\0{guess}"),
                    format!("{victim}{guess}"),
                    format!("coffer verification code v1\0{victim}{guess}"),
                ];
                framings.iter().any(|f| {
                    let h: String = Sha256::digest(f.as_bytes())
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    h == stored
                })
            });
        assert_eq!(found, None, "{db}: the database gave away the pending code");
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
