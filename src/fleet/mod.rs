//! The fleet: hosts that dial out to NATS and serve their tools to gateways through it.
//!
//! - [`protocol`]: the wire contract shared with the gateway (subjects, typed messages, the
//!   signed envelope, the reply stream and its chunking); pure, no I/O.
//! - [`trust`]: which gateways this host believes, which requests it has already seen, and
//!   what a fleet principal may do here.
//! - [`host`]: `hostmcp serve --fleet`, the agent that connects out, answers discovery,
//!   beats its presence and runs verified calls through the same tool pipeline as a local
//!   call.

pub mod call;
pub mod facts;
pub mod host;
pub mod protocol;
pub mod settings;
pub mod trust;
