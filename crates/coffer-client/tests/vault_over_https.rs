//! Password mode against a real vault node served over HTTPS on a loopback port.

use std::net::SocketAddr;

use coffer_client::password::{self, FleetPin};
use coffer_client::vault_http::VaultHttp;
use coffer_client::ClientError;
use coffer_format::BackupKey;
use coffer_vault_core::KsfParams;

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
}

async fn start_node() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let info =
        coffer_vault_node::init(dir.path(), 10, &["localhost".into(), "127.0.0.1".into()]).unwrap();
    let token = std::fs::read_to_string(&info.frontend_token).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let path = dir.path().to_path_buf();
    tokio::spawn(async move {
        coffer_vault_node::server::serve(&path, "127.0.0.1:0".parse().unwrap(), move |a| {
            let _ = tx.send(a);
        })
        .await
        .unwrap();
    });
    let addr = rx.await.unwrap();
    Node {
        _dir: dir,
        addr,
        info,
        token,
    }
}

fn transport(node: &Node, account: &[u8]) -> VaultHttp {
    VaultHttp::new(
        &format!("https://localhost:{}", node.addr.port()),
        &node.info.tls_fingerprint,
        &node.token,
        account,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_and_recover_over_https_with_pinned_keys() {
    let node = start_node().await;
    let v = transport(&node, b"alice");
    let k = BackupKey::generate().unwrap();
    let pin = FleetPin::Pinned(node.info.fleet_fingerprint.clone());
    password::register(&v, &pin, b"pw", &k, KSF, None)
        .await
        .unwrap();
    assert_eq!(password::recover(&v, &pin, b"pw").await.unwrap().key, k);
    assert!(matches!(
        password::recover(&v, &pin, b"nope").await,
        Err(ClientError::WrongPassword { guesses_left: 9 })
    ));
    // Accounts are separate records.
    let other = transport(&node, b"bob");
    assert!(matches!(
        password::recover(&other, &pin, b"pw").await,
        Err(ClientError::VaultRecordMissing)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tokens_certificates_and_bodies_are_refused() {
    let node = start_node().await;
    let pin = FleetPin::FirstUse;
    let k = BackupKey::generate().unwrap();

    let bad_token = VaultHttp::new(
        &format!("https://localhost:{}", node.addr.port()),
        &node.info.tls_fingerprint,
        "not-the-token",
        b"alice",
    )
    .unwrap();
    let res = password::register(&bad_token, &pin, b"pw", &k, KSF, None).await;
    assert!(
        matches!(res, Err(ClientError::Storage { ref message, .. }) if message.starts_with("401")),
        "{res:?}"
    );

    let bad_cert = VaultHttp::new(
        &format!("https://localhost:{}", node.addr.port()),
        &"00".repeat(32),
        &node.token,
        b"alice",
    )
    .unwrap();
    let res = password::register(&bad_cert, &pin, b"pw", &k, KSF, None).await;
    assert!(matches!(res, Err(ClientError::Unreachable(_))), "{res:?}");

    // Malformed and oversized bodies get 4xx answers, and the server keeps serving.
    let tls = coffer_tls::pinned_client_config(&node.info.tls_fingerprint).unwrap();
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/v1/vault/616c696365", node.addr.port());
    for body in [
        b"{not json".to_vec(),
        vec![b'x'; 1 << 20],
        br#"{"RecoverStart":{"request":"zz"}}"#.to_vec(),
    ] {
        let oversized = body.len() > 1000;
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
        .post(format!(
            "https://localhost:{}/v1/vault/xyz",
            node.addr.port()
        ))
        .bearer_auth(node.token.trim())
        .json(&coffer_vault_core::Request::Status)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 400);
    let good = transport(&node, b"alice");
    password::register(&good, &pin, b"pw", &k, KSF, None)
        .await
        .unwrap();
}
