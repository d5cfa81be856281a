//! The authentication layer under a flood, driven with `oneshot`: a valid token is served
//! whatever its address did, bad ones are budgeted per address (IPv6 per /64), forwarding
//! headers count only from a trusted proxy, and the audit log gets one line per window of
//! refusals. Each refusal has its near miss.

use std::{net::SocketAddr, path::Path, sync::Arc};

use axum::{
    Extension, Router,
    body::Body,
    extract::ConnectInfo,
    http::{Request, StatusCode, header},
    middleware::from_fn_with_state,
    routing::post,
};
use tower::ServiceExt as _;

use super::*;
use crate::{
    audit::AuditOptions,
    auth::{
        Role, TokenDigest, TokenEntry, TokenSet,
        client_address::{ClientAddress, ProxyNet},
    },
};

const VALID: &str = "alice-token-0123456789";
const LIMIT: u32 = 3;

/// The layer in front of a handler that answers with the client address it was given.
fn app(audit: AuditLog, trusted: &[&str]) -> Router {
    app_with(gate(audit, trusted))
}

fn gate(audit: AuditLog, trusted: &[&str]) -> AuthGate {
    let tokens = TokenSet::new(vec![TokenEntry::new(
        "alice",
        TokenDigest::of_token(VALID),
        Role::Operator,
    )]);
    let trusted = TrustedProxies::new(trusted.iter().map(|net| net.parse::<ProxyNet>().unwrap()));
    AuthGate::new(
        Arc::new(Authenticator::tokens(tokens)),
        audit,
        LIMIT,
        trusted,
    )
}

fn app_with(gate: AuthGate) -> Router {
    Router::new()
        .route(
            "/mcp",
            post(|Extension(client): Extension<ClientAddress>| async move { client.to_string() }),
        )
        .layer(from_fn_with_state(Arc::new(gate), require_principal))
}

struct Sent {
    status: StatusCode,
    retry_after: Option<u64>,
    body: String,
}

async fn send(app: &Router, peer: &str, token: &str, forwarded_for: Option<&str>) -> Sent {
    let mut request =
        Request::post("/mcp").header(header::AUTHORIZATION, format!("Bearer {token}"));
    if let Some(chain) = forwarded_for {
        request = request.header("x-forwarded-for", chain);
    }
    let mut request = request.body(Body::empty()).unwrap();
    let peer: SocketAddr = peer.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|value| value.to_str().unwrap().parse().unwrap());
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Sent {
        status,
        retry_after,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

async fn statuses(app: &Router, peer: &str, count: usize, forwarded_for: Option<&str>) -> Vec<u16> {
    let mut codes = Vec::new();
    for _ in 0..count {
        codes.push(
            send(app, peer, "wrong", forwarded_for)
                .await
                .status
                .as_u16(),
        );
    }
    codes
}

fn expected(failures: usize, refusals: usize) -> Vec<u16> {
    [vec![401; failures], vec![429; refusals]].concat()
}

fn records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test]
async fn a_flood_of_bad_tokens_does_not_lock_out_a_valid_token_from_the_same_address() {
    let app = app(AuditLog::disabled(), &[]);
    assert_eq!(
        statuses(&app, "10.0.0.1:1000", 10, None).await,
        expected(3, 7)
    );
    let valid = send(&app, "10.0.0.1:1001", VALID, None).await;
    assert_eq!(valid.status, StatusCode::OK);
    assert_eq!(valid.body, "10.0.0.1:1001");
    // Near miss: a bad token from that address is still refused, with a time to wait.
    let bad = send(&app, "10.0.0.1:1002", "wrong", None).await;
    assert_eq!(bad.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        bad.retry_after
            .is_some_and(|seconds| (1..=60).contains(&seconds))
    );
    assert!(bad.body.contains("too_many_failed_authentications"));
    // And another address keeps its own budget.
    assert_eq!(statuses(&app, "10.0.0.2:1000", 1, None).await, [401]);
}

#[tokio::test]
async fn ipv6_clients_are_budgeted_per_64() {
    let app = app(AuditLog::disabled(), &[]);
    assert_eq!(
        statuses(&app, "[2001:db8:0:1::1]:1000", 4, None).await,
        expected(3, 1)
    );
    // Another address of the same /64 shares the budget ...
    assert_eq!(
        statuses(&app, "[2001:db8:0:1:ffff::9]:1000", 1, None).await,
        [429]
    );
    // ... the neighbouring /64 does not.
    assert_eq!(
        statuses(&app, "[2001:db8:0:2::1]:1000", 1, None).await,
        [401]
    );
    // An IPv4-mapped peer is its IPv4 address.
    assert_eq!(statuses(&app, "192.0.2.1:1000", 3, None).await, [401; 3]);
    assert_eq!(
        statuses(&app, "[::ffff:192.0.2.1]:1000", 1, None).await,
        [429]
    );
}

#[tokio::test]
async fn forwarded_for_counts_only_from_a_trusted_proxy() {
    let app = app(AuditLog::disabled(), &["10.9.0.0/16"]);
    // Through the trusted proxy, each client has its own budget.
    assert_eq!(
        statuses(&app, "10.9.0.1:1000", 4, Some("203.0.113.9")).await,
        expected(3, 1)
    );
    assert_eq!(
        statuses(&app, "10.9.0.1:1001", 1, Some("203.0.113.10")).await,
        [401]
    );
    let valid = send(&app, "10.9.0.1:1002", VALID, Some("203.0.113.9")).await;
    assert_eq!(
        (valid.status, valid.body.as_str()),
        (StatusCode::OK, "203.0.113.9")
    );
    // Near miss: an untrusted peer that writes a new address each time is still one client.
    let mut codes = Vec::new();
    for guess in 0..4 {
        let forged = format!("198.51.100.{guess}");
        codes.extend(statuses(&app, "192.0.2.50:1000", 1, Some(&forged)).await);
    }
    assert_eq!(codes, expected(3, 1));
    let valid = send(&app, "192.0.2.50:1001", VALID, Some("198.51.100.7")).await;
    assert_eq!(
        (valid.status, valid.body.as_str()),
        (StatusCode::OK, "192.0.2.50:1001")
    );
}

#[tokio::test]
async fn one_audit_record_per_window_of_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let audit = AuditLog::open(&path, AuditOptions::default()).unwrap();
    let app = app(audit, &["127.0.0.1"]);
    assert_eq!(
        statuses(&app, "127.0.0.1:1000", 13, Some("203.0.113.9")).await,
        expected(3, 10)
    );
    assert_eq!(
        send(&app, "127.0.0.1:1001", VALID, Some("203.0.113.9"))
            .await
            .status,
        StatusCode::OK
    );
    let lines = records(&path);
    let kinds: Vec<&str> = lines
        .iter()
        .map(|line| line["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "auth_failed",
            "auth_failed",
            "auth_failed",
            "auth_throttled"
        ]
    );
    let throttled = &lines[3];
    assert_eq!(throttled["client"], "203.0.113.9");
    assert_eq!(throttled["refused_in_previous_window"], 0);
    assert!((1..=60).contains(&throttled["retry_after_secs"].as_u64().unwrap()));
    assert!(lines.iter().all(|line| line["client"] == "203.0.113.9"));
}

#[tokio::test]
async fn a_refused_request_with_a_body_closes_its_connection() {
    let app = app(AuditLog::disabled(), &[]);
    let request = |token: &str, body: &'static str| {
        let mut request = Request::post("/mcp")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_LENGTH, body.len())
            .body(Body::from(body))
            .unwrap();
        let peer: SocketAddr = "10.0.0.1:1000".parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    };
    let connection = |response: &axum::response::Response| {
        response
            .headers()
            .get(header::CONNECTION)
            .map(|value| value.to_str().unwrap().to_owned())
    };
    let refused = app.clone().oneshot(request("wrong", "{}")).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(connection(&refused).as_deref(), Some("close"));
    // Near misses: a refusal without a body, and a served request, keep the connection.
    let empty = app.clone().oneshot(request("wrong", "")).await.unwrap();
    assert_eq!(empty.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(connection(&empty), None);
    let served = app.clone().oneshot(request(VALID, "{}")).await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(connection(&served), None);
}

#[tokio::test]
async fn failures_from_many_addresses_past_the_server_wide_cap_leave_one_summary_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let audit = AuditLog::open(&path, AuditOptions::default()).unwrap();
    let mut gate = gate(audit, &[]);
    let window = Duration::from_millis(500);
    gate.failure_records = FailureRecordCap::new(5, window);
    let app = app_with(gate);
    // 20 addresses, one failure each: every one is under its own budget of 3.
    for host in 1..=20 {
        let sent = send(&app, &format!("10.0.1.{host}:1000"), "wrong", None).await;
        assert_eq!(
            sent.status,
            StatusCode::UNAUTHORIZED,
            "still refused, only not recorded"
        );
    }
    // Near miss: a valid token is served whatever the cap did.
    assert_eq!(
        send(&app, "10.0.1.1:1001", VALID, None).await.status,
        StatusCode::OK
    );
    let mut kinds = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(window / 5).await;
        kinds = records(&path)
            .iter()
            .map(|line| line["event"].as_str().unwrap().to_owned())
            .collect();
        if kinds.len() == 6 {
            break;
        }
    }
    assert_eq!(
        kinds,
        [vec!["auth_failed"; 5], vec!["auth_failed_dropped"]].concat()
    );
    assert_eq!(records(&path)[5]["dropped"], 15);
}

#[tokio::test]
async fn a_long_path_is_cut_in_the_auth_failed_record_and_a_short_one_kept_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let audit = AuditLog::open(&path, AuditOptions::default()).unwrap();
    let app = Router::new()
        .fallback(|| async { "unreachable" })
        .layer(from_fn_with_state(
            Arc::new(gate(audit, &[])),
            require_principal,
        ));
    for uri in ["/mcp/short".to_owned(), format!("/{}", "a".repeat(60_000))] {
        let mut request = Request::post(uri).body(Body::empty()).unwrap();
        let peer: SocketAddr = "10.0.2.1:1000".parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let lines = records(&path);
    let reasons: Vec<&str> = lines
        .iter()
        .map(|l| l["reason"].as_str().unwrap())
        .collect();
    assert!(reasons[0].ends_with("on /mcp/short"), "{}", reasons[0]);
    assert!(
        reasons[1].len() < AUTH_FAILED_PATH_BYTES + 200,
        "{}",
        reasons[1].len()
    );
    assert!(
        reasons[1].ends_with("[... 60001 bytes in all]"),
        "{}",
        reasons[1]
    );
}
