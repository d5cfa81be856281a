//! hostmcp's Streamable HTTP sessions: the rmcp `SessionManager` behind `/mcp` in the
//! session era (2025-03-26 to 2025-11-25). rmcp's service keeps doing the HTTP side
//! (header and version checks, SSE framing, keep-alives); this module owns the sessions.
//!
//! A session is an entry in a table (the negotiated client info, the calls in flight,
//! the standalone GET stream, the principal that owns it), not a running task: rmcp's
//! bundled manager keeps a worker task, a service loop and seven channels per session,
//! which cost 76 KiB per idle session and four task hops per call. Here:
//! - rmcp runs the `initialize` handshake over a `HandshakeTransport`
//!   ([`super::handshake`]), whose service retires once the answer is out;
//! - every later request runs directly on the task that writes its response
//!   ([`super::direct_call`]), unless the handler says (in `PeerUse`) that it talks to
//!   the client through its peer: then it gets an rmcp service of its own over a
//!   relay transport ([`relay`]), whose server-to-client requests get session-unique ids
//!   and whose answers, POSTed by the client, are routed back to it;
//! - `notifications/cancelled` cancels a call; closing the session (DELETE, idle
//!   expiry, revocation of its token: [`SessionTable::close_now`]) or shutdown cancels
//!   all of them;
//! - a session expires after [`IDLE_TIMEOUT`] without requests while no standalone
//!   stream is open; one sweeper per table looks for them;
//! - each request stream opens with a priming event that names it; a client whose
//!   stream broke mid-call reconnects (GET with `Last-Event-ID`) and gets the answer,
//!   which is kept from the moment the stream broke ([`replay`]);
//! - the entry names its owner once [`super::session_owners`] has bound it
//!   ([`SessionOwner`]): one lookup answers "does this session exist, and whose is it",
//!   and an owned entry puts its closing on record whichever way it leaves the table.
//!
//! Files: [`manager`] is the rmcp adapter (what rmcp calls, and in what order);
//! [`table`] the entries and their lifetime; [`owner`] who owns an entry; [`replay`]
//! the answers kept for reconnecting clients and the event ids that name them;
//! [`relay`] the calls that talk back to the client.
//!
//! The standalone stream carries only notices sent outside any request: a
//! `resources/subscribe` request gets a `SessionNotifier` in its extensions that queues
//! them for the open stream (dropped while none is) and fails once the session has left
//! the table, which ends the subscription.
//!
//! Limits, none of which hostmcp's tools need: a call's messages go on its own stream,
//! never the standalone one; client notifications other than
//! `cancelled` are not passed to the handler; a resumed stream carries the answer only
//! (not the progress sent while the client was away), and a relayed call's answer is
//! not kept; a GET that reconnects with the standalone stream's `Last-Event-ID` gets a
//! new standalone stream.

mod manager;
mod owner;
mod relay;
mod replay;
mod table;
#[cfg(test)]
mod tests;

use rmcp::model::RequestId;

pub use manager::HostSessions;
pub use owner::{BindError, SessionOwner};
pub use table::{IDLE_TIMEOUT, SessionTable};

/// Why rmcp's request about a session could not be served.
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
