//! Target `sse_messages`: what the legacy SSE transport does with `POST /messages` bodies,
//! through its real routes (`hostmcp::transport::sse::routes`) driven in memory: a
//! session is opened with `GET /sse`, each input line is posted to it as one body (parsed
//! as JSON-RPC, routed: initialize, a call run directly or on the live service, a
//! cancellation, an answer), then the stream is dropped. The handler is rmcp's default one
//! (`Quiet` below), so no tool of the product runs whatever the fuzzer writes.
//!
//! What must hold: a body that parses as a JSON-RPC client message is accepted (202),
//! anything else is a 400, never a 5xx or a panic; a post by another principal to the
//! session is a 404 (and the owner's own post is not: its near miss); dropping the stream
//! closes the session.

use axum::{
    body::Body,
    http::{Request, StatusCode},
};
use futures::StreamExt;
use hostmcp::{
    audit::AuditLog,
    auth::Principal,
    transport::{
        direct_call::PeerUse,
        sse::{SseState, routes},
    },
};
use rmcp::{
    ServerHandler,
    model::{ClientJsonRpcMessage, ClientRequest},
};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Bodies posted per input, at most.
const MAX_POSTS: usize = 8;
/// Scheduler turns given to the session's tasks after the posts.
const SETTLE_TURNS: usize = 16;

/// rmcp's default handler: answers `initialize`, `ping` and the list methods, refuses the rest.
#[derive(Clone)]
struct Quiet;

impl ServerHandler for Quiet {}

impl PeerUse for Quiet {
    /// `ping` goes to the session's live rmcp service, everything else runs directly, so
    /// both routes are taken.
    fn needs_live_peer(&self, request: &ClientRequest) -> bool {
        matches!(request, ClientRequest::PingRequest(_))
    }
}

pub fn run(data: &[u8]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(session(data));
}

async fn session(data: &[u8]) {
    let limits = hostmcp::config::ConnectionSettings::default();
    let state = SseState::new(
        Quiet,
        CancellationToken::new(),
        AuditLog::disabled(),
        limits.max_sessions_per_principal,
    );
    let stream_cap = hostmcp::transport::streams::StreamCapLayer::new(
        hostmcp::transport::streams::StreamSlots::new(limits.max_streams_per_principal),
    );
    let app = routes(state.clone(), stream_cap);
    let owner = hostmcp::auth::danger::unauthenticated_local();

    let mut open = Request::get("/sse").body(Body::empty()).expect("request");
    open.extensions_mut().insert(owner.clone());
    let response = app.clone().oneshot(open).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = response.into_body().into_data_stream();
    let endpoint = stream
        .next()
        .await
        .expect("an endpoint event")
        .expect("a body chunk");
    let endpoint = String::from_utf8(endpoint.to_vec()).expect("utf-8");
    let uri = endpoint
        .lines()
        .find_map(|line| line.strip_prefix("data: "))
        .expect("the endpoint's data line")
        .to_owned();
    assert_eq!(state.session_count(), 1);

    let post = |body: &[u8], principal: &Principal| {
        let mut request = Request::post(uri.as_str())
            .header("content-type", "application/json")
            .body(Body::from(body.to_vec()))
            .expect("request");
        request.extensions_mut().insert(principal.clone());
        app.clone().oneshot(request)
    };

    let mut lines = data
        .split(|&byte| byte == b'\n')
        .filter(|line| !line.is_empty())
        .take(MAX_POSTS)
        .peekable();
    if let Some(first) = lines.peek() {
        let intruder = post(first, &hostmcp::auth::danger::stdio_owner())
            .await
            .expect("infallible");
        assert_eq!(
            intruder.status(),
            StatusCode::NOT_FOUND,
            "another principal's post"
        );
    }
    for line in lines {
        let status = post(line, &owner).await.expect("infallible").status();
        let parses = serde_json::from_slice::<ClientJsonRpcMessage>(line).is_ok();
        let expected = if parses {
            StatusCode::ACCEPTED
        } else {
            StatusCode::BAD_REQUEST
        };
        assert_eq!(status, expected, "{}", String::from_utf8_lossy(line));
    }
    for _ in 0..SETTLE_TURNS {
        tokio::task::yield_now().await;
    }
    drop(stream);
    assert_eq!(state.session_count(), 0, "the session outlived its stream");
}
