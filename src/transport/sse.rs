//! The legacy HTTP+SSE transport of protocol 2024-11-05, written here because rmcp no
//! longer ships it. `GET /sse` opens a session: its stream starts with an `endpoint`
//! event naming `/messages?sessionId=…`, then carries every server message as a
//! `message` event. `POST /messages` delivers one client message to the session (202).
//! Each session runs the same rmcp handler as `/mcp`, belongs to the principal that
//! opened it, and ends — killing its running commands — when its stream closes, or when
//! that principal's token is revoked under `on_revoke = "kill"` (see
//! [`crate::auth::revocation`]).
//!
//! Like `/mcp`'s sessions ([`super::sessions`]), a session is a table entry, not a
//! running service: rmcp answers `initialize` ([`super::handshake`]), then each request
//! runs directly ([`super::direct_call`]) on a task that writes its messages to the
//! stream. Requests that talk through their peer ([`PeerUse`]) go to an rmcp service the
//! session starts the first time one comes.

use std::{
    borrow::Cow,
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::log_excerpt::log_excerpt;
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
use futures::{SinkExt, Stream, StreamExt, stream};
use rmcp::{
    ErrorData, RoleServer, ServerHandler, ServiceExt,
    model::{
        ClientJsonRpcMessage, ClientNotification, ClientRequest, JsonRpcRequest, RequestId,
        ServerJsonRpcMessage,
    },
    service::{Peer, RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{
    direct_call::{self, DirectRequest, PeerUse},
    handshake::{self, PeerCache},
};
use crate::{
    audit::{AuditContext, AuditEvent, AuditLog, EndedWork, Transport as AuditTransport},
    auth::{Principal, client_address::ClientAddress, revocation::EndWatch},
    caller::Caller,
};

/// Messages queued per direction and session before the sender waits.
const CHANNEL_CAPACITY: usize = 64;

/// Serialized server messages on their way to a session's stream. A `futures` channel
/// allocates per queued message; a tokio channel would allocate a 32-slot block and
/// cache-padded state up front for every idle session.
type Outbound = futures::channel::mpsc::Sender<String>;
/// Comment lines on an idle stream keep proxies from cutting it.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Largest JSON-RPC message accepted by `POST /messages`.
pub const MAX_MESSAGE_BYTES: usize = super::http::MAX_REQUEST_BODY_BYTES;

/// The open legacy SSE sessions.
pub struct SseState<H> {
    handler: H,
    peers: Arc<PeerCache<H>>,
    audit: AuditLog,
    sessions: Mutex<HashMap<String, SessionHandle>>,
    shutdown: CancellationToken,
    /// Open sessions one principal may hold.
    max_sessions_per_principal: usize,
}

/// One session: where its messages go and what runs in it.
struct SessionHandle {
    owner: Arc<str>,
    /// Serialized server messages, to the session's stream.
    outbound: Outbound,
    /// Cancelled when the stream closes; every call's token is a child.
    cancel: CancellationToken,
    phase: Phase,
    calls: HashMap<RequestId, CancellationToken>,
    /// The rmcp service for requests that talk through their peer, once one came.
    live: Option<mpsc::Sender<Box<ClientJsonRpcMessage>>>,
}

enum Phase {
    New,
    Initializing,
    Ready(Peer<RoleServer>),
}

impl<H> SseState<H>
where
    H: ServerHandler + PeerUse + Clone + Send + Sync + 'static,
{
    pub fn new(
        handler: H,
        shutdown: CancellationToken,
        audit: AuditLog,
        max_sessions_per_principal: usize,
    ) -> Arc<Self> {
        Arc::new(Self {
            peers: PeerCache::new(handler.clone()),
            handler,
            audit,
            sessions: Mutex::default(),
            shutdown,
            max_sessions_per_principal,
        })
    }
}

impl<H> SseState<H> {
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

/// `/sse` and `/messages`, to be put behind the host guard and authentication; `GET /sse`
/// behind the per-principal stream cap.
pub fn routes<H>(state: Arc<SseState<H>>, stream_cap: super::streams::StreamCapLayer) -> Router
where
    H: ServerHandler + PeerUse + Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/sse", get(open_session).layer(stream_cap))
        .route("/messages", post(post_message))
        .with_state(state)
}

/// A cryptographically random session id: 128 bits as 32 hex characters.
async fn open_session<H>(State(state): State<Arc<SseState<H>>>, request: Request) -> Response
where
    H: ServerHandler + PeerUse + Clone + Send + Sync + 'static,
{
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Ok(session_id) = super::new_session_id() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let client = request.extensions().get::<ClientAddress>().copied();
    let (outbound_tx, outbound_rx) = futures::channel::mpsc::channel(CHANNEL_CAPACITY);
    let session_ct = state.shutdown.child_token();
    {
        let mut sessions = state.lock();
        let held = sessions
            .values()
            .filter(|session| *session.owner == *principal.name())
            .count();
        if held >= state.max_sessions_per_principal {
            drop(sessions);
            tracing::info!(
                principal = principal.name(),
                limit = state.max_sessions_per_principal,
                "sse session refused: too many open sessions"
            );
            return super::session_owners::too_many_sessions(state.max_sessions_per_principal);
        }
        sessions.insert(
            session_id.clone(),
            SessionHandle {
                owner: Arc::from(principal.name()),
                outbound: outbound_tx,
                cancel: session_ct.clone(),
                phase: Phase::New,
                calls: HashMap::new(),
                live: None,
            },
        );
    }
    tracing::info!(
        principal = principal.name(),
        transport = "sse",
        "session opened"
    );
    let opened = with_client(
        AuditContext::new()
            .with_principal(principal.name())
            .with_session(session_id.clone()),
        client,
    );
    let event = AuditEvent::SessionOpened {
        transport: AuditTransport::Sse,
    };
    state.audit.record_or_log(opened, event).await;

    let closer = SessionCloser {
        state: state.clone(),
        session_id: session_id.clone(),
        principal: principal.name().to_owned(),
        client,
        _cancel_on_drop: session_ct.clone().drop_guard(),
        _revoked: close_when_revoked(&principal, &state.audit, &session_id, &session_ct),
    };
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("/messages?sessionId={session_id}"));
    let messages = outbound_rx
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

/// `context` naming `client`, when the request had one.
fn with_client(context: AuditContext, client: Option<ClientAddress>) -> AuditContext {
    match client {
        Some(client) => context.with_client(client),
        None => context,
    }
}

/// End the stream (and so the session) when `principal`'s lease ends, on record.
fn close_when_revoked(
    principal: &Principal,
    audit: &AuditLog,
    session_id: &str,
    session_ct: &CancellationToken,
) -> EndWatch {
    let (audit, session_ct) = (audit.clone(), session_ct.clone());
    let context = AuditContext::new()
        .with_principal(principal.name())
        .with_session(session_id);
    let id = session_id.to_owned();
    principal.lease().on_end(move |reason| async move {
        let event = AuditEvent::EndedByRevocation {
            ended: EndedWork::Stream,
            id,
            reason,
        };
        audit.record_or_log(context, event).await;
        session_ct.cancel();
    })
}

/// Ends the session (removes it, cancels its handler and commands) when the stream drops.
struct SessionCloser<H> {
    state: Arc<SseState<H>>,
    session_id: String,
    principal: String,
    client: Option<ClientAddress>,
    _cancel_on_drop: DropGuard,
    _revoked: EndWatch,
}

impl<H> Drop for SessionCloser<H> {
    fn drop(&mut self) {
        self.state.lock().remove(&self.session_id);
        tracing::info!(principal = %self.principal, transport = "sse", "session closed");
        let audit = self.state.audit.clone();
        let closed = with_client(
            AuditContext::new()
                .with_principal(&self.principal)
                .with_session(self.session_id.clone()),
            self.client,
        );
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
) -> Response
where
    H: ServerHandler + PeerUse + Clone + Send + Sync + 'static,
{
    let Some(session_id) = query.session_id_camel.or(query.session_id) else {
        return client_error(StatusCode::BAD_REQUEST, "missing sessionId query parameter");
    };
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    {
        let sessions = state.lock();
        match sessions.get(&session_id) {
            Some(session) if *session.owner == *principal.name() => {}
            Some(_) => {
                tracing::warn!(
                    principal = principal.name(),
                    "post to another principal's sse session"
                );
                return session_not_found();
            }
            None => return session_not_found(),
        }
    }
    let client = request.extensions().get::<ClientAddress>().copied();
    let caller = Caller::sse(principal, client, &session_id);
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
    attach_request_parts(&mut message, parts, caller);
    match deliver(&state, &session_id, message).await {
        Ok(()) => (StatusCode::ACCEPTED, "Accepted").into_response(),
        Err(SessionGone) => session_not_found(),
    }
}

/// The session closed while a message was on its way to it.
struct SessionGone;

/// Hand one client message to its session.
async fn deliver<H>(
    state: &Arc<SseState<H>>,
    session_id: &str,
    message: ClientJsonRpcMessage,
) -> Result<(), SessionGone>
where
    H: ServerHandler + PeerUse + Clone + Send + Sync + 'static,
{
    let forward = match message {
        ClientJsonRpcMessage::Request(JsonRpcRequest { id, request, .. }) => {
            return if matches!(request, ClientRequest::InitializeRequest(_)) {
                initialize(state, session_id, id, request)
            } else {
                start_call(state, session_id, id, request).await
            };
        }
        ClientJsonRpcMessage::Notification(notification) => {
            let mut sessions = state.lock();
            let session = sessions.get_mut(session_id).ok_or(SessionGone)?;
            if let ClientNotification::CancelledNotification(cancelled) = &notification.notification
                && let Some(request_id) = &cancelled.params.request_id
                && let Some(call) = session.calls.get(request_id)
            {
                tracing::info!(id = %log_excerpt(&request_id.to_string()), "cancelled");
                call.cancel();
            }
            session
                .live
                .clone()
                .map(|live| (live, ClientJsonRpcMessage::Notification(notification)))
        }
        // Answers to what a live service asked the client.
        other => {
            let sessions = state.lock();
            let session = sessions.get(session_id).ok_or(SessionGone)?;
            session.live.clone().map(|live| (live, other))
        }
    };
    if let Some((live, message)) = forward {
        live.send(Box::new(message))
            .await
            .map_err(|_| SessionGone)?;
    }
    Ok(())
}

/// Run the session's `initialize` through rmcp; its answer goes to the stream.
fn initialize<H>(
    state: &Arc<SseState<H>>,
    session_id: &str,
    id: RequestId,
    request: ClientRequest,
) -> Result<(), SessionGone>
where
    H: ServerHandler + PeerUse + Clone + Send + Sync + 'static,
{
    let (outbound, cancel) = {
        let mut sessions = state.lock();
        let session = sessions.get_mut(session_id).ok_or(SessionGone)?;
        if !matches!(session.phase, Phase::New) {
            refuse(&session.outbound, id, "the session is already initialized");
            return Ok(());
        }
        session.phase = Phase::Initializing;
        (session.outbound.clone(), session.cancel.clone())
    };
    let ready_state = state.clone();
    let ready_session = session_id.to_owned();
    let (link, transport) = handshake::handshake(Box::new(move |client_info| {
        let peer = ready_state.peers.peer_for(client_info);
        if let Some(session) = ready_state.lock().get_mut(&ready_session) {
            session.phase = Phase::Ready(peer);
        }
    }));
    let handler = state.handler.clone();
    let message = ClientJsonRpcMessage::request(request, id);
    tokio::spawn(async move {
        // A child: dropping the finished handshake's service cancels its token.
        let serve = handler.serve_with_ct(transport, cancel.child_token());
        let (served, answer) = tokio::join!(serve, link.run(message));
        if let Err(error) = served {
            tracing::info!(error = %log_excerpt(&error.to_string()), "sse session failed to initialize");
        }
        match answer {
            Ok(answer) => {
                send_message(&outbound, &answer).await;
            }
            Err(error) => tracing::info!(error = %log_excerpt(&error.to_string()), "sse session"),
        }
    });
    Ok(())
}

/// Where a request runs: on the session's live service, or directly with the call's
/// peer, cancellation token and the stream to write to.
enum Route {
    Live(mpsc::Sender<Box<ClientJsonRpcMessage>>),
    Direct(Peer<RoleServer>, CancellationToken, Outbound),
}

/// Start one request: directly, or on the session's live service.
async fn start_call<H>(
    state: &Arc<SseState<H>>,
    session_id: &str,
    id: RequestId,
    request: ClientRequest,
) -> Result<(), SessionGone>
where
    H: ServerHandler + PeerUse + Clone + Send + Sync + 'static,
{
    let route = {
        let mut sessions = state.lock();
        let session = sessions.get_mut(session_id).ok_or(SessionGone)?;
        let Phase::Ready(peer) = &session.phase else {
            refuse(&session.outbound, id, "initialize the session first");
            return Ok(());
        };
        let peer = peer.clone();
        if state.handler.needs_live_peer(&request) {
            let (outbound, cancel) = (&session.outbound, &session.cancel);
            let live = match &session.live {
                Some(live) => live.clone(),
                None => start_live_service(state.handler.clone(), outbound, cancel, &peer),
            };
            session.live = Some(live.clone());
            Route::Live(live)
        } else {
            let cancel = session.cancel.child_token();
            session.calls.insert(id.clone(), cancel.clone());
            Route::Direct(peer, cancel, session.outbound.clone())
        }
    };
    let (peer, cancel, outbound) = match route {
        Route::Live(live) => {
            return live
                .send(Box::new(ClientJsonRpcMessage::request(request, id)))
                .await
                .map_err(|_| SessionGone);
        }
        Route::Direct(peer, cancel, outbound) => (peer, cancel, outbound),
    };
    let forget_call = {
        let state = state.clone();
        let session_id = session_id.to_owned();
        let id = id.clone();
        move || {
            if let Some(session) = state.lock().get_mut(&session_id) {
                session.calls.remove(&id);
            }
        }
    };
    let request = DirectRequest {
        id,
        request,
        peer,
        cancel,
    };
    let mut messages = direct_call::call(state.handler.clone(), request, forget_call);
    tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            if !send_message(&outbound, &message).await {
                break;
            }
        }
    });
    Ok(())
}

/// The rmcp service a session runs requests that talk through their peer on.
fn start_live_service<H>(
    handler: H,
    outbound: &Outbound,
    cancel: &CancellationToken,
    peer: &Peer<RoleServer>,
) -> mpsc::Sender<Box<ClientJsonRpcMessage>>
where
    H: ServerHandler + Clone + Send + Sync + 'static,
{
    let (inbound_tx, inbound) = mpsc::channel(CHANNEL_CAPACITY);
    let transport = ChannelTransport {
        inbound,
        outbound: outbound.clone(),
    };
    let peer_info = peer.peer_info().map(|info| (*info).clone());
    let service =
        rmcp::service::serve_directly_with_ct(handler, transport, peer_info, cancel.child_token());
    tokio::spawn(async move {
        let _ = service.waiting().await;
    });
    inbound_tx
}

/// Serialize `message` onto the stream; false once the stream is gone.
async fn send_message(outbound: &Outbound, message: &ServerJsonRpcMessage) -> bool {
    match serde_json::to_string(message) {
        Ok(line) => outbound.clone().send(line).await.is_ok(),
        Err(error) => {
            tracing::error!(%error, "cannot serialize a server message");
            true
        }
    }
}

/// Answer request `id` with an `invalid_request` error on the stream, from where one
/// cannot wait.
fn refuse(outbound: &Outbound, id: RequestId, reason: &'static str) {
    let error = ErrorData::invalid_request(reason, None);
    let message = ServerJsonRpcMessage::error(error, Some(id));
    let outbound = outbound.clone();
    tokio::spawn(async move { send_message(&outbound, &message).await });
}

/// Give the handler the HTTP request, as rmcp does on `/mcp`, and its [`Caller`].
fn attach_request_parts(
    message: &mut ClientJsonRpcMessage,
    parts: axum::http::request::Parts,
    caller: Caller,
) {
    use rmcp::model::GetExtensions;
    let extensions = match message {
        ClientJsonRpcMessage::Request(request) => request.request.extensions_mut(),
        ClientJsonRpcMessage::Notification(notification) => {
            notification.notification.extensions_mut()
        }
        _ => return,
    };
    extensions.insert(parts);
    extensions.insert(caller);
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
    outbound: Outbound,
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
        let mut outbound = self.outbound.clone();
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
