//! The stateless 2026-07-28 era of `/mcp`, answered by calling the handler directly.
//!
//! rmcp's [`StreamableHttpService`] answers a 2026-07-28 POST (no `initialize`, no session,
//! the lifecycle in each request's `_meta`) by starting a whole service for it: a loop task,
//! a handler task and two channels, torn down after one answer. [`Stateless`] sits in front
//! of that service and answers the requests it can prove rmcp would serve on that path,
//! running the handler's future on the task that writes the response
//! ([`super::direct_call`], as the session era does), with the same answer:
//!
//! - **Admission** ([`head_admits`], then [`admit`]) is a pure function of the request head
//!   (a session-era request, whose `MCP-Protocol-Version` is older, is passed on before its
//!   body is parsed), the parsed message
//!   and the tool's input schema. It replays rmcp 3.11's checks for that path in rmcp's
//!   order (Host, `Accept`, `Content-Type`, `MCP-Protocol-Version` header against
//!   `_meta.io.modelcontextprotocol/protocolVersion`, the `_meta` the 2026-07-28 lifecycle
//!   requires, SEP-2243 `Mcp-Method` / `Mcp-Name` against the body) and admits only a
//!   request that passes every one of them. Anything else (a check that fails, or one this
//!   module does not replay: `Mcp-Param-*` headers of a tool with `x-mcp-header`
//!   properties, a Base64-wrapped `Mcp-Name`, an `Origin` header, an unknown version,
//!   a version before 2026-07-28 even with complete `_meta`, a notification,
//!   `initialize`, the session era, GET and DELETE) goes to rmcp
//!   unchanged, so every refusal keeps rmcp's exact status and body, and so does every
//!   request this module does not claim. A handler whose request needs a live peer
//!   ([`PeerUse::needs_live_peer`]) goes to rmcp too.
//! - **Dispatch** gives the handler what rmcp's loop would: the request's `_meta` and
//!   extensions (the HTTP request head included, where the principal is), a peer whose
//!   info carries the header's protocol version with empty client info and capabilities
//!   (rmcp's `peer_info_for_stateless_request`), and a cancellation token. The handler's
//!   own 2026-07-28 work (unsupported versions, discovery, client capabilities from
//!   `_meta`, cache hints) is rmcp's `Service::handle_request`, called as is.
//! - **The answer** follows `serve_negotiated_request_directly`: a first message that is
//!   the answer comes back as JSON when the service is configured for JSON responses or
//!   its status is not 200 (-32020/-32021/-32022 -> 400, -32601 -> 404); otherwise an
//!   SSE stream carries it and what follows, with rmcp's keep-alive and headers. A client
//!   that goes away before the answer cancels the call (2026-07-28: closing the response
//!   stream cancels the request); the call still finishes on a task of its own, so it
//!   releases what it holds and is audited.
//!
//! A handler that advertises rmcp's tasks extension is never bypassed (its task manager
//! reads the originating request from a task-local rmcp's loop sets).
//!
//! Peers are made once per protocol version, not per request: rmcp only makes a peer by
//! running a service, and the one a stateless request sees carries nothing but the
//! version (nothing is sent through it: [`PeerUse`]).
//!
//! Upstream, one hook would make this module unnecessary: a public
//! `StreamableHttpService` option to serve negotiated stateless requests with
//! `Service::handle_request` called inline (no `serve_directly_with_ct`, no
//! `OneshotTransport`), or failing that the stateless checks as a public function
//! (`validate_stateless_request(&config, &parts, &message, tool_schema)`) and a public
//! constructor of a detached `Peer` from `InitializeRequestParams`.

use std::{
    convert::Infallible,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use futures::{StreamExt, future::BoxFuture};
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use rmcp::{
    RoleServer, ServerHandler,
    model::{
        ClientCapabilities, ClientJsonRpcMessage, ClientRequest, ErrorCode, GetExtensions, GetMeta,
        Implementation, InitializeRequestParams, JsonObject, JsonRpcRequest, ProtocolVersion,
        ServerJsonRpcMessage,
    },
    service::Peer,
    transport::{
        StreamableHttpService,
        common::http_header::{
            BASE64_HEADER_PREFIX, BASE64_HEADER_SUFFIX, EVENT_STREAM_MIME_TYPE, HEADER_MCP_METHOD,
            HEADER_MCP_NAME, HEADER_MCP_PROTOCOL_VERSION, JSON_MIME_TYPE,
        },
        streamable_http_server::{StreamableHttpServerConfig, session::SessionManager},
    },
};
use serde_json::Value;
use sse_stream::{KeepAlive, Sse, SseBody};
use tokio_util::sync::CancellationToken;

use super::direct_call::{self, DirectRequest, PeerUse};
use crate::log_excerpt::log_excerpt;

/// What rmcp's service answers with, and so what this one does.
pub type McpResponse = Response<BoxBody<Bytes, Infallible>>;

/// Why a request is left to rmcp's own path. Most are refusals rmcp words itself; the
/// rest are requests rmcp serves in ways this module does not replay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fallback {
    #[error("not a POST")]
    NotPost,
    #[error("no MCP-Protocol-Version header of 2026-07-28 or later (the session era)")]
    SessionEra,
    #[error("the service checks Host, Origin or request metadata itself (configuration)")]
    ServiceConfig,
    #[error("no usable Host header or authority")]
    Host,
    #[error("carries an Origin header")]
    Origin,
    #[error("Accept does not plainly list application/json and text/event-stream")]
    Accept,
    #[error("Content-Type is not application/json")]
    ContentType,
    #[error("the body is not one JSON-RPC message")]
    NotAMessage,
    #[error("not a request")]
    NotARequest,
    #[error("a method this path does not serve")]
    Method,
    #[error("no protocol version in the request's _meta")]
    NoRequestVersion,
    #[error("MCP-Protocol-Version header missing, repeated, or not the _meta version")]
    VersionHeader,
    #[error("a protocol version this server does not know")]
    UnknownVersion,
    #[error("the request's _meta lacks what the 2026-07-28 lifecycle requires")]
    IncompleteMeta,
    #[error("Mcp-Method header missing, repeated or not the body's method")]
    McpMethod,
    #[error("Mcp-Name header missing, repeated, Base64-wrapped or not the body's name")]
    McpName,
    #[error("the tool has x-mcp-header parameters")]
    ParamHeaders,
    #[error("the handler talks to the client through its peer")]
    LivePeer,
}

/// A request [`admit`] let through: served here exactly as rmcp would serve it.
#[derive(Debug)]
pub struct Admitted {
    /// Index of its protocol version in [`ProtocolVersion::KNOWN_VERSIONS`].
    version: usize,
}

/// Can the service, as configured, be bypassed at all? rmcp's stateless path depends on
/// these settings; hostmcp's router uses the ones that make it plain (the host guard in
/// front does Host and Origin checks).
pub fn config_admits(config: &StreamableHttpServerConfig) -> Result<(), Fallback> {
    let plain = config.legacy_session_mode
        && config.allowed_hosts.is_empty()
        && config.allowed_origins.is_empty()
        && config.session_store.is_none()
        && !config.stateless_protocol_metadata_required;
    plain.then_some(()).ok_or(Fallback::ServiceConfig)
}

/// The checks on the request head rmcp makes before it reads the body, in its order.
pub fn head_admits(method: &Method, uri: &http::Uri, headers: &HeaderMap) -> Result<(), Fallback> {
    if method != Method::POST {
        return Err(Fallback::NotPost);
    }
    // First, as it is the cheapest: the session era goes to rmcp before its body is parsed.
    let stateless_era = headers
        .get(HEADER_MCP_PROTOCOL_VERSION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|version| version >= ProtocolVersion::STANDARD_HEADERS.as_str());
    if !stateless_era {
        return Err(Fallback::SessionEra);
    }
    // rmcp's `parse_host_header`: a readable authority, from Host or the URI.
    match headers.get(header::HOST) {
        Some(host) => {
            let host = host.to_str().map_err(|_| Fallback::Host)?;
            http::uri::Authority::try_from(host).map_err(|_| Fallback::Host)?;
        }
        None if uri.authority().is_none() => return Err(Fallback::Host),
        None => {}
    }
    if headers.contains_key(header::ORIGIN) {
        return Err(Fallback::Origin);
    }
    if !accepts_json_and_sse(headers) {
        return Err(Fallback::Accept);
    }
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            let essence = value.split_once(';').map_or(value, |(essence, _)| essence);
            essence.trim().eq_ignore_ascii_case(JSON_MIME_TYPE)
        });
    json_body.then_some(()).ok_or(Fallback::ContentType)
}

/// One `Accept` header listing both types with no parameters (no weights, no quotes):
/// what clients send, and a form rmcp reads the same way. Any other form goes to rmcp.
fn accepts_json_and_sse(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::ACCEPT).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    if value.contains([';', '"']) {
        return false;
    }
    let listed = |wanted: &str| {
        value
            .split(',')
            .any(|entry| entry.trim().eq_ignore_ascii_case(wanted))
    };
    listed(JSON_MIME_TYPE) && listed(EVENT_STREAM_MIME_TYPE)
}

/// The checks rmcp makes on a parsed request routed to its stateless path, in its order
/// (`is_legacy_request`, then `validate_standard_headers` and the `_meta` checks of the
/// stateless branch). `tool_schema` gives a tool's input schema, as the handler's
/// `get_tool` does for rmcp.
pub fn admit(
    headers: &HeaderMap,
    request: &JsonRpcRequest<ClientRequest>,
    tool_schema: impl FnOnce(&str) -> Option<Arc<JsonObject>>,
) -> Result<Admitted, Fallback> {
    let name = served_name(&request.request)?;
    let meta = request.request.get_meta();
    let meta_version = meta.protocol_version().ok_or(Fallback::NoRequestVersion)?;
    // `validate_protocol_version_header` and `validate_request_protocol_version_meta`:
    // with a version in `_meta`, the header must be there and say the same.
    let header_version = single_str(headers, HEADER_MCP_PROTOCOL_VERSION)
        .ok()
        .flatten()
        .ok_or(Fallback::VersionHeader)?;
    if header_version != meta_version.as_str() {
        return Err(Fallback::VersionHeader);
    }
    let version = ProtocolVersion::KNOWN_VERSIONS
        .iter()
        .position(|known| known.as_str() == header_version)
        .ok_or(Fallback::UnknownVersion)?;
    // Complete lifecycle metadata routes it statelessly whatever the version; without it
    // rmcp answers (or routes) differently.
    if !meta
        .missing_required_keys(&ProtocolVersion::V_2026_07_28)
        .is_empty()
    {
        return Err(Fallback::IncompleteMeta);
    }
    // SEP-2243, required from 2026-07-28 on; earlier versions are left to rmcp.
    if header_version < ProtocolVersion::STANDARD_HEADERS.as_str() {
        return Err(Fallback::SessionEra);
    }
    {
        let method = request.request.method();
        if single_str(headers, HEADER_MCP_METHOD) != Ok(Some(method)) {
            return Err(Fallback::McpMethod);
        }
        if let Some(expected) = name {
            match single_str(headers, HEADER_MCP_NAME) {
                Ok(Some(value)) if value == expected && !is_base64_wrapped(value) => {}
                _ => return Err(Fallback::McpName),
            }
        }
        if let ClientRequest::CallToolRequest(call) = &request.request
            && tool_schema(&call.params.name).is_some_and(|schema| has_param_headers(&schema))
        {
            return Err(Fallback::ParamHeaders);
        }
    }
    Ok(Admitted { version })
}

/// The methods served here, with the value `Mcp-Name` must carry for each (rmcp's
/// `extract_name`). Tasks, skills, subscriptions, logging levels, ping and custom
/// methods go to rmcp.
fn served_name(request: &ClientRequest) -> Result<Option<&str>, Fallback> {
    Ok(match request {
        ClientRequest::CallToolRequest(call) => Some(&call.params.name),
        ClientRequest::GetPromptRequest(get) => Some(&get.params.name),
        ClientRequest::ReadResourceRequest(read) => Some(&read.params.uri),
        ClientRequest::DiscoverRequest(_)
        | ClientRequest::ListToolsRequest(_)
        | ClientRequest::ListPromptsRequest(_)
        | ClientRequest::ListResourcesRequest(_)
        | ClientRequest::ListResourceTemplatesRequest(_)
        | ClientRequest::CompleteRequest(_) => None,
        _ => return Err(Fallback::Method),
    })
}

/// The one value of header `name` as text (rmcp's `header_str`): `Err` when repeated or
/// not text.
fn single_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ()> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(());
    }
    value.to_str().map(Some).map_err(|_| ())
}

fn is_base64_wrapped(value: &str) -> bool {
    value.starts_with(BASE64_HEADER_PREFIX) && value.ends_with(BASE64_HEADER_SUFFIX)
}

/// Does any property along `properties` chains carry an `x-mcp-header` annotation (the
/// ones rmcp checks `Mcp-Param-*` headers against)?
fn has_param_headers(schema: &JsonObject) -> bool {
    fn walk(properties: Option<&Value>) -> bool {
        let Some(Value::Object(properties)) = properties else {
            return false;
        };
        properties.values().any(|property| {
            property.get("x-mcp-header").is_some() || walk(property.get("properties"))
        })
    }
    walk(schema.get("properties"))
}

/// rmcp's `jsonrpc_http_status` for a request whose `_meta` is complete.
pub fn http_status(message: &ServerJsonRpcMessage) -> StatusCode {
    let ServerJsonRpcMessage::Error(error) = message else {
        return StatusCode::OK;
    };
    match error.error.code {
        ErrorCode::UNSUPPORTED_PROTOCOL_VERSION
        | ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY
        | ErrorCode::HEADER_MISMATCH => StatusCode::BAD_REQUEST,
        ErrorCode::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}

/// `/mcp`: rmcp's service, with admitted stateless requests answered directly.
pub struct Stateless<H, M> {
    /// Behind one `Arc`: the router clones the service for every request, and a clone of
    /// rmcp's service copies its whole configuration.
    shared: Arc<Shared<H, M>>,
}

struct Shared<H, M> {
    inner: StreamableHttpService<H, M>,
    handler: H,
    /// Whether the service's configuration lets anything through here.
    enabled: bool,
    json_response: bool,
    keep_alive: Option<Duration>,
    shutdown: CancellationToken,
    /// One detached peer per known protocol version, made on first use.
    peers: Vec<OnceLock<Peer<RoleServer>>>,
}

impl<H, M> Clone for Stateless<H, M> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<H, M> Stateless<H, M>
where
    H: ServerHandler + PeerUse + Clone + Send + Sync + 'static,
    M: SessionManager,
{
    /// Wrap `inner`, whose service factory makes clones of `handler`.
    pub fn new(inner: StreamableHttpService<H, M>, handler: H) -> Self {
        let config = &inner.config;
        // rmcp's in-memory tasks read the request id from a task-local its loop sets.
        let tasks = handler.get_info().capabilities.supports_tasks();
        let enabled = config_admits(config).is_ok() && !tasks;
        let shared = Shared {
            enabled,
            handler,
            json_response: config.json_response,
            keep_alive: config.sse_keep_alive,
            shutdown: config.cancellation_token.clone(),
            peers: ProtocolVersion::KNOWN_VERSIONS
                .iter()
                .map(|_| OnceLock::new())
                .collect(),
            inner,
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    async fn handle(self, request: Request<axum::body::Body>) -> McpResponse {
        if !self.shared.enabled
            || head_admits(request.method(), request.uri(), request.headers()).is_err()
        {
            return self.shared.inner.handle(request).await;
        }
        let (parts, body) = request.into_parts();
        // The body was read whole before this service (`super::body`): this takes it.
        let bytes = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => return read_error_response(&error),
        };
        match self.admit_message(&parts.headers, &bytes) {
            Ok((request, admitted)) => {
                // rmcp's path logged "Service initialized" (version only) per request; this
                // says more, at debug level: a request is not a session.
                tracing::debug!(
                    method = %log_excerpt(request.request.method()),
                    protocol_version = ProtocolVersion::KNOWN_VERSIONS[admitted.version].as_str(),
                    client = request.request.get_meta().client_info()
                        .map(|client| format!("{} {}", log_excerpt(&client.name), log_excerpt(&client.version))),
                    "stateless request"
                );
                self.shared.serve(request, admitted, parts).await
            }
            Err(fallback) => {
                tracing::debug!(%fallback, "request left to rmcp's service");
                let request = Request::from_parts(parts, axum::body::Body::from(bytes));
                self.shared.inner.handle(request).await
            }
        }
    }

    fn admit_message(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(JsonRpcRequest<ClientRequest>, Admitted), Fallback> {
        let message: ClientJsonRpcMessage =
            super::message::parse_client_message(body).map_err(|_| Fallback::NotAMessage)?;
        let ClientJsonRpcMessage::Request(request) = message else {
            return Err(Fallback::NotARequest);
        };
        let handler = &self.shared.handler;
        let admitted = admit(headers, &request, |name| {
            handler.get_tool(name).map(|tool| tool.input_schema)
        })?;
        if handler.needs_live_peer(&request.request) {
            return Err(Fallback::LivePeer);
        }
        Ok((request, admitted))
    }
}

impl<H, M> Shared<H, M>
where
    H: ServerHandler + PeerUse + Clone + Send + Sync + 'static,
{
    /// rmcp's `peer_info_for_stateless_request`: the version, and nothing else.
    fn peer(&self, version: usize) -> Peer<RoleServer> {
        self.peers[version]
            .get_or_init(|| {
                let info = InitializeRequestParams::new(
                    ClientCapabilities::default(),
                    Implementation::default(),
                )
                .with_protocol_version(ProtocolVersion::KNOWN_VERSIONS[version].clone());
                direct_call::detached_peer(self.handler.clone(), Some(info))
            })
            .clone()
    }

    async fn serve(
        &self,
        mut request: JsonRpcRequest<ClientRequest>,
        admitted: Admitted,
        parts: http::request::Parts,
    ) -> McpResponse {
        request.request.extensions_mut().insert(parts);
        let cancel = self.shutdown.child_token();
        let on_disconnect = cancel.clone();
        let mut messages = direct_call::call(
            self.handler.clone(),
            DirectRequest {
                id: request.id,
                request: request.request,
                peer: self.peer(admitted.version),
                cancel,
            },
            || {},
        )
        // The client went away before the answer: cancel the call, and let it finish.
        .on_abandon(move |call| {
            on_disconnect.cancel();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(call);
            }
        });
        let first = tokio::select! {
            first = messages.next() => first,
            () = self.shutdown.cancelled() => None,
        };
        let Some(first) = first else {
            return internal_error(
                "empty response",
                "no response message received from handler",
            );
        };
        let status = http_status(&first);
        let terminal = matches!(
            first,
            ServerJsonRpcMessage::Response(_) | ServerJsonRpcMessage::Error(_)
        );
        if terminal && (self.json_response || status != StatusCode::OK) {
            return match serde_json::to_vec(&first) {
                Ok(body) => Response::builder()
                    .status(status)
                    .header(header::CONTENT_TYPE, JSON_MIME_TYPE)
                    .body(Full::new(Bytes::from(body)).boxed())
                    .expect("valid response"),
                Err(error) => internal_error("serialize json response", &error.to_string()),
            };
        }
        let messages = futures::stream::iter([first]).chain(messages);
        sse_response(messages, self.keep_alive, self.shutdown.child_token())
    }
}

/// rmcp's `sse_stream_response` for a stream without event ids: `data:` events, its
/// keep-alive, ended by shutdown.
fn sse_response(
    messages: impl futures::Stream<Item = ServerJsonRpcMessage> + Send + Sync + 'static,
    keep_alive: Option<Duration>,
    shutdown: CancellationToken,
) -> McpResponse {
    let events = messages
        .map(|message| {
            let data = serde_json::to_string(&message).expect("a server message serializes");
            Ok::<_, Infallible>(Sse::default().data(data))
        })
        .take_until(shutdown.cancelled_owned());
    let body = SseBody::new(events);
    let body = match keep_alive {
        Some(interval) => body
            .with_keep_alive::<TokioTimer>(KeepAlive::new().interval(interval))
            .boxed(),
        None => body.boxed(),
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, EVENT_STREAM_MIME_TYPE)
        .header(header::CACHE_CONTROL, "no-cache")
        .header("X-Accel-Buffering", "no")
        .body(body)
        .expect("valid response")
}

/// rmcp's `internal_error_response`.
fn internal_error(context: &str, error: &str) -> McpResponse {
    tracing::error!("Internal server error when {context}: {error}");
    Response::builder()
        .status(StatusCode::INTERNAL_SERVER_ERROR)
        .body(
            Full::new(Bytes::from(format!(
                "Encounter an error when {context}: {error}"
            )))
            .boxed(),
        )
        .expect("valid response")
}

/// rmcp's answer to a body it cannot read (`expect_json`).
fn read_error_response(error: &axum::Error) -> McpResponse {
    Response::builder()
        .status(StatusCode::INTERNAL_SERVER_ERROR)
        .body(Full::new(Bytes::from(format!("Failed to read request body: {error}"))).boxed())
        .expect("valid response")
}

/// The keep-alive timer of the SSE body, on tokio's clock.
struct TokioTimer(Pin<Box<tokio::time::Sleep>>);

impl Future for TokioTimer {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl sse_stream::Timer for TokioTimer {
    fn from_duration(duration: Duration) -> Self {
        Self(Box::pin(tokio::time::sleep(duration)))
    }

    fn reset(mut self: Pin<&mut Self>, when: std::time::Instant) {
        self.0.as_mut().reset(tokio::time::Instant::from_std(when));
    }
}

impl<H, M> tower::Service<Request<axum::body::Body>> for Stateless<H, M>
where
    H: ServerHandler + PeerUse + Clone + Send + Sync + 'static,
    M: SessionManager,
{
    type Response = McpResponse;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<McpResponse, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<axum::body::Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(request).await) })
    }
}

#[cfg(test)]
mod tests;
