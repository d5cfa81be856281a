//! The axum middleware that authenticates every request before any MCP processing:
//! 401 with `WWW-Authenticate: Bearer` for a missing or bad token, otherwise the
//! [`Principal`] and the [`ClientAddress`](super::client_address::ClientAddress) go into the request extensions for the handlers
//! (and rmcp's tools). Failed attempts are budgeted per client address (429 over budget);
//! a valid token never is.

use std::{
    borrow::Cow,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use axum::{
    Json,
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{
    AuthError,
    client_address::TrustedProxies,
    failure_records::{AUTH_FAILED_RECORDS_PER_MINUTE, Admission, FailureRecordCap},
};
use crate::{
    audit::{AuditContext, AuditEvent, AuditLog},
    ratelimit::{Limited, RateLimiter},
};

use super::authenticator::Authenticator;

/// What the authentication middleware needs.
#[derive(Debug)]
pub struct AuthGate {
    pub authenticator: Arc<Authenticator>,
    pub audit: AuditLog,
    /// Failed authentications per client address (an IPv4 address or an IPv6 /64).
    pub failures: RateLimiter<IpAddr>,
    /// The peers whose `Forwarded` / `X-Forwarded-For` name the client.
    pub trusted_proxies: TrustedProxies,
    /// Failed authentications recorded per minute, server-wide.
    pub failure_records: Arc<FailureRecordCap>,
}

impl AuthGate {
    /// A gate allowing `failures_per_minute` failed authentications per client address.
    pub fn new(
        authenticator: Arc<Authenticator>,
        audit: AuditLog,
        failures_per_minute: u32,
        trusted_proxies: TrustedProxies,
    ) -> Self {
        Self {
            authenticator,
            audit,
            failures: RateLimiter::new(failures_per_minute, Duration::from_secs(60)),
            trusted_proxies,
            failure_records: FailureRecordCap::new(
                AUTH_FAILED_RECORDS_PER_MINUTE,
                Duration::from_secs(60),
            ),
        }
    }
}

/// Middleware: resolve the [`ClientAddress`](super::client_address::ClientAddress),
/// authenticate, then insert both into the request or answer 401. The token is checked first (a constant-time digest compare,
/// cheap): a valid token is always served, whatever its address did. Only a failed attempt
/// is counted against its address's budget, and one over budget gets 429 with
/// `Retry-After` instead of 401; the first 429 of a window is audited, the rest counted.
pub async fn require_principal(
    State(gate): State<Arc<AuthGate>>,
    request: Request,
    next: Next,
) -> Response {
    let unread_body = has_body(&request);
    match authenticate(gate, request, next).await {
        Ok(response) => response,
        Err(mut refusal) => {
            // The refused request's body is never read, so hyper does not reuse the
            // connection; unless told, a keep-alive client may send its next request into
            // the close (seen: 1 in ~40 requests failed with "server disconnected").
            if unread_body {
                refusal
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            refusal
        }
    }
}

/// Does the request carry a body (which a refusal leaves unread)?
fn has_body(request: &Request) -> bool {
    let headers = request.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0")
}

/// The handler's response, or the layer's refusal (401, 429).
async fn authenticate(
    gate: Arc<AuthGate>,
    mut request: Request,
    next: Next,
) -> Result<Response, Response> {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| gate.trusted_proxies.resolve(*peer, request.headers()));
    let result = gate
        .authenticator
        .authenticate_request(request.headers())
        .await;
    let error = match result {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            if let Some(client) = client {
                request.extensions_mut().insert(client);
            }
            return Ok(next.run(request).await);
        }
        Err(error) => error,
    };
    crate::metrics::auth_failed(error.metric());
    let metadata = resource_metadata_url(&gate, &request);
    let mut context = AuditContext::new();
    if let Some(client) = client {
        context = context.with_client(client);
        if let Err(limited) = gate.failures.hit(&client.budget_key()) {
            return Err(throttled(&gate, context, limited).await);
        }
    }
    match gate.failure_records.admit() {
        Admission::Record => {}
        Admission::Drop { first, window_end } => {
            if first {
                drop_summary_after(&gate, window_end);
            }
            return Err(challenge(error, metadata.as_deref()));
        }
    }
    let path = path_excerpt(request.uri().path());
    let client_text = client.map_or_else(|| "-".to_owned(), |client| client.to_string());
    tracing::warn!(client = %client_text, %path, reason = %error, "authentication failed");
    let event = AuditEvent::AuthFailed {
        reason: format!("{error} on {path}").into(),
    };
    gate.audit.record_or_log(context, event).await;
    Err(challenge(error, metadata.as_deref()))
}

/// The protected-resource metadata URL (RFC 9728) a 401 names: the configured one, else,
/// with outside issuers and no public URL, the path at the request's own origin.
fn resource_metadata_url(gate: &AuthGate, request: &Request) -> Option<String> {
    if let Some(url) = gate.authenticator.resource_metadata() {
        return Some(url.to_owned());
    }
    let path = gate.authenticator.resource_metadata_path()?;
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer);
    let scheme = request
        .extensions()
        .get::<super::public_origin::ListenerScheme>()
        .copied()
        .unwrap_or_default();
    let origin = gate
        .trusted_proxies
        .origin(peer, request.headers(), scheme)?;
    Some(format!("{origin}{path}"))
}

/// The 401 of [`unauthorized`], pointing at the protected-resource metadata (RFC 9728)
/// when the server publishes it.
fn challenge(error: AuthError, metadata: Option<&str>) -> Response {
    let mut response = unauthorized(error);
    if let Some(url) = metadata
        && let Some(value) = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                HeaderValue::from_str(&format!(r#"{value}, resource_metadata="{url}""#)).ok()
            })
    {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// Most bytes of the request's path an `auth_failed` record or line keeps.
pub const AUTH_FAILED_PATH_BYTES: usize = 256;

/// The path, whole up to [`AUTH_FAILED_PATH_BYTES`], else its head and its length.
fn path_excerpt(path: &str) -> Cow<'_, str> {
    if path.len() <= AUTH_FAILED_PATH_BYTES {
        return path.into();
    }
    let mut end = AUTH_FAILED_PATH_BYTES;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}[... {} bytes in all]", &path[..end], path.len()).into()
}

/// The window ending at `window_end` dropped failures: say so now, and how many when it
/// ends (one line and one record per overloaded window).
fn drop_summary_after(gate: &Arc<AuthGate>, window_end: tokio::time::Instant) {
    tracing::warn!(
        limit = AUTH_FAILED_RECORDS_PER_MINUTE,
        "too many failed authentications server-wide; counting the rest of this minute's"
    );
    let gate = gate.clone();
    tokio::spawn(async move {
        tokio::time::sleep_until(window_end).await;
        let dropped = gate.failure_records.take_dropped(window_end);
        tracing::warn!(
            dropped,
            "failed authentications not recorded in the last minute"
        );
        let event = AuditEvent::AuthFailedDropped { dropped };
        gate.audit.record_or_log(AuditContext::new(), event).await;
    });
}

/// The 429 of an address over budget; only the first of its window leaves a record.
async fn throttled(gate: &AuthGate, context: AuditContext, limited: Limited) -> Response {
    // Rounded up: a client that waits this long finds its window over.
    let wait = limited.retry_after;
    let retry_after_secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    if limited.first_in_window {
        crate::metrics::auth_locked_out();
        tracing::warn!(
            client = context.client.as_deref().unwrap_or("-"),
            retry_after_secs,
            refused_in_previous_window = limited.refused_in_previous_window,
            "too many failed authentications; refusing this address's failures for now"
        );
        let event = AuditEvent::AuthThrottled {
            retry_after_secs,
            refused_in_previous_window: limited.refused_in_previous_window,
        };
        gate.audit.record_or_log(context, event).await;
    }
    too_many_failures(retry_after_secs)
}

fn too_many_failures(seconds: u64) -> Response {
    let body = serde_json::json!({
        "error": "too_many_failed_authentications",
        "error_description": format!("too many failed authentications from this address; retry in {seconds} s"),
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// JSON-RPC error code of a refused authentication (the implementation-defined server
/// error range).
const UNAUTHORIZED_CODE: i32 = -32001;

/// The refusal of RFC 6750: 401 with a challenge header for a missing or bad token (400
/// for a malformed request, 403 `insufficient_scope` for a valid token that maps to no role),
/// and a body that is a JSON-RPC error (the MCP SDKs show its message, "invalid token: send
/// ...", where any other body becomes "Server returned an error response"), with the OAuth
/// error code in its `data`.
pub fn unauthorized(error: AuthError) -> Response {
    let (status, challenge, code) = match error {
        AuthError::Missing => (
            StatusCode::UNAUTHORIZED,
            r#"Bearer realm="hostmcp""#,
            "invalid_token",
        ),
        AuthError::Malformed => (
            StatusCode::UNAUTHORIZED,
            r#"Bearer realm="hostmcp", error="invalid_request""#,
            "invalid_request",
        ),
        AuthError::Conflicting => (
            StatusCode::BAD_REQUEST,
            r#"Bearer realm="hostmcp", error="invalid_request""#,
            "invalid_request",
        ),
        AuthError::Invalid | AuthError::Expired | AuthError::Jwt(_) => (
            StatusCode::UNAUTHORIZED,
            r#"Bearer realm="hostmcp", error="invalid_token""#,
            "invalid_token",
        ),
        AuthError::NoRole => (
            StatusCode::FORBIDDEN,
            r#"Bearer realm="hostmcp", error="insufficient_scope""#,
            "insufficient_scope",
        ),
    };
    let description = match error {
        AuthError::Conflicting => {
            format!("{error}: send the token in one of them, or the same token in both")
        }
        AuthError::NoRole => format!("{error}: ask the server's operator for a role mapping"),
        _ => format!(
            "{error}: send `Authorization: Bearer <token>` with a token this server accepts"
        ),
    };
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {
            "code": UNAUTHORIZED_CODE,
            "message": description,
            "data": { "error": code, "error_description": description },
        },
    });
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

#[cfg(test)]
mod tests;
