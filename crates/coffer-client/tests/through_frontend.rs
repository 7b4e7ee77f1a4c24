//! The whole password-mode path on loopback: client → front-end (HTTPS) → vault node
//! (HTTPS), with accounts verified by code.

use coffer_client::frontend_http::{Frontend, FrontendVault};
use coffer_client::password::{pin_fleet, KsfParams, PasswordVault, VaultStatus};
use coffer_client::ClientError;
use coffer_format::BackupKey;
use coffer_vault_core::FleetKeys;

const KSF: KsfParams = KsfParams {
    m_cost_kib: 8,
    t_cost: 1,
    p_cost: 1,
};

struct Stack {
    frontend: Frontend,
    keys: FleetKeys,
    base: String,
    tls: String,
    local: coffer_stack::LocalStack,
    _dir: tempfile::TempDir,
}

async fn start_stack() -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let local = coffer_stack::start(
        dir.path(),
        "127.0.0.1:0".parse().unwrap(),
        true,
        coffer_stack::Codes::DevFile,
    )
    .await
    .unwrap();
    let frontend = Frontend::new(&local.url, &[&local.tls_fingerprint]).unwrap();
    let keys = pin_fleet(
        frontend.fleet_keys().await.unwrap(),
        &local.fleet_fingerprint,
    )
    .unwrap();
    Stack {
        frontend,
        keys,
        base: local.url.clone(),
        tls: local.tls_fingerprint.clone(),
        local,
        _dir: dir,
    }
}

impl Stack {
    /// Registers and verifies `id`, reading the code the development verifier wrote.
    async fn credential(&self, id: &str) -> String {
        self.frontend.register_account(id).await.unwrap();
        let code = self.local.code_for(id).unwrap();
        self.frontend.verify_account(id, &code).await.unwrap()
    }

    /// The vault record of `id`, as the holder of `credential` reaches it.
    fn vault<'a>(&'a self, credential: &str, id: &str) -> PasswordVault<FrontendVault<'a>> {
        PasswordVault::new(self.frontend.vault(credential), id, self.keys.clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_device_recovers_with_account_and_password_only() {
    let stack = start_stack().await;
    let k = BackupKey::generate().unwrap();
    let phone = stack.credential("+15550001").await;
    stack
        .vault(&phone, "+15550001")
        .enable("a password", &k, KSF)
        .await
        .unwrap();
    // A new phone: new verification (the old credential is revoked), then the password.
    let new_phone = stack.credential("+15550001").await;
    assert_eq!(
        stack
            .vault(&new_phone, "+15550001")
            .recover("a password")
            .await
            .unwrap(),
        k
    );
    assert!(matches!(
        stack.vault(&phone, "+15550001").recover("a password").await,
        Err(ClientError::Usage(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_cannot_reach_each_other_and_hijackers_cannot_overwrite() {
    let stack = start_stack().await;
    let k = BackupKey::generate().unwrap();
    let alice = stack.credential("alice").await;
    stack
        .vault(&alice, "alice")
        .enable("alice's password", &k, KSF)
        .await
        .unwrap();
    // Bob's credential only ever reaches Bob's (empty) record; a request made for Alice's
    // record and sent with Bob's credential does not even open at the vault.
    let bob = stack.credential("bob").await;
    assert!(matches!(
        stack.vault(&bob, "bob").recover("alice's password").await,
        Err(ClientError::VaultRecordMissing)
    ));
    assert!(stack
        .vault(&bob, "alice")
        .recover("alice's password")
        .await
        .is_err());
    // A hijacker who verifies Alice's account anew can spend guesses but cannot replace
    // or delete her record.
    let hijack = stack.credential("alice").await;
    let v = stack.vault(&hijack, "alice");
    let other = BackupKey::generate().unwrap();
    assert!(v.enable("mine mine mine", &other, KSF).await.is_err());
    assert!(v
        .change_password(&other, "mine mine mine", KSF)
        .await
        .is_err());
    assert!(v.delete(&other).await.is_err());
    assert!(matches!(
        v.recover("a guess").await,
        Err(ClientError::WrongPassword { guesses_left: 9 })
    ));
    // Alice's password still works from her next device.
    let alice2 = stack.credential("alice").await;
    assert_eq!(
        stack
            .vault(&alice2, "alice")
            .recover("alice's password")
            .await
            .unwrap(),
        k
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_codes_credentials_and_requests_get_4xx() {
    let stack = start_stack().await;
    stack.frontend.register_account("carol").await.unwrap();
    assert!(matches!(
        stack.frontend.verify_account("carol", "000000x").await,
        Err(ClientError::Usage(_))
    ));
    assert!(matches!(
        stack.frontend.register_account("").await,
        Err(ClientError::Usage(_))
    ));
    let res = stack
        .vault("not-a-credential", "carol")
        .recover("a guess")
        .await;
    assert!(matches!(res, Err(ClientError::Usage(_))), "{:?}", res.err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_running_server() {
    let stack = start_stack().await;
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(coffer_tls::pinned_client_config(&[&stack.tls]).unwrap())
        .build()
        .unwrap();
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json"),
    )
    .unwrap();
    let served = http
        .get(format!("{}/openapi.json", stack.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        served, committed,
        "the server publishes the committed document"
    );
    let doc: serde_json::Value = serde_json::from_str(&committed).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 5);
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let url = format!("{}{path}", stack.base);
            let req = match method.as_str() {
                "get" => http.get(&url),
                "post" => http.post(&url).json(&serde_json::json!({})),
                other => panic!("undocumented method kind {other}"),
            };
            let status = req.send().await.unwrap().status().as_u16();
            assert!(
                status != 404 && status != 405,
                "{method} {path} is documented but answers {status}"
            );
            let documented = ops[method]["responses"].as_object().unwrap();
            assert!(
                documented.contains_key(&status.to_string()),
                "{method} {path} answered {status}, which the document does not list"
            );
        }
    }
    let status = http
        .get(format!("{}/v1/undocumented", stack.base))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hijacker_cannot_delete_a_live_record() {
    let stack = start_stack().await;
    let owner = stack.credential("dave").await;
    stack
        .vault(&owner, "dave")
        .enable("a password", &BackupKey::generate().unwrap(), KSF)
        .await
        .unwrap();
    let hijack = stack.credential("dave").await;
    let v = stack.vault(&hijack, "dave");
    for _ in 0..3 {
        assert!(matches!(
            v.delete(&BackupKey::generate().unwrap()).await,
            Err(ClientError::Usage(_))
        ));
    }
    assert!(matches!(
        v.status().await.unwrap(),
        VaultStatus::Live { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_requests_get_4xx_and_the_server_keeps_serving() {
    let stack = start_stack().await;
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(coffer_tls::pinned_client_config(&[&stack.tls]).unwrap())
        .build()
        .unwrap();
    let credential = stack.credential("erin").await;
    let cases: Vec<(&str, Option<&str>, Vec<u8>)> = vec![
        ("/v1/accounts", None, b"{not json".to_vec()),
        ("/v1/accounts", None, br#"{"id": 7}"#.to_vec()),
        ("/v1/accounts/verify", None, br#"{"id": "erin"}"#.to_vec()),
        ("/v1/vault", Some(credential.as_str()), b"[]".to_vec()),
        (
            "/v1/vault",
            Some(credential.as_str()),
            br#"{"message":"zz"}"#.to_vec(),
        ),
        ("/v1/vault", Some(credential.as_str()), b"{}".to_vec()),
        ("/v1/vault", Some(credential.as_str()), vec![b'x'; 1 << 20]),
    ];
    for (path, bearer, body) in cases {
        let oversized = body.len() > 100_000;
        let mut req = http
            .post(format!("{}{path}", stack.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        match req.send().await {
            Ok(resp) => assert!(resp.status().is_client_error(), "{path}: {}", resp.status()),
            // The server answers 413 and closes while a large upload is still arriving.
            Err(e) if oversized => assert!(e.is_request(), "{e}"),
            Err(e) => panic!("{path}: {e}"),
        }
    }
    stack
        .vault(&credential, "erin")
        .enable("a password", &BackupKey::generate().unwrap(), KSF)
        .await
        .unwrap();
}
