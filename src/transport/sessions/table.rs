//! The table of open `/mcp` sessions: one entry per session (its handshake, peer, calls
//! in flight, relayed requests, parked answers, standalone stream and owner), how an
//! entry is created, used by calls and removed (closed by rmcp, closed now, or expired
//! by the one sweeper), and nothing about HTTP or rmcp's calling order.

use std::{
    collections::{BTreeMap, HashMap},
    convert::Infallible,
    sync::{Arc, Weak},
    time::{Duration, Instant},
};

use parking_lot::{Mutex, MutexGuard};
use rmcp::{
    RoleServer,
    model::{ClientJsonRpcMessage, RequestId, ServerJsonRpcMessage},
    service::Peer,
    transport::streamable_http_server::session::SessionId,
};
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{
    SessionError,
    owner::{BindError, SessionOwner},
};
use crate::{auth::revocation::EndWatch, transport::handshake::HandshakeLink};

/// A session with no request for this long, and no standalone stream open, is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How often expired sessions are looked for.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// The open sessions.
#[derive(Default)]
pub struct SessionTable {
    sessions: Mutex<HashMap<SessionId, Session>>,
}

pub(super) struct Session {
    /// Taken by `initialize_session`.
    pub(super) handshake: Option<HandshakeLink>,
    /// Set when the handshake answered; requests before that are refused.
    pub(super) peer: Option<Peer<RoleServer>>,
    pub(super) calls: HashMap<RequestId, InFlight>,
    /// Server-to-client requests of relayed calls, by the id the client sees.
    pub(super) relayed: HashMap<RequestId, Relayed>,
    next_relay_id: i64,
    /// Numbers the request streams (their priming event ids).
    next_stream: u64,
    /// Answers of calls whose stream broke, by stream number, until the client
    /// reconnects for them.
    pub(super) parked: BTreeMap<u64, watch::Receiver<Option<ServerJsonRpcMessage>>>,
    /// Woken when an answer is parked or a call ends, for reconnects that came first.
    pub(super) parked_changed: Arc<Notify>,
    pub(super) standalone: Option<mpsc::Sender<Infallible>>,
    pub(super) last_active: Instant,
    /// rmcp closes the session when the handshake's service ends, which it does on
    /// purpose here: that one close is not the client's and is skipped.
    handshake_close_pending: bool,
    /// Who opened it; `None` until the response to its `initialize` has been bound.
    pub(super) owner: Option<SessionOwner>,
    /// Counted in `hostmcp_sessions_open` while the entry lives.
    _open: crate::metrics::OpenSession,
}

/// A call that has not ended yet.
pub(super) struct InFlight {
    pub(super) cancel: CancellationToken,
    /// The number of its stream (its priming event id).
    pub(super) stream: u64,
}

pub(super) struct Relayed {
    pub(super) original_id: RequestId,
    pub(super) call: mpsc::UnboundedSender<ClientJsonRpcMessage>,
}

impl Session {
    pub(super) fn new(handshake: HandshakeLink) -> Self {
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
            owner: None,
            _open: crate::metrics::OpenSession::new(crate::metrics::SessionTransport::Mcp),
        }
    }

    fn is_idle_since(&self, deadline: Instant) -> bool {
        self.calls.is_empty()
            && self.last_active < deadline
            && self.standalone.as_ref().is_none_or(mpsc::Sender::is_closed)
    }

    /// The session left the table: cancel its calls (killing their commands); its
    /// standalone stream ends as the entry drops. Hands back the owner, whose closing
    /// is still to be put on record.
    pub(super) fn end(self) -> Option<SessionOwner> {
        for call in self.calls.values() {
            call.cancel.cancel();
        }
        self.owner
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
    /// An empty table, and the sweeper that expires its idle sessions (it ends with
    /// the table).
    pub fn with_sweeper() -> Arc<Self> {
        let table = Arc::new(Self::default());
        tokio::spawn(expire_idle_sessions(Arc::downgrade(&table)));
        table
    }

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

    pub(super) fn insert(&self, id: SessionId, session: Session) {
        self.lock().insert(id, session);
    }

    pub(super) fn ready(&self, id: &SessionId, peer: Peer<RoleServer>) {
        if let Some(session) = self.lock().get_mut(id) {
            session.peer = Some(peer);
            session.handshake_close_pending = true;
        }
    }

    pub(super) fn start_call(
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

    pub(super) fn end_call(&self, id: &SessionId, request_id: &RequestId) {
        if let Some(session) = self.lock().get_mut(id) {
            session.calls.remove(request_id);
            session.relayed.retain(|_, relay| !relay.call.is_closed());
            session.last_active = Instant::now();
            session.parked_changed.notify_waiters();
        }
    }

    /// Register a server-to-client request of a relayed call; the id the client sees.
    pub(super) fn relay(
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

    /// rmcp's close (DELETE, or the handshake's service ending, which is skipped once).
    pub(super) fn close(&self, id: &SessionId) {
        let mut sessions = self.lock();
        let Some(session) = sessions.get_mut(id) else {
            return;
        };
        if std::mem::take(&mut session.handshake_close_pending) {
            return;
        }
        if let Some(session) = sessions.remove(id) {
            drop(sessions);
            record_closed(id, session.end());
        }
    }

    /// Close session `id` now, whatever its state: its calls are cancelled (their
    /// commands killed) and its standalone stream ends; an owned session's closing is
    /// put on record. For a session refused at its owner's cap; a revoked owner's
    /// session closes through [`SessionTable::close_owned_now`], which records why first.
    pub fn close_now(&self, id: &str) -> bool {
        let Some(session) = self.remove(id) else {
            return false;
        };
        record_closed(id, session.end());
        true
    }

    pub(super) fn remove(&self, id: &str) -> Option<Session> {
        self.lock().remove(id)
    }

    /// Remove the sessions idle since before `now - IDLE_TIMEOUT`; how many.
    pub(super) fn expire_idle(&self, now: Instant) -> usize {
        let Some(deadline) = now.checked_sub(IDLE_TIMEOUT) else {
            return 0;
        };
        let expired: Vec<(SessionId, Session)> = self
            .lock()
            .extract_if(|_, session| session.is_idle_since(deadline))
            .collect();
        let count = expired.len();
        for (id, session) in expired {
            record_closed(&id, session.end());
        }
        count
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, HashMap<SessionId, Session>> {
        self.sessions.lock()
    }
}

fn record_closed(id: &str, owner: Option<SessionOwner>) {
    if let Some(owner) = owner {
        owner.record_closed(id);
    }
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

/// Who owns each session ([`SessionOwner`]): asked by the owner check on every request.
impl SessionTable {
    /// The name of the principal that owns session `id`; `None` when no session has
    /// that id or it is not bound yet.
    pub fn owner_of(&self, id: &str) -> Option<Arc<str>> {
        let sessions = self.lock();
        Some(sessions.get(id)?.owner.as_ref()?.name.clone())
    }

    /// Bind session `id` to `owner`, unless `owner` already holds `limit` sessions.
    pub fn bind(&self, id: &str, owner: SessionOwner, limit: usize) -> Result<(), BindError> {
        let mut sessions = self.lock();
        let held = sessions
            .values()
            .filter_map(|session| session.owner.as_ref())
            .filter(|held| held.name == owner.name)
            .count();
        if held >= limit {
            return Err(BindError::TooMany { limit });
        }
        match sessions.get_mut(id) {
            Some(session) => {
                session.owner = Some(owner);
                Ok(())
            }
            None => Err(BindError::Gone(owner)),
        }
    }

    /// Keep `watch` (the revocation of its owner's token) with session `id` while it
    /// is open; dropped at once if it is not.
    pub fn watch_owner(&self, id: &str, watch: EndWatch) {
        if let Some(owner) = self
            .lock()
            .get_mut(id)
            .and_then(|session| session.owner.as_mut())
        {
            owner.revoked = Some(watch);
        }
    }

    /// Close session `id` now like [`SessionTable::close_now`], but hand back its owner
    /// instead of recording the closing: for a caller that records why first.
    pub fn close_owned_now(&self, id: &str) -> Option<SessionOwner> {
        self.remove(id)?.end()
    }
}
