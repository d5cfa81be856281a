//! The rmcp [`SessionManager`] adapter: what rmcp calls for each `/mcp` request of the
//! session era (create, initialize, stream a request, accept a notification or an
//! answer, open or resume a GET stream, close), turned into operations on the
//! [`SessionTable`]. Owns the order of those steps, not the entries.

use std::{convert::Infallible, sync::Arc, time::Instant};

use futures::{Stream, StreamExt};
use rmcp::{
    RoleServer, Service,
    model::{
        ClientJsonRpcMessage, ClientNotification, ClientRequest, JsonRpcRequest, ProtocolVersion,
        ServerJsonRpcMessage,
    },
    transport::streamable_http_server::session::{ServerSseMessage, SessionId, SessionManager},
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::{
    SessionError,
    relay::{self, RelayedCall},
    replay::{self, RECONNECT_AFTER, STANDALONE_EVENT_ID},
    table::{Session, SessionTable},
};
use crate::handler_link::{ReaderGone, SessionNotifier};
use crate::log_excerpt::log_excerpt;
use crate::transport::{
    direct_call::{self, DirectRequest, PeerUse},
    handshake::{self, HandshakeTransport, PeerCache},
};

/// The first protocol version that defines the empty priming event (SEP-1699).
const PRIMING_SINCE: ProtocolVersion = ProtocolVersion::V_2025_11_25;

/// The session manager handed to rmcp's `StreamableHttpService`.
pub struct HostSessions<H> {
    inner: Arc<Inner<H>>,
}

struct Inner<H> {
    handler: H,
    table: Arc<SessionTable>,
    peers: Arc<PeerCache<H>>,
    shutdown: CancellationToken,
}

impl<H> HostSessions<H>
where
    H: Service<RoleServer> + PeerUse + Clone + Send + Sync + 'static,
{
    /// Sessions served by `handler`; `shutdown` cancels every call. Spawns the expiry
    /// sweeper, which ends with the returned value.
    pub fn new(handler: H, shutdown: CancellationToken) -> Self {
        let table = SessionTable::with_sweeper();
        Self {
            inner: Arc::new(Inner {
                peers: PeerCache::new(handler.clone()),
                handler,
                table,
                shutdown,
            }),
        }
    }

    /// The table, for code that needs to know which sessions are open.
    pub fn table(&self) -> Arc<SessionTable> {
        self.inner.table.clone()
    }
}

impl<H> SessionManager for HostSessions<H>
where
    H: Service<RoleServer> + PeerUse + Clone + Send + Sync + 'static,
{
    type Error = SessionError;
    type Transport = HandshakeTransport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let id: SessionId = crate::transport::new_session_id()
            .map_err(SessionError::SessionId)?
            .into();
        let peers = self.inner.peers.clone();
        let table = self.inner.table.clone();
        let session = id.clone();
        let (link, transport) = handshake::handshake(Box::new(move |client_info| {
            table.ready(&session, peers.peer_for(client_info));
        }));
        self.inner.table.insert(id.clone(), Session::new(link));
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        let handshake = self
            .inner
            .table
            .lock()
            .get_mut(id)
            .ok_or(SessionError::NotFound)?
            .handshake
            .take()
            .ok_or(SessionError::HandshakeFailed)?;
        handshake
            .run(message)
            .await
            .map_err(|_| SessionError::HandshakeFailed)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        Ok(self.inner.table.is_open(id))
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.inner.table.close(id);
        Ok(())
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let ClientJsonRpcMessage::Request(JsonRpcRequest {
            id: request_id,
            request,
            ..
        }) = message
        else {
            return Err(SessionError::NotARequest);
        };
        let cancel = self.inner.shutdown.child_token();
        let (peer, stream_number) = self
            .inner
            .table
            .start_call(id, &request_id, cancel.clone())?;
        // Names this stream, so a client whose connection breaks mid-call can come back
        // for the answer (SEP-1699). Only for the versions that define the empty priming
        // event: older clients (Python SDK 1.9, TypeScript SDK 1.12) log an error for it.
        let primed = peer
            .peer_info()
            .is_some_and(|info| info.protocol_version >= PRIMING_SINCE);
        let priming = futures::stream::iter(primed.then(|| {
            ServerSseMessage::priming(replay::call_event_id(stream_number), RECONNECT_AFTER)
        }));
        let end_call = {
            let (table, session, call_id) =
                (self.inner.table.clone(), id.clone(), request_id.clone());
            move || table.end_call(&session, &call_id)
        };
        let mut request = request;
        if matches!(request, ClientRequest::SubscribeRequest(_)) {
            use rmcp::model::GetExtensions;
            let notifier = session_notifier(&self.inner.table, id);
            request.extensions_mut().insert(notifier);
        }
        if self.inner.handler.needs_live_peer(&request) {
            let call = RelayedCall {
                session: id.clone(),
                request_id,
                request,
                peer,
                cancel,
            };
            let messages = relay::relay_call(
                self.inner.handler.clone(),
                self.inner.table.clone(),
                call,
                end_call,
            );
            return Ok(priming
                .chain(messages.map(ServerSseMessage::from_message))
                .right_stream());
        }
        let (table, session) = (self.inner.table.clone(), id.clone());
        let stream = direct_call::call(
            self.inner.handler.clone(),
            DirectRequest {
                id: request_id,
                request,
                peer,
                cancel,
            },
            end_call,
        )
        .on_abandon(move |call| table.park(&session, stream_number, call));
        Ok(priming
            .chain(stream.map(ServerSseMessage::from_message))
            .left_stream())
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        let mut sessions = self.inner.table.lock();
        let session = sessions.get_mut(id).ok_or(SessionError::NotFound)?;
        session.last_active = Instant::now();
        match message {
            ClientJsonRpcMessage::Notification(notification) => {
                if let ClientNotification::CancelledNotification(cancelled) =
                    notification.notification
                    && let Some(request_id) = cancelled.params.request_id
                    && let Some(call) = session.calls.get(&request_id)
                {
                    tracing::info!(
                        id = %log_excerpt(&request_id.to_string()),
                        reason = cancelled.params.reason.as_deref().map(log_excerpt).as_deref(),
                        "cancelled"
                    );
                    call.cancel.cancel();
                }
            }
            ClientJsonRpcMessage::Response(mut response) => {
                if let Some(relay) = session.relayed.remove(&response.id) {
                    response.id = relay.original_id;
                    let _ = relay.call.send(ClientJsonRpcMessage::Response(response));
                }
            }
            ClientJsonRpcMessage::Error(mut error) => {
                if let Some(relay) = error.id.as_ref().and_then(|id| session.relayed.remove(id)) {
                    error.id = Some(relay.original_id);
                    let _ = relay.call.send(ClientJsonRpcMessage::Error(error));
                }
            }
            ClientJsonRpcMessage::Request(_) => {}
        }
        Ok(())
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        // Nothing but notices (resource updates) is sent on it: `sender` is kept to end
        // the stream when the session closes, and tells whether the client still holds it.
        let (sender, receiver) = mpsc::channel::<Infallible>(1);
        let (notices, notices_out) = mpsc::unbounded_channel();
        let mut sessions = self.inner.table.lock();
        let session = sessions.get_mut(id).ok_or(SessionError::NotFound)?;
        // A reconnecting client replaces its old stream.
        session.standalone = Some(sender);
        session.notices = Some(notices);
        let ends = ReceiverStream::new(receiver).map(|never| match never {});
        let notices = tokio_stream::wrappers::UnboundedReceiverStream::new(notices_out)
            .map(ServerSseMessage::from_message);
        // Ends when the session's entry (holding both senders) drops.
        Ok(futures::stream::select(ends, notices))
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        if last_event_id == STANDALONE_EVENT_ID {
            return Ok(self.create_standalone_stream(id).await?.left_stream());
        }
        let parked = match replay::parse_call_event_id(&last_event_id) {
            Some(stream_number) => self.inner.table.unpark(id, stream_number).await,
            None => None,
        };
        let Some(mut answer) = parked else {
            return Err(SessionError::UnknownEvent(last_event_id));
        };
        let answer = direct_call::OnceStream::new(async move {
            let answer = answer.wait_for(Option::is_some).await.ok()?;
            answer.clone()
        });
        Ok(answer.map(ServerSseMessage::from_message).right_stream())
    }
}

/// Sends to session `id`'s standalone stream while the session lives (dropped while no
/// stream is open); fails once the session has left the table.
fn session_notifier(table: &Arc<SessionTable>, id: &SessionId) -> SessionNotifier {
    let (table, id) = (Arc::downgrade(table), id.clone());
    SessionNotifier::new(move |notification| {
        let table = table.upgrade().ok_or(ReaderGone)?;
        let sessions = table.lock();
        let session = sessions.get(&id).ok_or(ReaderGone)?;
        if let Some(notices) = &session.notices {
            let _ = notices.send(ServerJsonRpcMessage::notification(notification));
        }
        Ok(())
    })
}
