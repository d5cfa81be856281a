//! hostmcp's Streamable HTTP sessions: the rmcp [`SessionManager`] behind `/mcp` in the
//! session era (2025-03-26 to 2025-11-25). rmcp's service keeps doing the HTTP side
//! (header and version checks, SSE framing, keep-alives); this module owns the sessions.
//!
//! A session is an entry in a table (the negotiated client info, the calls in flight,
//! the standalone GET stream), not a running task: rmcp's bundled manager keeps a worker
//! task, a service loop and seven channels per session, which cost 76 KiB per idle session
//! and four task hops per call. Here:
//! - rmcp runs the `initialize` handshake over a [`HandshakeTransport`]
//!   ([`super::handshake`]), whose service retires once the answer is out;
//! - every later request runs directly on the task that writes its response
//!   ([`super::direct_call`]), unless the handler says (in [`PeerUse`]) that it talks to
//!   the client through its peer: then it gets an rmcp service of its own over a
//!   `RelayTransport`, whose server-to-client requests get session-unique ids and
//!   whose answers, POSTed by the client, are routed back to it;
//! - `notifications/cancelled` cancels a call; closing the session (DELETE, idle
//!   expiry, revocation of its token: [`SessionTable::close_now`]) or shutdown cancels
//!   all of them;
//! - a session expires after [`IDLE_TIMEOUT`] without requests while no standalone
//!   stream is open;
//! - each request stream opens with a priming event that names it; a client whose
//!   stream broke mid-call reconnects (GET with `Last-Event-ID`) and gets the answer,
//!   which is kept from the moment the stream broke.
//!
//! Limits, none of which hostmcp's tools need: nothing is sent on the standalone stream
//! (a call's messages go on its own stream); client notifications other than
//! `cancelled` are not passed to the handler; a resumed stream carries the answer only
//! (not the progress sent while the client was away), and a relayed call's answer is
//! not kept; a GET that reconnects with the standalone stream's `Last-Event-ID` gets a
//! new standalone stream.

use std::{
    collections::{BTreeMap, HashMap},
    convert::Infallible,
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::{Duration, Instant},
};

use crate::log_excerpt::log_excerpt;
use futures::{Stream, StreamExt};
use rmcp::{
    RoleServer, Service,
    model::{
        ClientJsonRpcMessage, ClientNotification, ClientRequest, JsonRpcRequest, RequestId,
        ServerJsonRpcMessage,
    },
    service::{Peer, RxJsonRpcMessage, TxJsonRpcMessage},
    transport::{
        Transport,
        streamable_http_server::session::{ServerSseMessage, SessionId, SessionManager},
    },
};
use tokio::sync::{Notify, mpsc, watch};
use tokio_stream::wrappers::{ReceiverStream, UnboundedReceiverStream};
use tokio_util::sync::CancellationToken;

use super::{
    direct_call::{self, DirectRequest, PeerUse},
    handshake::{self, HandshakeLink, HandshakeTransport, PeerCache},
};

/// A session with no request for this long, and no standalone stream open, is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How often expired sessions are looked for.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// The event id rmcp gives the priming event of standalone streams.
const STANDALONE_EVENT_ID: &str = "0";
/// How long a client waits before it reconnects a request stream that broke (SSE
/// `retry`, sent with the priming event that names the stream).
const RECONNECT_AFTER: Duration = Duration::from_secs(3);
/// How long a reconnect waits for the answer of a call whose old stream the server has
/// not yet seen close.
const RESUME_WAIT: Duration = Duration::from_secs(5);
/// Answers kept per session for clients that reconnect to a broken request stream.
const PARKED_PER_SESSION: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("session not found")]
    NotFound,
    #[error("the session's initialize handshake has not finished")]
    NotInitialized,
    #[error("the initialize handshake ended without an answer")]
    HandshakeFailed,
    #[error("request id {0} is already in flight in this session")]
    DuplicateRequest(RequestId),
    #[error("only a request gets a response stream")]
    NotARequest,
    #[error("no stream to resume from event id {0}")]
    UnknownEvent(String),
    #[error("cannot make a session id: {0}")]
    SessionId(std::io::Error),
}

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
        let table = Arc::new(SessionTable::default());
        tokio::spawn(expire_idle_sessions(Arc::downgrade(&table)));
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
        let id: SessionId = super::new_session_id()
            .map_err(SessionError::SessionId)?
            .into();
        let peers = self.inner.peers.clone();
        let table = self.inner.table.clone();
        let session = id.clone();
        let (link, transport) = handshake::handshake(Box::new(move |client_info| {
            table.ready(&session, peers.peer_for(client_info));
        }));
        self.inner
            .table
            .lock()
            .insert(id.clone(), Session::new(link));
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
        Ok(self.inner.table.lock().contains_key(id))
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
        // for the answer (SEP-1699).
        let priming = futures::stream::iter([ServerSseMessage::priming(
            call_event_id(stream_number),
            RECONNECT_AFTER,
        )]);
        let end_call = {
            let (table, session, call_id) =
                (self.inner.table.clone(), id.clone(), request_id.clone());
            move || table.end_call(&session, &call_id)
        };
        if self.inner.handler.needs_live_peer(&request) {
            let messages = self.relay_call(id, request_id, request, peer, cancel, end_call);
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
        // Nothing is ever sent on it: the sender is kept to end the stream when the
        // session closes, and tells whether the client still holds it.
        let (sender, receiver) = mpsc::channel::<Infallible>(1);
        let mut sessions = self.inner.table.lock();
        let session = sessions.get_mut(id).ok_or(SessionError::NotFound)?;
        // A reconnecting client replaces its old stream.
        session.standalone = Some(sender);
        Ok(ReceiverStream::new(receiver).map(|never| match never {}))
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        if last_event_id == STANDALONE_EVENT_ID {
            return Ok(self.create_standalone_stream(id).await?.left_stream());
        }
        let parked = match parse_call_event_id(&last_event_id) {
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

impl<H> HostSessions<H>
where
    H: Service<RoleServer> + PeerUse + Clone + Send + Sync + 'static,
{
    /// Run a request that talks through its peer on an rmcp service of its own, with the
    /// session's client info; its messages come out of the returned stream.
    fn relay_call(
        &self,
        session: &SessionId,
        request_id: RequestId,
        request: ClientRequest,
        peer: Peer<RoleServer>,
        cancel: CancellationToken,
        end_call: impl FnOnce() + Send + 'static,
    ) -> UnboundedReceiverStream<ServerJsonRpcMessage> {
        let (outbox, messages) = mpsc::unbounded_channel();
        let (inbox_tx, inbox) = mpsc::unbounded_channel();
        let transport = RelayTransport {
            first: Some(ClientJsonRpcMessage::request(request, request_id.clone())),
            request_id,
            inbox,
            inbox_tx,
            outbox,
            answered: CancellationToken::new(),
            table: self.inner.table.clone(),
            session: session.clone(),
        };
        let peer_info = peer.peer_info().map(|info| (*info).clone());
        let service = rmcp::service::serve_directly_with_ct(
            self.inner.handler.clone(),
            transport,
            peer_info,
            cancel,
        );
        tokio::spawn(async move {
            let _ = service.waiting().await;
            end_call();
        });
        UnboundedReceiverStream::new(messages)
    }
}

fn call_event_id(stream_number: u64) -> String {
    format!("c{stream_number}")
}

fn parse_call_event_id(event_id: &str) -> Option<u64> {
    event_id.strip_prefix('c')?.parse().ok()
}

/// The transport of one relayed call: hands rmcp the request, then the client's answers
/// to what the call asked; sends everything the call emits to the call's stream; ends
/// once the call is answered.
struct RelayTransport {
    first: Option<ClientJsonRpcMessage>,
    request_id: RequestId,
    inbox: mpsc::UnboundedReceiver<ClientJsonRpcMessage>,
    inbox_tx: mpsc::UnboundedSender<ClientJsonRpcMessage>,
    outbox: mpsc::UnboundedSender<ServerJsonRpcMessage>,
    answered: CancellationToken,
    table: Arc<SessionTable>,
    session: SessionId,
}

impl Transport<RoleServer> for RelayTransport {
    type Error = direct_call::ReaderGone;

    fn name() -> std::borrow::Cow<'static, str> {
        "hostmcp-relay".into()
    }

    fn send(
        &mut self,
        mut item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let is_answer = match &item {
            ServerJsonRpcMessage::Response(response) => response.id == self.request_id,
            ServerJsonRpcMessage::Error(error) => error.id.as_ref() == Some(&self.request_id),
            _ => false,
        };
        if let ServerJsonRpcMessage::Request(request) = &mut item {
            // Every relayed call numbers its requests from 0: give the client ids unique
            // in the session, and route its answer back by them.
            match self
                .table
                .relay(&self.session, request.id.clone(), self.inbox_tx.clone())
            {
                Some(relay_id) => request.id = relay_id,
                None => return std::future::ready(Err(direct_call::ReaderGone)),
            }
        }
        let sent = self.outbox.send(item).map_err(|_| direct_call::ReaderGone);
        if is_answer {
            self.answered.cancel();
        }
        std::future::ready(sent)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        tokio::select! {
            message = self.inbox.recv() => message,
            () = self.answered.cancelled() => None,
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.answered.cancel();
        Ok(())
    }
}

/// The open sessions.
#[derive(Default)]
pub struct SessionTable {
    sessions: Mutex<HashMap<SessionId, Session>>,
}

struct Session {
    /// Taken by `initialize_session`.
    handshake: Option<HandshakeLink>,
    /// Set when the handshake answered; requests before that are refused.
    peer: Option<Peer<RoleServer>>,
    calls: HashMap<RequestId, InFlight>,
    /// Server-to-client requests of relayed calls, by the id the client sees.
    relayed: HashMap<RequestId, Relayed>,
    next_relay_id: i64,
    /// Numbers the request streams (their priming event ids).
    next_stream: u64,
    /// Answers of calls whose stream broke, by stream number, until the client
    /// reconnects for them.
    parked: BTreeMap<u64, watch::Receiver<Option<ServerJsonRpcMessage>>>,
    /// Woken when an answer is parked or a call ends, for reconnects that came first.
    parked_changed: Arc<Notify>,
    standalone: Option<mpsc::Sender<Infallible>>,
    last_active: Instant,
    /// rmcp closes the session when the handshake's service ends, which it does on
    /// purpose here: that one close is not the client's and is skipped.
    handshake_close_pending: bool,
}

/// A call that has not ended yet.
struct InFlight {
    cancel: CancellationToken,
    /// The number of its stream (its priming event id).
    stream: u64,
}

struct Relayed {
    original_id: RequestId,
    call: mpsc::UnboundedSender<ClientJsonRpcMessage>,
}

impl Session {
    fn new(handshake: HandshakeLink) -> Self {
        Self {
            handshake: Some(handshake),
            peer: None,
            calls: HashMap::new(),
            relayed: HashMap::new(),
            next_relay_id: 0,
            next_stream: 0,
            parked: BTreeMap::new(),
            parked_changed: Arc::default(),
            standalone: None,
            last_active: Instant::now(),
            handshake_close_pending: false,
        }
    }

    fn is_idle_since(&self, deadline: Instant) -> bool {
        self.calls.is_empty()
            && self.last_active < deadline
            && self.standalone.as_ref().is_none_or(mpsc::Sender::is_closed)
    }
}

impl std::fmt::Debug for SessionTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTable")
            .field("open", &self.len())
            .finish()
    }
}

impl SessionTable {
    /// Whether `id` names an open session.
    pub fn is_open(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    /// Number of open sessions.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn ready(&self, id: &SessionId, peer: Peer<RoleServer>) {
        if let Some(session) = self.lock().get_mut(id) {
            session.peer = Some(peer);
            session.handshake_close_pending = true;
        }
    }

    fn start_call(
        &self,
        id: &SessionId,
        request_id: &RequestId,
        cancel: CancellationToken,
    ) -> Result<(Peer<RoleServer>, u64), SessionError> {
        let mut sessions = self.lock();
        let session = sessions.get_mut(id).ok_or(SessionError::NotFound)?;
        let peer = session.peer.clone().ok_or(SessionError::NotInitialized)?;
        if session.calls.contains_key(request_id) {
            return Err(SessionError::DuplicateRequest(request_id.clone()));
        }
        session.next_stream += 1;
        let stream = session.next_stream;
        session
            .calls
            .insert(request_id.clone(), InFlight { cancel, stream });
        session.last_active = Instant::now();
        Ok((peer, stream))
    }

    /// Finish an abandoned call and keep its answer for a reconnecting client.
    fn park(&self, id: &SessionId, stream_number: u64, call: direct_call::AbandonedCall) {
        let (answer_tx, answer_rx) = watch::channel(None);
        if let Some(session) = self.lock().get_mut(id) {
            if session.parked.len() >= PARKED_PER_SESSION {
                session.parked.pop_first();
            }
            session.parked.insert(stream_number, answer_rx);
            session.parked_changed.notify_waiters();
        }
        tokio::spawn(async move {
            let _ = answer_tx.send(Some(call.await));
        });
    }

    /// The parked answer of stream `stream_number`, handed out once. A client may come
    /// back before the server has seen its old connection close: while the stream's
    /// call still runs, wait (up to [`RESUME_WAIT`]) for the answer to be parked.
    async fn unpark(
        &self,
        id: &SessionId,
        stream_number: u64,
    ) -> Option<watch::Receiver<Option<ServerJsonRpcMessage>>> {
        let deadline = tokio::time::Instant::now() + RESUME_WAIT;
        loop {
            let changed = self.lock().get(id)?.parked_changed.clone();
            let notified = changed.notified();
            tokio::pin!(notified);
            // Registered before looking, so a change after the look is not missed.
            notified.as_mut().enable();
            {
                let mut sessions = self.lock();
                let session = sessions.get_mut(id)?;
                if let Some(answer) = session.parked.remove(&stream_number) {
                    return Some(answer);
                }
                if !session
                    .calls
                    .values()
                    .any(|call| call.stream == stream_number)
                {
                    return None;
                }
            }
            tokio::time::timeout_at(deadline, notified).await.ok()?;
        }
    }

    fn end_call(&self, id: &SessionId, request_id: &RequestId) {
        if let Some(session) = self.lock().get_mut(id) {
            session.calls.remove(request_id);
            session.relayed.retain(|_, relay| !relay.call.is_closed());
            session.last_active = Instant::now();
            session.parked_changed.notify_waiters();
        }
    }

    /// Register a server-to-client request of a relayed call; the id the client sees.
    fn relay(
        &self,
        id: &SessionId,
        original_id: RequestId,
        call: mpsc::UnboundedSender<ClientJsonRpcMessage>,
    ) -> Option<RequestId> {
        let mut sessions = self.lock();
        let session = sessions.get_mut(id)?;
        session.next_relay_id += 1;
        let relay_id = RequestId::Number(session.next_relay_id);
        session
            .relayed
            .insert(relay_id.clone(), Relayed { original_id, call });
        Some(relay_id)
    }

    fn close(&self, id: &SessionId) {
        let mut sessions = self.lock();
        let Some(session) = sessions.get_mut(id) else {
            return;
        };
        if std::mem::take(&mut session.handshake_close_pending) {
            return;
        }
        if let Some(session) = sessions.remove(id) {
            drop(sessions);
            for call in session.calls.values() {
                call.cancel.cancel();
            }
        }
    }

    /// Close session `id` now, whatever its state: its calls are cancelled (their
    /// commands killed) and its standalone stream ends. For a revoked token's sessions.
    pub fn close_now(&self, id: &str) -> bool {
        let removed = self.lock().remove(id);
        let Some(session) = removed else {
            return false;
        };
        for call in session.calls.values() {
            call.cancel.cancel();
        }
        true
    }

    fn expire_idle(&self, now: Instant) -> usize {
        let Some(deadline) = now.checked_sub(IDLE_TIMEOUT) else {
            return 0;
        };
        let mut sessions = self.lock();
        let before = sessions.len();
        sessions.retain(|_, session| !session.is_idle_since(deadline));
        before - sessions.len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<SessionId, Session>> {
        lock(&self.sessions)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update of these maps is a single insert or remove: a panic cannot leave
    // one half done.
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

async fn expire_idle_sessions(table: Weak<SessionTable>) {
    loop {
        tokio::time::sleep(SWEEP_INTERVAL).await;
        let Some(table) = table.upgrade() else {
            return;
        };
        let expired = table.expire_idle(Instant::now());
        if expired > 0 {
            tracing::info!(expired, "closed idle sessions");
        }
    }
}

#[cfg(test)]
mod tests {
    use rmcp::ServerHandler;

    use super::*;

    #[derive(Clone)]
    struct Quiet;
    impl ServerHandler for Quiet {}

    fn table_with(id: &str) -> (SessionTable, SessionId) {
        let table = SessionTable::default();
        let id: SessionId = id.into();
        let (link, _transport) = handshake::handshake(Box::new(|_| {}));
        table.lock().insert(id.clone(), Session::new(link));
        (table, id)
    }

    fn peer() -> Peer<RoleServer> {
        direct_call::detached_peer(Quiet, None)
    }

    #[tokio::test]
    async fn the_close_that_follows_the_handshake_is_skipped_once() {
        let (table, id) = table_with("s1");
        table.ready(&id, peer());
        table.close(&id);
        assert!(
            table.is_open("s1"),
            "the handshake service's own close is not the client's"
        );
        table.close(&id);
        assert!(!table.is_open("s1"));
    }

    #[tokio::test]
    async fn a_failed_handshake_closes_the_session() {
        let (table, id) = table_with("s1");
        table.close(&id);
        assert!(!table.is_open("s1"));
    }

    #[tokio::test]
    async fn calls_need_a_ready_session_and_unique_ids() {
        let (table, id) = table_with("s1");
        let request = RequestId::Number(1);
        assert!(matches!(
            table.start_call(&id, &request, CancellationToken::new()),
            Err(SessionError::NotInitialized)
        ));
        table.ready(&id, peer());
        let (_, first_stream) = table
            .start_call(&id, &request, CancellationToken::new())
            .unwrap();
        assert!(matches!(
            table.start_call(&id, &request, CancellationToken::new()),
            Err(SessionError::DuplicateRequest(_))
        ));
        table.end_call(&id, &request);
        let (_, second_stream) = table
            .start_call(&id, &request, CancellationToken::new())
            .unwrap();
        assert_ne!(first_stream, second_stream);
        assert!(matches!(
            table.start_call(&"nope".into(), &request, CancellationToken::new()),
            Err(SessionError::NotFound)
        ));
    }

    #[tokio::test]
    async fn closing_a_session_cancels_its_calls() {
        let (table, id) = table_with("s1");
        table.ready(&id, peer());
        table.close(&id); // the handshake's
        let cancel = CancellationToken::new();
        table
            .start_call(&id, &RequestId::Number(1), cancel.clone())
            .unwrap();
        table.close(&id);
        assert!(cancel.is_cancelled());
    }

    #[tokio::test]
    async fn closing_now_ends_the_stream_and_calls_even_right_after_the_handshake() {
        let (table, id) = table_with("s1");
        table.ready(&id, peer()); // the handshake's close is still pending
        let cancel = CancellationToken::new();
        table
            .start_call(&id, &RequestId::Number(1), cancel.clone())
            .unwrap();
        let (sender, mut receiver) = mpsc::channel::<Infallible>(1);
        table.lock().get_mut("s1").unwrap().standalone = Some(sender);
        assert!(table.close_now("s1"));
        assert!(!table.is_open("s1") && cancel.is_cancelled());
        assert!(
            receiver.recv().await.is_none(),
            "the standalone stream ended"
        );
        assert!(!table.close_now("s1"), "already closed");
    }

    #[tokio::test]
    async fn only_idle_sessions_expire() {
        let table = SessionTable::default();
        for id in ["idle", "calling", "listening"] {
            let (link, _transport) = handshake::handshake(Box::new(|_| {}));
            table.lock().insert(id.into(), Session::new(link));
            table.ready(&id.into(), peer());
        }
        table
            .start_call(
                &"calling".into(),
                &RequestId::Number(1),
                CancellationToken::new(),
            )
            .unwrap();
        let (sender, _receiver) = mpsc::channel(1);
        table.lock().get_mut("listening").unwrap().standalone = Some(sender);
        let later = Instant::now() + IDLE_TIMEOUT + Duration::from_secs(1);
        assert_eq!(table.expire_idle(later), 1);
        assert!(!table.is_open("idle"));
        assert!(table.is_open("calling") && table.is_open("listening"));
        // A standalone stream the client dropped does not keep its session.
        table.lock().get_mut("listening").unwrap().standalone = {
            let (sender, receiver) = mpsc::channel(1);
            drop(receiver);
            Some(sender)
        };
        assert_eq!(table.expire_idle(later), 1);
        assert!(!table.is_open("listening"));
    }

    #[tokio::test]
    async fn an_abandoned_call_is_parked_until_its_client_comes_back() {
        let (table, id) = table_with("s1");
        table.park(
            &id,
            4,
            Box::pin(async {
                ServerJsonRpcMessage::response(
                    rmcp::model::ServerResult::EmptyResult(().into()),
                    RequestId::Number(9),
                )
            }),
        );
        assert!(table.unpark(&id, 3).await.is_none());
        let mut answer = table.unpark(&id, 4).await.expect("parked");
        let answer = answer.wait_for(Option::is_some).await.unwrap().clone();
        assert!(
            matches!(answer, Some(ServerJsonRpcMessage::Response(r)) if r.id == RequestId::Number(9))
        );
        assert!(
            table.unpark(&id, 4).await.is_none(),
            "an answer is handed out once"
        );
    }

    #[tokio::test]
    async fn a_reconnect_that_comes_before_the_park_waits_for_it() {
        let (table, id) = table_with("s1");
        table.ready(&id, peer());
        let request = RequestId::Number(9);
        let (_, stream) = table
            .start_call(&id, &request, CancellationToken::new())
            .unwrap();
        let table = Arc::new(table);
        let later = (table.clone(), id.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let (table, id) = later;
            table.park(
                &id,
                stream,
                Box::pin(async move {
                    ServerJsonRpcMessage::response(
                        rmcp::model::ServerResult::EmptyResult(().into()),
                        RequestId::Number(9),
                    )
                }),
            );
        });
        assert!(
            table.unpark(&id, stream).await.is_some(),
            "waited for the park"
        );
        // A call that ended without being parked (its answer went out) has nothing to wait for.
        table.end_call(&id, &request);
        assert!(table.unpark(&id, stream).await.is_none());
    }

    #[tokio::test]
    async fn relayed_requests_get_ids_unique_in_the_session() {
        let (table, id) = table_with("s1");
        let (call, _inbox) = mpsc::unbounded_channel();
        let first = table
            .relay(&id, RequestId::Number(0), call.clone())
            .unwrap();
        let second = table.relay(&id, RequestId::Number(0), call).unwrap();
        assert_ne!(first, second);
        assert_eq!(
            table.lock()[&id].relayed[&second].original_id,
            RequestId::Number(0)
        );
    }

    #[test]
    fn call_event_ids_round_trip() {
        assert_eq!(parse_call_event_id(&call_event_id(42)), Some(42));
        assert_eq!(parse_call_event_id("0"), None);
        assert_eq!(parse_call_event_id("c"), None);
        assert_eq!(parse_call_event_id("x1"), None);
    }
}
