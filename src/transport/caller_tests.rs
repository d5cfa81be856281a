//! Each HTTP transport's producer of the [`Caller`]: a fixture handler answers `whoami`
//! with the caller it finds, over `/mcp` without a session (2026-07-28), `/mcp` with a
//! session, and `/sse` + `/messages`, all driven through [`http::router`] without a socket.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    body::Body,
    extract::ConnectInfo,
    http::{Request, Response, StatusCode},
};
use http_body_util::BodyExt;
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientRequest, ContentBlock,
        ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::{
    host_guard::HostGuard,
    http::{self, HttpServerParts},
};
use crate::{
    audit::AuditLog, auth::authenticator::Authenticator, caller::Caller, handler_link::PeerUse,
};

const PEER: &str = "127.0.0.1:40000";
const HOST: &str = "127.0.0.1:8000";

/// Answers `whoami` with `principal|client|session|transport` of its [`Caller`].
#[derive(Clone)]
struct WhoAmI;

impl PeerUse for WhoAmI {
    fn needs_live_peer(&self, _request: &ClientRequest) -> bool {
        false
    }
}

fn whoami() -> Tool {
    let schema = serde_json::json!({ "type": "object" });
    let serde_json::Value::Object(schema) = schema else {
        unreachable!()
    };
    Tool::new("whoami", "Who is calling", Arc::new(schema))
}

impl ServerHandler for WhoAmI {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(vec![whoami()]))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        (name == "whoami").then(whoami)
    }

    async fn call_tool(
        &self,
        _request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = Caller::of(&context.extensions)
            .map_err(|error| ErrorData::internal_error(error.to_string(), None))?;
        let text = format!(
            "{}|{}|{}|{:?}",
            caller.principal.name(),
            caller.client.map(|c| c.to_string()).unwrap_or_default(),
            caller.session.as_ref().map(|s| s.as_str()).unwrap_or(""),
            caller.transport
        );
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    }
}

fn app() -> Router {
    http::router(HttpServerParts {
        handler: WhoAmI,
        authenticator: Arc::new(Authenticator::Disabled),
        audit: AuditLog::disabled(),
        auth_failures_per_minute: 10,
        trusted_proxies: Default::default(),
        host_guard: Arc::new(HostGuard::new(&[HOST.parse().unwrap()], &[], &[])),
        max_streams_per_principal: 4,
        max_sessions_per_principal: 4,
        shutdown: CancellationToken::new(),
        metrics: None,
    })
}

fn request(method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", HOST)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let mut request = builder.body(Body::from(body.to_owned())).unwrap();
    let peer: SocketAddr = PEER.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

async fn send(app: &Router, request: Request<Body>) -> Response<Body> {
    tokio::time::timeout(Duration::from_secs(10), app.clone().oneshot(request))
        .await
        .expect("an answer within 10 s")
        .unwrap()
}

async fn text(response: Response<Body>) -> String {
    let body = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect())
        .await
        .expect("a whole body within 10 s")
        .unwrap();
    String::from_utf8_lossy(&body.to_bytes()).into_owned()
}

/// The text `whoami` answered, found in a JSON or SSE body.
fn answer(body: &str) -> String {
    let start = body.find("anonymous|").expect(body);
    let rest = &body[start..];
    rest[..rest.find('"').unwrap()].to_owned()
}

fn call_whoami(meta: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"whoami","arguments":{{}}{meta}}}}}"#
    )
}

#[tokio::test]
async fn mcp_without_a_session_gives_a_stateless_caller_with_the_client_address() {
    let meta = r#","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}"#;
    let headers = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "whoami"),
    ];
    let response = send(
        &app(),
        request("POST", "/mcp", &headers, &call_whoami(meta)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = text(response).await;
    assert_eq!(answer(&body), format!("anonymous|{PEER}||McpStateless"));
}

#[tokio::test]
async fn mcp_with_a_session_gives_the_session_the_owner_check_routed_to() {
    let app = app();
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let response = send(&app, request("POST", "/mcp", &[], initialize)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    text(response).await;
    let headers = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-06-18"),
    ];
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let response = send(&app, request("POST", "/mcp", &headers, initialized)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let response = send(&app, request("POST", "/mcp", &headers, &call_whoami(""))).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = text(response).await;
    assert_eq!(
        answer(&body),
        format!("anonymous|{PEER}|{session}|McpSession")
    );
}

/// The next SSE `data:` line of `body` that contains `needle`.
async fn next_data(body: &mut Body, needle: &str, seen: &mut String) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(line) = seen
            .lines()
            .find(|line| line.starts_with("data:") && line.contains(needle))
        {
            let line = line.to_owned();
            *seen = seen[seen.find(&line).unwrap() + line.len()..].to_owned();
            return line["data:".len()..].trim().to_owned();
        }
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} within 10 s; seen {seen:?}"))
            .expect("the stream is open")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            seen.push_str(&String::from_utf8_lossy(&data));
        }
    }
}

#[tokio::test]
async fn sse_gives_the_session_of_the_stream_the_message_was_posted_to() {
    let app = app();
    let response = send(&app, request("GET", "/sse", &[], "")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = response.into_body();
    let mut seen = String::new();
    let endpoint = next_data(&mut stream, "/messages", &mut seen).await;
    let session = endpoint.rsplit('=').next().unwrap().to_owned();
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let response = send(&app, request("POST", &endpoint, &[], initialize)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    next_data(&mut stream, "protocolVersion", &mut seen).await;
    for message in [
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        &call_whoami(""),
    ] {
        let response = send(&app, request("POST", &endpoint, &[], message)).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    let answered = next_data(&mut stream, "anonymous|", &mut seen).await;
    assert_eq!(answer(&answered), format!("anonymous|{PEER}|{session}|Sse"));
}
