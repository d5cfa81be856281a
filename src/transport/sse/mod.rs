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
//! stream. Requests that talk through their peer (`PeerUse`) go to an rmcp service the
//! session starts the first time one comes.
//!
//! Files: [`wire`] is the wire format (events, the `POST` query and body, errors);
//! [`table`] the entries, their owners and the cap; [`stream`] a session's life, which
//! is its `GET /sse` stream's; [`calls`] `POST /messages` and the rmcp side of a call.

mod calls;
mod stream;
mod table;
#[cfg(test)]
mod tests;
mod wire;

use std::sync::Arc;

use axum::{
    Router,
    routing::{get, post},
};
use rmcp::ServerHandler;
use tokio_util::sync::CancellationToken;

pub use calls::StreamError;
pub use table::{SessionGone, SseSessions, TooManySessions};
pub use wire::MAX_MESSAGE_BYTES;

use super::{direct_call::PeerUse, handshake::PeerCache};
use crate::audit::AuditLog;

/// What `/sse` and `/messages` serve from: the handler, the open sessions, and where
/// their records go.
pub struct SseState<H> {
    handler: H,
    peers: Arc<PeerCache<H>>,
    audit: AuditLog,
    sessions: SseSessions,
    shutdown: CancellationToken,
    /// Open sessions one principal may hold.
    max_sessions_per_principal: usize,
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
            sessions: SseSessions::default(),
            shutdown,
            max_sessions_per_principal,
        })
    }
}

impl<H> SseState<H> {
    /// Number of open sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }
}

/// `/sse` and `/messages`, to be put behind the host guard and authentication; `GET /sse`
/// behind the per-principal stream cap.
pub fn routes<H>(state: Arc<SseState<H>>, stream_cap: super::streams::StreamCapLayer) -> Router
where
    H: ServerHandler + PeerUse + Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/sse", get(stream::open_session).layer(stream_cap))
        .route("/messages", post(calls::post_message))
        .with_state(state)
}
