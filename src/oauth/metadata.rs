//! The discovery documents: RFC 9728 protected-resource metadata (root and `/mcp`
//! path-suffixed forms, the same document, naming the embedded authorization server and
//! the outside issuers of `[[auth.issuers]]`; its own router [`resource_routes`], so that a
//! server with outside issuers only serves it too), RFC 8414 authorization-server
//! metadata, and the JWK set of the access-token key. Every URL derives from the public URL;
//! with outside issuers and no public URL, the protected-resource metadata names the
//! resource at each request's own origin ([`origin_resource_routes`], the rules of
//! `crate::auth::public_origin`: forwarded headers only from trusted proxies).

use std::sync::Arc;

use axum::{
    Extension, Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};

use super::{DEFAULT_SCOPE, OAuthServer, Peer, READ_SCOPE};
use crate::auth::{client_address::TrustedProxies, public_origin::ListenerScheme};

/// Where the protected-resource metadata is served (root form).
pub const RESOURCE_METADATA_PATH: &str = "/.well-known/oauth-protected-resource";
/// Its path-suffixed form for the `/mcp` resource (RFC 9728 §3.1).
pub const MCP_RESOURCE_METADATA_PATH: &str = "/.well-known/oauth-protected-resource/mcp";

/// RFC 9728 §2 for the resource `<public_url>/mcp`: the embedded authorization server
/// (`embedded`: its issuer, and the scopes it grants) first, then the outside issuers.
pub fn protected_resource_document(
    public_url: &str,
    embedded: Option<&str>,
    outside: &[&str],
) -> serde_json::Value {
    let servers: Vec<&str> = embedded
        .into_iter()
        .chain(outside.iter().copied())
        .collect();
    let mut document = serde_json::json!({
        "resource": format!("{public_url}/mcp"),
        "authorization_servers": servers,
        "bearer_methods_supported": ["header"],
        "resource_name": "hostmcp",
    });
    if embedded.is_some() {
        // An outside issuer's scopes are its own; only the embedded server's are known.
        document["scopes_supported"] = serde_json::json!([DEFAULT_SCOPE, READ_SCOPE]);
    }
    document
}

/// Serve `document` at both metadata paths (mounted behind the host guard, outside the
/// bearer authentication).
pub fn resource_routes(document: serde_json::Value) -> Router {
    Router::new()
        .route(RESOURCE_METADATA_PATH, get(protected_resource))
        .route(MCP_RESOURCE_METADATA_PATH, get(protected_resource))
        .with_state(Arc::new(document))
}

/// The protected-resource metadata of outside `issuers` without a public URL: the resource
/// is `<origin>/mcp` for the origin each request came to (a 404 without a usable `Host`).
pub fn origin_resource_routes(issuers: Vec<String>, trusted_proxies: TrustedProxies) -> Router {
    let state = Arc::new(OriginMetadata {
        issuers,
        trusted_proxies,
    });
    Router::new()
        .route(RESOURCE_METADATA_PATH, get(origin_protected_resource))
        .route(MCP_RESOURCE_METADATA_PATH, get(origin_protected_resource))
        .with_state(state)
}

struct OriginMetadata {
    issuers: Vec<String>,
    trusted_proxies: TrustedProxies,
}

async fn origin_protected_resource(
    State(state): State<Arc<OriginMetadata>>,
    Peer(peer): Peer,
    scheme: Option<Extension<ListenerScheme>>,
    headers: HeaderMap,
) -> Response {
    let scheme = scheme.map(|Extension(scheme)| scheme).unwrap_or_default();
    let Some(origin) = state.trusted_proxies.origin(peer, &headers, scheme) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let issuers: Vec<&str> = state.issuers.iter().map(String::as_str).collect();
    Json(protected_resource_document(&origin, None, &issuers)).into_response()
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

async fn protected_resource(State(document): State<Arc<serde_json::Value>>) -> impl IntoResponse {
    Json(document.as_ref().clone())
}

pub async fn authorization_server(State(server): State<Arc<OAuthServer>>) -> impl IntoResponse {
    Json(authorization_server_document(&server))
}

pub async fn jwks(State(server): State<Arc<OAuthServer>>) -> impl IntoResponse {
    Json(server.key.jwks())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC: &str = "https://b.example";

    /// The resource the origin-derived metadata names for a request from `peer`.
    async fn resource_for(peer: &str, headers: &[(&str, &str)]) -> serde_json::Value {
        use tower::ServiceExt;
        let proxies = TrustedProxies::new(["10.0.0.0/8".parse().unwrap()]);
        let router = origin_resource_routes(vec!["https://idp.example/".into()], proxies);
        let mut request = axum::http::Request::get(MCP_RESOURCE_METADATA_PATH);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(axum::body::Body::empty()).unwrap();
        request.extensions_mut().insert(axum::extract::ConnectInfo(
            peer.parse::<std::net::SocketAddr>().unwrap(),
        ));
        let response = router.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let document: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            document["authorization_servers"],
            serde_json::json!(["https://idp.example/"])
        );
        document["resource"].clone()
    }

    #[tokio::test]
    async fn without_a_public_url_the_resource_is_named_at_the_origin_a_trusted_proxy_reports() {
        let forwarded = [
            ("host", "127.0.0.1:8000"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "mcp.example.com"),
        ];
        assert_eq!(
            resource_for("10.1.2.3:5000", &forwarded).await,
            "https://mcp.example.com/mcp"
        );
        // Near miss: the same headers from a peer that is not a trusted proxy.
        assert_eq!(
            resource_for("192.0.2.7:5000", &forwarded).await,
            "http://127.0.0.1:8000/mcp"
        );
    }

    #[test]
    fn the_resource_metadata_names_the_embedded_server_first_then_the_outside_issuers() {
        let both = protected_resource_document(
            PUBLIC,
            Some("https://b.example/"),
            &["https://a.example/"],
        );
        assert_eq!(both["resource"], "https://b.example/mcp");
        assert_eq!(
            both["authorization_servers"],
            serde_json::json!(["https://b.example/", "https://a.example/"])
        );
        assert_eq!(
            both["scopes_supported"],
            serde_json::json!([DEFAULT_SCOPE, READ_SCOPE])
        );
        // Outside issuers only: no scopes claimed for them.
        let outside = protected_resource_document(PUBLIC, None, &["https://a.example/"]);
        assert_eq!(
            outside["authorization_servers"],
            serde_json::json!(["https://a.example/"])
        );
        assert!(outside.get("scopes_supported").is_none());
    }
}
