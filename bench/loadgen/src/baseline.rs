//! `loadgen baseline-server`: the machine's HTTP limit. A minimal axum server answering
//! the same MCP-shaped JSON as a real server, behind the same bearer check, with no MCP
//! framework: `initialize` (a session id in a map), `tools/call` of `echo` (text back)
//! and `run_command` (tokio spawn-and-wait with piped output), on /mcp (plain JSON
//! answers; GET holds a stream, DELETE ends a session) and legacy /sse + /messages.

use std::{
    collections::HashMap,
    convert::Infallible,
    hash::BuildHasher,
    net::SocketAddr,
    pin::Pin,
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
    serve::ListenerExt,
};
use clap::Args;
use http_body::Frame;
use serde_json::{Value, json};
use tokio::sync::mpsc;

#[derive(Args, Debug)]
pub struct BaselineArgs {
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Required bearer token (or env BENCH_TOKEN); none disables the check.
    #[arg(long, env = "BENCH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

struct AppState {
    expected: Option<Vec<u8>>,
    /// Session id -> the sender that keeps its GET stream open (if one is open).
    sessions: Mutex<HashMap<String, Option<mpsc::Sender<Bytes>>>>,
    sse: Mutex<HashMap<String, mpsc::Sender<Bytes>>>,
    counter: AtomicU64,
    hasher: std::collections::hash_map::RandomState,
}

type Shared = Arc<AppState>;

impl AppState {
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.expected else {
            return true;
        };
        let got = headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes)
            .unwrap_or(b"");
        // Constant time in the token length.
        got.len() == expected.len()
            && got
                .iter()
                .zip(expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    fn new_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!(
            "{:016x}{:016x}",
            self.hasher.hash_one(n),
            self.hasher.hash_one(!n)
        )
    }
}

pub fn main(args: BaselineArgs) -> Result<(), String> {
    let state = Arc::new(AppState {
        expected: args
            .token
            .filter(|t| !t.is_empty())
            .map(|t| format!("Bearer {t}").into_bytes()),
        sessions: Mutex::default(),
        sse: Mutex::default(),
        counter: AtomicU64::new(1),
        hasher: Default::default(),
    });
    let app = Router::new()
        .route("/mcp", post(post_mcp).get(get_mcp).delete(delete_mcp))
        .route("/sse", get(get_sse))
        .route("/messages", post(post_messages))
        .with_state(state);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| e.to_string())?;
        eprintln!(
            "address={}",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        let listener = listener.tap_io(|s| {
            let _ = s.set_nodelay(true);
        });
        // Nothing to flush, but exit (rather than die of the signal) so that a tool
        // the server runs under and that reports at exit, like callgrind, gets to report.
        tokio::spawn(exit_on_signal());
        axum::serve(listener, app).await.map_err(|e| e.to_string())
    })
}

/// Exit with status 0 on SIGTERM or SIGINT (the signals bench/*.sh stop servers with).
async fn exit_on_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprintln!("loadgen: cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    std::process::exit(0);
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, "Bearer realm=\"bench\""),
            (header::CONTENT_TYPE, "application/json"),
        ],
        r#"{"error":"unauthorized"}"#,
    )
        .into_response()
}

fn json_response(value: &Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// Answer one JSON-RPC request (None for a notification).
async fn dispatch(message: &Value) -> Option<Value> {
    let id = message.get("id")?.clone();
    let method = message.get("method").and_then(Value::as_str).unwrap_or("");
    let params = message.get("params").cloned().unwrap_or(Value::Null);
    let result = match method {
        "initialize" => Ok(json!({
            "protocolVersion": params.get("protocolVersion").cloned().unwrap_or(json!("2025-11-25")),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "bench-baseline", "version": "0.1.0"},
        })),
        "ping" => Ok(json!({})),
        "tools/list" => Ok(json!({"tools": [
            {"name": "echo", "inputSchema": {"type": "object"}},
            {"name": "run_command", "inputSchema": {"type": "object"}},
        ]})),
        "tools/call" => call_tool(&params).await,
        _ => Err((-32601, format!("method not found: {method}"))),
    };
    Some(match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err((code, message)) => {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
        }
    })
}

async fn call_tool(params: &Value) -> Result<Value, (i64, String)> {
    let arguments = params.get("arguments").cloned().unwrap_or(Value::Null);
    match params.get("name").and_then(Value::as_str) {
        Some("echo") => {
            let text = arguments
                .get("text")
                .and_then(Value::as_str)
                .ok_or((-32602, "text is required".to_string()))?;
            Ok(json!({"content": [{"type": "text", "text": text}], "isError": false}))
        }
        Some("run_command") => {
            let argv: Vec<String> = arguments
                .get("argv")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .filter(|a: &Vec<String>| !a.is_empty())
                .ok_or((-32602, "argv is required".to_string()))?;
            let output = tokio::process::Command::new(&argv[0])
                .args(&argv[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .output()
                .await;
            Ok(match output {
                Ok(out) => {
                    let code = out.status.code();
                    json!({
                        "content": [{"type": "text", "text": format!("exit code {code:?}")}],
                        "structuredContent": {
                            "exit_code": code,
                            "stdout": String::from_utf8_lossy(&out.stdout),
                            "stderr": String::from_utf8_lossy(&out.stderr),
                        },
                        "isError": code != Some(0),
                    })
                }
                Err(e) => {
                    json!({"content": [{"type": "text", "text": e.to_string()}], "isError": true})
                }
            })
        }
        other => Err((-32602, format!("unknown tool {other:?}"))),
    }
}

const SESSION: &str = "mcp-session-id";

async fn post_mcp(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if !state.authorized(&headers) {
        return unauthorized();
    }
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "bad JSON").into_response();
    };
    let session = headers.get(SESSION).and_then(|v| v.to_str().ok());
    if let Some(id) = session {
        if !state.sessions.lock().unwrap().contains_key(id) {
            return (StatusCode::NOT_FOUND, "session not found").into_response();
        }
    }
    let is_initialize = message.get("method").and_then(Value::as_str) == Some("initialize");
    let Some(answer) = dispatch(&message).await else {
        return StatusCode::ACCEPTED.into_response();
    };
    let mut response = json_response(&answer);
    if is_initialize && session.is_none() {
        let id = state.new_id();
        state.sessions.lock().unwrap().insert(id.clone(), None);
        response
            .headers_mut()
            .insert(SESSION, HeaderValue::from_str(&id).expect("hex id"));
    }
    response
}

async fn get_mcp(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if !state.authorized(&headers) {
        return unauthorized();
    }
    let Some(id) = headers.get(SESSION).and_then(|v| v.to_str().ok()) else {
        return (StatusCode::BAD_REQUEST, "session id required").into_response();
    };
    let (tx, rx) = mpsc::channel(8);
    match state.sessions.lock().unwrap().get_mut(id) {
        Some(slot) => *slot = Some(tx),
        None => return (StatusCode::NOT_FOUND, "session not found").into_response(),
    }
    event_stream(ChannelBody {
        first: None,
        rx,
        _guard: None,
    })
}

async fn delete_mcp(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if !state.authorized(&headers) {
        return unauthorized();
    }
    let id = headers
        .get(SESSION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match state.sessions.lock().unwrap().remove(id) {
        Some(_) => StatusCode::OK.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn event_stream(body: ChannelBody) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::new(body),
    )
        .into_response()
}

/// Removes a legacy SSE session when its stream is dropped.
struct SseGuard {
    state: Shared,
    id: String,
}

impl Drop for SseGuard {
    fn drop(&mut self) {
        self.state.sse.lock().unwrap().remove(&self.id);
    }
}

/// An SSE body fed by a channel.
struct ChannelBody {
    first: Option<Bytes>,
    rx: mpsc::Receiver<Bytes>,
    _guard: Option<SseGuard>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        this.rx
            .poll_recv(cx)
            .map(|item| item.map(|b| Ok(Frame::data(b))))
    }
}

async fn get_sse(State(state): State<Shared>, headers: HeaderMap) -> Response {
    if !state.authorized(&headers) {
        return unauthorized();
    }
    let id = state.new_id();
    let (tx, rx) = mpsc::channel(64);
    state.sse.lock().unwrap().insert(id.clone(), tx);
    let first = Bytes::from(format!(
        "event: endpoint\ndata: /messages?sessionId={id}\n\n"
    ));
    event_stream(ChannelBody {
        first: Some(first),
        rx,
        _guard: Some(SseGuard { state, id }),
    })
}

async fn post_messages(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !state.authorized(&headers) {
        return unauthorized();
    }
    let tx = {
        let id = query.get("sessionId").map(String::as_str).unwrap_or("");
        match state.sse.lock().unwrap().get(id) {
            Some(tx) => tx.clone(),
            None => return (StatusCode::NOT_FOUND, "session not found").into_response(),
        }
    };
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "bad JSON").into_response();
    };
    tokio::spawn(async move {
        if let Some(answer) = dispatch(&message).await {
            let _ = tx
                .send(Bytes::from(format!("event: message\ndata: {answer}\n\n")))
                .await;
        }
    });
    (StatusCode::ACCEPTED, "Accepted").into_response()
}
