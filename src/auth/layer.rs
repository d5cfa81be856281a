//! The axum middleware that authenticates every request before any MCP processing:
//! 401 with `WWW-Authenticate: Bearer` for a missing or bad token, otherwise the
//! [`Principal`] goes into the request extensions for the handlers (and rmcp's tools).

use std::{
    net::{IpAddr, SocketAddr},
    sync::{Arc, RwLock},
    time::Duration,
};

use axum::{
    Json,
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{AuthError, Principal, TokenSet};
use crate::{
    audit::{AuditContext, AuditEvent, AuditLog},
    ratelimit::RateLimiter,
};

/// How the server authenticates: by token, or not at all (loopback `--no-auth`).
#[derive(Debug)]
pub enum Authenticator {
    Tokens(ReloadableTokens),
    Disabled,
}

/// The accepted tokens, replaceable while the server runs (SIGHUP).
#[derive(Debug)]
pub struct ReloadableTokens(RwLock<Arc<TokenSet>>);

impl ReloadableTokens {
    fn current(&self) -> Arc<TokenSet> {
        // Writers only swap the Arc, so a poisoned lock still holds a whole set.
        self.0
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }
}

impl Authenticator {
    pub fn tokens(set: TokenSet) -> Self {
        Self::Tokens(ReloadableTokens(RwLock::new(Arc::new(set))))
    }

    /// Authenticate one request from its `Authorization` header.
    pub fn authenticate(
        &self,
        authorization: Option<&HeaderValue>,
    ) -> Result<Principal, AuthError> {
        match self {
            Self::Disabled => Ok(Principal::unauthenticated_local()),
            Self::Tokens(tokens) => tokens
                .current()
                .authenticate_header(authorization.map(HeaderValue::as_bytes)),
        }
    }

    /// Replace the accepted tokens; the next request is checked against the new set.
    /// Returns false when authentication is disabled (nothing to replace).
    pub fn replace_tokens(&self, set: TokenSet) -> bool {
        match self {
            Self::Disabled => false,
            Self::Tokens(tokens) => {
                *tokens
                    .0
                    .write()
                    .unwrap_or_else(|poison| poison.into_inner()) = Arc::new(set);
                true
            }
        }
    }
}

/// What the authentication middleware needs.
#[derive(Debug)]
pub struct AuthGate {
    pub authenticator: Arc<Authenticator>,
    pub audit: AuditLog,
    /// Failed authentications per client address.
    pub failures: RateLimiter<IpAddr>,
}

impl AuthGate {
    /// A gate allowing `failures_per_minute` failed authentications per client address.
    pub fn new(
        authenticator: Arc<Authenticator>,
        audit: AuditLog,
        failures_per_minute: u32,
    ) -> Self {
        Self {
            authenticator,
            audit,
            failures: RateLimiter::new(failures_per_minute, Duration::from_secs(60)),
        }
    }
}

/// Middleware: authenticate, then insert the [`Principal`] or answer 401. A client
/// address with too many recent failures gets 429 without its token being looked at.
pub async fn require_principal(
    State(gate): State<Arc<AuthGate>>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    let client_ip = client.map(|addr| addr.ip());
    if let Some(Err(limited)) = client_ip.map(|ip| gate.failures.check(&ip)) {
        return too_many_failures(limited.retry_after);
    }
    let result = gate
        .authenticator
        .authenticate(request.headers().get(header::AUTHORIZATION));
    match result {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(error) => {
            let path = request.uri().path().to_owned();
            let client_text = client.map_or_else(|| "-".to_owned(), |addr| addr.to_string());
            tracing::warn!(client = %client_text, %path, reason = %error, "authentication failed");
            if let Some(Err(limited)) = client_ip.map(|ip| gate.failures.hit(&ip)) {
                return too_many_failures(limited.retry_after);
            }
            let mut context = AuditContext::new();
            if let Some(client) = client {
                context = context.with_client(client);
            }
            let event = AuditEvent::AuthFailed {
                reason: format!("{error} on {path}").into(),
            };
            gate.audit.record_or_log(context, event).await;
            unauthorized(error)
        }
    }
}

fn too_many_failures(retry_after: Duration) -> Response {
    let seconds = retry_after.as_secs().max(1);
    let body = serde_json::json!({
        "error": "too_many_failed_authentications",
        "error_description": format!("too many failed authentications from this address; retry in {seconds} s"),
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The 401 answer of RFC 6750: a challenge header and a JSON body that says what to send.
pub fn unauthorized(error: AuthError) -> Response {
    let challenge = match error {
        AuthError::Missing => r#"Bearer realm="hostmcp""#,
        AuthError::Malformed => r#"Bearer realm="hostmcp", error="invalid_request""#,
        AuthError::Invalid | AuthError::Expired => {
            r#"Bearer realm="hostmcp", error="invalid_token""#
        }
    };
    let code = match error {
        AuthError::Missing | AuthError::Invalid | AuthError::Expired => "invalid_token",
        AuthError::Malformed => "invalid_request",
    };
    let body = serde_json::json!({
        "error": code,
        "error_description": format!(
            "{error}: send `Authorization: Bearer <token>` with a token this server accepts"
        ),
    });
    let mut response = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}
