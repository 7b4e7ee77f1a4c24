//! The account hijacker, against the real `coffer serve` and the real CLI: someone who
//! verifies the victim's account id anew (a SIM swap, say) holds a valid credential. They
//! may spend the account's guesses, and nothing more: no password found through any request
//! type, no record replaced or deleted, no budget refilled. The front-end's rate limits are
//! off here, so that none of this rests on them.

mod common;
#[path = "common/hostile.rs"]
mod hostile;

use coffer_client::frontend_http::Frontend;
use coffer_client::password::{pin_fleet, PasswordVault, VaultStatus, VaultTransport};
use coffer_client::ClientError;
use coffer_format::BackupKey;
use coffer_vault_core::{channel, Request, Response};
use common::coffer_server::{sign_in, start_server_with};
use common::*;
use hostile::{dictionary_attack, KSF};

const VICTIM: &str = "+15550142";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hijacker_spends_guesses_and_can_do_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    // Rate limits off: what stops the hijacker must be the vault itself.
    let server = start_server_with(&tmp.path().join("server"), &["--no-rate-limits"]);
    let phone = tmp.path().join("phone");
    sign_in(&server, &phone, VICTIM);
    coffer(&phone)
        .args([
            "enable",
            "--password",
            "--password-stdin",
            "--ksf-memory-kib",
            "8",
        ])
        .args(["--storage"])
        .arg(tmp.path().join("storage"))
        .stdin("correct horse\n")
        .run()
        .ok();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let tree = sample_tree(&src);
    coffer(&phone).arg("backup").arg(&tree).run().ok();

    // The hijacker verifies the victim's id, and speaks the protocol directly.
    let fe = Frontend::new(&server.url, &[&server.tls]).unwrap();
    fe.register_account(VICTIM).await.unwrap();
    let credential = fe
        .verify_account(VICTIM, &server.code_for(VICTIM))
        .await
        .unwrap();
    let keys = pin_fleet(fe.fleet_keys().await.unwrap(), &server.fleet).unwrap();
    let relay = fe.vault(&credential);
    let send = |request: Request| {
        let (keys, relay) = (&keys, &relay);
        async move {
            let (message, pending) =
                channel::seal_request(keys, VICTIM.as_bytes(), &request).unwrap();
            let answer = relay.call(message).await?;
            pending
                .open(&answer)
                .map_err(|_| ClientError::VaultNotAuthentic)
        }
    };
    let found = dictionary_attack(
        &keys,
        VICTIM,
        &["123456", "letmein", "correct horse", "dragon"],
        send,
    )
    .await;
    assert_eq!(found, None, "the hijacker found the password");

    // Replacing or deleting the record needs K; the facade, the CLI and raw requests alike.
    let mine = BackupKey::generate().unwrap();
    let v = PasswordVault::new(fe.vault(&credential), VICTIM, keys.clone());
    assert!(v.enable("my own password", &mine, KSF).await.is_err());
    assert!(v
        .change_password(&mine, "my own password", KSF)
        .await
        .is_err());
    assert!(v.delete(&mine).await.is_err());
    assert_eq!(
        send(Request::Delete {
            authorization: None
        })
        .await
        .unwrap(),
        Response::Unauthorized
    );
    let thief = tmp.path().join("thief");
    sign_in(&server, &thief, VICTIM);
    coffer(&thief)
        .args([
            "enable",
            "--password",
            "--password-stdin",
            "--ksf-memory-kib",
            "8",
        ])
        .stdin("my own password\n")
        .run()
        .code(USAGE)
        .stderr_has("this device's key does not open");

    // Guesses are what a hijacker can spend: one for the dictionary, three by hand.
    for left in [8, 7, 6] {
        coffer(&thief)
            .args(["restore", "--password-stdin", "--from"])
            .arg(tmp.path().join("storage"))
            .arg("--into")
            .arg(tmp.path().join("x"))
            .stdin("a guess\n")
            .run()
            .code(WRONG_KEY)
            .stderr_has(&format!("{left} attempts left"));
    }
    // (The thief's verification revoked the first credential; the thief's own one reads.)
    let thief_credential = std::fs::read_to_string(thief.join("credential")).unwrap();
    let v = PasswordVault::new(fe.vault(thief_credential.trim()), VICTIM, keys.clone());
    assert_eq!(
        v.status().await.unwrap(),
        VaultStatus::Live {
            guesses_left: 6,
            max_guesses: 10
        }
    );

    // The owner, on a new phone, still recovers, and the budget is full again.
    let new_phone = tmp.path().join("new-phone");
    sign_in(&server, &new_phone, VICTIM);
    coffer(&new_phone)
        .args(["restore", "--password-stdin", "--from"])
        .arg(tmp.path().join("storage"))
        .arg("--into")
        .arg(tmp.path().join("restored"))
        .stdin("correct horse\n")
        .run()
        .ok();
    assert_same_tree(
        &tree,
        &tmp.path().join("restored").join(tree.file_name().unwrap()),
    );
    let fe = Frontend::new(&server.url, &[&server.tls]).unwrap();
    let owner = std::fs::read_to_string(new_phone.join("credential")).unwrap();
    let v = PasswordVault::new(fe.vault(owner.trim()), VICTIM, keys);
    assert_eq!(
        v.status().await.unwrap(),
        VaultStatus::Live {
            guesses_left: 10,
            max_guesses: 10
        }
    );
}
