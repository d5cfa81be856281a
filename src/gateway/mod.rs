//! `hostmcp gateway`: one MCP endpoint for a fleet of hosts that dial out to NATS. It is
//! served by the same transports, authentication and audit as `hostmcp serve`
//! ([`crate::commands::serve::run_serving`] with this handler); only the tools differ.
//!
//! - [`key`]: the gateway's ed25519 (nkey) signing key in the state directory.
//! - [`bus`]: NATS: connecting, presence, one signed call to one host, cancel.
//! - [`replies`]: one reply inbox per gateway, each reply routed to its call by token.
//! - [`presence`]: which hosts are online, rebuilt from the bus by each gateway.
//! - [`selector`]: names, globs and labels that pick hosts.
//! - [`catalog`]: the tools served: `host_list`, `fleet_run`, every host tool with `host`.
//! - [`handler`]: the MCP handler that dispatches them and audits each forwarded call.
//! - [`fan_out`]: `fleet_run`'s per-host outcomes.
//! - [`fleet_result`]: `fleet_run`'s one result: counts, groups, rows, within the budget.
//! - [`hostlist`]: host names compressed into ranges (`web-[001-950]`).
//! - [`ids`]: job and terminal ids that name their host.
//! - [`progress`]: progress notifications for forwarded calls.

pub mod bus;
pub mod catalog;
pub mod fan_out;
pub mod fleet_result;
pub mod handler;
pub mod hostlist;
pub mod ids;
pub mod key;
pub mod presence;
pub mod progress;
pub mod replies;
pub mod selector;
