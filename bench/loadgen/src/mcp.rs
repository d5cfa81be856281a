//! MCP client sessions over the three HTTP transports, reduced to what a benchmark
//! needs: open (initialize where the era has one), call one tool and check the answer,
//! close. Every check that fails is a typed [`Error`] whose kind is counted apart.

use std::fmt;

use bytes::Bytes;
use hyper::{
    Method, StatusCode,
    header::{HeaderName, HeaderValue},
};
use serde_json::Value;

use crate::{
    Transport, Workload,
    http::{self, Conn, SseReader, Target},
};

const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");

/// Why a call did not count.
#[derive(Debug, Clone)]
pub enum Error {
    Connect(String),
    Transport(String),
    Status(u16, String),
    BadBody(String),
    NoResponse,
    WrongId,
    RpcError(i64, String),
    ToolError(String),
    WrongResult(String),
    Timeout,
    StreamClosed,
}

impl Error {
    /// The key under which the report counts this error.
    pub fn kind(&self) -> String {
        match self {
            Self::Connect(_) => "connect".into(),
            Self::Transport(_) => "transport".into(),
            Self::Status(code, _) => format!("http_{code}"),
            Self::BadBody(_) => "bad_body".into(),
            Self::NoResponse => "no_response".into(),
            Self::WrongId => "wrong_id".into(),
            Self::RpcError(code, _) => format!("jsonrpc_{code}"),
            Self::ToolError(_) => "tool_error".into(),
            Self::WrongResult(_) => "wrong_result".into(),
            Self::Timeout => "timeout".into(),
            Self::StreamClosed => "stream_closed".into(),
        }
    }

    /// After this error the session (or its connection) cannot be trusted.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::Connect(_)
                | Self::Transport(_)
                | Self::Timeout
                | Self::StreamClosed
                | Self::Status(404, _)
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(m) => write!(f, "connect: {m}"),
            Self::Transport(m) => write!(f, "transport: {m}"),
            Self::Status(c, b) => write!(f, "HTTP {c}: {b}"),
            Self::BadBody(m) => write!(f, "bad body: {m}"),
            Self::NoResponse => write!(f, "no JSON-RPC response with the request's id"),
            Self::WrongId => write!(f, "response id differs from the request id"),
            Self::RpcError(c, m) => write!(f, "JSON-RPC error {c}: {m}"),
            Self::ToolError(m) => write!(f, "tool result isError: {m}"),
            Self::WrongResult(m) => write!(f, "wrong result: {m}"),
            Self::Timeout => write!(f, "request timed out"),
            Self::StreamClosed => write!(f, "SSE stream closed"),
        }
    }
}

/// One tools/call to make, and what its answer must contain.
pub struct Call {
    pub id: u64,
    pub body: Bytes,
    pub expect: Expect,
}

pub enum Expect {
    Text(String),
    ExitZero,
}

/// Builds the calls of one session.
#[derive(Clone)]
pub struct CallFactory {
    pub workload: Workload,
    pub tool: String,
    /// `"argv":[...]` already as JSON.
    pub argv_json: String,
    pub stateless_meta: Option<String>,
}

impl CallFactory {
    pub fn new(args: &crate::TargetArgs) -> Self {
        let tool = args.tool.clone().unwrap_or_else(|| match args.workload {
            Workload::Echo => "echo".into(),
            Workload::Command => "run_command".into(),
        });
        let argv: Vec<String> = if args.argv.is_empty() {
            vec!["true".into()]
        } else {
            args.argv.clone()
        };
        let stateless_meta = (args.transport == Transport::McpStateless).then(|| {
            format!(
                r#""_meta":{{"io.modelcontextprotocol/protocolVersion":{},"io.modelcontextprotocol/clientInfo":{{"name":"hostmcp-loadgen","version":"0.1.0"}},"io.modelcontextprotocol/clientCapabilities":{{}}}}"#,
                Value::from(args.stateless_version.clone())
            )
        });
        Self {
            workload: args.workload,
            tool,
            argv_json: Value::from(argv).to_string(),
            stateless_meta,
        }
    }

    pub fn make(&self, session: usize, id: u64) -> Call {
        let (arguments, expect) = match self.workload {
            Workload::Echo => {
                let text = format!("bench-{session}-{id}");
                (format!(r#"{{"text":"{text}"}}"#), Expect::Text(text))
            }
            Workload::Command => (
                format!(r#"{{"argv":{}}}"#, self.argv_json),
                Expect::ExitZero,
            ),
        };
        let meta = match &self.stateless_meta {
            Some(m) => format!(",{m}"),
            None => String::new(),
        };
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":{},"arguments":{arguments}{meta}}}}}"#,
            Value::from(self.tool.as_str())
        );
        Call {
            id,
            body: Bytes::from(body),
            expect,
        }
    }
}

/// Check one JSON-RPC response against its call.
pub fn check(message: &Value, call: &Call) -> Result<(), Error> {
    if message.get("id").and_then(Value::as_u64) != Some(call.id) {
        return Err(Error::WrongId);
    }
    if let Some(error) = message.get("error") {
        return Err(Error::RpcError(
            error.get("code").and_then(Value::as_i64).unwrap_or(0),
            error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        ));
    }
    let Some(result) = message.get("result") else {
        return Err(Error::WrongResult("no result".into()));
    };
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        let text = result
            .pointer("/content/0/text")
            .and_then(Value::as_str)
            .unwrap_or("");
        return Err(Error::ToolError(text.chars().take(200).collect()));
    }
    match &call.expect {
        Expect::Text(want) => match result.pointer("/content/0/text").and_then(Value::as_str) {
            Some(got) if got == want => Ok(()),
            got => Err(Error::WrongResult(format!("text {got:?}, want {want:?}"))),
        },
        Expect::ExitZero => match result
            .pointer("/structuredContent/exit_code")
            .and_then(Value::as_i64)
        {
            Some(0) => Ok(()),
            got => Err(Error::WrongResult(format!("exit_code {got:?}"))),
        },
    }
}

/// Find the JSON-RPC response with `id` in a POST answer (JSON or an SSE stream body).
fn find_response(body: &[u8], event_stream: bool, id: u64) -> Result<Value, Error> {
    if !event_stream {
        return serde_json::from_slice(body).map_err(|e| Error::BadBody(e.to_string()));
    }
    let mut buf = bytes::BytesMut::from(body);
    buf.extend_from_slice(b"\n\n");
    let mut events = Vec::new();
    http::parse_events(&mut buf, &mut events);
    for event in events {
        if event.data.is_empty() {
            continue;
        }
        let message: Value =
            serde_json::from_str(&event.data).map_err(|e| Error::BadBody(e.to_string()))?;
        if message.get("id").and_then(Value::as_u64) == Some(id) {
            return Ok(message);
        }
    }
    Err(Error::NoResponse)
}

async fn status_error(response: hyper::Response<hyper::body::Incoming>) -> Error {
    let status = response.status().as_u16();
    let body = http::body_bytes(response).await.unwrap_or_default();
    Error::Status(
        status,
        String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    )
}

/// POST a JSON-RPC request on `conn` and return the response with `id`.
async fn post_request(
    conn: &mut Conn,
    target: &Target,
    path: &str,
    body: Bytes,
    id: u64,
    headers: &[(HeaderName, HeaderValue)],
) -> Result<(Value, hyper::HeaderMap), Error> {
    let response = conn.send(target.post(path, body, headers)).await?;
    if response.status() != StatusCode::OK {
        return Err(status_error(response).await);
    }
    let event_stream = http::is_event_stream(&response);
    let headers = response.headers().clone();
    let body = http::body_bytes(response).await?;
    Ok((find_response(&body, event_stream, id)?, headers))
}

/// POST a notification (or, on /messages, any message): expect 2xx, drain the body.
async fn post_accepted(
    conn: &mut Conn,
    target: &Target,
    path: &str,
    body: Bytes,
    headers: &[(HeaderName, HeaderValue)],
) -> Result<(), Error> {
    let response = conn.send(target.post(path, body, headers)).await?;
    if !response.status().is_success() {
        return Err(status_error(response).await);
    }
    http::body_bytes(response).await?;
    Ok(())
}

fn initialize_body(id: u64, version: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"initialize","params":{{"protocolVersion":{},"capabilities":{{}},"clientInfo":{{"name":"hostmcp-loadgen","version":"0.1.0"}}}}}}"#,
        Value::from(version)
    ))
}

const INITIALIZED: &[u8] = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// Settings every session of a run shares.
#[derive(Clone)]
pub struct SessionConfig {
    pub target: Target,
    pub transport: Transport,
    pub mcp_path: String,
    pub sse_path: String,
    pub init_version: String,
    pub stateless_version: HeaderValue,
}

impl SessionConfig {
    pub fn new(args: &crate::TargetArgs) -> Result<Self, String> {
        Ok(Self {
            target: Target::parse(&args.url, args.token.as_deref())?,
            transport: args.transport,
            mcp_path: args.mcp_path.clone(),
            sse_path: args.sse_path.clone(),
            init_version: args.init_version.clone(),
            stateless_version: HeaderValue::from_str(&args.stateless_version)
                .map_err(|e| e.to_string())?,
        })
    }
}

/// A live MCP session.
pub enum Session {
    Mcp {
        conn: Conn,
        headers: Vec<(HeaderName, HeaderValue)>,
        session_id: HeaderValue,
        /// The standalone GET stream and its connection, when held open (idle sessions).
        stream: Option<(SseReader, Conn)>,
    },
    Stateless {
        conn: Conn,
        version: HeaderValue,
        name: HeaderValue,
    },
    Sse {
        post: Conn,
        stream: SseReader,
        endpoint: String,
        /// The connection the stream arrives on (kept so it stays open).
        _get: Conn,
    },
}

impl Session {
    /// Open a session: connect, and initialize where the era has a handshake.
    pub async fn open(config: &SessionConfig, tool: &str) -> Result<Self, Error> {
        let target = &config.target;
        let connect = || async {
            Conn::connect(target)
                .await
                .map_err(|e| Error::Connect(e.to_string()))
        };
        match config.transport {
            Transport::McpSession => {
                let mut conn = connect().await?;
                let (message, headers) = post_request(
                    &mut conn,
                    target,
                    &config.mcp_path,
                    initialize_body(0, &config.init_version),
                    0,
                    &[],
                )
                .await?;
                let session_id = headers.get(SESSION_ID).cloned().ok_or_else(|| {
                    Error::BadBody("initialize answer has no Mcp-Session-Id".into())
                })?;
                let version = message
                    .pointer("/result/protocolVersion")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Error::BadBody(format!("initialize answer: {message}")))?;
                let headers = vec![
                    (SESSION_ID, session_id.clone()),
                    (
                        PROTOCOL_VERSION,
                        HeaderValue::from_str(version)
                            .map_err(|e| Error::BadBody(e.to_string()))?,
                    ),
                ];
                post_accepted(
                    &mut conn,
                    target,
                    &config.mcp_path,
                    Bytes::from_static(INITIALIZED),
                    &headers,
                )
                .await?;
                Ok(Self::Mcp {
                    conn,
                    headers,
                    session_id,
                    stream: None,
                })
            }
            Transport::McpStateless => Ok(Self::Stateless {
                conn: connect().await?,
                version: config.stateless_version.clone(),
                name: HeaderValue::from_str(tool).map_err(|e| Error::BadBody(e.to_string()))?,
            }),
            Transport::Sse => {
                let mut get = connect().await?;
                let request = target
                    .request(Method::GET, &config.sse_path)
                    .header(hyper::header::ACCEPT, "text/event-stream")
                    .body(http_body_util::Full::new(Bytes::new()))
                    .expect("valid request");
                let response = get.send(request).await?;
                if response.status() != StatusCode::OK {
                    return Err(status_error(response).await);
                }
                let mut stream = SseReader::new(response);
                let endpoint = loop {
                    match stream.next().await? {
                        None => return Err(Error::StreamClosed),
                        Some(e) if e.event.as_deref() == Some("endpoint") => break e.data,
                        Some(_) => {}
                    }
                };
                let endpoint = relative_path(&endpoint);
                let post = connect().await?;
                let mut session = Self::Sse {
                    post,
                    stream,
                    endpoint,
                    _get: get,
                };
                session.sse_initialize(config).await?;
                Ok(session)
            }
        }
    }

    async fn sse_initialize(&mut self, config: &SessionConfig) -> Result<(), Error> {
        let Self::Sse {
            post,
            stream,
            endpoint,
            ..
        } = self
        else {
            unreachable!()
        };
        post_accepted(
            post,
            &config.target,
            endpoint,
            initialize_body(0, &config.init_version),
            &[],
        )
        .await?;
        let message = next_with_id(stream, 0).await?;
        if message.get("result").is_none() {
            return Err(Error::BadBody(format!("initialize answer: {message}")));
        }
        post_accepted(
            post,
            &config.target,
            endpoint,
            Bytes::from_static(INITIALIZED),
            &[],
        )
        .await
    }

    /// Make one call and check its answer.
    pub async fn call(
        &mut self,
        target: &Target,
        config: &SessionConfig,
        call: &Call,
    ) -> Result<(), Error> {
        match self {
            Self::Mcp { conn, headers, .. } => {
                let (message, _) = post_request(
                    conn,
                    target,
                    &config.mcp_path,
                    call.body.clone(),
                    call.id,
                    headers,
                )
                .await?;
                check(&message, call)
            }
            Self::Stateless {
                conn,
                version,
                name,
            } => {
                let headers = [
                    (PROTOCOL_VERSION, version.clone()),
                    (MCP_METHOD, HeaderValue::from_static("tools/call")),
                    (MCP_NAME, name.clone()),
                ];
                let (message, _) = post_request(
                    conn,
                    target,
                    &config.mcp_path,
                    call.body.clone(),
                    call.id,
                    &headers,
                )
                .await?;
                check(&message, call)
            }
            Self::Sse {
                post,
                stream,
                endpoint,
                ..
            } => {
                post_accepted(post, target, endpoint, call.body.clone(), &[]).await?;
                let message = next_with_id(stream, call.id).await?;
                check(&message, call)
            }
        }
    }

    /// Open the standalone GET stream of a session-era session and hold it (as SDK
    /// clients do after initialize).
    pub async fn hold_get_stream(&mut self, config: &SessionConfig) -> Result<(), Error> {
        let Self::Mcp {
            headers, stream, ..
        } = self
        else {
            return Ok(());
        };
        let mut conn = Conn::connect(&config.target)
            .await
            .map_err(|e| Error::Connect(e.to_string()))?;
        let mut request = config
            .target
            .request(Method::GET, &config.mcp_path)
            .header(hyper::header::ACCEPT, "text/event-stream");
        for (k, v) in headers.iter() {
            request = request.header(k, v);
        }
        let response = conn
            .send(
                request
                    .body(http_body_util::Full::new(Bytes::new()))
                    .expect("valid"),
            )
            .await?;
        if response.status() != StatusCode::OK {
            return Err(status_error(response).await);
        }
        *stream = Some((SseReader::new(response), conn));
        Ok(())
    }

    /// End the session politely where the transport has a way to.
    pub async fn close(self, config: &SessionConfig) {
        if let Self::Mcp {
            mut conn,
            session_id,
            headers,
            ..
        } = self
        {
            if conn.is_closed() {
                return;
            }
            let mut request = config.target.request(Method::DELETE, &config.mcp_path);
            for (k, v) in &headers {
                request = request.header(k, v);
            }
            let _ = session_id;
            if let Ok(r) = conn
                .send(
                    request
                        .body(http_body_util::Full::new(Bytes::new()))
                        .expect("valid"),
                )
                .await
            {
                let _ = http::body_bytes(r).await;
            }
        }
    }
}

/// Wait on the SSE stream for the response with `id`, skipping other messages.
async fn next_with_id(stream: &mut SseReader, id: u64) -> Result<Value, Error> {
    loop {
        let Some(event) = stream.next().await? else {
            return Err(Error::StreamClosed);
        };
        if event.data.is_empty() || event.event.as_deref().is_some_and(|e| e != "message") {
            continue;
        }
        let message: Value =
            serde_json::from_str(&event.data).map_err(|e| Error::BadBody(e.to_string()))?;
        if message.get("id").and_then(Value::as_u64) == Some(id) {
            return Ok(message);
        }
        if message.get("id").is_some() && message.get("method").is_none() {
            return Err(Error::WrongId);
        }
    }
}

/// `/messages?x` from an endpoint event that may carry a full URL.
fn relative_path(endpoint: &str) -> String {
    if let Some(rest) = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
    {
        match rest.find('/') {
            Some(i) => rest[i..].to_owned(),
            None => "/".into(),
        }
    } else {
        endpoint.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(expect: Expect) -> Call {
        Call {
            id: 7,
            body: Bytes::new(),
            expect,
        }
    }

    #[test]
    fn echo_answer_must_carry_the_same_text_and_id() {
        let ok: Value = serde_json::json!({"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"x"}]}});
        assert!(check(&ok, &call(Expect::Text("x".into()))).is_ok());
        assert!(matches!(
            check(&ok, &call(Expect::Text("y".into()))),
            Err(Error::WrongResult(_))
        ));
        let other_id: Value = serde_json::json!({"jsonrpc":"2.0","id":8,"result":{"content":[{"type":"text","text":"x"}]}});
        assert!(matches!(
            check(&other_id, &call(Expect::Text("x".into()))),
            Err(Error::WrongId)
        ));
    }

    #[test]
    fn command_answer_must_exit_zero_and_not_be_an_error() {
        let ok: Value = serde_json::json!({"id":7,"result":{"content":[],"structuredContent":{"exit_code":0},"isError":false}});
        assert!(check(&ok, &call(Expect::ExitZero)).is_ok());
        let failed: Value = serde_json::json!({"id":7,"result":{"content":[{"type":"text","text":"no"}],"structuredContent":{"exit_code":1},"isError":true}});
        assert!(matches!(
            check(&failed, &call(Expect::ExitZero)),
            Err(Error::ToolError(_))
        ));
        let rpc: Value = serde_json::json!({"id":7,"error":{"code":-32602,"message":"bad"}});
        assert_eq!(
            check(&rpc, &call(Expect::ExitZero)).unwrap_err().kind(),
            "jsonrpc_-32602"
        );
    }

    #[test]
    fn response_is_found_among_sse_events() {
        let body = b"data: \nid: 0\nretry: 3000\n\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}\nid: 1\n\n";
        let message = find_response(body, true, 3).unwrap();
        assert_eq!(message["id"], 3);
        assert!(matches!(
            find_response(body, true, 4),
            Err(Error::NoResponse)
        ));
    }

    #[test]
    fn endpoint_urls_become_paths() {
        assert_eq!(
            relative_path("/messages?sessionId=a"),
            "/messages?sessionId=a"
        );
        assert_eq!(
            relative_path("http://127.0.0.1:9/messages/?session_id=b"),
            "/messages/?session_id=b"
        );
    }
}
