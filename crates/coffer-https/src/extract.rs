//! Extractors and fallbacks that answer every rejection as a typed JSON error, where axum's
//! own answer plain text.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, Method, Uri};
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::error::{ApiError, ErrorClass};
use crate::limits::Limits;

/// The largest body the extractors read, put in each request's extensions by the server so
/// that they agree with its [`Limits::max_body`]. Without it (a router called directly, in a
/// test) they use the default limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimit(pub(crate) usize);

/// A JSON request body. Rejections: no or another content type → 415, not JSON → 400,
/// JSON of the wrong shape → 422, too large → 413, each a typed JSON error.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                ErrorClass::UnsupportedMediaType,
                "the body must be JSON, with Content-Type: application/json",
            ));
        }
        let bytes = read_body(req).await?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| match e.classify() {
                Category::Data => {
                    ApiError::bad_request(format!("the JSON has the wrong shape: {e}"))
                        .with_status(axum::http::StatusCode::UNPROCESSABLE_ENTITY)
                }
                Category::Syntax | Category::Eof | Category::Io => {
                    ApiError::bad_request(format!("the body is not valid JSON: {e}"))
                }
            })
    }
}

/// A request body as bytes, of any content type. Rejections: too large → 413, cut off or
/// unreadable → 400, each a typed JSON error.
#[derive(Debug, Clone, Default)]
pub struct BodyBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for BodyBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        read_body(req).await.map(BodyBytes)
    }
}

/// `application/json` or any `application/<subtype>+json`, parameters allowed.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.strip_prefix("application/") {
        Some(subtype) => subtype == "json" || subtype.ends_with("+json"),
        None => false,
    }
}

pub(crate) fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorClass::TooLarge,
        format!("the body is larger than the {limit} bytes this server accepts"),
    )
}

async fn read_body(req: Request) -> Result<Bytes, ApiError> {
    let limit = req
        .extensions()
        .get::<BodyLimit>()
        .map_or(Limits::default().max_body, |l| l.0);
    let body: Body = req.into_body();
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if is_length_limit(&*e) => Err(too_large(limit)),
        Err(_) => Err(ApiError::bad_request(
            "the body could not be read (cut off or malformed)",
        )),
    }
}

/// Whether a body error is, anywhere in its chain, a length limit being hit (ours here, or
/// the server's, seen through axum's error wrapper).
fn is_length_limit(mut e: &(dyn std::error::Error + 'static)) -> bool {
    loop {
        if e.is::<LengthLimitError>() {
            return true;
        }
        match e.source() {
            Some(next) => e = next,
            None => return false,
        }
    }
}

/// The typed 404 answer, as a fallback handler.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no such path: {}", uri.path()))
}

/// The typed 405 answer, as a fallback handler.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorClass::MethodNotAllowed,
        format!("{} does not take {method}", uri.path()),
    )
}

/// `router` with the typed 404 and 405 fallbacks. Call it after adding the routes: axum
/// attaches the 405 fallback to the routes present at the time.
pub fn typed_fallbacks<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, StatusCode};

    fn with_type(value: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
        h
    }

    #[test]
    fn json_content_types() {
        assert!(is_json(&with_type("application/json")));
        assert!(is_json(&with_type("Application/JSON; charset=utf-8")));
        assert!(is_json(&with_type("application/problem+json")));
        assert!(!is_json(&with_type("text/plain")));
        assert!(!is_json(&with_type("application/jsonx")));
        assert!(!is_json(&with_type("text/json")));
        assert!(!is_json(&HeaderMap::new()));
    }

    /// Outside the server (no body limit in the request), the extractors still stop at the
    /// default limit.
    #[tokio::test]
    async fn extractors_have_a_limit_of_their_own() {
        let big = vec![b' '; Limits::default().max_body + 1];
        let req = Request::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(big.clone()))
            .unwrap();
        let e = JsonBody::<serde_json::Value>::from_request(req, &())
            .await
            .unwrap_err();
        assert_eq!(e.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let req = Request::builder().body(Body::from(big)).unwrap();
        let e = BodyBytes::from_request(req, &()).await.unwrap_err();
        assert_eq!(e.class(), ErrorClass::TooLarge);
    }
}
