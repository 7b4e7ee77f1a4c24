//! The connection caps: one address cannot take more than its share, nobody can take more
//! than the global cap, and a connection over a cap is closed at once, before TLS.

mod common;

use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;
use coffer_https::Limits;
use common::*;
use std::net::SocketAddr;

fn router() -> Router {
    Router::new().route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
    )
}

/// Over a cap, the server closes the connection as soon as it accepts it, without reading
/// the ClientHello: the client's handshake fails for want of any answer.
async fn refused_before_tls(server: &TestServer, from: std::net::IpAddr) -> bool {
    match eventually(server.tls_from(from)).await {
        Ok(_) => false,
        Err(e) => {
            assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::BrokenPipe
                ),
                "not a closed connection: {e}"
            );
            true
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_more_than_its_cap() {
    let server = start(
        Limits {
            max_connections: 100,
            max_connections_per_address: 3,
            ..patient_limits()
        },
        router(),
    )
    .await;
    let greedy = loopback(2);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(server.tls_from(greedy).await.unwrap());
    }
    assert!(refused_before_tls(&server, greedy).await);

    // Another address is served, and sees its own address.
    let other = loopback(3);
    let answer = server
        .client_from(other)
        .get(server.url("/peer"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "127.0.0.3");

    // A place freed is a place the greedy address can take again.
    held.pop();
    let client = server.client_from(greedy);
    eventually(async {
        loop {
            if let Ok(answer) = client.get(server.url("/peer")).send().await {
                assert_eq!(answer.text().await.unwrap(), "127.0.0.2");
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_gets_past_the_global_cap() {
    let server = start(
        Limits {
            max_connections: 4,
            max_connections_per_address: 100,
            ..patient_limits()
        },
        router(),
    )
    .await;
    let mut held = Vec::new();
    for last in 2..6 {
        held.push(server.tls_from(loopback(last)).await.unwrap());
    }
    assert!(refused_before_tls(&server, loopback(9)).await);
    assert!(refused_before_tls(&server, LOCAL).await);

    held.pop();
    let client = server.client();
    eventually(async {
        loop {
            if let Ok(answer) = client.get(server.url("/peer")).send().await {
                assert_eq!(answer.status(), 200);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}
