//! The client side of MCP: hostmcp talking to a remote MCP server, for `hostmcp connect`
//! (a stdio bridge), `hostmcp call` and `hostmcp tools`.
//!
//! It owns the wire and nothing of the tools: where the server is and how to reach it
//! (`endpoint.rs`: URL, bearer token, TLS trust), the two HTTP transports as a client
//! (`streamable.rs`: Streamable HTTP; `legacy_sse.rs`: HTTP+SSE of 2024-11-05), which of them a
//! server speaks (`link.rs`: the spec's backwards-compatibility rule), the stdio relay that
//! survives a server restart (`bridge.rs`) and a short request/answer session for the one-shot
//! commands (`session.rs`).
//!
//! Messages travel as the JSON text the peer wrote (`message.rs`): the client reads only the
//! fields it must (`id`, `method`, a cancelled request's id), so a message it does not know
//! reaches the other side byte for byte, newlines inside SSE data aside.

pub mod bridge;
pub mod endpoint;
pub mod error;
pub mod legacy_sse;
pub mod link;
pub mod message;
pub mod session;
pub mod streamable;

mod events;

pub use endpoint::{Endpoint, EndpointSettings};
pub use error::ClientError;
pub use link::{Inbound, Link, TransportKind};
pub use message::Message;
