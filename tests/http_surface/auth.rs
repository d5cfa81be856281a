//! Authentication at the router's door: 401 with a `WWW-Authenticate: Bearer` challenge for
//! a missing, wrong or malformed credential, one `auth_failed` record each that never quotes
//! the token, and 429 with `Retry-After` once an address spends its failure budget. Each
//! refusal next to the same request with a valid token, which is served.

use axum::http::{Method, StatusCode, header};
use serde_json::json;

use crate::bench::{ALICE, Bench, PEER, Settings, Who, list_2026, request};

/// The stateless `tools/list` of [`list_2026`] with `authorization` as given.
fn listing(authorization: Option<&str>) -> axum::http::Request<axum::body::Body> {
    let mut request = list_2026(None);
    if let Some(value) = authorization {
        request
            .headers_mut()
            .insert(header::AUTHORIZATION, value.parse().unwrap());
    }
    request
}

#[tokio::test]
async fn no_token_is_401_with_a_bearer_challenge_and_a_record() {
    let bench = Bench::new();
    let refused = bench.send(listing(None)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refused.header("www-authenticate"),
        Some(r#"Bearer realm="hostmcp""#)
    );
    // A JSON-RPC error (what the SDKs show), the OAuth code in its data.
    assert_eq!(refused.json()["error"]["data"]["error"], "invalid_token");
    assert!(
        refused.json()["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("missing bearer token: send `Authorization: Bearer <token>`")
    );
    let failed = bench.audit.events("auth_failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["principal"], serde_json::Value::Null);
    assert_eq!(failed[0]["client"], PEER);
    assert!(failed[0]["reason"].as_str().unwrap().contains("/mcp"));

    // Near miss: the same request with a token is served, and adds no failure.
    let served = bench.send(listing(Some(&ALICE.bearer()))).await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.text());
    assert!(served.result()["tools"].is_array());
    assert_eq!(bench.audit.events("auth_failed").await.len(), 1);
}

#[tokio::test]
async fn a_wrong_token_is_401_invalid_token_and_is_not_written_down() {
    let bench = Bench::new();
    let wrong = format!("{}x", ALICE.token);
    let refused = bench.send(listing(Some(&format!("Bearer {wrong}")))).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refused.header("www-authenticate"),
        Some(r#"Bearer realm="hostmcp", error="invalid_token""#)
    );
    let message = &refused.json()["error"]["message"];
    assert!(
        message.as_str().unwrap().starts_with("invalid token: "),
        "{message}"
    );
    let records = bench.audit.records().await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["event"], "auth_failed");
    let written = serde_json::to_string(&records).unwrap();
    assert!(
        !written.contains(&wrong),
        "the presented token is in the log"
    );
    assert!(!written.contains(ALICE.token), "a token is in the log");

    // Near miss: one character less, the right token, is served.
    let served = bench.send(listing(Some(&ALICE.bearer()))).await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.text());
}

#[tokio::test]
async fn a_malformed_authorization_header_is_401_invalid_request() {
    let bench = Bench::new();
    for malformed in [
        format!("Basic {}", ALICE.token),
        ALICE.token.to_owned(),
        "Bearer ".to_owned(),
        format!("Bearer {} extra", ALICE.token),
    ] {
        let refused = bench.send(listing(Some(&malformed))).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{malformed:?}");
        assert_eq!(
            refused.header("www-authenticate"),
            Some(r#"Bearer realm="hostmcp", error="invalid_request""#),
            "{malformed:?}"
        );
        assert_eq!(refused.json()["error"]["data"]["error"], "invalid_request");
    }
    assert_eq!(bench.audit.events("auth_failed").await.len(), 4);

    // Near miss: the scheme is case-insensitive (RFC 6750), so this one is well formed.
    let served = bench
        .send(listing(Some(&format!("bEaReR {}", ALICE.token))))
        .await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.text());
}

/// A request to `path` as a client of either era sends it, with `who`'s token if any.
fn to_route(method: Method, path: &str, who: Option<Who>) -> axum::http::Request<axum::body::Body> {
    let mut builder = request(method, path)
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(who) = who {
        builder = builder.header(header::AUTHORIZATION, who.bearer());
    }
    builder
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})
                .to_string()
                .into(),
        )
        .unwrap()
}

#[tokio::test]
async fn every_mcp_route_is_behind_authentication_but_healthz_is_not() {
    let bench = Bench::new();
    let routes = [
        (Method::POST, "/mcp"),
        (Method::GET, "/mcp"),
        (Method::DELETE, "/mcp"),
        (Method::GET, "/sse"),
        (Method::POST, "/messages?sessionId=0123"),
    ];
    for (method, path) in &routes {
        let refused = bench.send(to_route(method.clone(), path, None)).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert!(
            refused.header("www-authenticate").is_some(),
            "{method} {path}"
        );
    }
    assert_eq!(bench.audit.events("auth_failed").await.len(), routes.len());
    // Near miss: with a token each route gets past authentication (whatever it answers
    // next; the `/sse` stream is dropped unread), and the health check answers anyone.
    for (method, path) in &routes {
        let response = bench
            .respond(to_route(method.clone(), path, Some(ALICE)))
            .await;
        assert_ne!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
    }
    let health = bench
        .send(
            request(Method::GET, "/healthz")
                .body(Default::default())
                .unwrap(),
        )
        .await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["status"], "ok");
}

#[tokio::test]
async fn an_address_over_its_failure_budget_gets_429_and_one_record_but_a_valid_token_passes() {
    const BUDGET: u32 = 3;
    let bench = Bench::with(Settings {
        auth_failures_per_minute: BUDGET,
        ..Settings::default()
    });
    let wrong = Some("Bearer not-a-token-of-this-server");
    for attempt in 0..BUDGET {
        let refused = bench.send(listing(wrong)).await;
        assert_eq!(
            refused.status,
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
    }
    for attempt in 0..3 {
        let throttled = bench.send(listing(wrong)).await;
        assert_eq!(
            throttled.status,
            StatusCode::TOO_MANY_REQUESTS,
            "attempt {attempt}"
        );
        let retry_after: u64 = throttled.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        assert_eq!(throttled.json()["error"], "too_many_failed_authentications");
    }
    let throttles = bench.audit.events("auth_throttled").await;
    assert_eq!(throttles.len(), 1, "one record per window: {throttles:?}");
    assert_eq!(throttles[0]["client"], PEER);
    assert_eq!(
        bench.audit.events("auth_failed").await.len(),
        BUDGET as usize
    );

    // Near miss: a valid token from the same address is served all the same.
    let served = bench.send(listing(Some(&ALICE.bearer()))).await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.text());
}

#[tokio::test]
async fn the_failure_budget_is_per_address() {
    let bench = Bench::with(Settings {
        auth_failures_per_minute: 1,
        ..Settings::default()
    });
    let wrong = Some("Bearer not-a-token-of-this-server");
    assert_eq!(
        bench.send(listing(wrong)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        bench.send(listing(wrong)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Near miss: another address still has its budget.
    let mut elsewhere = listing(wrong);
    let other: std::net::SocketAddr = "198.51.100.9:40000".parse().unwrap();
    elsewhere
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(other));
    assert_eq!(bench.send(elsewhere).await.status, StatusCode::UNAUTHORIZED);
}
