//! The servers' own doors, tried against the real `coffer serve`: slow connections that
//! never finish, floods of made-up account ids, the rate limits a user can meet, a tampered
//! vault record, what a local user could read in the data folder, and a stop on SIGTERM.

mod common;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use coffer_client::frontend_http::Frontend;
use coffer_client::password::{pin_fleet, KsfParams, PasswordVault};
use coffer_client::ClientError;
use coffer_format::BackupKey;
use common::coffer_server::{sign_in, start_server, start_server_with, Server};
use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

const KSF: KsfParams = KsfParams {
    m_cost_kib: 8,
    t_cost: 1,
    p_cost: 1,
};
const RATE_LIMITED: i32 = 10;

fn addr(server: &Server) -> SocketAddr {
    let port = server.url.rsplit(':').next().unwrap().parse().unwrap();
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A connection from another loopback address, as another host would make it.
async fn connect_from(from: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    socket.connect(to).await
}

/// A verified account with a deposited key, through the real client library.
async fn account(server: &Server, id: &str, k: &BackupKey) -> String {
    let fe = Frontend::new(&server.url, &[&server.tls]).unwrap();
    fe.register_account(id).await.unwrap();
    let credential = fe.verify_account(id, &server.code_for(id)).await.unwrap();
    let keys = pin_fleet(fe.fleet_keys().await.unwrap(), &server.fleet).unwrap();
    PasswordVault::new(fe.vault(&credential), id, keys)
        .enable("a password!", k, KSF)
        .await
        .unwrap();
    credential
}

/// A recovery on new connections (a new client), as a new phone would make it.
async fn recovers(server: &Server, credential: &str, id: &str) -> BackupKey {
    let fe = Frontend::new(&server.url, &[&server.tls]).unwrap();
    let keys = pin_fleet(fe.fleet_keys().await.unwrap(), &server.fleet).unwrap();
    PasswordVault::new(fe.vault(credential), id, keys)
        .recover("a password!")
        .await
        .unwrap()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// `coffer serve` allowed only `nofile` open files, as a small or crowded host allows.
fn start_server_with_descriptors(data: &Path, nofile: u64) -> Server {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(bin());
    cmd.args([
        "--json",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--dev-verifier",
        "--data",
    ])
    .arg(data)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: nofile,
                rlim_max: nofile,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    Server {
        url: v["url"].as_str().unwrap().to_string(),
        tls: v["tls_fingerprint"].as_str().unwrap().to_string(),
        fleet: v["fleet_fingerprint"].as_str().unwrap().to_string(),
        codes: std::path::PathBuf::from(v["codes_file"].as_str().unwrap()),
        child,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_connections_that_never_finish_do_not_stop_a_recovery() {
    let tmp = tempfile::tempdir().unwrap();
    // 256 descriptors: before the connection caps, 256 held connections left a real
    // client timing out.
    let server = start_server_with_descriptors(&tmp.path().join("server"), 256);
    let k = BackupKey::generate().unwrap();
    let credential = account(&server, "+15550301", &k).await;
    // 300 connections from another address, each with a few bytes of a TLS record and
    // then nothing: far more than one address may hold.
    let mut held = Vec::new();
    for _ in 0..300 {
        if let Ok(mut c) = connect_from([127, 0, 0, 2], addr(&server)).await {
            let _ = c.write_all(&[0x16, 0x03, 0x01]).await;
            held.push(c);
        }
    }
    assert!(held.len() > 64, "the attacker could not even connect");
    // Meanwhile the owner, from another address, recovers.
    assert_eq!(recovers(&server, &credential, "+15550301").await, k);
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_made_up_ids_leaves_memory_flat_and_a_recovery_through() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start_server(&tmp.path().join("server"));
    let k = BackupKey::generate().unwrap();
    let credential = account(&server, "+15550302", &k).await;
    let before = rss_kib(server.child.id());
    // Distinct, valid ids from one address, as fast as the server answers.
    let flood = Frontend::new(&server.url, &[&server.tls]).unwrap();
    let mut refused = 0;
    for i in 0..3000 {
        match flood.register_account(&format!("flood-{i}")).await {
            Err(ClientError::RateLimited { .. }) => refused += 1,
            Ok(()) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        refused > 2900,
        "the flood was not limited: {refused} refused"
    );
    let after = rss_kib(server.child.id());
    assert!(
        after < before + 16 * 1024,
        "the server grew from {before} KiB to {after} KiB"
    );
    assert_eq!(recovers(&server, &credential, "+15550302").await, k);
}

#[test]
fn a_user_who_meets_a_rate_limit_is_told_when_to_retry() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start_server(&tmp.path().join("server"));
    let profile = tmp.path().join("p");
    let register = || {
        coffer(&profile)
            .json()
            .args(["account", "register", "--server", &server.url])
            .args(["--server-fingerprint", &server.tls])
            .args(["--fleet-fingerprint", &server.fleet, "--id", "+15550303"])
            .run()
    };
    // Five codes at once per account, then one a minute.
    for _ in 0..5 {
        register().ok();
    }
    let out = register();
    let err = &out.json_error("rate-limited", RATE_LIMITED)["error"];
    assert!(err["retryable"].as_bool().unwrap(), "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("retry in"),
        "{err}"
    );
}

#[test]
fn a_tampered_vault_record_is_an_integrity_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("server");
    let server = start_server(&data);
    let phone = tmp.path().join("phone");
    sign_in(&server, &phone, "+15550304");
    coffer(&phone)
        .args([
            "enable",
            "--password",
            "--password-stdin",
            "--ksf-memory-kib",
            "8",
        ])
        .stdin("a password!\n")
        .run()
        .ok();
    // Someone with the node's disk flips one bit of the sealed record.
    let db = rusqlite::Connection::open(data.join("vault/records.sqlite")).unwrap();
    let mut sealed: Vec<u8> = db
        .query_row("SELECT sealed FROM records", [], |r| r.get(0))
        .unwrap();
    sealed[500] ^= 1;
    db.execute("UPDATE records SET sealed = ?1", [&sealed])
        .unwrap();
    drop(db);
    let out = coffer(&phone)
        .json()
        .arg("change-password")
        .arg("--password-stdin")
        .args(["--ksf-memory-kib", "8"])
        .stdin("another password\n")
        .run();
    let err = &out.json_error("integrity", INTEGRITY)["error"];
    assert!(
        err["message"].as_str().unwrap().contains("integrity"),
        "{err}"
    );
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_local_user_reads_nothing_in_the_server_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("server");
    let server = start_server(&data);
    sign_in(&server, &tmp.path().join("p"), "+15550305");
    for dir in ["", "vault", "frontend"] {
        assert_eq!(mode(&data.join(dir)), 0o700, "{dir}/");
    }
    let mut files = Vec::new();
    for dir in [data.clone(), data.join("vault"), data.join("frontend")] {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                files.push(p);
            }
        }
    }
    for must in [
        "codes.txt",
        "vault/records.sqlite",
        "frontend/accounts.sqlite",
        "frontend/code.key",
    ] {
        assert!(
            files.contains(&data.join(must)),
            "{must} missing: {files:?}"
        );
    }
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    // Codes are stored as keyed MACs: the 8-digit code is nowhere in the database.
    let code = server.code_for("+15550305");
    let db = std::fs::read(data.join("frontend/accounts.sqlite")).unwrap();
    assert!(!db.windows(8).any(|w| w == code.as_bytes()));
}

#[test]
fn sigterm_stops_accepting_at_once_and_exits_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = start_server_with(&tmp.path().join("server"), &[]);
    let to = addr(&server);
    assert!(std::net::TcpStream::connect(to).is_ok());
    // SAFETY: kill(2) on a child this test started and still owns.
    unsafe {
        libc::kill(server.child.id() as i32, libc::SIGTERM);
    }
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        std::net::TcpStream::connect_timeout(&to, Duration::from_secs(2)).is_err(),
        "a stopped server still accepts"
    );
}
