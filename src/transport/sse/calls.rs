//! `POST /messages`: one client message delivered to its session, and the rmcp side of
//! it. `initialize` runs through rmcp over a handshake transport ([`crate::transport::handshake`]);
//! every later request runs directly ([`crate::transport::direct_call`]) on a task that
//! writes its messages to the stream, unless it talks through its peer (`PeerUse`):
//! then it goes to the rmcp service the session starts the first time one comes.

use std::{borrow::Cow, sync::Arc};

use axum::{
    extract::{Query, Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use futures::{SinkExt, StreamExt};
use rmcp::{
    ErrorData, RoleServer, ServerHandler, ServiceExt,
    model::{
        ClientJsonRpcMessage, ClientNotification, ClientRequest, JsonRpcRequest, RequestId,
        ServerJsonRpcMessage,
    },
    service::{Peer, RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    SseState,
    table::{Initialize, LiveService, Route, SessionGone},
    wire::{
        self, CHANNEL_CAPACITY, MessageQuery, Outbound, client_error, send_message,
        session_not_found,
    },
};
use crate::{
    auth::{Principal, client_address::ClientAddress},
    caller::{Caller, TraceParent},
    log_excerpt::log_excerpt,
    transport::{
        direct_call::{self, DirectRequest, PeerUse},
        handshake,
    },
};

pub(super) async fn post_message<H>(
    State(state): State<Arc<SseState<H>>>,
    Query(query): Query<MessageQuery>,
    request: Request,
) -> Response
where
    H: ServerHandler + PeerUse + Clone + Send + Sync + 'static,
{
    let Some(session_id) = query.session_id() else {
        return client_error(StatusCode::BAD_REQUEST, "missing sessionId query parameter");
    };
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    match state.sessions.owner_of(&session_id) {
        Some(owner) if *owner == *principal.name() => {}
        Some(_) => {
            tracing::warn!(
                principal = principal.name(),
                "post to another principal's sse session"
            );
            return session_not_found();
        }
        None => return session_not_found(),
    }
    let client = request.extensions().get::<ClientAddress>().copied();
    let caller = Caller::sse(principal, client, &session_id)
        .with_trace(TraceParent::from_headers(request.headers()));
    let (parts, body) = request.into_parts();
    let mut message = match wire::read_message(body).await {
        Ok(message) => message,
        Err(refusal) => return refusal,
    };
    attach_request_parts(&mut message, parts, caller);
    match deliver(&state, &session_id, message).await {
        Ok(()) => (StatusCode::ACCEPTED, "Accepted").into_response(),
        Err(SessionGone) => session_not_found(),
    }
}

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
            let cancelled = match &notification.notification {
                ClientNotification::CancelledNotification(cancelled) => {
                    cancelled.params.request_id.as_ref()
                }
                _ => None,
            };
            let (was_in_flight, live) = state.sessions.cancel_call(session_id, cancelled)?;
            if was_in_flight && let Some(request_id) = cancelled {
                tracing::info!(id = %log_excerpt(&request_id.to_string()), "cancelled");
            }
            live.map(|live| (live, ClientJsonRpcMessage::Notification(notification)))
        }
        // Answers to what a live service asked the client.
        other => state.sessions.live(session_id)?.map(|live| (live, other)),
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
    let (outbound, cancel) = match state.sessions.initialize(session_id)? {
        Initialize::Run { outbound, cancel } => (outbound, cancel),
        Initialize::Again(outbound) => {
            refuse(&outbound, id, "the session is already initialized");
            return Ok(());
        }
    };
    let ready_state = state.clone();
    let ready_session = session_id.to_owned();
    let (link, transport) = handshake::handshake(Box::new(move |client_info| {
        let peer = ready_state.peers.peer_for(client_info);
        ready_state.sessions.ready(&ready_session, peer);
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
    let needs_live_peer = state.handler.needs_live_peer(&request);
    let route = state.sessions.start_call(
        session_id,
        &id,
        needs_live_peer,
        |outbound, cancel, peer| start_live_service(state.handler.clone(), outbound, cancel, peer),
    )?;
    let (peer, cancel, outbound) = match route {
        Route::NotReady(outbound) => {
            refuse(&outbound, id, "initialize the session first");
            return Ok(());
        }
        Route::Live(live) => {
            return live
                .send(Box::new(ClientJsonRpcMessage::request(request, id)))
                .await
                .map_err(|_| SessionGone);
        }
        Route::Direct(peer, cancel, outbound) => (peer, cancel, outbound),
    };
    let mut request = request;
    if matches!(request, ClientRequest::SubscribeRequest(_)) {
        use rmcp::model::GetExtensions;
        request
            .extensions_mut()
            .insert(stream_notifier(outbound.clone()));
    }
    let forget_call = {
        let state = state.clone();
        let session_id = session_id.to_owned();
        let id = id.clone();
        move || state.sessions.end_call(&session_id, &id)
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

/// Sends to the session's stream, outside any request (resource updates); fails once the
/// stream is gone.
fn stream_notifier(outbound: Outbound) -> crate::handler_link::SessionNotifier {
    crate::handler_link::SessionNotifier::new(move |notification| {
        let message = ServerJsonRpcMessage::notification(notification);
        let line = serde_json::to_string(&message).map_err(|_| crate::handler_link::ReaderGone)?;
        match outbound.clone().try_send(line) {
            Err(error) if error.is_disconnected() => Err(crate::handler_link::ReaderGone),
            // A full queue drops this notice; the next one follows.
            _ => Ok(()),
        }
    })
}

/// The rmcp service a session runs requests that talk through their peer on.
fn start_live_service<H>(
    handler: H,
    outbound: &Outbound,
    cancel: &CancellationToken,
    peer: &Peer<RoleServer>,
) -> LiveService
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
