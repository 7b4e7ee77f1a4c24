//! Typed JSON errors: every error answer of a Coffer server has the same shape,
//!
//! ```json
//! {"error": {"class": "rate-limited", "message": "too many attempts; wait and retry",
//!            "retryable": true, "retry_after": 30}}
//! ```
//!
//! `class` is one of a small fixed set ([`ErrorClass`]) that clients branch on; `message` is
//! for people; `retryable` says whether the same request may succeed later; `retry_after`
//! (seconds, only when known) is also sent as a `Retry-After` header.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// What kind of failure an error is. The set is fixed and published; each class has a usual
/// status and retry advice, which [`ApiError::new`] starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorClass {
    /// 400 (or 422 for a well-formed body of the wrong shape): the request is wrong; fix it.
    BadRequest,
    /// 401: no credential, or a wrong, expired or revoked one.
    Unauthorized,
    /// 404: no such path or resource.
    NotFound,
    /// 405: the path exists but not with this method (the `Allow` header lists the methods).
    MethodNotAllowed,
    /// 413: the body is larger than the server accepts.
    TooLarge,
    /// 415: the body is not of the media type the endpoint takes (JSON, usually).
    UnsupportedMediaType,
    /// 429: too many requests; retry after `retry_after` seconds.
    RateLimited,
    /// 408 (the request arrived too slowly) or 503 (the server did not finish in time; the
    /// request may or may not have taken effect).
    Timeout,
    /// 503: the server or a store it needs is unavailable or shutting down; retry.
    Unavailable,
    /// 502: a server behind this one (a vault node, a verification gateway) failed; retry.
    BadGateway,
    /// 500: stored data failed authentication; retrying will not help, an operator must look.
    Integrity,
    /// 500: a bug or an unexpected failure on the server.
    Internal,
}

impl ErrorClass {
    /// Every class, in the order the published documents list them.
    pub const ALL: [ErrorClass; 12] = [
        Self::BadRequest,
        Self::Unauthorized,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::TooLarge,
        Self::UnsupportedMediaType,
        Self::RateLimited,
        Self::Timeout,
        Self::Unavailable,
        Self::BadGateway,
        Self::Integrity,
        Self::Internal,
    ];

    /// The class's name on the wire (`"bad-request"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad-request",
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::TooLarge => "too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::RateLimited => "rate-limited",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::BadGateway => "bad-gateway",
            Self::Integrity => "integrity",
            Self::Internal => "internal",
        }
    }

    /// The status this class is usually answered with.
    pub fn default_status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadGateway => StatusCode::BAD_GATEWAY,
            Self::Integrity | Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the same request may succeed if sent again later.
    pub fn default_retryable(self) -> bool {
        matches!(
            self,
            Self::RateLimited | Self::Timeout | Self::Unavailable | Self::BadGateway
        )
    }

    /// The class for an error status met without one (an answer from outside this crate's
    /// types, such as one of axum's own rejections).
    pub fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 | 403 => Self::Unauthorized,
            404 | 410 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            408 | 504 => Self::Timeout,
            413 => Self::TooLarge,
            415 => Self::UnsupportedMediaType,
            429 => Self::RateLimited,
            502 => Self::BadGateway,
            503 => Self::Unavailable,
            500..=599 => Self::Internal,
            _ => Self::BadRequest,
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answer: status, class, message, retry advice. Build one with [`ApiError::new`]
/// (or a shorthand) and return it from a handler; it turns into the JSON answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{class} ({status}): {message}")]
pub struct ApiError {
    status: StatusCode,
    class: ErrorClass,
    message: Cow<'static, str>,
    retryable: bool,
    retry_after: Option<Duration>,
    /// Sent as `WWW-Authenticate`: a 401 names the scheme it wants (RFC 9110 section 15.5.2).
    challenge: Option<&'static str>,
}

impl ApiError {
    /// An error of `class`, with the class's usual status and retry advice.
    pub fn new(class: ErrorClass, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status: class.default_status(),
            class,
            message: message.into(),
            retryable: class.default_retryable(),
            retry_after: None,
            challenge: None,
        }
    }

    /// Answers with `status` instead of the class's usual one. A status that is not an error
    /// (below 400) is ignored: an error is never answered as a success.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        if status.is_client_error() || status.is_server_error() {
            self.status = status;
        }
        self
    }

    /// Overrides the class's retry advice.
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Advises retrying after `after` (rounded up to whole seconds); implies retryable.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self.retryable = true;
        self
    }

    /// Sends `challenge` as the `WWW-Authenticate` header (`Bearer`, or
    /// [`crate::INVALID_TOKEN_CHALLENGE`] for a credential that is not valid).
    pub fn with_challenge(mut self, challenge: &'static str) -> Self {
        self.challenge = Some(challenge);
        self
    }

    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorClass::BadRequest, message)
    }

    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorClass::Unauthorized, message)
    }

    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorClass::NotFound, message)
    }

    pub fn rate_limited(message: impl Into<Cow<'static, str>>, after: Duration) -> Self {
        Self::new(ErrorClass::RateLimited, message).with_retry_after(after)
    }

    pub fn unavailable(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorClass::Unavailable, message)
    }

    pub fn bad_gateway(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorClass::BadGateway, message)
    }

    pub fn integrity(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorClass::Integrity, message)
    }

    pub fn internal(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorClass::Internal, message)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn class(&self) -> ErrorClass {
        self.class
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn retryable(&self) -> bool {
        self.retryable
    }

    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    pub fn challenge(&self) -> Option<&'static str> {
        self.challenge
    }

    /// `retry_after` in whole seconds, rounded up so that a client never comes back early.
    fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after
            .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
    }

    /// The JSON body, as bytes.
    pub fn to_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Body<'a> {
            error: Inner<'a>,
        }
        #[derive(Serialize)]
        struct Inner<'a> {
            class: ErrorClass,
            message: &'a str,
            retryable: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            retry_after: Option<u64>,
        }
        let body = Body {
            error: Inner {
                class: self.class,
                message: &self.message,
                retryable: self.retryable,
                retry_after: self.retry_after_secs(),
            },
        };
        // Serializing strings, booleans and integers into memory cannot fail; the fallback
        // keeps the answer JSON all the same.
        serde_json::to_vec(&body).unwrap_or_else(|_| {
            br#"{"error":{"class":"internal","message":"error","retryable":false}}"#.to_vec()
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.to_json(),
        )
            .into_response();
        if let Some(secs) = self.retry_after_secs() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        // A challenge is a constant of the code; one that is no header value is left out
        // rather than failing the answer.
        if let Some(value) = self.challenge.and_then(|c| HeaderValue::from_str(c).ok()) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn body_has_the_published_shape() {
        let e = ApiError::new(ErrorClass::BadRequest, "no");
        let v: Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(
            v,
            json!({"error": {"class": "bad-request", "message": "no", "retryable": false}})
        );
    }

    #[test]
    fn retry_after_rounds_up_and_makes_a_header() {
        let e = ApiError::rate_limited("slow down", Duration::from_millis(2500));
        let v: Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(v["error"]["retry_after"], 3);
        assert_eq!(v["error"]["retryable"], true);
        let r = e.into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "3");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[test]
    fn a_challenge_becomes_www_authenticate() {
        let r = ApiError::unauthorized("who?").into_response();
        assert!(r.headers().get(header::WWW_AUTHENTICATE).is_none());
        let r = ApiError::unauthorized("who?")
            .with_challenge(crate::INVALID_TOKEN_CHALLENGE)
            .into_response();
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer error="invalid_token""#
        );
    }

    #[test]
    fn a_success_status_is_refused() {
        let e = ApiError::internal("x").with_status(StatusCode::OK);
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn class_names_match_serde() {
        for class in ErrorClass::ALL {
            assert_eq!(serde_json::to_value(class).unwrap(), class.as_str());
            assert_eq!(ErrorClass::for_status(class.default_status()), {
                // Integrity shares 500 with Internal; an unknown 500 is Internal.
                if class == ErrorClass::Integrity {
                    ErrorClass::Internal
                } else {
                    class
                }
            });
        }
    }
}
