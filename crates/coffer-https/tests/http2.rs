//! HTTP/2 is never spoken: not through ALPN, and not to a client that starts with the
//! HTTP/2 preface over a connection negotiated without ALPN ("prior knowledge").

mod common;

use axum::routing::get;
use axum::Router;
use coffer_https::Limits;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
const SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// What the server sends until it closes, or its first 9 bytes (a frame header) if it
/// keeps the connection open.
async fn first_words<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> Vec<u8> {
    let mut said = Vec::new();
    let mut buf = [0u8; 1024];
    while said.len() < 9 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => said.extend_from_slice(&buf[..n]),
        }
    }
    said
}

fn router() -> Router {
    Router::new().route("/hello", get(|| async { "hello" }))
}

fn limits() -> Limits {
    Limits {
        header_read: std::time::Duration::from_millis(300),
        ..patient_limits()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prior_knowledge_http2_is_refused() {
    let server = start(limits(), router()).await;
    for alpn in [&[][..], &[&b"http/1.1"[..]][..]] {
        let mut tls = server.tls_from_with_alpn(LOCAL, alpn).await.unwrap();
        tls.write_all(PREFACE).await.unwrap();
        tls.write_all(SETTINGS).await.unwrap();
        tls.flush().await.unwrap();
        let said = eventually(first_words(&mut tls)).await;
        // An HTTP/2 server answers the preface with its own SETTINGS frame (type 4 in the
        // fourth byte) and waits; an HTTP/1.1 one closes, in silence or after an HTTP/1.1
        // answer.
        assert!(
            said.is_empty() || said.starts_with(b"HTTP/1.1 "),
            "the server spoke something else than HTTP/1.1: {said:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_offers_http1_only_even_if_configured_otherwise() {
    let identity = coffer_tls::development_identity(&["localhost".into()]).unwrap();
    let fingerprint = coffer_tls::fingerprint(&identity.cert_der);
    let mut tls = coffer_tls::server_config(&identity).unwrap();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let server = start_with_tls(limits(), router(), tls, fingerprint).await;

    let both = server
        .tls_from_with_alpn(LOCAL, &[b"h2", b"http/1.1"])
        .await
        .unwrap();
    assert_eq!(both.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert!(server.tls_from_with_alpn(LOCAL, &[b"h2"]).await.is_err());
}
