//! `GET /sse`: a session's life is its stream's. Opening the stream adds the session to
//! the table (within its owner's cap) and puts it on record; the stream ends when the
//! client leaves, at shutdown, or when the owner's token is revoked under
//! `on_revoke = "kill"`; dropping it removes the session, cancels its token (ending its
//! calls and their commands) and puts the closing on record.

use std::{convert::Infallible, sync::Arc};

use axum::{
    extract::{Request, State},
    http::StatusCode,
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::{Stream, StreamExt, stream};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{
    SseState,
    table::SseSession,
    wire::{self, CHANNEL_CAPACITY, KEEP_ALIVE},
};
use crate::{
    audit::{AuditContext, AuditEvent, AuditLog, EndedWork, Transport as AuditTransport},
    auth::{Principal, client_address::ClientAddress, revocation::EndWatch},
};

/// Open a session: a cryptographically random id (128 bits as 32 hex characters), an
/// entry in the table, and the stream that carries its messages.
pub(super) async fn open_session<H>(
    State(state): State<Arc<SseState<H>>>,
    request: Request,
) -> Response
where
    H: Send + Sync + 'static,
{
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Ok(session_id) = crate::transport::new_session_id() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let client = request.extensions().get::<ClientAddress>().copied();
    let (outbound_tx, outbound_rx) = futures::channel::mpsc::channel(CHANNEL_CAPACITY);
    let session_ct = state.shutdown.child_token();
    let session = SseSession::new(principal.name(), outbound_tx, session_ct.clone());
    if let Err(refused) =
        state
            .sessions
            .open(&session_id, session, state.max_sessions_per_principal)
    {
        tracing::info!(
            principal = principal.name(),
            limit = refused.limit,
            "sse session refused: too many open sessions"
        );
        return crate::transport::session_owners::too_many_sessions(refused.limit);
    }
    tracing::info!(
        principal = principal.name(),
        transport = "sse",
        "session opened"
    );
    let opened = with_client(
        principal.audit_context().with_session(session_id.clone()),
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
    let endpoint = wire::endpoint_event(&session_id);
    let messages = outbound_rx
        .take_until(session_ct.cancelled_owned())
        .map(|json| Ok::<_, Infallible>(wire::message_event(json)));
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
    let context = principal.audit_context().with_session(session_id);
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
        self.state.sessions.remove(&self.session_id);
        crate::session_ends::ended(&self.session_id);
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
