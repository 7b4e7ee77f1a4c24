//! The webhook verifier against a gateway on loopback.

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use coffer_frontend::account_id::AccountId;
use coffer_frontend::code::VerificationCode;
use coffer_frontend::verifier::Verifier;
use serde_json::Value;

async fn gateway(status: StatusCode) -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let store = seen.clone();
    let app = Router::new().route(
        "/send",
        post(move |Json(body): Json<Value>| {
            let store = store.clone();
            async move {
                store.lock().unwrap().push(body);
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/send"), seen)
}

fn account(id: &str) -> AccountId {
    AccountId::parse(id).unwrap()
}

fn code(digits: &str) -> VerificationCode {
    VerificationCode::parse(digits).unwrap()
}

#[tokio::test]
async fn codes_are_posted_to_the_gateway() {
    let (url, seen) = gateway(StatusCode::OK).await;
    Verifier::Webhook(url)
        .deliver(&account("+15550100"), &code("01234567"))
        .await
        .unwrap();
    let got = seen.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![serde_json::json!({"account": "+15550100", "code": "01234567"})]
    );
}

#[tokio::test]
async fn a_failing_gateway_is_reported() {
    let (url, _) = gateway(StatusCode::INTERNAL_SERVER_ERROR).await;
    let err = Verifier::Webhook(url)
        .deliver(&account("a"), &code("11111111"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("500"), "{err}");
    let err = Verifier::Webhook("http://127.0.0.1:9/send".into())
        .deliver(&account("a"), &code("11111111"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("could not deliver"), "{err}");
}
