//! RFC 7591 Dynamic Client Registration, for public clients only: the client gets a
//! random `client_id`, no secret (`token_endpoint_auth_method` `none`), and may use only
//! redirect URIs on the allowlist (`super::redirect`). Registrations are capped, and
//! clients never used expire (some apps register anew on every login).

use std::sync::Arc;

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{
    OAuthServer, Peer, no_store, oauth_error, random_token, redirect,
    store::{ClientRecord, now_secs},
};
use crate::audit::OAuthStep;

/// Longest `client_name` kept (it is shown on the consent page).
const MAX_CLIENT_NAME_CHARS: usize = 100;
/// Most redirect URIs one client registers.
const MAX_REDIRECT_URIS: usize = 10;

/// The registration request fields this server reads; others are ignored (RFC 7591 §2).
#[derive(Debug, Deserialize)]
pub struct RegistrationRequest {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub client_name: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub scope: Option<String>,
}

/// Why a registration is refused: `invalid_redirect_uri` or `invalid_client_metadata`.
fn refusal(error: &str, description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, error, description)
}

/// Check a registration request; the client record on success.
pub fn check(
    request: &RegistrationRequest,
    extra_redirects: &[String],
) -> Result<(String, Vec<String>), (&'static str, String)> {
    if request.redirect_uris.is_empty() || request.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err((
            "invalid_redirect_uri",
            format!("give 1 to {MAX_REDIRECT_URIS} redirect_uris"),
        ));
    }
    if let Some(uri) = request
        .redirect_uris
        .iter()
        .find(|uri| !redirect::is_allowed(uri, extra_redirects))
    {
        return Err((
            "invalid_redirect_uri",
            format!("redirect URI {uri:?} is not on this server's allowlist"),
        ));
    }
    if let Some(method) = &request.token_endpoint_auth_method
        && method != "none"
    {
        return Err((
            "invalid_client_metadata",
            format!(
                "token_endpoint_auth_method {method:?}: only public clients (\"none\") are registered"
            ),
        ));
    }
    if let Some(grants) = &request.grant_types
        && grants
            .iter()
            .any(|grant| grant != "authorization_code" && grant != "refresh_token")
    {
        return Err((
            "invalid_client_metadata",
            "grant_types: only authorization_code and refresh_token".to_owned(),
        ));
    }
    if let Some(types) = &request.response_types
        && types.iter().any(|kind| kind != "code")
    {
        return Err((
            "invalid_client_metadata",
            "response_types: only code".to_owned(),
        ));
    }
    let name: String = request
        .client_name
        .as_deref()
        .unwrap_or("unnamed client")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_CLIENT_NAME_CHARS)
        .collect();
    Ok((name, request.redirect_uris.clone()))
}

pub async fn register(
    State(server): State<Arc<OAuthServer>>,
    peer: Peer,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let context = server.context(peer, &headers);
    let request: RegistrationRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return refusal(
                "invalid_client_metadata",
                &format!("not a registration request: {error}"),
            );
        }
    };
    let (client_name, redirect_uris) = match check(&request, &server.settings.extra_redirect_uris) {
        Ok(checked) => checked,
        Err((error, description)) => {
            server
                .audit(
                    context,
                    OAuthStep::ClientRegistered,
                    "-",
                    None,
                    Some(format!("{error}: {description}")),
                )
                .await;
            return refusal(error, &description);
        }
    };
    let now = now_secs();
    let client = ClientRecord {
        client_id: random_token(),
        client_name,
        redirect_uris,
        created_at: now,
        last_used_at: None,
        revoked: false,
    };
    let settings = &server.settings;
    let stored = {
        let server = server.clone();
        let client = client.clone();
        tokio::task::spawn_blocking(move || {
            server.store.prune_clients(
                server.settings.max_clients,
                server.settings.unused_client_ttl.as_secs(),
                now,
            )?;
            server.store.put_client(&client)
        })
        .await
    };
    if !matches!(stored, Ok(Ok(()))) {
        tracing::error!(?stored, "cannot store a registered OAuth client");
        return oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "cannot store the client",
        );
    }
    server
        .audit(
            context,
            OAuthStep::ClientRegistered,
            &client.client_id,
            None,
            None,
        )
        .await;
    let body = serde_json::json!({
        "client_id": client.client_id,
        "client_id_issued_at": now,
        "client_name": client.client_name,
        "redirect_uris": client.redirect_uris,
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": request.scope.unwrap_or_else(|| super::DEFAULT_SCOPE.to_owned()),
        "client_secret_expires_at": 0,
        "hostmcp_unused_client_expires_in": settings.unused_client_ttl.as_secs(),
    });
    no_store((StatusCode::CREATED, Json(body)).into_response())
}
