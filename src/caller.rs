//! Who is calling, as one value: the [`Caller`] of an MCP request. Each transport builds it
//! once per request, from what it alone knows — the principal the auth layer resolved, the
//! client address, the session it routed the request to, and itself — and puts it in the
//! request's extensions; rmcp hands those to the handler as `RequestContext::extensions`,
//! where [`Caller::of`] is the one way to read it. Nothing downstream re-parses headers,
//! query strings or HTTP parts to learn who called.
//!
//! The producers:
//! - `/mcp` (Streamable HTTP): `transport::session_owners`, once the session's owner is
//!   checked ([`Caller::mcp_session`]), or for a request without a session
//!   ([`Caller::mcp_stateless`]);
//! - `/sse` + `/messages`: `transport::sse`, once the session's owner is checked
//!   ([`Caller::sse`]);
//! - stdio: `transport::stdio` gives every incoming request the process owner
//!   ([`Caller::stdio`]);
//! - the fleet: `fleet::host` gives each verified request its mapped fleet principal
//!   ([`Caller::fleet`]).
//!
//! rmcp's own `/mcp` service stores the HTTP request's `Parts` in the extensions instead
//! of copying what is inside them, so [`Caller::of`] also looks there; that knowledge of
//! rmcp lives here only.

pub mod trace;

use std::{fmt, sync::Arc};

use rmcp::model::Extensions;
pub use trace::TraceParent;

use crate::{
    audit::AuditContext,
    auth::{Principal, client_address::ClientAddress},
};

/// The caller of one MCP request, with the request's W3C trace context when it has one.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// The client's address, where the transport has one (HTTP).
    pub client: Option<ClientAddress>,
    /// The session the transport routed the request to, after checking its owner: never
    /// a header or query string the client wrote.
    pub session: Option<SessionId>,
    pub transport: Transport,
    /// The W3C `traceparent` of the request: the HTTP header, set by the transport
    /// ([`Caller::with_trace`]); the tool-call handler puts `_meta.traceparent` in its place.
    pub trace: Option<TraceParent>,
}

/// An MCP session id the transport has routed to. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionId(Arc<str>);

impl SessionId {
    pub fn new(id: &str) -> Self {
        Self(Arc::from(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The transport a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `hostmcp stdio`.
    Stdio,
    /// Legacy HTTP+SSE (2024-11-05): `/sse` + `/messages`.
    Sse,
    /// Streamable HTTP with `Mcp-Session-Id` (2025-03-26 to 2025-11-25).
    McpSession,
    /// Streamable HTTP without a session (2026-07-28; also the `initialize` request that
    /// opens a session, which calls no tool).
    McpStateless,
    /// A signed request of a fleet gateway over NATS (`crate::fleet::host`).
    Fleet,
}

/// A request reached a handler without a [`Caller`]: a transport forgot to build one.
/// The handler answers `internal_error`; it never guesses a principal.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the request has no caller: its transport did not say who is calling")]
pub struct NoCaller;

impl Caller {
    /// The process owner on stdio.
    pub fn stdio(principal: Principal) -> Self {
        Self {
            principal,
            client: None,
            session: None,
            transport: Transport::Stdio,
            trace: None,
        }
    }

    /// A request on a legacy SSE session whose owner the transport has checked.
    pub fn sse(principal: Principal, client: Option<ClientAddress>, session: &str) -> Self {
        Self {
            principal,
            client,
            session: Some(SessionId::new(session)),
            transport: Transport::Sse,
            trace: None,
        }
    }

    /// A request on a Streamable HTTP session whose owner the transport has checked.
    pub fn mcp_session(principal: Principal, client: Option<ClientAddress>, session: &str) -> Self {
        Self {
            principal,
            client,
            session: Some(SessionId::new(session)),
            transport: Transport::McpSession,
            trace: None,
        }
    }

    /// A Streamable HTTP request without a session.
    pub fn mcp_stateless(principal: Principal, client: Option<ClientAddress>) -> Self {
        Self {
            principal,
            client,
            session: None,
            transport: Transport::McpStateless,
            trace: None,
        }
    }

    /// A fleet gateway's caller, once the host has verified the request and mapped its
    /// principal (`fleet:<name>`) to a local role.
    pub fn fleet(principal: Principal) -> Self {
        Self {
            principal,
            client: None,
            session: None,
            transport: Transport::Fleet,
            trace: None,
        }
    }

    /// This caller with the request's trace context (a valid `traceparent`, or none).
    pub fn with_trace(mut self, trace: Option<TraceParent>) -> Self {
        self.trace = trace;
        self
    }

    /// The caller of the request whose extensions are `extensions`: the one a transport
    /// put there, or the one in the HTTP request parts rmcp's `/mcp` service stores.
    pub fn of(extensions: &Extensions) -> Result<&Self, NoCaller> {
        extensions
            .get::<Self>()
            .or_else(|| {
                extensions
                    .get::<axum::http::request::Parts>()
                    .and_then(|parts| parts.extensions.get::<Self>())
            })
            .ok_or(NoCaller)
    }

    /// Who is calling, from where, in which session, through which tool: the context of
    /// the audit records of a call to `tool`.
    pub fn audit_context(&self, tool: &str) -> AuditContext {
        let mut context = AuditContext::new()
            .with_principal(self.principal.name())
            .with_tool(tool);
        if let Some(client) = self.client {
            context = context.with_client(client);
        }
        if let Some(session) = &self.session {
            context = context.with_session(session.as_str());
        }
        if let Some(trace) = &self.trace {
            context = context.with_trace_id(trace.trace_id());
        }
        context
    }
}

#[cfg(test)]
mod tests;
