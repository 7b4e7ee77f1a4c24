//! Clients that hold connections without finishing a request: half-sent heads, silence
//! after the handshake, idle keep-alive, a handshake never finished, a body that never
//! arrives, and a client that stops reading its answers.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::routing::{get, post};
use axum::Router;
use coffer_https::{JsonBody, Limits};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn router() -> Router {
    Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route(
            "/echo",
            post(|JsonBody(v): JsonBody<serde_json::Value>| async move { axum::Json(v) }),
        )
        .route("/big", get(|| async { Body::from(vec![b'x'; BIG]) }))
}

/// An answer far larger than what loopback socket buffers hold.
const BIG: usize = 64 * 1024 * 1024;

const SHORT: Duration = Duration::from_millis(300);

/// The slowloris attack: many connections from one address, each with a request head that
/// never ends. A real client on another address is served meanwhile, and every half-sent
/// connection is closed after the header timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_heads_are_dropped_and_others_are_served() {
    let server = start(
        Limits {
            header_read: SHORT,
            max_connections: 64,
            max_connections_per_address: 16,
            ..patient_limits()
        },
        router(),
    )
    .await;

    let attacker = loopback(2);
    let mut held = Vec::new();
    for _ in 0..100 {
        // Over the per-address cap the server closes the connection before TLS: the
        // handshake fails, which is the point.
        let Ok(mut tls) = server.tls_from(attacker).await else {
            continue;
        };
        if tls
            .write_all(b"GET /hello HTTP/1.1\r\nHost: localhost\r\nX-Slow: 1\r\n")
            .await
            .is_ok()
        {
            let _ = tls.flush().await;
            held.push(tls);
        }
    }
    assert!(!held.is_empty(), "no half-sent request got through at all");

    let answer = server
        .client()
        .get(server.url("/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "hello");

    let closers: Vec<_> = held
        .into_iter()
        .map(|mut tls| tokio::spawn(async move { read_until_closed(&mut tls).await }))
        .collect();
    eventually(async {
        for closer in closers {
            let said = closer.await.unwrap();
            assert!(
                !said.starts_with(b"HTTP/1.1 200"),
                "a half-sent request was answered"
            );
        }
    })
    .await;
}

/// A client that completes the handshake and then says nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_after_the_handshake_is_closed() {
    let server = start(
        Limits {
            header_read: SHORT,
            ..patient_limits()
        },
        router(),
    )
    .await;
    let mut tls = server.tls_from(LOCAL).await.unwrap();
    assert!(closes(&mut tls).await);
}

/// A keep-alive connection left idle after one complete exchange.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_is_closed() {
    let server = start(
        Limits {
            header_read: SHORT,
            ..patient_limits()
        },
        router(),
    )
    .await;
    let mut tls = server.tls_from(LOCAL).await.unwrap();
    let answer = exchange(&mut tls, b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    assert_ne!(answer.header("connection"), Some("close"));
    assert!(closes(&mut tls).await);
}

/// A TCP connection that never starts TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_handshake_is_closed() {
    let server = start(
        Limits {
            tls_handshake: SHORT,
            ..patient_limits()
        },
        router(),
    )
    .await;
    let mut tcp = tcp_from(LOCAL, server.addr).await.unwrap();
    // Half a ClientHello record header: the handshake has begun and never ends.
    tcp.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    assert!(closes(&mut tcp).await);
}

/// A complete head whose body never arrives: answered 408 with a typed error, then closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_that_never_arrives_gets_408() {
    let server = start(
        Limits {
            request: SHORT,
            ..patient_limits()
        },
        router(),
    )
    .await;
    let mut tls = server.tls_from(LOCAL).await.unwrap();
    let answer = eventually(exchange(
        &mut tls,
        b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"a\":",
    ))
    .await
    .unwrap();
    assert_eq!(answer.status, 408);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_typed_error(&answer.json(), "timeout");
    assert_eq!(answer.json()["error"]["retryable"], true);
    assert!(closes(&mut tls).await);
}

/// A client that asks for a large answer and never reads it: its connection is closed, so
/// its place under the connection cap comes free for someone else, and what it reads
/// afterwards is a cut-off answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_stops_reading_is_dropped() {
    let server = start(
        Limits {
            write_stall: SHORT,
            max_connections: 1,
            ..patient_limits()
        },
        router(),
    )
    .await;
    let mut stalled = server.tls_from(loopback(2)).await.unwrap();
    stalled
        .write_all(b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    stalled.flush().await.unwrap();
    let client = server.client();
    eventually(async {
        loop {
            if let Ok(answer) = client.get(server.url("/hello")).send().await {
                assert_eq!(answer.status(), 200);
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let mut received = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    eventually(async {
        while let Ok(n @ 1..) = stalled.read(&mut buf).await {
            received += n;
        }
    })
    .await;
    assert!(
        received < BIG,
        "the stalled client got the whole answer ({received} bytes)"
    );
}
