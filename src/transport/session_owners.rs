//! Binds each Streamable HTTP session to the principal that opened it, in the session's
//! own table entry ([`SessionOwner`]). A request that names a session it does not own
//! gets the same 404 as an unknown session, so a token can neither use nor detect
//! another principal's session. A session is closed when its owner's token is revoked
//! under `on_revoke = "kill"` ([`crate::auth::revocation`]). A principal holds at most
//! `max_sessions_per_principal` open sessions: a session made past that is closed at
//! once and its initialize answered 429 ([`too_many_sessions`]). `session_opened` and
//! `session_closed` name the client address that opened the session; the table puts
//! the closing on record, however the session ends.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::sessions::{BindError, SessionOwner, SessionTable};
use crate::{
    audit::{AuditEvent, AuditLog, EndedWork, Transport},
    auth::{Principal, client_address::ClientAddress},
    caller::{Caller, TraceParent},
};

/// The header that carries a Streamable HTTP session id.
pub const SESSION_HEADER: &str = "mcp-session-id";

/// The ownership gate of one session table.
#[derive(Debug)]
pub struct SessionOwners {
    sessions: Arc<SessionTable>,
    audit: AuditLog,
    max_per_principal: usize,
}

impl SessionOwners {
    /// The gate of the sessions in `sessions`.
    pub fn new(
        sessions: Arc<SessionTable>,
        audit: AuditLog,
        max_per_principal: usize,
    ) -> Arc<Self> {
        Arc::new(Self {
            sessions,
            audit,
            max_per_principal,
        })
    }

    /// Bind a new session to `owner`, or close it when `owner` already holds the most.
    async fn bind(
        self: &Arc<Self>,
        session_id: String,
        owner: &Principal,
        client: Option<ClientAddress>,
    ) -> Result<(), Response> {
        let entry = SessionOwner::new(owner, client, self.audit.clone());
        let opened = entry.context(&session_id);
        // Checked and bound under the table's lock: concurrent initializes cannot overshoot.
        match self
            .sessions
            .bind(&session_id, entry, self.max_per_principal)
        {
            Ok(()) => {}
            Err(BindError::TooMany { limit }) => {
                self.sessions.close_now(&session_id);
                tracing::info!(
                    principal = owner.name(),
                    limit,
                    "session refused: too many open sessions"
                );
                return Err(too_many_sessions(limit));
            }
            Err(BindError::Gone(entry)) => {
                // Opened and closed before it could be bound: both on record.
                self.record_opened(opened).await;
                entry.record_closed(&session_id);
                return Ok(());
            }
        }
        // Watched only once bound, so a lease that has already ended finds the session.
        let owners = Arc::downgrade(self);
        let id = session_id.clone();
        let revoked = owner.lease().on_end(move |reason| async move {
            if let Some(owners) = owners.upgrade() {
                owners.close_revoked(&id, reason).await;
            }
        });
        self.sessions.watch_owner(&session_id, revoked);
        self.record_opened(opened).await;
        Ok(())
    }

    async fn record_opened(&self, context: crate::audit::AuditContext) {
        let event = AuditEvent::SessionOpened {
            transport: Transport::StreamableHttp,
        };
        self.audit.record_or_log(context, event).await;
    }

    /// Close a session whose owner's token was revoked, on record: why, then the closing.
    async fn close_revoked(&self, session_id: &str, reason: crate::audit::RevokeReason) {
        let Some(owner) = self.sessions.close_owned_now(session_id) else {
            return;
        };
        let context = crate::audit::AuditContext::new()
            .with_principal(owner.name())
            .with_session(session_id);
        let event = AuditEvent::EndedByRevocation {
            ended: EndedWork::Session,
            id: session_id.to_owned(),
            reason,
        };
        self.audit.record_or_log(context, event).await;
        owner.record_closed(session_id);
    }
}

/// Middleware in front of rmcp's `/mcp` service (after authentication).
pub async fn enforce_session_owner(
    State(owners): State<Arc<SessionOwners>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let session_id = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let client = request.extensions().get::<ClientAddress>().copied();
    let mut request = request;
    let Some(session_id) = session_id else {
        let caller = Caller::mcp_stateless(principal.clone(), client)
            .with_trace(TraceParent::from_headers(request.headers()));
        request.extensions_mut().insert(caller);
        let response = next.run(request).await;
        if let Some(new_id) = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            && let Err(refusal) = owners.bind(new_id.to_owned(), &principal, client).await
        {
            return refusal;
        }
        return response;
    };
    match owners.sessions.owner_of(&session_id) {
        Some(owner) if *owner == *principal.name() => {}
        Some(_) => {
            tracing::warn!(
                principal = principal.name(),
                "request for another principal's session"
            );
            return session_not_found();
        }
        None => return session_not_found(),
    }
    let caller = Caller::mcp_session(principal, client, &session_id)
        .with_trace(TraceParent::from_headers(request.headers()));
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// 429 for a session over the principal's limit, as a JSON-RPC error.
pub fn too_many_sessions(limit: usize) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {
            "code": -32000,
            "message": format!(
                "too many open sessions for this token (at most {limit}); close one \
                 (DELETE /mcp with its Mcp-Session-Id) or let one expire"
            ),
        },
    });
    (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response()
}

/// The answer rmcp gives for an unknown session, so ours is indistinguishable.
fn session_not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response()
}

#[cfg(test)]
mod tests;
