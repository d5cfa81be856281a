//! The axum middleware that authenticates every request before any MCP processing:
//! 401 with `WWW-Authenticate: Bearer` for a missing or bad token, otherwise the
//! [`Principal`] goes into the request extensions for the handlers (and rmcp's tools).

use std::{
    net::SocketAddr,
    sync::{Arc, RwLock},
};

use axum::{
    Json,
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{AuthError, Principal, TokenSet};

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

/// Middleware: authenticate, then insert the [`Principal`] or answer 401.
pub async fn require_principal(
    State(authenticator): State<Arc<Authenticator>>,
    mut request: Request,
    next: Next,
) -> Response {
    let result = authenticator.authenticate(request.headers().get(header::AUTHORIZATION));
    match result {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(error) => {
            let client = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.to_string());
            tracing::warn!(
                client = client.as_deref().unwrap_or("-"),
                path = request.uri().path(),
                reason = %error,
                "authentication failed"
            );
            unauthorized(error)
        }
    }
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
