//! Shared by the account tests: the databases under test (SQLite always, PostgreSQL when
//! `COFFER_TEST_POSTGRES_URL` names a server, as the test script starts one), front-ends
//! on them, and parallel verification. Several `Accounts` on one database stand for
//! several front-ends sharing it.
#![allow(dead_code)]

use std::sync::Arc;

use coffer_frontend::account_id::AccountId;
use coffer_frontend::accounts::{AccountError, Accounts, CodeKey, Credential};

/// The databases under test: SQLite in a fresh directory, and PostgreSQL when given.
pub fn databases() -> Vec<(&'static str, String, Option<tempfile::TempDir>)> {
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

pub const KEY: [u8; 32] = [0x5a; 32];

pub async fn frontend(url: &str) -> Accounts {
    Accounts::connect(url, CodeKey::from_bytes(KEY))
        .await
        .unwrap()
}

/// Four front-ends on one database, sharing the code key as they must.
pub async fn frontends(url: &str) -> Vec<Arc<Accounts>> {
    let mut out = Vec::new();
    for _ in 0..4 {
        out.push(Arc::new(frontend(url).await));
    }
    out
}

/// A fresh account id per run, so a shared PostgreSQL database needs no cleaning.
pub fn id(name: &str) -> AccountId {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    AccountId::parse(&format!("{name}-{}-{nanos}", std::process::id())).unwrap()
}

/// A well-formed code that is not `code`.
pub fn wrong(code: &str) -> String {
    let last = (code.as_bytes()[7] - b'0' + 1) % 10;
    format!("{}{last}", &code[..7])
}

/// Sends `codes` for `id` all at once (released together), spread over the front-ends.
pub async fn in_parallel(
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
pub fn tally(db: &str, results: &[Result<Credential, AccountError>]) -> (usize, usize, usize) {
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
