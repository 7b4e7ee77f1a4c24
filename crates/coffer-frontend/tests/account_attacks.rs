//! Attacks on verification, on SQLite and on PostgreSQL when `COFFER_TEST_POSTGRES_URL`
//! names a server. Each was first run against the earlier accounts code (attempts read by a
//! plain SELECT, no per-account cap, bare SHA-256 of 6-digit codes) and broke it there.

mod common;

use coffer_frontend::accounts::{AccountError, CODE_ATTEMPTS, CODE_TTL, FREE_FAILURES};
use coffer_frontend::backoff::{pause_after, MAX_BACKOFF};
use sha2::{Digest, Sha256};
use sqlx::Row;

use common::{databases, frontend, frontends, id, in_parallel, tally, wrong};

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
