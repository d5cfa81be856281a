//! `GET /metrics`: the server's [`Metrics`] in the Prometheus text format, to whom
//! [`crate::metrics::access`] lets in: loopback, or anyone with the scrape token. The client
//! address is the one the auth layer uses ([`TrustedProxies::resolve`]); the route sits
//! behind the host guard (a web page cannot read it through DNS rebinding) and outside the
//! MCP authentication (MCP tokens do not open it).

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Json, Router,
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

use crate::{
    auth::client_address::TrustedProxies,
    metrics::{self, Access, AuthFailure, Metrics, ScrapeToken, access},
};

/// What `/metrics` serves and to whom.
#[derive(Debug, Clone)]
pub struct MetricsRoute {
    pub metrics: Arc<Metrics>,
    /// Lets a scraper in from anywhere; `None`: loopback only.
    pub token: Option<ScrapeToken>,
}

#[derive(Debug)]
struct Scraping {
    route: MetricsRoute,
    trusted_proxies: TrustedProxies,
}

/// The `/metrics` route (an empty router when metrics are off).
pub fn routes(route: Option<MetricsRoute>, trusted_proxies: TrustedProxies) -> Router {
    let Some(route) = route else {
        return Router::new();
    };
    let state = Arc::new(Scraping {
        route,
        trusted_proxies,
    });
    Router::new().route("/metrics", get(scrape).with_state(state))
}

async fn scrape(State(scraping): State<Arc<Scraping>>, request: Request) -> Response {
    let headers = request.headers();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer);
    let trusted = &scraping.trusted_proxies;
    let verdict = access::decide(
        access::Scrape {
            client: peer.map(|peer| trusted.resolve(peer, headers).ip()),
            relayed: peer.is_some_and(|peer| !trusted.contains(peer.ip())) && is_forwarded(headers),
            authorization: headers
                .get(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes),
        },
        scraping.route.token.as_ref(),
    );
    match verdict {
        Access::Allow => (
            [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
            scraping.route.metrics.render(),
        )
            .into_response(),
        Access::Unauthorized => {
            scraping
                .route
                .metrics
                .auth_failed(AuthFailure::MetricsToken);
            refusal(
                StatusCode::UNAUTHORIZED,
                "send `Authorization: Bearer <token>` with the token of [metrics] token_file",
            )
        }
        Access::Forbidden => {
            scraping
                .route
                .metrics
                .auth_failed(AuthFailure::MetricsToken);
            refusal(
                StatusCode::FORBIDDEN,
                "/metrics is served to loopback only; configure [metrics] token_file to scrape from elsewhere",
            )
        }
    }
}

/// Does the request carry a forwarding header (a proxy relayed it)?
fn is_forwarded(headers: &HeaderMap) -> bool {
    headers.contains_key(header::FORWARDED) || headers.contains_key("x-forwarded-for")
}

fn refusal(status: StatusCode, description: &str) -> Response {
    let body = serde_json::json!({ "error": "metrics_refused", "error_description": description });
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer realm="hostmcp-metrics""#),
        );
    }
    response
}

#[cfg(test)]
mod tests;
