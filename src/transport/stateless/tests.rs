//! The direct path against rmcp's own: each check with its near miss, and the same
//! requests sent to both services with the answers compared byte for byte.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::body::Body;
use http::HeaderValue;
use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
        PaginatedRequestParams, ProgressNotificationParam, ServerCapabilities, ServerConfig,
        ServerNotification, Tool,
    },
    service::RequestContext,
};
use serde_json::json;
use tokio::sync::Notify;
use tower::ServiceExt;

use super::*;
use crate::transport::{direct_call::RequestNotifier, sessions::HostSessions};

/// Tools: `echo`, `whoami` (what the context says of the client), `progress` (one
/// notification, then the answer), `slow` (waits to be cancelled), `regional` (an
/// `x-mcp-header` parameter), `ask` (says it needs a live peer).
#[derive(Clone, Default)]
struct Fixture {
    started: Arc<Notify>,
    cancelled: Arc<AtomicBool>,
}

fn schema(value: serde_json::Value) -> Arc<JsonObject> {
    Arc::new(value.as_object().unwrap().clone())
}

fn tools() -> Vec<Tool> {
    let plain = json!({ "type": "object", "properties": { "text": { "type": "string" } } });
    let regional = json!({ "type": "object", "properties": {
        "region": { "type": "string", "x-mcp-header": "Region" } } });
    ["echo", "whoami", "progress", "slow", "ask"]
        .into_iter()
        .map(|name| Tool::new(name, name, schema(plain.clone())))
        .chain([Tool::new("regional", "regional", schema(regional))])
        .collect()
}

fn text(text: impl Into<String>) -> Result<CallToolResponse, ErrorData> {
    Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
}

impl ServerHandler for Fixture {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools().into_iter().find(|tool| tool.name == name)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let argument = |name: &str| {
            request
                .arguments
                .as_ref()
                .and_then(|arguments| arguments.get(name))
                .and_then(|value| value.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        match request.name.as_ref() {
            "echo" => text(argument("text")),
            "regional" => text(argument("region")),
            "whoami" => text(
                json!({
                    "version": context.protocol_version().map(|v| v.as_str().to_owned()),
                    "client": context.client_info().map(|info| info.name),
                    "capabilities": context.client_capabilities(),
                    "principal": context.extensions.get::<http::request::Parts>()
                        .and_then(|parts| parts.headers.get("x-principal"))
                        .and_then(|value| value.to_str().ok()),
                })
                .to_string(),
            ),
            "progress" => {
                let token = context.meta.get_progress_token().unwrap();
                let progress = ProgressNotificationParam::new(token, 1.0);
                match context.extensions.get::<RequestNotifier>() {
                    Some(notifier) => notifier
                        .notify(ServerNotification::ProgressNotification(
                            rmcp::model::ProgressNotification::new(progress),
                        ))
                        .unwrap(),
                    None => context.peer.notify_progress(progress).await.unwrap(),
                }
                text("done")
            }
            "slow" => {
                self.started.notify_one();
                tokio::select! {
                    () = context.ct.cancelled() => self.cancelled.store(true, Ordering::SeqCst),
                    () = tokio::time::sleep(Duration::from_secs(30)) => {}
                }
                text("slow")
            }
            other => Err(ErrorData::invalid_params(
                format!("unknown tool {other}"),
                None,
            )),
        }
    }
}

impl PeerUse for Fixture {
    fn needs_live_peer(&self, request: &ClientRequest) -> bool {
        matches!(request, ClientRequest::CallToolRequest(call) if call.params.name == "ask")
    }
}

/// rmcp's service, configured as `router()` configures it.
fn rmcp_service(handler: Fixture) -> StreamableHttpService<Fixture, HostSessions<Fixture>> {
    let shutdown = CancellationToken::new();
    let sessions = Arc::new(HostSessions::new(handler.clone(), shutdown.child_token()));
    let factory = handler;
    StreamableHttpService::new(
        move || Ok(factory.clone()),
        sessions,
        StreamableHttpServerConfig::default()
            .disable_allowed_hosts()
            .disable_allowed_origins()
            .with_json_response(true)
            .with_cancellation_token(shutdown),
    )
}

fn direct(handler: Fixture) -> Stateless<Fixture, HostSessions<Fixture>> {
    Stateless::new(rmcp_service(handler.clone()), handler)
}

const V2026: &str = "2026-07-28";

fn meta(version: &str) -> serde_json::Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientInfo": { "name": "probe", "version": "1.0" },
        "io.modelcontextprotocol/clientCapabilities": { "elicitation": {} },
    })
}

/// A request as a well-behaved 2026-07-28 client sends it; `edit` changes it.
struct Probe {
    method: Method,
    headers: HeaderMap,
    body: serde_json::Value,
}

impl Probe {
    fn new(method: &str, params: serde_json::Value, name: Option<&str>) -> Self {
        let mut params = params;
        params["_meta"] = meta(V2026);
        let mut headers = HeaderMap::new();
        for (key, value) in [
            ("host", "127.0.0.1:8000"),
            ("accept", "application/json, text/event-stream"),
            ("content-type", "application/json"),
            ("mcp-protocol-version", V2026),
            ("mcp-method", method),
            ("x-principal", "alice"),
        ] {
            headers.insert(key, HeaderValue::from_str(value).unwrap());
        }
        if let Some(name) = name {
            headers.insert("mcp-name", HeaderValue::from_str(name).unwrap());
        }
        Self {
            method: Method::POST,
            headers,
            body: json!({ "jsonrpc": "2.0", "id": 7, "method": method, "params": params }),
        }
    }

    fn call(tool: &str, arguments: serde_json::Value) -> Self {
        Self::new(
            "tools/call",
            json!({ "name": tool, "arguments": arguments }),
            Some(tool),
        )
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers
            .insert(name, HeaderValue::from_str(value).unwrap());
        self
    }

    fn add_header(mut self, name: &'static str, value: &str) -> Self {
        self.headers
            .append(name, HeaderValue::from_str(value).unwrap());
        self
    }

    fn without(mut self, name: &'static str) -> Self {
        self.headers.remove(name);
        self
    }

    fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    fn body(mut self, edit: impl FnOnce(&mut serde_json::Value)) -> Self {
        edit(&mut self.body);
        self
    }

    fn request(&self) -> Request<Body> {
        let mut request = Request::builder()
            .method(self.method.clone())
            .uri("/")
            .body(Body::from(self.body.to_string()))
            .unwrap();
        *request.headers_mut() = self.headers.clone();
        request
    }

    /// What [`admit`] and the handler's peer use make of it.
    fn verdict(&self) -> Result<(), Fallback> {
        let service = direct(Fixture::default());
        let request = self.request();
        head_admits(request.method(), request.uri(), request.headers())?;
        let body = serde_json::to_vec(&self.body).unwrap();
        service.admit_message(&self.headers, &body).map(drop)
    }
}

/// Status, content type and the JSON-RPC messages of an answer.
async fn answer(
    service: impl tower::Service<
        Request<Body>,
        Response = McpResponse,
        Error = Infallible,
        Future = BoxFuture<'static, Result<McpResponse, Infallible>>,
    >,
    request: Request<Body>,
) -> (StatusCode, Option<String>, String) {
    let response = service.oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|value| value.to_str().unwrap().to_owned());
    let body = tokio::time::timeout(Duration::from_secs(20), response.into_body().collect())
        .await
        .expect("the answer ends")
        .unwrap()
        .to_bytes();
    (
        status,
        content_type,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// rmcp wrapped in a [`Stateless`] whose configuration turns it off: rmcp alone.
async fn rmcp_answer(probe: &Probe) -> (StatusCode, Option<String>, String) {
    let inner = rmcp_service(Fixture::default());
    answer(
        tower::service_fn(move |request: Request<Body>| {
            let inner = inner.clone();
            Box::pin(async move { Ok::<_, Infallible>(inner.handle(request).await) })
                as BoxFuture<'static, _>
        }),
        probe.request(),
    )
    .await
}

async fn direct_answer(probe: &Probe) -> (StatusCode, Option<String>, String) {
    answer(direct(Fixture::default()), probe.request()).await
}

/// Requests the direct path serves, and near misses of each that rmcp refuses or serves
/// in its own way. Every one must get the same answer from both.
fn probes() -> Vec<(&'static str, Probe, Result<(), Fallback>)> {
    let echo = || Probe::call("echo", json!({ "text": "hi" }));
    vec![
        ("echo", echo(), Ok(())),
        (
            "whoami: _meta client info, capabilities, request head",
            Probe::call("whoami", json!({})),
            Ok(()),
        ),
        (
            "tools/list",
            Probe::new("tools/list", json!({}), None),
            Ok(()),
        ),
        (
            "server/discover",
            Probe::new("server/discover", json!({}), None),
            Ok(()),
        ),
        (
            "prompts/list of a server without prompts",
            Probe::new("prompts/list", json!({}), None),
            Ok(()),
        ),
        (
            "unknown tool: an error in band",
            Probe::call("nope", json!({})),
            Ok(()),
        ),
        (
            "an older version with complete _meta",
            echo()
                .header("mcp-protocol-version", "2025-11-25")
                .body(|body| {
                    body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] =
                        json!("2025-11-25");
                }),
            Err(Fallback::SessionEra),
        ),
        (
            "regional with its Mcp-Param header",
            Probe::call("regional", json!({ "region": "eu" })).header("mcp-param-region", "eu"),
            Err(Fallback::ParamHeaders),
        ),
        (
            "regional without its Mcp-Param header",
            Probe::call("regional", json!({ "region": "eu" })),
            Err(Fallback::ParamHeaders),
        ),
        (
            "Mcp-Name not the tool",
            echo().header("mcp-name", "other"),
            Err(Fallback::McpName),
        ),
        (
            "Mcp-Name missing",
            echo().without("mcp-name"),
            Err(Fallback::McpName),
        ),
        (
            "Mcp-Name twice",
            echo().add_header("mcp-name", "echo"),
            Err(Fallback::McpName),
        ),
        (
            "Mcp-Name Base64-wrapped",
            echo().header("mcp-name", "=?base64?ZWNobw==?="),
            Err(Fallback::McpName),
        ),
        (
            "Mcp-Method not the body's",
            echo().header("mcp-method", "tools/list"),
            Err(Fallback::McpMethod),
        ),
        (
            "Mcp-Method missing",
            echo().without("mcp-method"),
            Err(Fallback::McpMethod),
        ),
        (
            "Mcp-Method twice",
            echo().add_header("mcp-method", "tools/call"),
            Err(Fallback::McpMethod),
        ),
        (
            "version header missing",
            echo().without("mcp-protocol-version"),
            Err(Fallback::SessionEra),
        ),
        (
            "version header older than the _meta version",
            echo().header("mcp-protocol-version", "2025-11-25"),
            Err(Fallback::SessionEra),
        ),
        (
            "version header later than the _meta version",
            echo().header("mcp-protocol-version", "2099-01-01"),
            Err(Fallback::VersionHeader),
        ),
        (
            "version header twice",
            echo().add_header("mcp-protocol-version", V2026),
            Err(Fallback::VersionHeader),
        ),
        (
            "an unknown version in both",
            echo()
                .header("mcp-protocol-version", "2099-01-01")
                .body(|body| {
                    body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] =
                        json!("2099-01-01");
                }),
            Err(Fallback::UnknownVersion),
        ),
        (
            "_meta without client info (optional)",
            echo().body(|body| {
                body["params"]["_meta"]
                    .as_object_mut()
                    .unwrap()
                    .remove("io.modelcontextprotocol/clientInfo");
            }),
            Ok(()),
        ),
        (
            "_meta without client capabilities",
            echo().body(|body| {
                body["params"]["_meta"]
                    .as_object_mut()
                    .unwrap()
                    .remove("io.modelcontextprotocol/clientCapabilities");
            }),
            Err(Fallback::IncompleteMeta),
        ),
        (
            "no _meta at all",
            echo().body(|body| {
                body["params"].as_object_mut().unwrap().remove("_meta");
            }),
            Err(Fallback::NoRequestVersion),
        ),
        (
            "ping, gone in 2026-07-28",
            Probe::new("ping", json!({}), None),
            Err(Fallback::Method),
        ),
        (
            "a notification",
            Probe::new("notifications/initialized", json!({}), None).body(|body| {
                body.as_object_mut().unwrap().remove("id");
            }),
            Err(Fallback::NotARequest),
        ),
        (
            "a tool that needs a live peer",
            Probe::call("ask", json!({})),
            Err(Fallback::LivePeer),
        ),
        (
            "Accept without SSE",
            echo().header("accept", "application/json"),
            Err(Fallback::Accept),
        ),
        (
            "Accept with weights",
            echo().header("accept", "application/json;q=0.9, text/event-stream"),
            Err(Fallback::Accept),
        ),
        (
            "Content-Type not JSON",
            echo().header("content-type", "text/plain"),
            Err(Fallback::ContentType),
        ),
        (
            "an Origin header",
            echo().header("origin", "http://127.0.0.1:8000"),
            Err(Fallback::Origin),
        ),
        (
            "not JSON",
            echo().body(|body| *body = json!("not a message")),
            Err(Fallback::NotAMessage),
        ),
        ("GET", echo().method(Method::GET), Err(Fallback::NotPost)),
        (
            "DELETE",
            echo().method(Method::DELETE),
            Err(Fallback::NotPost),
        ),
    ]
}

#[tokio::test]
async fn each_probe_takes_the_path_it_should() {
    for (name, probe, expected) in probes() {
        assert_eq!(probe.verdict(), expected, "{name}");
    }
}

#[tokio::test]
async fn every_probe_gets_the_answer_rmcp_gives() {
    for (name, probe, _) in probes() {
        let ours = direct_answer(&probe).await;
        let theirs = rmcp_answer(&probe).await;
        assert_eq!(ours, theirs, "{name}");
    }
}

#[tokio::test]
async fn answers_carry_what_the_request_said() {
    let (status, content_type, body) = direct_answer(&Probe::call("whoami", json!({}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some(JSON_MIME_TYPE));
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    let text = answer["result"]["content"][0]["text"].as_str().unwrap();
    let seen: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(seen["version"], V2026);
    assert_eq!(seen["client"], "probe");
    assert!(seen["capabilities"]["elicitation"].is_object(), "{seen}");
    assert_eq!(seen["principal"], "alice");
    // 2026-07-28 results carry their cache hint (rmcp's handler adds it).
    assert_eq!(answer["result"]["resultType"], "complete", "{answer}");

    let (status, _, body) = direct_answer(&Probe::new("no/such", json!({}), None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn progress_first_makes_a_stream_with_the_answer_last() {
    let probe = Probe::call("progress", json!({}))
        .body(|body| body["params"]["_meta"]["progressToken"] = json!(3));
    assert_eq!(probe.verdict(), Ok(()));
    let (status, content_type, body) = direct_answer(&probe).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some(EVENT_STREAM_MIME_TYPE));
    let events: Vec<serde_json::Value> = body
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|data| serde_json::from_str(data.trim()).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{body}");
    assert_eq!(events[0]["method"], "notifications/progress");
    assert_eq!(events[1]["id"], 7);
    // Byte for byte what rmcp streams.
    assert_eq!(
        (status, content_type, body),
        rmcp_answer(&probe).await,
        "progress stream"
    );
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_its_call() {
    let fixture = Fixture::default();
    let service = direct(fixture.clone());
    let probe = Probe::call("slow", json!({}));
    assert_eq!(probe.verdict(), Ok(()));
    let pending = tokio::spawn(service.oneshot(probe.request()));
    tokio::time::timeout(Duration::from_secs(10), fixture.started.notified())
        .await
        .expect("the call starts");
    assert!(!fixture.cancelled.load(Ordering::SeqCst));
    pending.abort();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !fixture.cancelled.load(Ordering::SeqCst) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the call was not cancelled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_call_runs_on_the_task_that_answers_it() {
    // rmcp's path keeps a loop task and a handler task alive for a running call; here the
    // call is polled by the request's own future, so no task is alive beside it.
    let fixture = Fixture::default();
    let service = direct(fixture.clone());
    // The detached peer for 2026-07-28 is made (and its task gone) on first use.
    answer(service.clone(), Probe::call("echo", json!({})).request()).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let call = service.oneshot(Probe::call("slow", json!({})).request());
    tokio::pin!(call);
    tokio::select! {
        _ = &mut call => panic!("slow answered"),
        () = fixture.started.notified() => {}
    }
    assert!(
        metrics.num_alive_tasks() <= before,
        "a task runs beside the call"
    );

    // Near miss: the same call through rmcp has tasks of its own.
    let fixture = Fixture::default();
    let inner = rmcp_service(fixture.clone());
    let before = metrics.num_alive_tasks();
    let call = inner.handle(Probe::call("slow", json!({})).request());
    tokio::pin!(call);
    tokio::select! {
        _ = &mut call => panic!("slow answered"),
        () = fixture.started.notified() => {}
    }
    assert!(metrics.num_alive_tasks() > before);
}

#[test]
fn the_configuration_router_uses_admits_and_others_do_not() {
    let plain = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .disable_allowed_origins();
    assert_eq!(config_admits(&plain), Ok(()));
    // Near misses: rmcp's own host allowlist, or required per-request metadata.
    assert_eq!(
        config_admits(&StreamableHttpServerConfig::default().disable_allowed_origins()),
        Err(Fallback::ServiceConfig)
    );
    assert_eq!(
        config_admits(&plain.with_stateless_protocol_metadata_required(true)),
        Err(Fallback::ServiceConfig)
    );
}

#[test]
fn the_head_needs_post_and_a_readable_host() {
    let headers = Probe::call("echo", json!({})).headers;
    let uri = http::Uri::from_static("/");
    assert_eq!(head_admits(&Method::POST, &uri, &headers), Ok(()));
    assert_eq!(
        head_admits(&Method::GET, &uri, &headers),
        Err(Fallback::NotPost)
    );
    let mut no_host = headers;
    no_host.remove(header::HOST);
    assert_eq!(
        head_admits(&Method::POST, &uri, &no_host),
        Err(Fallback::Host)
    );
    // Near miss: the authority may come from the URI (HTTP/2).
    let absolute = http::Uri::from_static("http://127.0.0.1:8000/mcp");
    assert_eq!(head_admits(&Method::POST, &absolute, &no_host), Ok(()));
}

#[test]
fn statuses_are_rmcps() {
    let error = |code| {
        ServerJsonRpcMessage::error(
            ErrorData::new(code, "x", None),
            Some(rmcp::model::RequestId::Number(1)),
        )
    };
    assert_eq!(
        http_status(&error(ErrorCode::HEADER_MISMATCH)),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        http_status(&error(ErrorCode::UNSUPPORTED_PROTOCOL_VERSION)),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        http_status(&error(ErrorCode::METHOD_NOT_FOUND)),
        StatusCode::NOT_FOUND
    );
    // Near miss: a request's own error (complete _meta) stays in band.
    assert_eq!(
        http_status(&error(ErrorCode::INVALID_PARAMS)),
        StatusCode::OK
    );
}

#[test]
fn param_headers_are_found_along_properties_chains_only() {
    let nested =
        json!({ "properties": { "a": { "properties": { "b": { "x-mcp-header": "B" } } } } });
    assert!(has_param_headers(nested.as_object().unwrap()));
    // Near miss: an annotation outside a properties chain is not one rmcp checks.
    let elsewhere = json!({ "properties": { "a": { "items": { "x-mcp-header": "B" } } } });
    assert!(!has_param_headers(elsewhere.as_object().unwrap()));
}
