//! Who owns a `/mcp` session: the principal that opened it, kept in the session's table
//! entry with the client address it came from and the watch that closes it when the
//! principal's token is revoked. Binding checks the principal's cap under the table's
//! lock, so concurrent `initialize`s cannot overshoot it. An owner puts its session's
//! closing on record (`session_closed`) when the entry leaves the table, however it
//! leaves (DELETE, idle expiry, revocation).

use std::sync::Arc;

use crate::{
    audit::{AuditContext, AuditEvent, AuditGrant, AuditLog, Transport},
    auth::{Principal, client_address::ClientAddress, revocation::EndWatch},
};

/// The owner of one session.
pub struct SessionOwner {
    pub(super) name: Arc<str>,
    /// The OAuth grant it acts through, when it opened the session with an access token.
    grant: Option<Arc<AuditGrant>>,
    /// The client address that opened it, for its records.
    client: Option<ClientAddress>,
    audit: AuditLog,
    /// Closes the session when the owner's token is revoked; set once bound.
    pub(super) revoked: Option<EndWatch>,
}

/// Why a session could not be bound to its owner.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("the owner already holds its maximum of {limit} open sessions")]
    TooMany { limit: usize },
    #[error("the session closed before it was bound")]
    Gone(SessionOwner),
}

impl std::fmt::Debug for SessionOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionOwner")
            .field("name", &self.name)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl SessionOwner {
    /// `principal`, opening a session from `client`; its records go to `audit`.
    pub fn new(principal: &Principal, client: Option<ClientAddress>, audit: AuditLog) -> Self {
        Self {
            name: Arc::from(principal.name()),
            grant: principal.audit_context().grant,
            client,
            audit,
            revoked: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The context of this owner's records about session `id`: principal, session and
    /// the client address that opened it.
    pub fn context(&self, id: &str) -> AuditContext {
        let context = AuditContext::new()
            .with_principal(&*self.name)
            .with_grant(self.grant.clone())
            .with_session(id);
        match self.client {
            Some(client) => context.with_client(client),
            None => context,
        }
    }

    /// Put the closing of session `id` on record, without waiting for the disk: the
    /// session is already gone.
    pub fn record_closed(self, id: &str) {
        crate::session_ends::ended(id);
        let event = AuditEvent::SessionClosed {
            transport: Transport::StreamableHttp,
        };
        self.audit.record_detached(self.context(id), event);
    }
}
