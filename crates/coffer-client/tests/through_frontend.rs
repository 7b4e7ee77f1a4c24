//! The whole password-mode path on loopback: client → front-end (HTTPS) → vault node
//! (HTTPS), with accounts verified by code.

use coffer_client::frontend_http::Frontend;
use coffer_client::password::{self, FleetPin};
use coffer_client::ClientError;
use coffer_format::BackupKey;
use coffer_vault_core::{Authorization, KsfParams};

const KSF: KsfParams = KsfParams {
    m_cost_kib: 8,
    t_cost: 1,
    p_cost: 1,
};

struct Stack {
    frontend: Frontend,
    pin: FleetPin,
    base: String,
    tls: String,
    local: coffer_frontend::local::LocalStack,
    _dir: tempfile::TempDir,
}

async fn start_stack() -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let local = coffer_frontend::local::start(dir.path(), "127.0.0.1:0".parse().unwrap(), true)
        .await
        .unwrap();
    Stack {
        frontend: Frontend::new(&local.url, &local.tls_fingerprint).unwrap(),
        pin: FleetPin::Pinned(local.fleet_fingerprint.clone()),
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_device_recovers_with_account_and_password_only() {
    let stack = start_stack().await;
    let k = BackupKey::generate().unwrap();
    let phone = stack.credential("+15550001").await;
    password::register(
        &stack.frontend.vault(&phone),
        &stack.pin,
        b"pw",
        &k,
        KSF,
        None,
    )
    .await
    .unwrap();
    // A new phone: new verification (the old credential is revoked), then the password.
    let new_phone = stack.credential("+15550001").await;
    let vault = stack.frontend.vault(&new_phone);
    assert_eq!(
        password::recover(&vault, &stack.pin, b"pw")
            .await
            .unwrap()
            .key,
        k
    );
    assert!(matches!(
        password::recover(&stack.frontend.vault(&phone), &stack.pin, b"pw").await,
        Err(ClientError::Usage(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_cannot_reach_each_other_and_hijackers_cannot_overwrite() {
    let stack = start_stack().await;
    let k = BackupKey::generate().unwrap();
    let alice = stack.credential("alice").await;
    password::register(
        &stack.frontend.vault(&alice),
        &stack.pin,
        b"alice-pw",
        &k,
        KSF,
        None,
    )
    .await
    .unwrap();
    // Bob's credential only ever reaches Bob's (empty) record.
    let bob = stack.credential("bob").await;
    assert!(matches!(
        password::recover(&stack.frontend.vault(&bob), &stack.pin, b"alice-pw").await,
        Err(ClientError::VaultRecordMissing)
    ));
    // A hijacker who verifies Alice's account anew can spend guesses but cannot replace
    // or delete her record.
    let hijack = stack.credential("alice").await;
    let v = stack.frontend.vault(&hijack);
    assert!(password::register(
        &v,
        &stack.pin,
        b"mine",
        &BackupKey::generate().unwrap(),
        KSF,
        None
    )
    .await
    .is_err());
    assert!(password::register(
        &v,
        &stack.pin,
        b"mine",
        &BackupKey::generate().unwrap(),
        KSF,
        Some(Authorization::Key(vec![0; 32]))
    )
    .await
    .is_err());
    assert!(matches!(
        password::recover(&v, &stack.pin, b"guess").await,
        Err(ClientError::WrongPassword { guesses_left: 9 })
    ));
    // Alice's password still works from her next device.
    let alice2 = stack.credential("alice").await;
    assert_eq!(
        password::recover(&stack.frontend.vault(&alice2), &stack.pin, b"alice-pw")
            .await
            .unwrap()
            .key,
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
    let res = password::recover(&stack.frontend.vault("not-a-credential"), &stack.pin, b"x").await;
    assert!(matches!(res, Err(ClientError::Usage(_))), "{:?}", res.err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_running_server() {
    let stack = start_stack().await;
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(coffer_tls::pinned_client_config(&stack.tls).unwrap())
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
    use coffer_client::password::VaultTransport;
    use coffer_vault_core::{Request, Response};
    let stack = start_stack().await;
    let owner = stack.credential("dave").await;
    password::register(
        &stack.frontend.vault(&owner),
        &stack.pin,
        b"pw",
        &BackupKey::generate().unwrap(),
        KSF,
        None,
    )
    .await
    .unwrap();
    let hijack = stack.credential("dave").await;
    let v = stack.frontend.vault(&hijack);
    for authorization in [
        None,
        Some(Authorization::Key(vec![0; 32])),
        Some(Authorization::Session(vec![0; 32])),
    ] {
        assert_eq!(
            v.call(Request::Delete { authorization }).await.unwrap(),
            Response::Unauthorized
        );
    }
    assert!(matches!(
        v.call(Request::Status).await.unwrap(),
        Response::Status { locked: false, .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_requests_get_4xx_and_the_server_keeps_serving() {
    let stack = start_stack().await;
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(coffer_tls::pinned_client_config(&stack.tls).unwrap())
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
            br#"{"RecoverStart":{"request":"zz"}}"#.to_vec(),
        ),
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
    let k = BackupKey::generate().unwrap();
    password::register(
        &stack.frontend.vault(&credential),
        &stack.pin,
        b"pw",
        &k,
        KSF,
        None,
    )
    .await
    .unwrap();
}
