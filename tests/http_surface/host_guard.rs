//! The host guard in front of authentication (DNS rebinding, cross-origin pages): a `Host`
//! that is not a name of the server and an `Origin` the operator did not allow get 403, two
//! `Host` headers get 400, before any token is looked at. Each next to the allowed twin.

use axum::http::{StatusCode, header};

use crate::bench::{ALICE, ALLOWED_ORIGIN, Bench, list_2026};

fn with_header(name: header::HeaderName, value: &str) -> axum::http::Request<axum::body::Body> {
    let mut request = list_2026(Some(ALICE));
    request
        .headers_mut()
        .insert(name, value.parse().expect("a header value"));
    request
}

#[tokio::test]
async fn a_foreign_host_is_403_even_with_a_valid_token_and_the_servers_own_names_pass() {
    let bench = Bench::new();
    for foreign in ["attacker.example", "attacker.example:8000", "10.1.2.3:8000"] {
        let refused = bench.send(with_header(header::HOST, foreign)).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{foreign}");
        assert_eq!(refused.json()["error"], "forbidden_host", "{foreign}");
    }
    // Near miss: the names of the listening address pass, the port included or not.
    for own in ["127.0.0.1:8000", "localhost:8000", "127.0.0.1"] {
        let served = bench.send(with_header(header::HOST, own)).await;
        assert_eq!(served.status, StatusCode::OK, "{own}: {}", served.text());
    }
}

#[tokio::test]
async fn the_guard_answers_before_authentication_and_records_nothing() {
    let bench = Bench::new();
    let mut request = with_header(header::HOST, "attacker.example");
    request.headers_mut().remove(header::AUTHORIZATION);
    let refused = bench.send(request).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "not 401");
    assert!(bench.audit.records().await.is_empty());

    // Near miss: the same request to the server's own name reaches authentication.
    let mut request = list_2026(None);
    request.headers_mut().remove(header::AUTHORIZATION);
    assert_eq!(bench.send(request).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bench.audit.events("auth_failed").await.len(), 1);
}

#[tokio::test]
async fn a_foreign_origin_is_403_and_the_allowed_origin_passes() {
    let bench = Bench::new();
    for foreign in [
        "https://attacker.example",
        "https://console.example.test.attacker.example",
        "http://console.example.test",
        "null",
    ] {
        let refused = bench.send(with_header(header::ORIGIN, foreign)).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{foreign}");
        assert_eq!(refused.json()["error"], "forbidden_origin", "{foreign}");
    }
    // Near misses: the allowed origin, and the server's own origin (same as its Host).
    for allowed in [ALLOWED_ORIGIN, "http://127.0.0.1:8000"] {
        let served = bench.send(with_header(header::ORIGIN, allowed)).await;
        assert_eq!(
            served.status,
            StatusCode::OK,
            "{allowed}: {}",
            served.text()
        );
    }
}

#[tokio::test]
async fn two_host_headers_are_400_and_one_passes() {
    let bench = Bench::new();
    let mut request = list_2026(Some(ALICE));
    request
        .headers_mut()
        .append(header::HOST, "localhost:8000".parse().unwrap());
    let refused = bench.send(request).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.json()["error"], "duplicate_host");

    // Near miss: either of the two alone is served.
    let served = bench
        .send(with_header(header::HOST, "localhost:8000"))
        .await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.text());
}
