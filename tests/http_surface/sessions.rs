//! Where a request goes: an unknown path is 404; a session-era session serves only the
//! principal that opened it (another token gets the 404 of an unknown session, so it can
//! neither use nor detect the session); a principal's sessions are capped (429). Each next
//! to the owner, or another principal, who is served.

use axum::http::{Method, StatusCode, header};

use crate::bench::{
    ALICE, BOB, Bench, Settings, Who, in_session, initialize, ping, post_mcp, request,
};

#[tokio::test]
async fn an_unknown_path_is_404_and_mcp_is_served() {
    let bench = Bench::new();
    for path in [
        "/nope",
        "/sse/x",
        "/MCP",
        "/messages/x",
        "/mcp/extra",
        "/mcp/x/y",
    ] {
        let missing = bench
            .send(
                request(Method::POST, path)
                    .header(header::AUTHORIZATION, ALICE.bearer())
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(ping(1).to_string().into())
                    .unwrap(),
            )
            .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{path}");
        // Without a token an unknown path is refused like any other: 401, so a probe learns
        // nothing and a client reports its token, not a missing route (mcp-remote went
        // looking for an OAuth registration endpoint on a 404).
        let probe = bench
            .send(
                request(Method::POST, path)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(ping(1).to_string().into())
                    .unwrap(),
            )
            .await;
        assert_eq!(probe.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    // Near miss: /mcp itself, and /mcp/ (FastMCP's spelling, in configs that migrate).
    let opened = bench.send(post_mcp(Some(ALICE), &initialize(1))).await;
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.text());
    assert_eq!(opened.result()["serverInfo"]["name"], "hostmcp");
    let mut slash = post_mcp(Some(ALICE), &initialize(2));
    *slash.uri_mut() = "/mcp/".parse().unwrap();
    let opened = bench.send(slash).await;
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.text());
}

/// A ping within `session` as `who`.
async fn ping_in(bench: &Bench, who: Who, session: &str) -> crate::bench::Reply {
    bench.send(in_session(Some(who), session, &ping(7))).await
}

#[tokio::test]
async fn a_session_serves_its_owner_and_is_not_found_for_another_principal() {
    let bench = Bench::new();
    let session = bench.initialize(ALICE).await;

    let owner = ping_in(&bench, ALICE, &session).await;
    assert_eq!(owner.status, StatusCode::OK, "{}", owner.text());
    assert_eq!(owner.answer()["id"], 7);
    assert!(owner.answer()["result"].is_object());

    // Near miss: another valid token, the same session id: the 404 of an unknown session.
    let other = ping_in(&bench, BOB, &session).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    let unknown = ping_in(&bench, BOB, "00000000000000000000000000000000").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(other.body, unknown.body, "a foreign session looks unknown");

    let opened = bench.audit.events("session_opened").await;
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert_eq!(opened[0]["principal"], ALICE.name);
    assert_eq!(opened[0]["session"], session.as_str());
}

#[tokio::test]
async fn another_principal_cannot_delete_a_session_and_its_owner_can() {
    let bench = Bench::new();
    let session = bench.initialize(ALICE).await;
    let delete = |who: Who| {
        request(Method::DELETE, "/mcp")
            .header(header::AUTHORIZATION, who.bearer())
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", crate::bench::SESSION_ERA)
            .body(Default::default())
            .unwrap()
    };
    assert_eq!(bench.send(delete(BOB)).await.status, StatusCode::NOT_FOUND);
    let still_open = ping_in(&bench, ALICE, &session).await;
    assert_eq!(still_open.status, StatusCode::OK, "{}", still_open.text());

    // Near miss: the owner's DELETE closes it; then it is gone for the owner too.
    let closed = bench.send(delete(ALICE)).await;
    assert!(closed.status.is_success(), "{}", closed.status);
    assert_eq!(
        ping_in(&bench, ALICE, &session).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_principal_over_its_session_cap_gets_429_and_another_principal_does_not() {
    let bench = Bench::with(Settings {
        max_sessions_per_principal: 2,
        ..Settings::default()
    });
    let first = bench.initialize(ALICE).await;
    let _second = bench.initialize(ALICE).await;
    let refused = bench.send(post_mcp(Some(ALICE), &initialize(3))).await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.text()
    );
    // The refused session was closed at once: its id, if one leaked, serves nothing.
    if let Some(id) = refused.header("mcp-session-id") {
        assert_eq!(
            ping_in(&bench, ALICE, id).await.status,
            StatusCode::NOT_FOUND
        );
    }
    // The sessions below the cap still serve.
    assert_eq!(ping_in(&bench, ALICE, &first).await.status, StatusCode::OK);

    // Near miss: another principal has a cap of its own.
    let session = bench.initialize(BOB).await;
    assert_eq!(ping_in(&bench, BOB, &session).await.status, StatusCode::OK);
}
