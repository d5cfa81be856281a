//! The discovery documents: RFC 9728 protected-resource metadata (root and `/mcp`
//! path-suffixed forms, the same document), RFC 8414 authorization-server metadata, and
//! the JWK set of the access-token key. Every URL derives from the public URL.

use std::sync::Arc;

use axum::{Json, extract::State, response::IntoResponse};

use super::{DEFAULT_SCOPE, OAuthServer, READ_SCOPE};

/// Where the protected-resource metadata is served (root form).
pub const RESOURCE_METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// RFC 9728 §2.
pub fn protected_resource_document(server: &OAuthServer) -> serde_json::Value {
    let settings = &server.settings;
    serde_json::json!({
        "resource": settings.resource(),
        "authorization_servers": [settings.issuer()],
        "bearer_methods_supported": ["header"],
        "scopes_supported": [DEFAULT_SCOPE, READ_SCOPE],
        "resource_name": "hostmcp",
    })
}

/// RFC 8414 §2.
pub fn authorization_server_document(server: &OAuthServer) -> serde_json::Value {
    let settings = &server.settings;
    serde_json::json!({
        "issuer": settings.issuer(),
        "authorization_endpoint": settings.url("/oauth/authorize"),
        "token_endpoint": settings.url("/oauth/token"),
        "registration_endpoint": settings.url("/oauth/register"),
        "revocation_endpoint": settings.url("/oauth/revoke"),
        "jwks_uri": settings.url("/oauth/jwks"),
        "scopes_supported": [DEFAULT_SCOPE, READ_SCOPE],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "code_challenge_methods_supported": [super::pkce::METHOD],
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
    })
}

pub async fn protected_resource(State(server): State<Arc<OAuthServer>>) -> impl IntoResponse {
    Json(protected_resource_document(&server))
}

pub async fn authorization_server(State(server): State<Arc<OAuthServer>>) -> impl IntoResponse {
    Json(authorization_server_document(&server))
}

pub async fn jwks(State(server): State<Arc<OAuthServer>>) -> impl IntoResponse {
    Json(server.key.jwks())
}
