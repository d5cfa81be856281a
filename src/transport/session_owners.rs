//! Binds each Streamable HTTP session to the principal that opened it. A request that
//! names a session it does not own gets the same 404 as an unknown session, so a token
//! can neither use nor detect another principal's session. A session is closed when its
//! owner's token is revoked under `on_revoke = "kill"` ([`crate::auth::revocation`]).
//! A principal holds at most `max_sessions_per_principal` open sessions: a session made
//! past that is closed at once and its initialize answered 429 ([`too_many_sessions`]).
//! `session_opened` and `session_closed` name the client address that opened the session.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use axum::{
    Json,
    extract::{Request, State},
    http::{Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::sessions::SessionTable;
use crate::{
    audit::{AuditContext, AuditEvent, AuditLog, EndedWork, Transport},
    auth::{Principal, client_address::ClientAddress, revocation::EndWatch},
    caller::Caller,
};

/// The header that carries a Streamable HTTP session id.
pub const SESSION_HEADER: &str = "mcp-session-id";
/// How often ids of sessions that closed on their own (idle expiry) are forgotten.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Session id -> owning principal name.
#[derive(Debug)]
pub struct SessionOwners {
    owners: Mutex<HashMap<String, Owner>>,
    sessions: Arc<SessionTable>,
    audit: AuditLog,
    max_per_principal: usize,
}

/// Who owns a session, and the watch that closes it when their token is revoked.
#[derive(Debug)]
struct Owner {
    name: Arc<str>,
    /// The client address that opened it, for its records.
    client: Option<ClientAddress>,
    _revoked: Option<EndWatch>,
}

impl SessionOwners {
    /// Track the sessions of `sessions`; spawns a sweeper that ends with the returned value.
    pub fn new(
        sessions: Arc<SessionTable>,
        audit: AuditLog,
        max_per_principal: usize,
    ) -> Arc<Self> {
        let owners = Arc::new(Self {
            owners: Mutex::default(),
            sessions,
            audit,
            max_per_principal,
        });
        tokio::spawn(sweep_closed_sessions(Arc::downgrade(&owners)));
        owners
    }

    fn owner_of(&self, session_id: &str) -> Option<Arc<str>> {
        self.lock().get(session_id).map(|owner| owner.name.clone())
    }

    /// Bind a new session to `owner`, or close it when `owner` already holds the most.
    async fn bind(
        self: &Arc<Self>,
        session_id: String,
        owner: &Principal,
        client: Option<ClientAddress>,
    ) -> Result<(), Response> {
        let entry = Owner {
            name: Arc::from(owner.name()),
            client,
            _revoked: None,
        };
        {
            let mut owners = self.lock();
            // Checked and bound under one lock: concurrent initializes cannot overshoot.
            let open = owners
                .iter()
                .filter(|(id, held)| *held.name == *owner.name() && self.sessions.is_open(id))
                .count();
            if open >= self.max_per_principal {
                drop(owners);
                self.sessions.close_now(&session_id);
                tracing::info!(
                    principal = owner.name(),
                    limit = self.max_per_principal,
                    "session refused: too many open sessions"
                );
                return Err(too_many_sessions(self.max_per_principal));
            }
            owners.insert(session_id.clone(), entry);
        }
        // Watched only once bound, so a lease that has already ended finds the session.
        let owners = Arc::downgrade(self);
        let id = session_id.clone();
        let revoked = owner.lease().on_end(move |reason| async move {
            if let Some(owners) = owners.upgrade() {
                owners.close_revoked(&id, reason).await;
            }
        });
        if let Some(entry) = self.lock().get_mut(&session_id) {
            entry._revoked = Some(revoked);
        }
        let mut context = AuditContext::new()
            .with_principal(owner.name())
            .with_session(session_id);
        if let Some(client) = client {
            context = context.with_client(client);
        }
        self.record(
            context,
            AuditEvent::SessionOpened {
                transport: Transport::StreamableHttp,
            },
        )
        .await;
        Ok(())
    }

    /// Close a session whose owner's token was revoked, on record.
    async fn close_revoked(&self, session_id: &str, reason: crate::audit::RevokeReason) {
        let Some(owner) = self.owner_of(session_id) else {
            return;
        };
        if self.sessions.close_now(session_id) {
            let context = AuditContext::new()
                .with_principal(&*owner)
                .with_session(session_id);
            let event = AuditEvent::EndedByRevocation {
                ended: EndedWork::Session,
                id: session_id.to_owned(),
                reason,
            };
            self.record(context, event).await;
        }
        self.forget(session_id).await;
    }

    async fn forget(&self, session_id: &str) {
        let Some(owner) = self.lock().remove(session_id) else {
            return;
        };
        let mut context = AuditContext::new()
            .with_principal(&*owner.name)
            .with_session(session_id);
        if let Some(client) = owner.client {
            context = context.with_client(client);
        }
        self.record(
            context,
            AuditEvent::SessionClosed {
                transport: Transport::StreamableHttp,
            },
        )
        .await;
    }

    async fn record(&self, context: AuditContext, event: AuditEvent) {
        self.audit.record_or_log(context, event).await;
    }

    /// Number of sessions currently bound.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Owner>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.owners
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

async fn sweep_closed_sessions(owners: Weak<SessionOwners>) {
    loop {
        tokio::time::sleep(SWEEP_INTERVAL).await;
        let Some(owners) = owners.upgrade() else {
            return;
        };
        let ids: Vec<String> = owners.lock().keys().cloned().collect();
        for id in ids {
            if !owners.sessions.is_open(&id) {
                owners.forget(&id).await;
            }
        }
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
        let caller = Caller::mcp_stateless(principal.clone(), client);
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
    match owners.owner_of(&session_id) {
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
    let caller = Caller::mcp_session(principal, client, &session_id);
    request.extensions_mut().insert(caller);
    let is_delete = request.method() == Method::DELETE;
    let response = next.run(request).await;
    if response.status() == StatusCode::NOT_FOUND || (is_delete && response.status().is_success()) {
        owners.forget(&session_id).await;
    }
    response
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
