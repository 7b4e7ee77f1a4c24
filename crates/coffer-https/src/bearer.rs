//! Bearer credentials (RFC 6750) from the `Authorization` header.
//!
//! The scheme is matched case-insensitively (RFC 9110 section 11.1: `bearer`, `Bearer` and
//! `BEARER` are one scheme); after it come spaces and exactly one token in the token68
//! alphabet. An empty token is no token.

use std::fmt;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use zeroize::Zeroizing;

use crate::error::ApiError;

/// The `WWW-Authenticate` challenge of a 401 for a request without a usable bearer token.
pub const BEARER_CHALLENGE: &str = "Bearer";
/// The challenge of a 401 for a bearer token that is well formed but not valid (unknown,
/// revoked, expired): RFC 6750 section 3.1.
pub const INVALID_TOKEN_CHALLENGE: &str = r#"Bearer error="invalid_token""#;

/// Why a request carries no usable bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    /// No `Authorization` header, or `Bearer` with an empty token.
    #[error("a bearer credential is required")]
    Missing,
    /// An `Authorization` header with another scheme (`Basic`, ...).
    #[error("the Authorization header must use the Bearer scheme")]
    OtherScheme,
    /// Several `Authorization` headers, several tokens, or characters a token cannot have.
    #[error("the Authorization header is malformed: expected `Bearer <token>`")]
    Malformed,
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        // RFC 6750 section 3: a 401 names the scheme it wants.
        ApiError::unauthorized(self.to_string())
            .with_challenge(BEARER_CHALLENGE)
            .into_response()
    }
}

/// The bearer token of `headers`, borrowed.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, BearerError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(BearerError::Missing)?;
    if values.next().is_some() {
        return Err(BearerError::Malformed);
    }
    parse_bearer(value.to_str().map_err(|_| BearerError::Malformed)?)
}

/// The token of an `Authorization` header's value.
pub fn parse_bearer(value: &str) -> Result<&str, BearerError> {
    let value = value.trim_matches([' ', '\t']);
    let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return if scheme.is_empty() {
            Err(BearerError::Missing)
        } else {
            Err(BearerError::OtherScheme)
        };
    }
    let token = rest.trim_start_matches([' ', '\t']);
    if token.is_empty() {
        return Err(BearerError::Missing);
    }
    if !is_token68(token) {
        return Err(BearerError::Malformed);
    }
    Ok(token)
}

/// token68 (RFC 9110 section 11.2): letters, digits, `-._~+/`, then optional `=` padding.
fn is_token68(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// An extractor for a request's bearer token; a request without one is answered 401 with a
/// typed JSON error. The token is wiped from memory when dropped and never shown by `Debug`.
pub struct BearerToken(Zeroizing<String>);

impl BearerToken {
    /// The token itself. Compare it in constant time (`subtle`), never with `==`.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = BearerError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        bearer_token(&parts.headers).map(|t| Self(Zeroizing::new(t.to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn scheme_is_case_insensitive() {
        for v in ["Bearer abc", "bearer abc", "BEARER abc", "bEaReR abc"] {
            assert_eq!(parse_bearer(v), Ok("abc"), "{v}");
        }
    }

    #[test]
    fn spaces_around_and_between_are_allowed() {
        assert_eq!(parse_bearer("  Bearer   abc  "), Ok("abc"));
        assert_eq!(parse_bearer("Bearer\tabc"), Ok("abc"));
    }

    #[test]
    fn empty_token_is_no_token() {
        for v in ["", "   ", "Bearer", "Bearer ", "bearer    ", "Bearer\t"] {
            assert_eq!(parse_bearer(v), Err(BearerError::Missing), "{v:?}");
        }
    }

    #[test]
    fn exactly_one_token() {
        assert_eq!(parse_bearer("Bearer abc def"), Err(BearerError::Malformed));
        assert_eq!(parse_bearer("Bearer abc,def"), Err(BearerError::Malformed));
        assert_eq!(parse_bearer("Bearer ===="), Err(BearerError::Malformed));
        assert_eq!(parse_bearer("Bearer a=b"), Err(BearerError::Malformed));
    }

    #[test]
    fn token68_alphabet_and_padding() {
        assert_eq!(parse_bearer("Bearer aZ09-._~+/=="), Ok("aZ09-._~+/=="));
        assert_eq!(parse_bearer("Bearer 0123abcdef"), Ok("0123abcdef"));
    }

    #[test]
    fn other_schemes_are_not_bearer() {
        assert_eq!(
            parse_bearer("Basic YWxhZGRpbjpvcGVu"),
            Err(BearerError::OtherScheme)
        );
        assert_eq!(parse_bearer("Bearerabc"), Err(BearerError::OtherScheme));
        assert_eq!(parse_bearer("Bearer: abc"), Err(BearerError::OtherScheme));
    }

    #[test]
    fn header_map_missing_duplicate_and_non_ascii() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), Err(BearerError::Missing));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer t0k"),
        );
        assert_eq!(bearer_token(&h), Ok("t0k"));
        h.append(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer other"),
        );
        assert_eq!(bearer_token(&h), Err(BearerError::Malformed));
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
        );
        assert_eq!(bearer_token(&h), Err(BearerError::Malformed));
    }

    #[test]
    fn debug_hides_the_token() {
        let t = BearerToken(Zeroizing::new("secret".into()));
        assert!(!format!("{t:?}").contains("secret"));
    }
}
