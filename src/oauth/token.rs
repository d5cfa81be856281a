//! `/oauth/token` (RFC 6749 §4.1.3 and §6, OAuth 2.1): a code exchanged once, with its
//! PKCE verifier, the same `redirect_uri` and client, for an access token (an ES256 JWT,
//! [`super::keys`]) and a refresh token (opaque, stored as its hash); a refresh token
//! exchanged once for a new pair (rotation). A code or rotated refresh token that comes
//! back is a theft signal: the grant, with every token of its family, is revoked and the
//! reuse audited. A token is never issued for a revoked grant, a revoked client, or a
//! grant whose parent hostmcp token is no longer accepted.

use std::sync::Arc;

use axum::{
    Form, Json,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{
    OAuthServer, Peer,
    keys::AccessClaims,
    no_store, oauth_error, pkce, random_token,
    store::{GrantRecord, RefreshRecord, StoreError, now_secs},
};
use crate::{
    audit::{AuditContext, OAuthStep},
    auth::{Role, TokenDigest, access_token::Delegation},
};

/// The token request's parameters.
#[derive(Debug, Default, Deserialize)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub client_id: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub resource: Option<String>,
    pub scope: Option<String>,
}

/// A refused token request: the OAuth error code and what the client is told.
#[derive(Debug)]
struct Refusal {
    error: &'static str,
    description: String,
    /// A reuse was detected and the grant revoked.
    reuse_of: Option<String>,
}

fn refuse(error: &'static str, description: impl Into<String>) -> Refusal {
    Refusal {
        error,
        description: description.into(),
        reuse_of: None,
    }
}

/// What a successful exchange produced.
struct Issued {
    grant: GrantRecord,
    /// Its client's registered name (audit records of the grant's calls show it).
    client_name: String,
    access_token: String,
    refresh_token: String,
    expires_in: u64,
    refreshed: bool,
}

pub async fn token(
    State(server): State<Arc<OAuthServer>>,
    peer: Peer,
    headers: HeaderMap,
    Form(request): Form<TokenRequest>,
) -> Response {
    let context = server.context(peer, &headers);
    let client_id = request.client_id.clone().unwrap_or_default();
    let result = {
        let server = server.clone();
        tokio::task::spawn_blocking(move || exchange(&server, &request)).await
    };
    let result = match result {
        Ok(Ok(result)) => result,
        Ok(Err(error)) => {
            tracing::error!(%error, "OAuth token request failed on the store");
            return oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "store error",
            );
        }
        Err(_) => {
            return oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal error",
            );
        }
    };
    match result {
        Ok(issued) => {
            server.verifier.admit(&issued.grant, &issued.client_name);
            let step = if issued.refreshed {
                OAuthStep::TokenRefreshed
            } else {
                OAuthStep::TokenIssued
            };
            server
                .audit(
                    context.with_principal(&issued.grant.principal),
                    step,
                    &issued.grant.client_id,
                    Some(&issued.grant.grant_id),
                    None,
                )
                .await;
            no_store(
                Json(serde_json::json!({
                    "access_token": issued.access_token,
                    "token_type": "Bearer",
                    "expires_in": issued.expires_in,
                    "refresh_token": issued.refresh_token,
                    "scope": issued.grant.scope,
                }))
                .into_response(),
            )
        }
        Err(refusal) => {
            audit_refusal(&server, context, &client_id, &refusal).await;
            let status = if refusal.error == "invalid_client" {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::BAD_REQUEST
            };
            oauth_error(status, refusal.error, &refusal.description)
        }
    }
}

async fn audit_refusal(
    server: &OAuthServer,
    context: AuditContext,
    client_id: &str,
    refusal: &Refusal,
) {
    if let Some(grant_id) = &refusal.reuse_of {
        server.verifier.forget(grant_id);
        server
            .audit(
                context,
                OAuthStep::ReuseDetected,
                client_id,
                Some(grant_id),
                Some(refusal.description.clone()),
            )
            .await;
    } else {
        server
            .audit(
                context,
                OAuthStep::TokenRefused,
                client_id,
                None,
                Some(format!("{}: {}", refusal.error, refusal.description)),
            )
            .await;
    }
}

/// Decide and record an exchange (blocking: it writes the store).
fn exchange(
    server: &OAuthServer,
    request: &TokenRequest,
) -> Result<Result<Issued, Refusal>, StoreError> {
    let Some(client_id) = request.client_id.as_deref().filter(|id| !id.is_empty()) else {
        return Ok(Err(refuse("invalid_request", "client_id is required")));
    };
    match server.store.client(client_id)? {
        Some(client) if !client.revoked => {}
        _ => return Ok(Err(refuse("invalid_client", "unknown or revoked client"))),
    }
    if let Some(resource) = &request.resource
        && !server.settings.is_own_resource(resource)
    {
        return Ok(Err(refuse(
            "invalid_target",
            "resource is not this server's MCP URL",
        )));
    }
    match request.grant_type.as_deref() {
        Some("authorization_code") => redeem_code(server, client_id, request),
        Some("refresh_token") => refresh(server, client_id, request),
        _ => Ok(Err(refuse(
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        ))),
    }
}

fn redeem_code(
    server: &OAuthServer,
    client_id: &str,
    request: &TokenRequest,
) -> Result<Result<Issued, Refusal>, StoreError> {
    let (Some(code), Some(verifier)) = (request.code.as_deref(), request.code_verifier.as_deref())
    else {
        return Ok(Err(refuse(
            "invalid_request",
            "code and code_verifier are required",
        )));
    };
    let Some(record) = server.store.redeem_code(code)? else {
        return Ok(Err(refuse("invalid_grant", "unknown authorization code")));
    };
    if record.used {
        server.store.revoke_grant(&record.grant_id, "code_reuse")?;
        return Ok(Err(Refusal {
            reuse_of: Some(record.grant_id),
            ..refuse(
                "invalid_grant",
                "authorization code already used; its grant is revoked",
            )
        }));
    }
    if record.expires_at <= now_secs() {
        return Ok(Err(refuse("invalid_grant", "authorization code expired")));
    }
    if record.client_id != client_id {
        return Ok(Err(refuse(
            "invalid_grant",
            "the code was issued to another client",
        )));
    }
    if request.redirect_uri.as_deref() != Some(record.redirect_uri.as_str()) {
        return Ok(Err(refuse(
            "invalid_grant",
            "redirect_uri differs from the authorization request's",
        )));
    }
    if !pkce::verify(verifier, &record.code_challenge) {
        return Ok(Err(refuse(
            "invalid_grant",
            "code_verifier does not match the code_challenge",
        )));
    }
    issue(server, &record.grant_id, false)
}

fn refresh(
    server: &OAuthServer,
    client_id: &str,
    request: &TokenRequest,
) -> Result<Result<Issued, Refusal>, StoreError> {
    let Some(token) = request.refresh_token.as_deref() else {
        return Ok(Err(refuse("invalid_request", "refresh_token is required")));
    };
    // Look before rotating: another client's token is refused without touching it.
    let Some(record) = server.store.refresh(token)? else {
        return Ok(Err(refuse("invalid_grant", "unknown refresh token")));
    };
    match server.store.grant(&record.grant_id)? {
        Some(grant) if grant.client_id == client_id => {}
        _ => {
            return Ok(Err(refuse(
                "invalid_grant",
                "the refresh token was issued to another client",
            )));
        }
    }
    let Some(record) = server.store.rotate_refresh(token)? else {
        return Ok(Err(refuse("invalid_grant", "unknown refresh token")));
    };
    if record.rotated {
        server
            .store
            .revoke_grant(&record.grant_id, "refresh_reuse")?;
        return Ok(Err(Refusal {
            reuse_of: Some(record.grant_id),
            ..refuse(
                "invalid_grant",
                "refresh token already used; its grant is revoked",
            )
        }));
    }
    if record.expires_at <= now_secs() {
        return Ok(Err(refuse("invalid_grant", "refresh token expired")));
    }
    if let Some(scope) = &request.scope {
        let grant_scope = server
            .store
            .grant(&record.grant_id)?
            .map(|grant| grant.scope);
        let asked = super::consent::resolve_scope(Some(scope));
        if !matches!((asked, grant_scope.as_deref()), (Ok(asked), Some(granted)) if asked == granted || asked == super::READ_SCOPE)
        {
            return Ok(Err(refuse(
                "invalid_scope",
                "a refresh cannot widen the scope",
            )));
        }
    }
    issue(server, &record.grant_id, true)
}

/// Issue an access and a refresh token for a live grant whose parent is still accepted.
fn issue(
    server: &OAuthServer,
    grant_id: &str,
    refreshed: bool,
) -> Result<Result<Issued, Refusal>, StoreError> {
    let Some(grant) = server.store.grant(grant_id)? else {
        return Ok(Err(refuse("invalid_grant", "unknown grant")));
    };
    if grant.revoked.is_some() {
        return Ok(Err(refuse("invalid_grant", "the grant was revoked")));
    }
    let parent = TokenDigest::from_hex(&grant.parent_sha256);
    let role = grant.role.parse::<Role>().ok();
    let (Some(parent), Some(role)) = (parent, role) else {
        return Ok(Err(refuse("invalid_grant", "the grant is corrupt")));
    };
    let delegation = Delegation {
        principal: grant.principal.clone(),
        parent,
        role,
        grant: None,
    };
    if server.authenticator.delegate(&delegation).is_err() {
        return Ok(Err(refuse(
            "invalid_grant",
            "the hostmcp token that approved this grant is no longer accepted",
        )));
    }
    let now = now_secs();
    let expires_in = server.settings.access_token_ttl.as_secs();
    let claims = AccessClaims {
        iss: server.settings.issuer(),
        sub: grant.principal.clone(),
        aud: grant.resource.clone(),
        exp: now + expires_in,
        iat: now,
        jti: random_token(),
        scope: grant.scope.clone(),
        role: grant.role.clone(),
        client_id: grant.client_id.clone(),
        gid: grant.grant_id.clone(),
    };
    let Ok(access_token) = server.key.sign(&claims) else {
        return Ok(Err(refuse("server_error", "cannot sign the access token")));
    };
    let refresh_token = random_token();
    server.store.put_refresh(
        &refresh_token,
        &RefreshRecord {
            grant_id: grant.grant_id.clone(),
            expires_at: now + server.settings.refresh_token_ttl.as_secs(),
            rotated: false,
        },
    )?;
    let client_name = (server.store.client(&grant.client_id)?)
        .map(|client| client.client_name)
        .unwrap_or_default();
    Ok(Ok(Issued {
        grant,
        client_name,
        access_token,
        refresh_token,
        expires_in,
        refreshed,
    }))
}
