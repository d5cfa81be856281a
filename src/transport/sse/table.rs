//! The table of open `/sse` sessions: one entry per `GET /sse` stream (its owner, the
//! channel to its stream, its token, its handshake phase, its calls in flight and its
//! live service, once one came), the cap on one principal's sessions, and the steps a
//! message takes through an entry. Nothing about HTTP framing or rmcp's services.

use std::{collections::HashMap, sync::Arc};

use parking_lot::{Mutex, MutexGuard};
use rmcp::{
    RoleServer,
    model::{ClientJsonRpcMessage, RequestId},
    service::Peer,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::wire::Outbound;

/// The open legacy SSE sessions, by id.
#[derive(Default)]
pub struct SseSessions {
    sessions: Mutex<HashMap<String, SseSession>>,
}

/// One session: whose it is, where its messages go and what runs in it.
pub struct SseSession {
    owner: Arc<str>,
    /// Serialized server messages, to the session's stream.
    outbound: Outbound,
    /// Cancelled when the stream closes; every call's token is a child.
    cancel: CancellationToken,
    phase: Phase,
    calls: HashMap<RequestId, CancellationToken>,
    /// The rmcp service for requests that talk through their peer, once one came.
    live: Option<LiveService>,
    /// Counted in `hostmcp_sessions_open` while the entry lives.
    _open: crate::metrics::OpenSession,
}

/// Where a session's requests that talk through their peer go.
pub type LiveService = mpsc::Sender<Box<ClientJsonRpcMessage>>;

enum Phase {
    New,
    Initializing,
    Ready(Peer<RoleServer>),
}

/// The session closed (or never was) while a message was on its way to it.
#[derive(Debug, thiserror::Error)]
#[error("the SSE session is closed")]
pub struct SessionGone;

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("the principal already holds its maximum of {limit} open SSE sessions")]
pub struct TooManySessions {
    pub limit: usize,
}

/// What `initialize` may do in a session.
pub enum Initialize {
    /// Run the handshake: its answer goes to `outbound`, its service under `cancel`.
    Run {
        outbound: Outbound,
        cancel: CancellationToken,
    },
    /// The session was initialized already: refuse on `outbound`.
    Again(Outbound),
}

/// Where a request runs.
pub enum Route {
    /// Not initialized yet: refuse on the stream.
    NotReady(Outbound),
    /// On the session's live service.
    Live(LiveService),
    /// Directly, with the session's peer, the call's token and the stream to write to.
    Direct(Peer<RoleServer>, CancellationToken, Outbound),
}

impl SseSession {
    /// A new session of `owner`, writing to `outbound`, ended by `cancel`.
    pub fn new(owner: &str, outbound: Outbound, cancel: CancellationToken) -> Self {
        Self {
            owner: Arc::from(owner),
            outbound,
            cancel,
            phase: Phase::New,
            calls: HashMap::new(),
            live: None,
            _open: crate::metrics::OpenSession::new(crate::metrics::SessionTransport::Sse),
        }
    }
}

impl SseSessions {
    /// Add session `id`, unless its owner already holds `limit` sessions; checked and
    /// added under one lock, so concurrent opens cannot overshoot.
    pub fn open(&self, id: &str, session: SseSession, limit: usize) -> Result<(), TooManySessions> {
        let mut sessions = self.lock();
        let held = sessions
            .values()
            .filter(|held| held.owner == session.owner)
            .count();
        if held >= limit {
            return Err(TooManySessions { limit });
        }
        sessions.insert(id.to_owned(), session);
        Ok(())
    }

    /// The name of the principal that owns session `id`, if it is open.
    pub fn owner_of(&self, id: &str) -> Option<Arc<str>> {
        self.lock().get(id).map(|session| session.owner.clone())
    }

    /// Remove session `id` (its stream closed): its token is cancelled by the stream's
    /// guard, which ends its calls. Whether it was open.
    pub fn remove(&self, id: &str) -> bool {
        self.lock().remove(id).is_some()
    }

    /// Number of open sessions.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Start the handshake of session `id`, once.
    pub fn initialize(&self, id: &str) -> Result<Initialize, SessionGone> {
        let mut sessions = self.lock();
        let session = sessions.get_mut(id).ok_or(SessionGone)?;
        if !matches!(session.phase, Phase::New) {
            return Ok(Initialize::Again(session.outbound.clone()));
        }
        session.phase = Phase::Initializing;
        Ok(Initialize::Run {
            outbound: session.outbound.clone(),
            cancel: session.cancel.clone(),
        })
    }

    /// The handshake of session `id` answered: its calls carry `peer`.
    pub fn ready(&self, id: &str, peer: Peer<RoleServer>) {
        if let Some(session) = self.lock().get_mut(id) {
            session.phase = Phase::Ready(peer);
        }
    }

    /// Route request `request_id` of session `id`: on the live service when it talks
    /// through its peer (`start_live` makes that service the first time), else directly
    /// as a call in flight, which [`SseSessions::end_call`] forgets.
    pub fn start_call(
        &self,
        id: &str,
        request_id: &RequestId,
        needs_live_peer: bool,
        start_live: impl FnOnce(&Outbound, &CancellationToken, &Peer<RoleServer>) -> LiveService,
    ) -> Result<Route, SessionGone> {
        let mut sessions = self.lock();
        let session = sessions.get_mut(id).ok_or(SessionGone)?;
        let Phase::Ready(peer) = &session.phase else {
            return Ok(Route::NotReady(session.outbound.clone()));
        };
        let peer = peer.clone();
        if needs_live_peer {
            let live = match &session.live {
                Some(live) => live.clone(),
                None => start_live(&session.outbound, &session.cancel, &peer),
            };
            session.live = Some(live.clone());
            return Ok(Route::Live(live));
        }
        let cancel = session.cancel.child_token();
        session.calls.insert(request_id.clone(), cancel.clone());
        Ok(Route::Direct(peer, cancel, session.outbound.clone()))
    }

    /// Call `request_id` of session `id` ended.
    pub fn end_call(&self, id: &str, request_id: &RequestId) {
        if let Some(session) = self.lock().get_mut(id) {
            session.calls.remove(request_id);
        }
    }

    /// Cancel call `request_id` of session `id` (`notifications/cancelled`); whether it
    /// was in flight. Also the session's live service, if any, to pass it on to.
    pub fn cancel_call(
        &self,
        id: &str,
        request_id: Option<&RequestId>,
    ) -> Result<(bool, Option<LiveService>), SessionGone> {
        let sessions = self.lock();
        let session = sessions.get(id).ok_or(SessionGone)?;
        let call = request_id.and_then(|request_id| session.calls.get(request_id));
        if let Some(call) = call {
            call.cancel();
        }
        Ok((call.is_some(), session.live.clone()))
    }

    /// The live service of session `id`, if one was started.
    pub fn live(&self, id: &str) -> Result<Option<LiveService>, SessionGone> {
        let sessions = self.lock();
        Ok(sessions.get(id).ok_or(SessionGone)?.live.clone())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, SseSession>> {
        self.sessions.lock()
    }
}
