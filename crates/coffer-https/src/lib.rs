//! The HTTPS server shell that Coffer's servers (the front-end and the vault node) share.
//!
//! [`serve`] runs an axum [`Router`](axum::Router) over rustls with hyper's HTTP/1.1
//! connection alone (HTTP/2 is never spoken, not even to a client that assumes it), and
//! bounds what one client can hold:
//!
//! - time: TLS handshake, request head (which is also the keep-alive idle timeout), the
//!   whole request (body and handler), and blocked writes ([`Limits`]);
//! - bytes: request head and body;
//! - connections: a global cap and one per address (IPv6 by /64), enforced before any TLS
//!   work, with the global cap kept below the open-file limit.
//!
//! Errors are answered as typed JSON ([`ApiError`], [`ErrorClass`]); the extractors
//! [`JsonBody`], [`BodyBytes`] and [`BearerToken`] and the fallbacks of [`typed_fallbacks`]
//! reject in that shape, and any other error answer that is not JSON (one of axum's own
//! rejections) is rewritten into it on the way out. The only answers not in this shape are
//! the bodiless ones hyper writes itself for a request it cannot parse (400, 431).
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use axum::{extract::ConnectInfo, routing::post, Json, Router};
//! use coffer_https::{serve, typed_fallbacks, ApiError, JsonBody, Limits};
//!
//! #[derive(serde::Deserialize)]
//! struct Hello { name: String }
//!
//! async fn hello(
//!     ConnectInfo(peer): ConnectInfo<SocketAddr>,
//!     JsonBody(body): JsonBody<Hello>,
//! ) -> Result<Json<serde_json::Value>, ApiError> {
//!     if body.name.is_empty() {
//!         return Err(ApiError::bad_request("the name is empty"));
//!     }
//!     Ok(Json(serde_json::json!({ "hello": body.name, "from": peer.to_string() })))
//! }
//!
//! # async fn run(tls: rustls::ServerConfig) -> Result<(), coffer_https::ServeError> {
//! let router = typed_fallbacks(Router::new().route("/v1/hello", post(hello)));
//! let listen: SocketAddr = "127.0.0.1:8443".parse().unwrap();
//! let shutdown = async {
//!     let _ = tokio::signal::ctrl_c().await;
//! };
//! serve(listen, tls, router, Limits::default(), shutdown, |addr| {
//!     println!("listening on {addr}");
//! })
//! .await
//! # }
//! ```

mod bearer;
mod caps;
mod error;
mod extract;
mod limits;
mod server;
mod service;
mod stall;

pub use bearer::{
    bearer_token, parse_bearer, BearerError, BearerToken, BEARER_CHALLENGE, INVALID_TOKEN_CHALLENGE,
};
pub use error::{ApiError, ErrorClass};
pub use extract::{method_not_allowed, not_found, typed_fallbacks, BodyBytes, JsonBody};
pub use limits::{descriptor_budget, descriptor_reserve, raise_descriptor_limit, Limits};
pub use server::{serve, Listen, ServeError};
