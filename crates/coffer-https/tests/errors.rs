//! Every rejection is a typed JSON error: the crate's extractors and fallbacks, axum's own
//! rejections (rewritten on the way out), body limits and request timeouts.

mod common;

use std::time::Duration;

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use coffer_https::{typed_fallbacks, ApiError, BearerToken, BodyBytes, JsonBody, Limits};
use common::*;
use reqwest::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use serde::Deserialize;
use serde_json::Value;

const MAX_BODY: usize = 1024;

#[derive(Deserialize)]
struct Shape {
    n: u32,
}

fn routes() -> Router {
    Router::new()
        .route(
            "/shape",
            post(|JsonBody(s): JsonBody<Shape>| async move { s.n.to_string() }),
        )
        .route(
            "/bytes",
            post(|BodyBytes(b): BodyBytes| async move { b.len().to_string() }),
        )
        .route(
            "/axum-json",
            post(|Json(s): Json<Shape>| async move { s.n.to_string() }),
        )
        .route(
            "/items/{id}",
            get(|Path(id): Path<u32>| async move { id.to_string() }),
        )
        .route(
            "/auth",
            get(|t: BearerToken| async move { t.expose().len().to_string() }),
        )
        .route(
            "/limited",
            get(|| async {
                Err::<(), _>(ApiError::rate_limited("slow down", Duration::from_secs(7)))
            }),
        )
        .route("/never", get(std::future::pending::<&'static str>))
}

async fn server(router: Router) -> TestServer {
    start(
        Limits {
            max_body: MAX_BODY,
            request: Duration::from_millis(500),
            ..patient_limits()
        },
        router,
    )
    .await
}

/// Checks that `answer` is a typed JSON error with `status` and `class`.
async fn expect(answer: reqwest::Response, status: u16, class: &str) -> Value {
    assert_eq!(answer.status(), status);
    assert_eq!(
        answer.headers().get(CONTENT_TYPE).unwrap(),
        "application/json"
    );
    let body: Value = answer.json().await.unwrap();
    assert_typed_error(&body, class);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_body_rejections_are_typed() {
    let server = server(typed_fallbacks(routes())).await;
    let c = server.client();
    let url = server.url("/shape");

    let ok = c
        .post(&url)
        .header(CONTENT_TYPE, "application/json; charset=utf-8")
        .body(r#"{"n": 5}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "5");

    let no_type = c.post(&url).body(r#"{"n": 5}"#).send().await.unwrap();
    expect(no_type, 415, "unsupported-media-type").await;
    let text = c
        .post(&url)
        .header(CONTENT_TYPE, "text/plain")
        .body(r#"{"n": 5}"#)
        .send()
        .await
        .unwrap();
    expect(text, 415, "unsupported-media-type").await;

    let json = |body: &'static str| {
        c.post(&url)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
    };
    expect(json(r#"{"n": "#).await.unwrap(), 400, "bad-request").await;
    expect(json("not json").await.unwrap(), 400, "bad-request").await;
    let shape = expect(json(r#"{"n": "five"}"#).await.unwrap(), 422, "bad-request").await;
    assert_eq!(shape["error"]["retryable"], false);
    expect(json(r#"{"m": 1}"#).await.unwrap(), 422, "bad-request").await;

    let big = format!(r#"{{"n": 1, "pad": "{}"}}"#, "x".repeat(MAX_BODY));
    let answer = c
        .post(&url)
        .header(CONTENT_TYPE, "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    expect(answer, 413, "too-large").await;
}

/// A body declared too large is refused from its head alone: the server answers without
/// waiting for a body that, here, never comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_oversize_body_is_refused_before_it_is_sent() {
    let server = server(typed_fallbacks(routes())).await;
    let mut tls = server.tls_from(LOCAL).await.unwrap();
    let answer = eventually(exchange(
        &mut tls,
        b"POST /shape HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
          Content-Length: 10000000000\r\n\r\n",
    ))
    .await
    .unwrap();
    assert_eq!(answer.status, 413);
    assert_typed_error(&answer.json(), "too-large");
}

/// A client that sends its whole oversize body anyway (as most do, without waiting for an
/// answer first) still reads the 413: the server drains what follows instead of closing on
/// unread bytes, which would make TCP reset the connection and the client's system discard
/// the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_an_oversize_body_whole_reads_its_413() {
    let server = server(typed_fallbacks(routes())).await;
    // Whether a reset beats the answer is a race: several tries make losing it certain.
    for size in [64 * 1024, 1024 * 1024, 8 * 1024 * 1024].repeat(3) {
        let answer = server
            .client()
            .post(server.url("/shape"))
            .header(CONTENT_TYPE, "application/json")
            .body(vec![b' '; size])
            .send()
            .await
            .unwrap_or_else(|e| panic!("{size} bytes: no answer: {e:?}"));
        expect(answer, 413, "too-large").await;
    }
}

/// The server's body limit holds for handlers that use axum's own extractors too (axum's
/// default limit is 2 MiB): the rejection comes out as a typed 413.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_limit_holds_for_axum_extractors() {
    let server = server(routes()).await;
    let mut tls = server.tls_from(LOCAL).await.unwrap();
    let chunk = format!(r#"{{"n": 1, "pad": "{}"}}"#, "x".repeat(2 * MAX_BODY));
    let request = format!(
        "POST /axum-json HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let answer = eventually(exchange(&mut tls, request.as_bytes()))
        .await
        .unwrap();
    assert_eq!(answer.status, 413);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_typed_error(&answer.json(), "too-large");
}

/// A request head past `max_head` is refused by hyper itself (431, no body) and the
/// connection closed: the server never buffers more than that per head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_head_is_refused() {
    let server = server(routes()).await;
    let mut tls = server.tls_from(LOCAL).await.unwrap();
    let head = format!(
        "GET /limited HTTP/1.1\r\nHost: localhost\r\nX-Pad: {}\r\n\r\n",
        "x".repeat(Limits::default().max_head * 2)
    );
    let answer = eventually(exchange(&mut tls, head.as_bytes()))
        .await
        .unwrap();
    assert_eq!(answer.status, 431);
    assert!(closes(&mut tls).await);
}

/// A chunked body has no length to check up front; it is cut off while being read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_bodies_past_the_limit_get_413() {
    let server = server(typed_fallbacks(routes())).await;
    for path in ["/shape", "/bytes"] {
        let mut tls = server.tls_from(LOCAL).await.unwrap();
        let chunk = vec![b' '; MAX_BODY + 100];
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            chunk.len()
        )
        .into_bytes();
        request.extend_from_slice(&chunk);
        request.extend_from_slice(b"\r\n0\r\n\r\n");
        let answer = eventually(exchange(&mut tls, &request)).await.unwrap();
        assert_eq!(answer.status, 413, "{path}");
        assert_eq!(answer.header("content-type"), Some("application/json"));
        assert_typed_error(&answer.json(), "too-large");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_and_methods_are_typed() {
    for (router, typed) in [(typed_fallbacks(routes()), true), (routes(), false)] {
        // With the crate's fallbacks, and without them (axum's bare answers, rewritten).
        let server = server(router).await;
        let c = server.client();
        let body = expect(
            c.get(server.url("/nope")).send().await.unwrap(),
            404,
            "not-found",
        )
        .await;
        if typed {
            assert_eq!(body["error"]["message"], "no such path: /nope");
        }
        let answer = c.delete(server.url("/shape")).send().await.unwrap();
        let allow = answer.headers().get(ALLOW).cloned();
        expect(answer, 405, "method-not-allowed").await;
        assert_eq!(allow.unwrap(), "POST");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_rejections_are_rewritten_as_typed_errors() {
    let server = server(routes()).await;
    let c = server.client();
    let body = expect(
        c.get(server.url("/items/abc")).send().await.unwrap(),
        400,
        "bad-request",
    )
    .await;
    // axum's own text is kept as the message.
    assert!(body["error"]["message"].as_str().unwrap().contains("parse"));
    expect(
        c.post(server.url("/axum-json"))
            .body("{}")
            .send()
            .await
            .unwrap(),
        415,
        "unsupported-media-type",
    )
    .await;
    expect(
        c.post(server.url("/axum-json"))
            .header(CONTENT_TYPE, "application/json")
            .body(r#"{"n": -1}"#)
            .send()
            .await
            .unwrap(),
        422,
        "bad-request",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_rejections_are_typed_and_the_scheme_is_case_insensitive() {
    let server = server(routes()).await;
    let c = server.client();
    let url = server.url("/auth");
    for header in [None, Some("Bearer "), Some("Basic abc"), Some("Bearer a b")] {
        let mut request = c.get(&url);
        if let Some(h) = header {
            request = request.header(AUTHORIZATION, h);
        }
        let answer = request.send().await.unwrap();
        assert_eq!(answer.headers().get(WWW_AUTHENTICATE).unwrap(), "Bearer");
        expect(answer, 401, "unauthorized").await;
    }
    for header in ["Bearer abc", "bearer abc", "BEARER abc"] {
        let answer = c
            .get(&url)
            .header(AUTHORIZATION, header)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{header}");
        assert_eq!(answer.text().await.unwrap(), "3");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_and_handler_timeouts_are_typed() {
    let server = server(routes()).await;
    let c = server.client();

    let answer = c.get(server.url("/limited")).send().await.unwrap();
    assert_eq!(answer.headers().get(RETRY_AFTER).unwrap(), "7");
    let body = expect(answer, 429, "rate-limited").await;
    assert_eq!(body["error"]["retry_after"], 7);
    assert_eq!(body["error"]["retryable"], true);

    // The whole request arrived; the handler is what took too long.
    let body = expect(
        c.get(server.url("/never")).send().await.unwrap(),
        503,
        "timeout",
    )
    .await;
    assert_eq!(body["error"]["retryable"], true);
}
