//! A real `coffer vault serve` process: spent guesses survive `kill -9` at any moment.

mod common;

use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use coffer_client::password::{FleetKeys, KsfParams, PasswordVault, VaultStatus};
use coffer_client::vault_http::VaultHttp;
use coffer_client::ClientError;
use coffer_format::BackupKey;
use serde_json::Value;

const KSF: KsfParams = KsfParams {
    m_cost_kib: 8,
    t_cost: 1,
    p_cost: 1,
};

struct Served {
    child: Child,
    port: u16,
}

fn serve(dir: &std::path::Path) -> Served {
    let (child, v) = common::spawn_server(&["vault", "serve", "--listen", "127.0.0.1:0"], dir);
    let addr: std::net::SocketAddr = v["listening"].as_str().unwrap().parse().unwrap();
    Served {
        child,
        port: addr.port(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_storm_of_attempts_loses_no_spent_guess() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let init = Command::new(common::bin())
        .args(["--json", "vault", "init", "--max-guesses", "100", "--data"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(init.status.success());
    let info: Value = serde_json::from_slice(&init.stdout).unwrap();
    let tls = info["tls_fingerprint"].as_str().unwrap().to_string();
    let fleet = info["fleet_fingerprint"].as_str().unwrap().to_string();
    let token = std::fs::read_to_string(dir.join("frontend.token")).unwrap();
    // The keys the printed fingerprint covers, as a front-end would show them.
    let keys: FleetKeys = coffer_client::password::pin_fleet(
        coffer_vault_node::VaultNode::open(&dir)
            .unwrap()
            .fleet()
            .keys()
            .clone(),
        &fleet,
    )
    .unwrap();

    let mut node = serve(&dir);
    let vault = |port: u16| {
        let transport = VaultHttp::new(
            &format!("https://localhost:{port}"),
            &tls,
            &token,
            b"victim",
        )
        .unwrap();
        PasswordVault::new(transport, "victim", keys.clone())
    };
    vault(node.port)
        .enable("the right password", &BackupKey::generate().unwrap(), KSF)
        .await
        .unwrap();

    // Wrong-password attempts from several clients at once; count the OPRF answers that
    // reached a client (each proves a guess was spent).
    let answered = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (answered, v) = (answered.clone(), vault(node.port));
        tasks.push(tokio::spawn(async move {
            for _ in 0..40 {
                match v.recover("wrong").await {
                    Err(ClientError::WrongPassword { .. }) | Err(ClientError::Locked) => {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    // Cut off mid-attempt by the kill: the start may or may not have landed.
                    Err(_) => return,
                    Ok(_) => panic!("a wrong password recovered the key"),
                }
            }
        }));
    }
    // Kill the node in the middle of the storm: after 20 answers, well before the budget
    // of 100 or the 160 attempts run out.
    while answered.load(Ordering::SeqCst) < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    node.child.kill().unwrap(); // SIGKILL
    node.child.wait().unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let seen = answered.load(Ordering::SeqCst);

    let mut node = serve(&dir);
    let spent = match vault(node.port).status().await.unwrap() {
        VaultStatus::Live { guesses_left, .. } => 100 - guesses_left as usize,
        other => panic!("{other:?}"),
    };
    assert!(seen < 160, "the storm ended before the kill");
    assert!(
        spent >= seen,
        "{seen} attempts were answered but only {spent} guesses are recorded"
    );
    node.child.kill().unwrap();
    node.child.wait().unwrap();
}
