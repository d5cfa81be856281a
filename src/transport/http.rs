//! The HTTP server: one axum `Router` with `/mcp` (rmcp's Streamable HTTP service, both
//! the session era, over [`HostSessions`], and the stateless 2026-07-28 era, most of whose
//! requests [`stateless`] answers directly), `/sse` + `/messages` (legacy
//! HTTP+SSE), `/metrics` when served ([`super::metrics_route`]), and `/healthz`; the host
//! guard and authentication in front of every MCP route, then bodies read whole
//! ([`super::body`]), and the per-principal stream cap; binding, and serving every
//! listener through [`super::listener`] (connection caps, timeouts, TCP_NODELAY, graceful
//! shutdown).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{Json, Router, http::StatusCode, middleware::from_fn_with_state, routing::get};
use rmcp::ServerHandler;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::Layer;

use super::listener::Acceptor;
use super::{
    connections::{self, ConnectionTracker, RateLimitedLog},
    host_guard::{HostGuard, enforce_host_guard},
    session_owners::{SessionOwners, enforce_session_owner},
    sessions::HostSessions,
    sse, stateless,
    streams::{StreamCapLayer, StreamSlots},
    tls::ReloadableTls,
};
use crate::{
    audit::AuditLog,
    auth::{
        authenticator::Authenticator,
        client_address::TrustedProxies,
        layer::{AuthGate, require_principal},
    },
    handler_link::PeerUse,
};

/// Largest JSON-RPC message accepted in a POST body (owned by [`super::body`]).
pub use super::body::MAX_REQUEST_BODY_BYTES;

/// Everything the router is built from. `H` is the MCP handler every session runs: the
/// product's tools in `hostmcp serve`, a fixture handler in the conformance test server.
#[derive(Clone)]
pub struct HttpServerParts<H> {
    pub handler: H,
    pub authenticator: Arc<Authenticator>,
    /// Where authentication failures and session events are recorded.
    pub audit: AuditLog,
    /// Failed authentications allowed per client address and minute.
    pub auth_failures_per_minute: u32,
    /// Peers whose `Forwarded` / `X-Forwarded-For` headers name the client.
    pub trusted_proxies: TrustedProxies,
    pub host_guard: Arc<HostGuard>,
    /// Open MCP streams (`GET /sse`, `GET /mcp`) allowed per principal.
    pub max_streams_per_principal: usize,
    /// Open MCP sessions allowed per principal (each transport counts its own).
    pub max_sessions_per_principal: usize,
    /// Cancelled on shutdown: ends sessions and streams.
    pub shutdown: CancellationToken,
    /// `/metrics`, when served.
    pub metrics: Option<super::metrics_route::MetricsRoute>,
}

/// Build the application. Tests drive it with `oneshot` or serve it on a port.
pub fn router<H>(parts: HttpServerParts<H>) -> Router
where
    H: ServerHandler + PeerUse + Clone + Send + Sync + 'static,
{
    let session_manager = Arc::new(HostSessions::new(
        parts.handler.clone(),
        parts.shutdown.child_token(),
    ));
    let owners = SessionOwners::new(
        session_manager.table(),
        parts.audit.clone(),
        parts.max_sessions_per_principal,
    );
    let handler = parts.handler.clone();
    let rmcp_service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        session_manager,
        StreamableHttpServerConfig::default()
            // The host guard in front of every route does Host and Origin checks.
            .disable_allowed_hosts()
            .disable_allowed_origins()
            .with_max_request_body_bytes(MAX_REQUEST_BODY_BYTES)
            // No empty priming event from rmcp (initialize answer, GET stream): it cannot
            // tell the negotiated version, and clients before 2025-11-25 (Python SDK 1.9,
            // TypeScript SDK 1.12) log an error for it. Request streams are primed in
            // `sessions::manager`, for the versions that define priming.
            .with_sse_retry(None)
            // A stateless (2026-07-28) call whose first message is its answer gets a plain
            // JSON body instead of an SSE stream; one that sends progress first still
            // streams. Cheaper for the common case; session-era streams are unchanged.
            .with_json_response(true)
            .with_cancellation_token(parts.shutdown.child_token()),
    );
    // 2026-07-28 requests rmcp would serve statelessly are answered directly; the rest
    // (and every refusal) are rmcp's.
    let mcp_service = stateless::Stateless::new(rmcp_service, parts.handler.clone());
    // Inside the /mcp service and on the GET /sse route only: other requests pay nothing.
    let stream_cap = StreamCapLayer::new(StreamSlots::new(parts.max_streams_per_principal));
    let mcp_service = stream_cap.layer(mcp_service);
    // `/mcp` and `/mcp/` (FastMCP's URL, which migrating configs carry); nothing below it.
    let mcp_routes = Router::new()
        .route_service("/mcp", mcp_service.clone())
        .route_service("/mcp/", mcp_service)
        .layer(from_fn_with_state(owners, enforce_session_owner))
        .layer(axum::middleware::from_fn(
            super::session_close::delete_answers_ok,
        ));
    let sse_routes = sse::routes(
        sse::SseState::new(
            parts.handler,
            parts.shutdown.clone(),
            parts.audit.clone(),
            parts.max_sessions_per_principal,
        ),
        stream_cap,
    );
    let metrics_routes = super::metrics_route::routes(parts.metrics, parts.trusted_proxies.clone());
    Router::new()
        .merge(mcp_routes)
        .merge(sse_routes)
        // Unknown paths answer 404 only to an authenticated caller (401 before that: a
        // probe learns nothing, and clients report the refused token, not a missing route).
        .fallback(not_found)
        // After authentication: only an authenticated caller's body is read.
        .layer(axum::middleware::from_fn(super::body::read_whole_body))
        .layer(from_fn_with_state(
            Arc::new(AuthGate::new(
                parts.authenticator,
                parts.audit,
                parts.auth_failures_per_minute,
                parts.trusted_proxies,
            )),
            require_principal,
        ))
        // Behind the host guard, not the MCP authentication: it decides its own access.
        .merge(metrics_routes)
        .layer(from_fn_with_state(parts.host_guard, enforce_host_guard))
        .route("/healthz", get(healthz))
}

async fn not_found() -> StatusCode {
    StatusCode::NOT_FOUND
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// The connections [`serve`] holds, from whom, for how long (`commands::serve` fills it
/// from the `[connections]` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections, server-wide (further ones are refused at accept).
    pub max_total: usize,
    /// Open connections from one client IP address.
    pub max_per_address: usize,
    /// How long a connection may take to send a complete request head (also the idle
    /// keep-alive timeout).
    pub header_timeout: Duration,
    /// How long a client has to finish the TLS handshake.
    pub tls_handshake_timeout: Duration,
}

/// Bind every address first (so a port conflict fails before anything is served).
pub async fn bind(addresses: &[SocketAddr]) -> std::io::Result<Vec<TcpListener>> {
    let mut listeners = Vec::with_capacity(addresses.len());
    for address in addresses {
        let listener = TcpListener::bind(address).await.map_err(|error| {
            std::io::Error::new(error.kind(), format!("cannot listen on {address}: {error}"))
        })?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Serve `router` on every listener until `shutdown` is cancelled: HTTPS when `tls` is
/// given, else plain HTTP; with the connection caps and timeouts of `settings` (see
/// [`super::listener`]). Raises the file limit first: every connection is a descriptor.
pub async fn serve(
    listeners: Vec<TcpListener>,
    router: Router,
    shutdown: CancellationToken,
    tls: Option<Arc<ReloadableTls>>,
    settings: ConnectionLimits,
) {
    let max_total = match connections::raise_fd_limit() {
        Ok(limit) => {
            let fitted = connections::fit_to_fd_limit(settings.max_total, limit.after);
            tracing::info!(
                before = limit.before,
                after = limit.after,
                max_connections = fitted,
                "file limit (RLIMIT_NOFILE) raised to its hard maximum"
            );
            if fitted < settings.max_total {
                tracing::warn!(
                    configured = settings.max_total,
                    max_connections = fitted,
                    "connections.max_total lowered to fit the file limit; raise the hard limit (LimitNOFILE=) to allow more"
                );
            }
            fitted
        }
        Err(error) => {
            tracing::warn!(%error, "cannot read or raise the file limit (RLIMIT_NOFILE)");
            settings.max_total
        }
    };
    let acceptor = Arc::new(Acceptor {
        router,
        tracker: ConnectionTracker::new(max_total, settings.max_per_address.min(max_total)),
        header_timeout: settings.header_timeout,
        tls: tls.map(|tls| (tls, settings.tls_handshake_timeout)),
        refusals: RateLimitedLog::default(),
    });
    let servers = listeners
        .into_iter()
        .map(|listener| acceptor.clone().run(listener, shutdown.clone()));
    futures::future::join_all(servers).await;
}
