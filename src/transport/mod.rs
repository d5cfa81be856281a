//! How MCP reaches the tools: HTTP (Streamable HTTP at `/mcp` through rmcp, legacy
//! HTTP+SSE at `/sse` written here) and stdio. Every transport serves the same
//! [`crate::tools::HostTools`] handler.

pub mod host_guard;
pub mod http;
pub mod session_owners;
pub mod sse;
pub mod stdio;
pub mod tls;
