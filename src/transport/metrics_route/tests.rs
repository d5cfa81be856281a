//! `/metrics` through the whole [`http::router`], without a socket: who is let in (each
//! refusal with its near miss), what is served, and that it stays outside MCP auth.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    body::Body,
    extract::ConnectInfo,
    http::{Request, StatusCode, header},
};
use http_body_util::BodyExt;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::MetricsRoute;
use crate::{
    audit::AuditLog,
    auth::{
        Role, TokenDigest, TokenEntry, TokenSet,
        authenticator::Authenticator,
        client_address::{ProxyNet, TrustedProxies},
    },
    exec::BaseEnv,
    metrics::{Metrics, ScrapeToken, Sources},
    tools::{HostTools, ToolSettings, ToolsState},
    transport::{
        host_guard::HostGuard,
        http::{self, HttpServerParts},
    },
};

const HOST: &str = "127.0.0.1:8000";
const LOOPBACK: &str = "127.0.0.1:40000";
const REMOTE: &str = "192.0.2.7:40000";
const SCRAPE_TOKEN: &str = "scrape-0123456789abcdefghijklmnopqrstuvwxyz";
const MCP_TOKEN: &str = "mcp-token";

struct Server {
    app: Router,
    metrics: Arc<Metrics>,
}

fn server(metrics_on: bool, token: bool, trusted: &[&str]) -> Server {
    let shutdown = CancellationToken::new();
    let tools = ToolsState::new(
        ToolSettings::default(),
        BaseEnv::from_server_env(),
        AuditLog::disabled(),
        &shutdown,
    );
    let zero = || Box::new(|| 0_usize) as Box<dyn Fn() -> usize + Send + Sync>;
    let metrics = Arc::new(Metrics::new(
        ["run_command"],
        Sources {
            commands_running: zero(),
            jobs_running: zero(),
            audit_queue_depth: zero(),
        },
    ));
    let token = token.then(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.token");
        std::fs::write(&path, SCRAPE_TOKEN).unwrap();
        ScrapeToken::load(&path).unwrap()
    });
    let entry = TokenEntry::new("ops", TokenDigest::of_token(MCP_TOKEN), Role::Admin);
    let app = http::router(HttpServerParts {
        handler: HostTools::new(tools),
        authenticator: Arc::new(Authenticator::tokens(TokenSet::new(vec![entry]))),
        audit: AuditLog::disabled(),
        auth_failures_per_minute: 10,
        trusted_proxies: TrustedProxies::new(
            trusted.iter().map(|net| net.parse::<ProxyNet>().unwrap()),
        ),
        host_guard: Arc::new(HostGuard::new(&[HOST.parse().unwrap()], &[], &[])),
        max_streams_per_principal: 4,
        max_sessions_per_principal: 4,
        shutdown,
        metrics: metrics_on.then(|| MetricsRoute {
            metrics: metrics.clone(),
            token,
        }),
    });
    Server { app, metrics }
}

/// GET /metrics from `peer` with extra `headers`: the status and the body.
async fn scrape(app: &Router, peer: &str, headers: &[(&str, &str)]) -> (StatusCode, String) {
    let mut request = Request::get("/metrics").header(header::HOST, HOST);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request.body(Body::empty()).unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    if status == StatusCode::OK {
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/plain; version=0.0.4; charset=utf-8"
        );
    }
    if status == StatusCode::UNAUTHORIZED {
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
    }
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn metrics_are_not_served_unless_turned_on() {
    // Off, /metrics is an unknown path: refused like any other before authentication.
    let off = server(false, false, &[]);
    assert_eq!(
        scrape(&off.app, LOOPBACK, &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Near miss: turned on, the same request is served.
    let on = server(true, false, &[]);
    let (status, body) = scrape(&on.app, LOOPBACK, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("hostmcp_build_info{"), "{body}");
    assert!(body.contains(r#"hostmcp_tool_calls_total{tool="run_command",outcome="ok"} 0"#));
}

#[tokio::test]
async fn without_a_token_only_loopback_may_scrape() {
    let server = server(true, false, &[]);
    assert_eq!(
        scrape(&server.app, REMOTE, &[]).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        scrape(&server.app, "[::1]:40000", &[]).await.0,
        StatusCode::OK
    );
    // An MCP token opens nothing here, even from loopback.
    let mcp = format!("Bearer {MCP_TOKEN}");
    let sent = [("authorization", mcp.as_str())];
    assert_eq!(
        scrape(&server.app, LOOPBACK, &sent).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (_, body) = scrape(&server.app, LOOPBACK, &[]).await;
    assert!(
        body.contains(r#"hostmcp_auth_failures_total{reason="metrics_token"} 2"#),
        "{body}"
    );
}

#[tokio::test]
async fn with_a_token_anyone_holding_it_may_scrape() {
    let server = server(true, true, &[]);
    let good = format!("Bearer {SCRAPE_TOKEN}");
    let wrong = format!("Bearer {SCRAPE_TOKEN}x");
    let mcp = format!("Bearer {MCP_TOKEN}");
    assert_eq!(
        scrape(&server.app, REMOTE, &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
    for refused in [&wrong, &mcp] {
        let sent = [("authorization", refused.as_str())];
        assert_eq!(
            scrape(&server.app, REMOTE, &sent).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let sent = [("authorization", good.as_str())];
    assert_eq!(scrape(&server.app, REMOTE, &sent).await.0, StatusCode::OK);
    // Loopback still needs none.
    assert_eq!(scrape(&server.app, LOOPBACK, &[]).await.0, StatusCode::OK);
    let text = server.metrics.render();
    assert!(
        text.contains(r#"hostmcp_auth_failures_total{reason="metrics_token"} 3"#),
        "{text}"
    );
}

#[tokio::test]
async fn a_proxy_on_loopback_relaying_a_remote_client_does_not_make_it_local() {
    let untrusted = server(true, false, &[]);
    let relayed = [("x-forwarded-for", "192.0.2.9")];
    assert_eq!(
        scrape(&untrusted.app, LOOPBACK, &relayed).await.0,
        StatusCode::FORBIDDEN
    );
    let forwarded = [("forwarded", "for=192.0.2.9")];
    assert_eq!(
        scrape(&untrusted.app, LOOPBACK, &forwarded).await.0,
        StatusCode::FORBIDDEN
    );
    // A trusted proxy on loopback: the client it names decides.
    let trusted = server(true, false, &["127.0.0.1"]);
    assert_eq!(
        scrape(&trusted.app, LOOPBACK, &relayed).await.0,
        StatusCode::FORBIDDEN
    );
    let local = [("x-forwarded-for", "127.0.0.1")];
    assert_eq!(
        scrape(&trusted.app, LOOPBACK, &local).await.0,
        StatusCode::OK
    );
    assert_eq!(scrape(&trusted.app, LOOPBACK, &[]).await.0, StatusCode::OK);
}

#[tokio::test]
async fn the_host_guard_stands_in_front_of_metrics() {
    let server = server(true, false, &[]);
    let mut request = Request::get("/metrics")
        .header(header::HOST, "attacker.example")
        .body(Body::empty())
        .unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(LOOPBACK.parse::<SocketAddr>().unwrap()));
    let response = server.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Near miss: the server's own Host.
    assert_eq!(scrape(&server.app, LOOPBACK, &[]).await.0, StatusCode::OK);
}
