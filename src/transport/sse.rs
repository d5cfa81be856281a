//! The legacy HTTP+SSE transport of protocol 2024-11-05, written here because rmcp no
//! longer ships it. `GET /sse` opens a session: its stream starts with an `endpoint`
//! event naming `/messages?sessionId=…`, then carries every server message as a
//! `message` event. `POST /messages` delivers one client message to the session (202).
//! Each session runs the same rmcp handler as `/mcp`, belongs to the principal that
//! opened it, and ends — killing its running commands — when its stream closes.

use std::{
    borrow::Cow,
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Query, Request, State},
    http::StatusCode,
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
};
use futures::{Stream, StreamExt, stream};
use rmcp::{
    RoleServer, ServerHandler, ServiceExt,
    model::ClientJsonRpcMessage,
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::{
    audit::{AuditContext, AuditEvent, AuditLog, Transport as AuditTransport},
    auth::Principal,
};

/// Messages queued per direction and session before the sender waits.
const CHANNEL_CAPACITY: usize = 64;
/// Comment lines on an idle stream keep proxies from cutting it.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Largest JSON-RPC message accepted by `POST /messages`.
pub const MAX_MESSAGE_BYTES: usize = super::http::MAX_REQUEST_BODY_BYTES;

/// The open legacy SSE sessions.
pub struct SseState<H> {
    handler: H,
    audit: AuditLog,
    sessions: Mutex<HashMap<String, SessionHandle>>,
    shutdown: CancellationToken,
}

/// What `POST /messages` needs to reach a session.
struct SessionHandle {
    owner: Arc<str>,
    inbound: mpsc::Sender<Box<ClientJsonRpcMessage>>,
}

impl<H> SseState<H> {
    pub fn new(handler: H, shutdown: CancellationToken, audit: AuditLog) -> Arc<Self> {
        Arc::new(Self {
            handler,
            audit,
            sessions: Mutex::default(),
            shutdown,
        })
    }

    /// Number of open sessions.
    pub fn session_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionHandle>> {
        // No code path leaves the map half-updated, so a poisoned lock is still consistent.
        self.sessions
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// `/sse` and `/messages`, to be put behind the host guard and authentication.
pub fn routes<H>(state: Arc<SseState<H>>) -> Router
where
    H: ServerHandler + Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/sse", get(open_session))
        .route("/messages", post(post_message))
        .with_state(state)
}

/// A cryptographically random session id: 128 bits as 32 hex characters.
async fn open_session<H>(State(state): State<Arc<SseState<H>>>, request: Request) -> Response
where
    H: ServerHandler + Clone + Send + Sync + 'static,
{
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Ok(session_id) = super::new_session_id() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let (inbound_tx, inbound_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let (outbound_tx, outbound_rx) = mpsc::channel(CHANNEL_CAPACITY);
    let session_ct = state.shutdown.child_token();
    state.lock().insert(
        session_id.clone(),
        SessionHandle {
            owner: Arc::from(principal.name()),
            inbound: inbound_tx,
        },
    );
    tracing::info!(
        principal = principal.name(),
        transport = "sse",
        "session opened"
    );
    let opened = AuditContext::new()
        .with_principal(principal.name())
        .with_session(session_id.clone());
    let event = AuditEvent::SessionOpened {
        transport: AuditTransport::Sse,
    };
    state.audit.record_or_log(opened, event).await;

    let transport = ChannelTransport {
        inbound: inbound_rx,
        outbound: outbound_tx,
    };
    let handler = state.handler.clone();
    let run_ct = session_ct.clone();
    tokio::spawn(async move {
        match handler.serve_with_ct(transport, run_ct).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(error) => tracing::info!(%error, "sse session ended before initialization"),
        }
    });

    let closer = SessionCloser {
        state: state.clone(),
        session_id: session_id.clone(),
        principal: principal.name().to_owned(),
        _cancel_on_drop: session_ct.clone().drop_guard(),
    };
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("/messages?sessionId={session_id}"));
    let messages = ReceiverStream::new(outbound_rx)
        .take_until(session_ct.cancelled_owned())
        .map(|json| Ok::<_, Infallible>(Event::default().event("message").data(json)));
    let events = stream::once(async move { Ok(endpoint) }).chain(messages);
    Sse::new(CloseOnDrop {
        inner: Box::pin(events),
        _closer: closer,
    })
    .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
    .into_response()
}

/// Ends the session (removes it, cancels its handler and commands) when the stream drops.
struct SessionCloser<H> {
    state: Arc<SseState<H>>,
    session_id: String,
    principal: String,
    _cancel_on_drop: DropGuard,
}

impl<H> Drop for SessionCloser<H> {
    fn drop(&mut self) {
        self.state.lock().remove(&self.session_id);
        tracing::info!(principal = %self.principal, transport = "sse", "session closed");
        let audit = self.state.audit.clone();
        let closed = AuditContext::new()
            .with_principal(&self.principal)
            .with_session(self.session_id.clone());
        // Drop cannot wait: the record is written in the background.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let event = AuditEvent::SessionClosed {
                    transport: AuditTransport::Sse,
                };
                audit.record_or_log(closed, event).await;
            });
        }
    }
}

/// The SSE body: the event stream plus the guard that closes the session with it.
struct CloseOnDrop<H> {
    inner: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>>,
    _closer: SessionCloser<H>,
}

impl<H> Stream for CloseOnDrop<H> {
    type Item = Result<Event, Infallible>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// The query of `POST /messages`: `sessionId`, or `session_id` as the Python SDK spells it.
#[derive(Debug, Deserialize)]
struct MessageQuery {
    #[serde(rename = "sessionId")]
    session_id_camel: Option<String>,
    session_id: Option<String>,
}

async fn post_message<H>(
    State(state): State<Arc<SseState<H>>>,
    Query(query): Query<MessageQuery>,
    request: Request,
) -> Response {
    let Some(session_id) = query.session_id_camel.or(query.session_id) else {
        return client_error(StatusCode::BAD_REQUEST, "missing sessionId query parameter");
    };
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let inbound = {
        let sessions = state.lock();
        match sessions.get(&session_id) {
            Some(session) if *session.owner == *principal.name() => session.inbound.clone(),
            Some(_) => {
                tracing::warn!(
                    principal = principal.name(),
                    "post to another principal's sse session"
                );
                return session_not_found();
            }
            None => return session_not_found(),
        }
    };
    let (parts, body) = request.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, MAX_MESSAGE_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            return client_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "message larger than the 4 MiB limit",
            );
        }
    };
    let mut message: ClientJsonRpcMessage = match serde_json::from_slice(&body) {
        Ok(message) => message,
        Err(error) => {
            return client_error(
                StatusCode::BAD_REQUEST,
                &format!("body is not a JSON-RPC message: {error}"),
            );
        }
    };
    attach_request_parts(&mut message, parts);
    if inbound.send(Box::new(message)).await.is_err() {
        return session_not_found();
    }
    (StatusCode::ACCEPTED, "Accepted").into_response()
}

/// Give the handler the HTTP request, as rmcp does on `/mcp`, so tools see the principal.
fn attach_request_parts(message: &mut ClientJsonRpcMessage, parts: axum::http::request::Parts) {
    use rmcp::model::GetExtensions;
    match message {
        ClientJsonRpcMessage::Request(request) => {
            request.request.extensions_mut().insert(parts);
        }
        ClientJsonRpcMessage::Notification(notification) => {
            notification.notification.extensions_mut().insert(parts);
        }
        _ => {}
    }
}

fn session_not_found() -> Response {
    client_error(StatusCode::NOT_FOUND, "session not found")
}

fn client_error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// rmcp's view of one SSE session: messages in from `POST /messages`, out to the stream.
/// Both channels carry small items (a box, a serialized line): a channel allocates its
/// slots in blocks, and ~370-byte messages would cost ~24 KiB per idle session.
struct ChannelTransport {
    inbound: mpsc::Receiver<Box<ClientJsonRpcMessage>>,
    outbound: mpsc::Sender<String>,
}

/// Why a message could not go out on a session's stream.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("the SSE stream of this session is closed")]
    Closed,
    #[error("cannot serialize a server message: {0}")]
    Serialize(#[from] serde_json::Error),
}

impl Transport<RoleServer> for ChannelTransport {
    type Error = StreamError;

    fn name() -> Cow<'static, str> {
        "legacy-sse".into()
    }

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let outbound = self.outbound.clone();
        let json = serde_json::to_string(&item);
        async move { outbound.send(json?).await.map_err(|_| StreamError::Closed) }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        self.inbound.recv().await.map(|message| *message)
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.inbound.close();
        Ok(())
    }
}
