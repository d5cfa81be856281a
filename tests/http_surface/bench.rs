//! The test bench every file of this crate shares: the product's router (`http::router`
//! over the real [`HostTools`]) built from an in-memory configuration and a temporary audit
//! log, requests as a client on [`PEER`] sends them (through the host guard's [`HOST`]),
//! answers read whole (JSON, or SSE up to the JSON-RPC answer), and the audit records read
//! back. No socket: `tower::ServiceExt::oneshot` hands each request to the router.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::ConnectInfo,
    http::{HeaderMap, Method, Request, StatusCode, header},
};
use hostmcp::{
    audit::{AuditLog, AuditOptions},
    auth::{Principal, Role, TokenDigest, TokenEntry, TokenSet, authenticator::Authenticator},
    config::ConnectionSettings,
    exec::BaseEnv,
    tools::{HostTools, ToolSettings, ToolsState},
    transport::{
        host_guard::HostGuard,
        http::{self, HttpServerParts},
    },
};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// The address the server listens on, as far as the host guard knows.
pub const LISTEN: &str = "127.0.0.1:8000";
/// The `Host` header every request carries unless a test says otherwise.
pub const HOST: &str = "127.0.0.1:8000";
/// The browser origin the operator allowed (`--allowed-origin`).
pub const ALLOWED_ORIGIN: &str = "https://console.example.test";
/// The client address requests come from (the peer of their connection).
pub const PEER: &str = "192.0.2.7:40000";
/// The session-era protocol version the tests negotiate.
pub const SESSION_ERA: &str = "2025-06-18";
/// The stateless era.
pub const STATELESS_ERA: &str = "2026-07-28";

/// A principal the bench's tokens authenticate as.
#[derive(Debug, Clone, Copy)]
pub struct Who {
    pub name: &'static str,
    pub token: &'static str,
    pub role: Role,
}

pub const ALICE: Who = Who {
    name: "alice",
    token: "alice-token-0123456789abcdef",
    role: Role::Operator,
};
pub const BOB: Who = Who {
    name: "bob",
    token: "bob-token-0123456789abcdef",
    role: Role::Operator,
};
pub const READER: Who = Who {
    name: "reader",
    token: "reader-token-0123456789abcdef",
    role: Role::Read,
};

impl Who {
    pub fn bearer(self) -> String {
        format!("Bearer {}", self.token)
    }

    /// The principal this token authenticates as (what `hostmcp stdio` serves as).
    pub fn principal(self) -> Principal {
        token_set()
            .authenticate(self.token)
            .expect("a bench token authenticates")
    }
}

fn token_set() -> TokenSet {
    TokenSet::new(
        [ALICE, BOB, READER]
            .iter()
            .map(|who| TokenEntry::new(who.name, TokenDigest::of_token(who.token), who.role))
            .collect(),
    )
}

/// What a test may change of the server's settings; the rest are the product defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    pub auth_failures_per_minute: u32,
    pub tool_calls_per_minute: Option<u32>,
    pub max_sessions_per_principal: usize,
    pub max_streams_per_principal: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            auth_failures_per_minute: 100,
            tool_calls_per_minute: None,
            max_sessions_per_principal: ConnectionSettings::default().max_sessions_per_principal,
            max_streams_per_principal: ConnectionSettings::default().max_streams_per_principal,
        }
    }
}

/// The tools of a server, as `hostmcp serve` builds them: commands run as the user who runs
/// the tests, under the permissive policy.
pub fn host_tools(settings: &Settings, audit: AuditLog, shutdown: &CancellationToken) -> HostTools {
    HostTools::new(ToolsState::new(
        ToolSettings {
            tool_calls_per_minute: settings.tool_calls_per_minute,
            run_as: hostmcp::exec::run_as::current_user_name(),
            ..ToolSettings::default()
        },
        BaseEnv::from_server_env(),
        audit,
        shutdown,
    ))
}

/// A temporary audit log, written by the writer thread of the product's [`AuditLog`].
pub struct TempAudit {
    pub log: AuditLog,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl TempAudit {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path, AuditOptions::default()).expect("the audit log opens");
        Self {
            log,
            path,
            _dir: dir,
        }
    }

    /// Every record written so far, once the ones already queued are on disk.
    pub async fn records(&self) -> Vec<Value> {
        // `reopen` travels the writer's queue behind the records queued before it, so its
        // answer means they are written; the path still names the file, which is kept.
        self.log.reopen().await.expect("the audit log is writable");
        std::fs::read_to_string(&self.path)
            .expect("the audit log is readable")
            .lines()
            .map(|line| serde_json::from_str(line).expect("each record is one JSON object"))
            .collect()
    }

    /// The records whose `"event"` is `kind`.
    pub async fn events(&self, kind: &str) -> Vec<Value> {
        self.records()
            .await
            .into_iter()
            .filter(|record| record["event"] == kind)
            .collect()
    }
}

/// The product's router with the bench's tokens and a temporary audit log.
pub struct Bench {
    pub app: Router,
    pub audit: TempAudit,
    shutdown: CancellationToken,
}

impl Bench {
    pub fn new() -> Self {
        Self::with(Settings::default())
    }

    /// Must run inside a tokio runtime: the router's session tables start their sweepers.
    pub fn with(settings: Settings) -> Self {
        let audit = TempAudit::new();
        let shutdown = CancellationToken::new();
        let listen: SocketAddr = LISTEN.parse().expect("a socket address");
        let parts = HttpServerParts {
            handler: host_tools(&settings, audit.log.clone(), &shutdown),
            authenticator: Arc::new(Authenticator::tokens(token_set())),
            audit: audit.log.clone(),
            auth_failures_per_minute: settings.auth_failures_per_minute,
            trusted_proxies: Default::default(),
            host_guard: Arc::new(HostGuard::new(&[listen], &[], &[ALLOWED_ORIGIN.to_owned()])),
            max_streams_per_principal: settings.max_streams_per_principal,
            max_sessions_per_principal: settings.max_sessions_per_principal,
            shutdown: shutdown.clone(),
            metrics: None,
        };
        Self {
            app: http::router(parts),
            audit,
            shutdown,
        }
    }

    /// Hand one request to the router and read its answer.
    pub async fn send(&self, request: Request<Body>) -> Reply {
        Reply::read(self.respond(request).await).await
    }

    /// Hand one request to the router; its response unread (a stream stays open while
    /// its body is held).
    pub async fn respond(&self, request: Request<Body>) -> axum::response::Response {
        self.app
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible")
    }

    /// Open a session-era session as `who`; its id.
    pub async fn initialize(&self, who: Who) -> String {
        let reply = self.send(post_mcp(Some(who), &initialize(1))).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let session = reply
            .header("mcp-session-id")
            .expect("initialize answers with a session id")
            .to_owned();
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let reply = self
            .send(in_session(Some(who), &session, &initialized))
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text());
        session
    }

    /// One stateless (2026-07-28) `tools/call` as `who`.
    pub async fn call(&self, who: Who, tool: &str, arguments: Value) -> Reply {
        self.send(call_2026(Some(who), tool, arguments)).await
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A request to the server: the bench's `Host`, and the connection's peer as axum's
/// listener would give it.
pub fn request(method: Method, path: &str) -> axum::http::request::Builder {
    let peer: SocketAddr = PEER.parse().expect("a socket address");
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, HOST)
        .extension(ConnectInfo(peer))
}

/// A POST of `message` to `/mcp` as an MCP client sends it, with `who`'s token if any.
pub fn post_mcp(who: Option<Who>, message: &Value) -> Request<Body> {
    let mut builder = request(Method::POST, "/mcp")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(who) = who {
        builder = builder.header(header::AUTHORIZATION, who.bearer());
    }
    builder
        .body(Body::from(message.to_string()))
        .expect("a valid request")
}

/// [`post_mcp`] within a session-era session.
pub fn in_session(who: Option<Who>, session: &str, message: &Value) -> Request<Body> {
    let mut request = post_mcp(who, message);
    let headers = request.headers_mut();
    headers.insert("mcp-session-id", session.parse().expect("a header value"));
    headers.insert("mcp-protocol-version", SESSION_ERA.parse().unwrap());
    request
}

/// A stateless (2026-07-28) `tools/call`: the era's headers, and the client's facts in `_meta`.
pub fn call_2026(who: Option<Who>, tool: &str, arguments: Value) -> Request<Body> {
    let message = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments, "_meta": stateless_meta()},
    });
    let mut request = post_mcp(who, &message);
    let headers = request.headers_mut();
    headers.insert("mcp-protocol-version", STATELESS_ERA.parse().unwrap());
    headers.insert("mcp-method", "tools/call".parse().unwrap());
    headers.insert("mcp-name", tool.parse().expect("a header value"));
    request
}

/// The stateless era's `tools/list`.
pub fn list_2026(who: Option<Who>) -> Request<Body> {
    let message = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/list",
        "params": {"_meta": stateless_meta()},
    });
    let mut request = post_mcp(who, &message);
    let headers = request.headers_mut();
    headers.insert("mcp-protocol-version", STATELESS_ERA.parse().unwrap());
    headers.insert("mcp-method", "tools/list".parse().unwrap());
    request
}

fn stateless_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": STATELESS_ERA,
        "io.modelcontextprotocol/clientInfo": {"name": "http-surface", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

pub fn initialize(id: u64) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "initialize",
        "params": {
            "protocolVersion": SESSION_ERA,
            "capabilities": {},
            "clientInfo": {"name": "http-surface", "version": "1"},
        },
    })
}

pub fn ping(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "ping"})
}

/// How long an answer may take; generous, for a loaded machine. Only a hang reaches it.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(60);

/// A response read whole: an SSE body up to the first JSON-RPC answer it carries (a
/// session's request stream may stay open after it).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    async fn read(response: axum::response::Response) -> Self {
        let (parts, mut body) = response.into_parts();
        let sse = parts
            .headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
        let mut bytes = Vec::new();
        let read = async {
            while let Some(frame) = body.frame().await {
                let frame = frame.expect("the response body is readable");
                if let Some(data) = frame.data_ref() {
                    bytes.extend_from_slice(data);
                    if sse && answer_in(&sse_messages(&bytes)).is_some() {
                        break;
                    }
                }
            }
        };
        tokio::time::timeout(ANSWER_WITHIN, read)
            .await
            .expect("the response is answered in time");
        Self {
            status: parts.status,
            headers: parts.headers,
            body: Bytes::from(bytes),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|value| value.to_str().expect("a text header"))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as one JSON value (a JSON response).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text()))
    }

    /// The JSON-RPC answer (`result` or `error`), from a JSON or an SSE body.
    pub fn answer(&self) -> Value {
        let is_sse = self
            .header("content-type")
            .is_some_and(|kind| kind.starts_with("text/event-stream"));
        if is_sse {
            answer_in(&sse_messages(&self.body))
                .unwrap_or_else(|| panic!("no JSON-RPC answer in the stream: {}", self.text()))
        } else {
            self.json()
        }
    }

    /// The `result` of a successful answer.
    pub fn result(&self) -> Value {
        let answer = self.answer();
        assert!(answer.get("error").is_none(), "an error answer: {answer}");
        answer["result"].clone()
    }
}

/// The JSON messages of an SSE body's `data:` lines (a priming event has none).
fn sse_messages(body: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .filter(|data| !data.is_empty())
        .filter_map(|data| serde_json::from_str(data).ok())
        .collect()
}

fn answer_in(messages: &[Value]) -> Option<Value> {
    messages
        .iter()
        .find(|message| message.get("result").is_some() || message.get("error").is_some())
        .cloned()
}

/// The text a model reads of a tool result.
pub fn text_of(result: &Value) -> &str {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("a text content block: {result}"))
}
