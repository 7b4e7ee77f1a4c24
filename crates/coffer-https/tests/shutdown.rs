//! Graceful shutdown: the listener goes at once, idle connections are closed, a request in
//! flight still gets its answer, and `serve` returns.

mod common;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use coffer_https::Limits;
use common::*;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, Semaphore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_refuses_new_connections_and_finishes_in_flight_requests() {
    let (entered, mut handler_entered) = mpsc::channel::<()>(1);
    let release = Arc::new(Semaphore::new(0));
    let gate = release.clone();
    let router = Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route(
            "/slow",
            get(move || {
                let entered = entered.clone();
                let gate = gate.clone();
                async move {
                    let _ = entered.send(()).await;
                    let _permit = gate.acquire().await;
                    "done"
                }
            }),
        );
    // With every timeout out of reach, whatever closes or refuses below is the shutdown.
    let mut server = start(patient_limits(), router).await;

    let mut idle = server.tls_from(LOCAL).await.unwrap();
    let answer = exchange(&mut idle, b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(answer.status, 200);

    let client = server.client();
    let slow_url = server.url("/slow");
    let in_flight = tokio::spawn(async move { client.get(slow_url).send().await });
    eventually(handler_entered.recv()).await.unwrap();

    server.stop();

    // The in-flight request is held by its handler, so the server is still running: yet
    // new connections are refused.
    let addr = server.addr;
    eventually(async {
        while tcp_from(LOCAL, addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(!in_flight.is_finished());

    // The idle keep-alive connection is closed without another word.
    let said = eventually(read_until_closed(&mut idle)).await;
    assert!(said.is_empty(), "{said:?}");

    release.add_permits(1);
    let answer = eventually(in_flight).await.unwrap().unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "done");

    server.stopped().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_drain_time_is_dropped_and_serve_returns() {
    let (entered, mut handler_entered) = mpsc::channel::<()>(1);
    let router = Router::new().route(
        "/stuck",
        get(move || {
            let entered = entered.clone();
            async move {
                let _ = entered.send(()).await;
                std::future::pending::<&'static str>().await
            }
        }),
    );
    let mut server = start(
        Limits {
            drain: std::time::Duration::from_millis(200),
            ..patient_limits()
        },
        router,
    )
    .await;
    // A raw connection, which keeps waiting for its answer as long as it takes.
    let mut stuck = server.tls_from(LOCAL).await.unwrap();
    stuck
        .write_all(b"GET /stuck HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    eventually(handler_entered.recv()).await.unwrap();
    server.stop();
    server.stopped().await.unwrap();
    let said = eventually(read_until_closed(&mut stuck)).await;
    assert!(said.is_empty(), "{said:?}");
}
