//! The process engine: runs one command on the host and reports what happened.
//!
//! Owns everything between "this command may run" and "here is what it did": the child's
//! environment (cleared, then an explicit allowlist from the server, then the request's
//! own variables), its own process group, stdin, concurrent bounded capture of stdout and
//! stderr with live chunks for progress, the timeout, cancellation, and killing the whole
//! group (TERM, a grace period, KILL) so nothing the command started outlives the call.
//!
//! It decides nothing: whether a command may run is the policy's business, and turning an
//! [`ExecOutcome`] into a tool result is the tool's.
//!
//! Limits: a process that leaves the group (`setsid`, a daemon) is not killed; the call
//! stops waiting for its pipes after [`PIPE_DRAIN_LIMIT`].

pub mod cgroup;
pub mod confine;
pub mod diagnose;
mod env;
pub mod identities;
pub mod landlock;
mod outcome;
mod output;
mod process;
pub mod pty;
pub mod reaper;
mod run;
pub mod run_as;
pub mod slots;
mod spec;
mod usage;

use std::time::Duration;

pub use confine::{Confinement, ResourceLimits};
pub use env::BaseEnv;
pub use outcome::{ExecOutcome, OutputEvent, OutputObserver};
pub use output::{CapturedOutput, OutputView, omission_marker};
pub use run::{ExecError, run};
pub use spec::{CommandSpec, ExecLimits};
pub use usage::Usage;

/// `PATH` for commands when the server itself has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The server variables a command inherits (see [`BaseEnv::from_server_env`]). Nothing
/// else from the server's environment (tokens, keys, `HOSTMCP_*`) reaches a command.
pub const INHERITED_VARS: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "TZ", "TMPDIR", "TERM",
];

/// Default [`ExecLimits::max_output_bytes`]: 32 KiB per stream keeps a result well under the
/// ~25,000 tokens at which some clients cut it.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 32 * 1024;

/// Default [`ExecLimits::kill_grace`].
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(2);

/// How long to keep reading after the command's group is gone, for pipes still held open by
/// a process that left the group.
pub const PIPE_DRAIN_LIMIT: Duration = Duration::from_secs(1);

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
