//! What happens to each request between hyper and the router: the peer address and body
//! limit are attached, the body is capped, the whole request is timed, and any error answer
//! that is not JSON yet is turned into a typed one.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use tower_service::Service;

use crate::error::{ApiError, ErrorClass};
use crate::extract::{too_large, BodyLimit};
use crate::limits::Limits;

/// Answers one request.
pub(crate) async fn handle(
    mut router: Router,
    peer: SocketAddr,
    limits: Arc<Limits>,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    if declared_length(&req).is_some_and(|n| n > limits.max_body as u64) {
        // The body is never read, so hyper closes the connection after this answer; saying
        // so keeps clients from sending the next request on it.
        let mut response = too_large(limits.max_body).into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Ok(response);
    }
    req.extensions_mut().insert(ConnectInfo(peer));
    req.extensions_mut().insert(BodyLimit(limits.max_body));
    let arrived = Arc::new(AtomicBool::new(false));
    let req = req.map(|incoming| {
        Body::new(Watched::new(
            Limited::new(incoming, limits.max_body),
            arrived.clone(),
        ))
    });
    let response = match tokio::time::timeout(limits.request, router.call(req)).await {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(_elapsed) if arrived.load(Ordering::Acquire) => ApiError::new(
            ErrorClass::Timeout,
            "the server did not answer in time; the request may or may not have taken effect",
        )
        .with_status(StatusCode::SERVICE_UNAVAILABLE)
        .into_response(),
        Err(_elapsed) => {
            let mut response = ApiError::new(
                ErrorClass::Timeout,
                "the request did not arrive in time; send it again",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    };
    Ok(ensure_json(response).await)
}

fn declared_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Largest plain-text error body kept as the JSON error's message.
const MAX_PLAIN_MESSAGE: u64 = 1024;

/// An error answer from outside this crate's types (one of axum's rejections, or its empty
/// 404 and 405) turned into a typed JSON one. The text becomes the message; other headers
/// (`Allow`, `WWW-Authenticate`, `Retry-After`) are kept.
async fn ensure_json(response: Response<Body>) -> Response<Body> {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Only a body already complete in memory is read: a streaming one could stall here.
    let text = match http_body::Body::size_hint(&body).exact() {
        Some(n) if n <= MAX_PLAIN_MESSAGE => body
            .collect()
            .await
            .ok()
            .and_then(|c| String::from_utf8(c.to_bytes().to_vec()).ok()),
        _ => None,
    };
    let message = text
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_lowercase()
        });
    let error = ApiError::new(ErrorClass::for_status(status), message).with_status(status);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(error.to_json()))
}

fn is_json(response: &Response<Body>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let essence = v.split(';').next().unwrap_or("").trim();
            essence.eq_ignore_ascii_case("application/json")
                || essence.to_ascii_lowercase().ends_with("+json")
        })
}

/// A request body that records when it has all arrived, so that a timeout can tell a slow
/// client (408) from a slow handler (503).
struct Watched<B> {
    inner: B,
    arrived: Arc<AtomicBool>,
}

impl<B: http_body::Body> Watched<B> {
    fn new(inner: B, arrived: Arc<AtomicBool>) -> Self {
        if inner.is_end_stream() {
            arrived.store(true, Ordering::Release);
        }
        Self { inner, arrived }
    }
}

impl<B> http_body::Body for Watched<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.arrived.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
