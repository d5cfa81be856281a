//! The HTTP surface of `hostmcp serve`, without a socket, Python or Node: the product's
//! router (`transport::http::router`) driven with `tower::ServiceExt::oneshot`, and the
//! product's MCP handler driven by rmcp's client over an in-memory duplex pipe. Each
//! refusal is tested with its near miss: the allowed twin in the same test.
//!
//! - [`auth`] holds 401 (no token, wrong token, malformed header) and the 429 of the failed
//!   authentication budget;
//! - [`host_guard`] holds a foreign `Host` or `Origin` refused (403), duplicate `Host` (400);
//! - [`bodies`] holds 413, and the 400s of a body that is not JSON, not JSON-RPC or cut short;
//! - [`sessions`] holds unknown paths, session ownership (404 to another principal), the
//!   per-principal session cap (429);
//! - [`sse`] holds legacy `/sse` sessions: their owner, `/messages` errors, the stream
//!   cap (429);
//! - [`tools`] holds the role gate (an `isError` result and its audit record), `invalid_params`
//!   (a JSON-RPC error) against `isError` (a tool that ran and failed);
//! - [`rate_limit`] holds `tool_calls_per_minute`;
//! - [`audit_trail`] holds one record per decision, counted;
//! - [`client`] holds hostmcp's own client (the stdio bridge, `call`'s session) on a loopback socket;
//! - [`duplex`] holds initialize, `tools/list` by role and `tools/call` with rmcp's client.
//!
//! [`bench`] builds the router and reads the audit log back.

mod audit_trail;
mod auth;
mod bench;
mod bodies;
mod client;
mod duplex;
mod host_guard;
mod rate_limit;
mod sessions;
mod sse;
mod tools;
