//! Where a request's token is read from: `Authorization: Bearer <token>` always, and the
//! API-key header when the operator names one (`[auth] api_key_header = "X-API-Key"`), for
//! clients that can send only a named header (Copilot Studio). The header carries the same
//! token, checked exactly like a bearer token: same token set, expiry, revocation, failure
//! budget, audit.
//!
//! Off unless configured: a shared cache may store a response to a request whose
//! credential is in a custom header (RFC 9111 §3.5 holds that back only for `Authorization`),
//! and proxies and log pipelines redact `Authorization` but print other headers. An operator
//! who turns it on has a client that needs it, and a front end to check.
//!
//! Both headers present: the same token is accepted; different tokens are refused (400), so
//! a proxy that adds one header cannot make the server pick a credential the client did not
//! mean. A token is never read from the query string.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use subtle::ConstantTimeEq;

use super::{AuthError, bearer_token};

/// The header name most clients use for an API key.
pub const CONVENTIONAL_API_KEY_HEADER: &str = "X-API-Key";

/// A configured API-key header name, checked: a valid header name that is not one the HTTP
/// stack, a proxy or MCP already gives a meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyHeader(HeaderName);

/// An `api_key_header` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyHeaderError {
    #[error("api_key_header {0:?} is not a valid HTTP header name")]
    Invalid(String),
    #[error("api_key_header {0:?} is a header that already has a meaning in HTTP or MCP")]
    Reserved(String),
}

/// Header names (lowercase) and prefixes an API key may not travel in.
const RESERVED: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "host",
    "forwarded",
    "connection",
    "content-length",
    "content-type",
    "transfer-encoding",
    "te",
    "upgrade",
    "accept",
    "origin",
    "last-event-id",
    "traceparent",
    "tracestate",
];
const RESERVED_PREFIXES: &[&str] = &["x-forwarded-", "mcp-", "sec-", "proxy-"];

impl ApiKeyHeader {
    pub fn parse(name: &str) -> Result<Self, ApiKeyHeaderError> {
        let parsed = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| ApiKeyHeaderError::Invalid(name.to_owned()))?;
        let lower = parsed.as_str();
        if RESERVED.contains(&lower)
            || RESERVED_PREFIXES
                .iter()
                .any(|prefix| lower.starts_with(prefix))
        {
            return Err(ApiKeyHeaderError::Reserved(name.to_owned()));
        }
        Ok(Self(parsed))
    }

    pub fn name(&self) -> &HeaderName {
        &self.0
    }
}

/// The token a request presents, from `Authorization: Bearer` or the API-key header (when
/// `api_key` is configured). The API-key header at most once (`Authorization`, as before,
/// its first value); both present must agree.
pub fn presented_token<'a>(
    headers: &'a HeaderMap,
    api_key: Option<&ApiKeyHeader>,
) -> Result<&'a str, AuthError> {
    let bearer = headers.get(header::AUTHORIZATION);
    let key = match api_key {
        Some(api_key) => single(headers, api_key.name())?,
        None => None,
    };
    match (bearer, key) {
        (None, None) => Err(AuthError::Missing),
        (Some(bearer), None) => bearer_token(bearer.as_bytes()),
        (None, Some(key)) => api_key_token(key),
        (Some(bearer), Some(key)) => {
            let (bearer, key) = (bearer_token(bearer.as_bytes())?, api_key_token(key)?);
            if bool::from(bearer.as_bytes().ct_eq(key.as_bytes())) {
                Ok(bearer)
            } else {
                Err(AuthError::Conflicting)
            }
        }
    }
}

/// The one value of `name`; a header sent twice is malformed (which one would count?).
fn single<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'a HeaderValue>, AuthError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(AuthError::Malformed);
    }
    Ok(first)
}

/// The token of an API-key header: the whole value, trimmed; empty or with inner
/// whitespace (a `Bearer ` prefix, two tokens) is malformed.
fn api_key_token(value: &HeaderValue) -> Result<&str, AuthError> {
    let token = value.to_str().map_err(|_| AuthError::Malformed)?.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(AuthError::Malformed);
    }
    Ok(token)
}

#[cfg(test)]
#[path = "api_key_tests.rs"]
mod tests;
