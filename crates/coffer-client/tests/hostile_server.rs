//! A front-end that answers with far more than any real answer: the client refuses it
//! before it can exhaust the device's memory.

use axum::routing::{get, post};
use axum::Router;
use coffer_client::frontend_http::Frontend;
use coffer_client::password::VaultTransport;
use coffer_client::ClientError;

/// 16 MiB of a JSON string.
fn huge() -> String {
    format!("{{\"message\":\"{}\"}}", "a".repeat(16 << 20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_answers_are_refused() {
    let identity = coffer_tls::development_identity(&["localhost".into()]).unwrap();
    let fingerprint = coffer_tls::fingerprint(&identity.cert_der);
    let tls = coffer_tls::server_config(&identity).unwrap();
    let router = Router::new()
        .route("/v1/fleet", get(|| async { huge() }))
        .route("/v1/vault", post(|| async { huge() }));
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(coffer_https::serve(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        tls,
        router,
        coffer_https::Limits::default(),
        std::future::pending(),
        move |a| {
            let _ = tx.send(a);
        },
    ));
    let addr = rx.await.unwrap();
    let fe = Frontend::new(
        &format!("https://localhost:{}", addr.port()),
        &[&fingerprint],
    )
    .unwrap();
    for res in [
        fe.fleet_keys().await.map(|_| ()),
        fe.vault("a credential").call(vec![0; 64]).await.map(|_| ()),
    ] {
        match res {
            Err(ClientError::Unreachable(m)) => assert!(m.contains("larger than"), "{m}"),
            other => panic!("an oversized answer was taken: {other:?}"),
        }
    }
}
