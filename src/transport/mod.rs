//! How MCP reaches the tools: HTTP (Streamable HTTP at `/mcp` through rmcp's HTTP
//! service with hostmcp's own sessions, legacy HTTP+SSE at `/sse` written here) and stdio.
//! Every transport serves the one MCP handler it is given (the product's tools, composed
//! in `commands`), and builds one [`crate::caller::Caller`] per request for it.

pub mod acme;
pub mod body;
#[cfg(test)]
mod caller_tests;
pub mod connections;
pub mod direct_call;
pub mod handshake;
pub mod host_guard;
pub mod http;
pub mod listener;
pub mod message;
pub mod metrics_route;
pub mod session_close;
pub mod session_owners;
pub mod sessions;
pub mod sse;
pub mod stateless;
pub mod stdio;
pub mod streams;
#[cfg(test)]
mod test_support;
pub mod tls;

/// A new session id: 128 random bits, hex.
fn new_session_id() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    Ok(hex::encode(bytes))
}
