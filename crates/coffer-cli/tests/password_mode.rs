//! Password mode through the real binaries: `coffer serve` (front-end and vault node), and
//! devices that register, verify, enable, back up, restore, change the password, disable.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use common::coffer_server::{sign_in, start_server, Server};
use common::*;
use serde_json::Value;

const LOCKED: i32 = 4;

#[test]
fn a_password_protected_backup_restores_on_a_new_device() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start_server(&tmp.path().join("server"));
    let storage = tmp.path().join("storage");
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let tree = sample_tree(&src);

    // Phone A: account, password, backup.
    let a = tmp.path().join("a");
    sign_in(&server, &a, "+15550100");
    coffer(&a)
        .args([
            "enable",
            "--password",
            "--password-stdin",
            "--ksf-memory-kib",
            "8",
            "--storage",
        ])
        .arg(&storage)
        .stdin("first password\n")
        .run()
        .ok()
        .stdout_has("10 wrong guesses")
        .stdout_has("the deposit works");
    coffer(&a).arg("backup").arg(&tree).run().ok();
    let s = coffer(&a).json().arg("status").run().ok().json();
    assert_eq!(s["mode"], "password", "{s}");
    assert_eq!(s["vault"]["guesses_left"], 10, "{s}");

    // Phone B: a new device with the account and the password only.
    let b = tmp.path().join("b");
    sign_in(&server, &b, "+15550100");
    let restore = |profile: &Path, into: &str, pw: &str| {
        coffer(profile)
            .args(["restore", "--password-stdin", "--from"])
            .arg(&storage)
            .arg("--into")
            .arg(tmp.path().join(into))
            .stdin(pw)
            .run()
    };
    restore(&b, "wrong", "not it\n")
        .code(WRONG_KEY)
        .stderr_has("9 attempts left");
    assert!(!tmp.path().join("wrong").exists());
    restore(&b, "restored", "first password\n").ok();
    assert_same_tree(
        &tree,
        &tmp.path().join("restored").join(tree.file_name().unwrap()),
    );
    let s = coffer(&b).json().arg("status").run().ok().json();
    assert_eq!(
        s["vault"]["guesses_left"], 10,
        "a correct password restores the budget: {s}"
    );

    // B (the active device, holding K) changes the password; C restores with the new one.
    coffer(&b)
        .args([
            "change-password",
            "--password-stdin",
            "--ksf-memory-kib",
            "8",
        ])
        .stdin("second password\n")
        .run()
        .ok();
    let c = tmp.path().join("c");
    sign_in(&server, &c, "+15550100");
    restore(&c, "old-pw", "first password\n").code(WRONG_KEY);
    restore(&c, "restored-c", "second password\n").ok();

    // C disables: the vault record is gone, so a later device cannot recover the key.
    coffer(&c).args(["disable", "--yes"]).run().ok();
    let d = tmp.path().join("d");
    sign_in(&server, &d, "+15550100");
    restore(&d, "nothing", "second password\n").code(NOT_FOUND);
}

#[test]
fn ten_wrong_passwords_lock_the_key_for_good() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start_server(&tmp.path().join("server"));
    let storage = tmp.path().join("storage");
    let a = tmp.path().join("a");
    sign_in(&server, &a, "locked@example.org");
    coffer(&a)
        .args([
            "enable",
            "--password",
            "--password-stdin",
            "--ksf-memory-kib",
            "8",
            "--storage",
        ])
        .arg(&storage)
        .stdin("the password\n")
        .run()
        .ok();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    coffer(&a).arg("backup").arg(sample_tree(&src)).run().ok();
    let thief = tmp.path().join("thief");
    sign_in(&server, &thief, "locked@example.org");
    for left in (1..10).rev() {
        coffer(&thief)
            .args(["restore", "--password-stdin", "--into"])
            .arg(tmp.path().join("x"))
            .arg("--from")
            .arg(&storage)
            .stdin("guess\n")
            .run()
            .code(WRONG_KEY)
            .stderr_has(&format!("{left} attempts left"));
    }
    for pw in ["guess\n", "the password\n"] {
        coffer(&thief)
            .json()
            .args(["restore", "--password-stdin", "--into"])
            .arg(tmp.path().join("x"))
            .arg("--from")
            .arg(&storage)
            .stdin(pw)
            .run()
            .json_error("locked", LOCKED);
    }
}

#[test]
fn a_separate_front_end_and_vault_node_work_together() {
    let tmp = tempfile::tempdir().unwrap();
    let node = tmp.path().join("node");
    let init = Command::new(bin())
        .args(["--json", "vault", "init", "--data"])
        .arg(&node)
        .output()
        .unwrap();
    let info: Value = serde_json::from_slice(&init.stdout).unwrap();
    let (vault, v) = spawn_server(&["vault", "serve", "--listen", "127.0.0.1:0"], &node);
    let _vault = KillOnDrop(vault);
    let vault_port: std::net::SocketAddr = v["listening"].as_str().unwrap().parse().unwrap();

    let vault_url = format!("https://127.0.0.1:{}", vault_port.port());
    let token_file = node.join("frontend.token");
    let mut args = vec![
        "frontend",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--dev-verifier",
        "--vault",
        &vault_url,
        "--vault-fingerprint",
        info["tls_fingerprint"].as_str().unwrap(),
        "--vault-token-file",
        token_file.to_str().unwrap(),
    ];
    // Accounts on PostgreSQL when the test script started one, as several front-ends would.
    let pg = std::env::var("COFFER_TEST_POSTGRES_URL");
    match &pg {
        Ok(url) => args.extend(["--accounts", url.as_str()]),
        Err(_) => eprintln!("note: COFFER_TEST_POSTGRES_URL is not set; accounts on SQLite"),
    }
    let (fe, f) = spawn_server(&args, &tmp.path().join("fe"));
    let _fe = KillOnDrop(fe);
    let server = Server {
        url: f["url"].as_str().unwrap().to_string(),
        tls: f["tls_fingerprint"].as_str().unwrap().to_string(),
        fleet: info["fleet_fingerprint"].as_str().unwrap().to_string(),
        codes: PathBuf::from(f["codes_file"].as_str().unwrap()),
        child: Command::new("true").spawn().unwrap(),
    };
    let a = tmp.path().join("a");
    let id = format!("sep-{}", std::process::id());
    sign_in(&server, &a, &id);
    coffer(&a)
        .args([
            "enable",
            "--password",
            "--password-stdin",
            "--ksf-memory-kib",
            "8",
            "--storage",
        ])
        .arg(tmp.path().join("storage"))
        .stdin("a password\n")
        .run()
        .ok();
    let s = coffer(&a).json().arg("status").run().ok().json();
    assert_eq!(s["vault"]["guesses_left"], 10, "{s}");
    // The client pinned the fleet key the node printed at init.
    let cfg = std::fs::read_to_string(a.join("config.toml")).unwrap();
    assert!(
        cfg.contains(info["fleet_fingerprint"].as_str().unwrap()),
        "{cfg}"
    );
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_vault_key_other_than_the_pinned_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start_server(&tmp.path().join("server"));
    let a = tmp.path().join("a");
    let register = |extra: &[&str]| {
        coffer(&a)
            .args([
                "account",
                "register",
                "--server",
                &server.url,
                "--server-fingerprint",
                &server.tls,
                "--id",
                "pinned",
            ])
            .args(extra)
            .run()
    };
    // Another fleet's fingerprint: refused before any code is sent, nothing kept.
    register(&["--fleet-fingerprint", &"ab".repeat(32)])
        .code(INTEGRITY)
        .stderr_has("not the pinned fleet key");
    assert!(!a.join("config.toml").exists());
    assert!(!std::fs::read_to_string(&server.codes)
        .unwrap_or_default()
        .contains("pinned "));
    // No fingerprint at all: there is no trust on first use.
    register(&[]).code(USAGE).stderr_has("--fleet-fingerprint");
    // Malformed fingerprints and plain HTTP are refused by their format.
    register(&["--fleet-fingerprint", "0000"]).code(USAGE);
    coffer(&a)
        .args([
            "account",
            "register",
            "--server",
            &server.url.replace("https://", "http://"),
            "--server-fingerprint",
            &server.tls,
            "--fleet-fingerprint",
            &server.fleet,
            "--id",
            "pinned",
        ])
        .run()
        .code(USAGE)
        .stderr_has("https://");
    // The development shortcut works, and says loudly what it costs.
    register(&["--insecure-trust-server-fleet"])
        .ok()
        .stderr_has("WARNING");
    let cfg = std::fs::read_to_string(a.join("config.toml")).unwrap();
    assert!(cfg.contains(&server.fleet), "{cfg}");
}
