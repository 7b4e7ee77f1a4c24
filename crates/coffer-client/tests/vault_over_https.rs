//! Password mode against a real vault node served over HTTPS on a loopback port.

use std::net::SocketAddr;

use coffer_client::password::{pin_fleet, KsfParams, PasswordVault};
use coffer_client::vault_http::VaultHttp;
use coffer_client::ClientError;
use coffer_format::BackupKey;
use coffer_vault_core::FleetKeys;

const KSF: KsfParams = KsfParams {
    m_cost_kib: 8,
    t_cost: 1,
    p_cost: 1,
};

struct Node {
    _dir: tempfile::TempDir,
    addr: SocketAddr,
    info: coffer_vault_node::NodeInfo,
    token: String,
    keys: FleetKeys,
}

async fn start_node() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let info =
        coffer_vault_node::init(dir.path(), 10, &["localhost".into(), "127.0.0.1".into()]).unwrap();
    let token = std::fs::read_to_string(&info.frontend_token).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let path = dir.path().to_path_buf();
    tokio::spawn(async move {
        coffer_vault_node::server::serve(
            &path,
            "127.0.0.1:0".parse().unwrap(),
            std::future::pending(),
            move |a| {
                let _ = tx.send(a);
            },
        )
        .await
        .unwrap();
    });
    let addr = rx.await.unwrap();
    let keys = coffer_vault_node::VaultNode::open(dir.path())
        .unwrap()
        .fleet()
        .keys()
        .clone();
    Node {
        _dir: dir,
        addr,
        info,
        token,
        keys,
    }
}

fn transport(node: &Node, account: &str) -> VaultHttp {
    VaultHttp::new(
        &format!("https://localhost:{}", node.addr.port()),
        &node.info.tls_fingerprint,
        &node.token,
        account.as_bytes(),
    )
    .unwrap()
}

fn vault(node: &Node, transport: VaultHttp, account: &str) -> PasswordVault<VaultHttp> {
    let keys = pin_fleet(node.keys.clone(), &node.info.fleet_fingerprint).unwrap();
    PasswordVault::new(transport, account, keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_and_recover_over_https_with_pinned_keys() {
    let node = start_node().await;
    let v = vault(&node, transport(&node, "alice"), "alice");
    let k = BackupKey::generate().unwrap();
    v.enable("a password", &k, KSF).await.unwrap();
    assert_eq!(v.recover("a password").await.unwrap(), k);
    assert!(matches!(
        v.recover("not it").await,
        Err(ClientError::WrongPassword { guesses_left: 9 })
    ));
    // Accounts are separate records.
    let other = vault(&node, transport(&node, "bob"), "bob");
    assert!(matches!(
        other.recover("a password").await,
        Err(ClientError::VaultRecordMissing)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tokens_certificates_and_bodies_are_refused() {
    let node = start_node().await;
    let k = BackupKey::generate().unwrap();
    let base = format!("https://localhost:{}", node.addr.port());

    let bad_token =
        VaultHttp::new(&base, &node.info.tls_fingerprint, &"x".repeat(64), b"alice").unwrap();
    let res = vault(&node, bad_token, "alice")
        .enable("a password", &k, KSF)
        .await;
    assert!(
        matches!(res, Err(ClientError::Usage(ref m)) if m.contains("401")),
        "{res:?}"
    );

    let bad_cert = VaultHttp::new(&base, &"00".repeat(32), &node.token, b"alice").unwrap();
    let res = vault(&node, bad_cert, "alice")
        .enable("a password", &k, KSF)
        .await;
    assert!(matches!(res, Err(ClientError::Unreachable(_))), "{res:?}");
    assert!(VaultHttp::new(&base, "0000", &node.token, b"alice").is_err());
    assert!(VaultHttp::new(
        &format!("http://localhost:{}", node.addr.port()),
        &node.info.tls_fingerprint,
        &node.token,
        b"alice"
    )
    .is_err());

    // Malformed and oversized bodies get 4xx answers, and the server keeps serving.
    let tls = coffer_tls::pinned_client_config(&[&node.info.tls_fingerprint]).unwrap();
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap();
    let url = format!("{base}/v1/vault/616c696365");
    for body in [
        b"{not json".to_vec(),
        vec![b'x'; 1 << 20],
        br#"{"message":"zz"}"#.to_vec(),
        br#"{"message":"00"}"#.to_vec(),
    ] {
        let oversized = body.len() > 100_000;
        let sent = http
            .post(&url)
            .bearer_auth(node.token.trim())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        match sent {
            Ok(resp) => assert!(resp.status().is_client_error(), "{}", resp.status()),
            // The server answers 413 and closes while a large upload is still arriving.
            Err(e) if oversized => assert!(e.is_request(), "{e}"),
            Err(e) => panic!("{e}"),
        }
    }
    let status = http
        .post(format!("{base}/v1/vault/xyz"))
        .bearer_auth(node.token.trim())
        .json(&serde_json::json!({"message": "00"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 400);
    vault(&node, transport(&node, "alice"), "alice")
        .enable("a password", &k, KSF)
        .await
        .unwrap();
}
