//! One module per subcommand: each turns validated settings into a running thing.
//! Errors leave as [`CommandError`], printed as `error:` and `hint:` lines.

pub mod audit;
pub mod call;
pub mod connect;
mod client_snippets;
pub mod generate;
pub mod journal;
pub mod policy;
mod remote;
pub mod serve;
pub mod stdio;
pub mod token;
pub mod tools;

use std::{fmt, io::IsTerminal};

use crate::env_vars;

/// A subcommand failure, with what to do next when we know it.
#[derive(Debug)]
pub struct CommandError {
    message: String,
    hint: Option<String>,
    /// The process exit status (1 unless a command says otherwise).
    exit_code: u8,
}

impl CommandError {
    pub fn new(message: impl fmt::Display) -> Self {
        Self {
            message: message.to_string(),
            hint: None,
            exit_code: 1,
        }
    }

    pub fn with_exit_code(mut self, exit_code: u8) -> Self {
        self.exit_code = exit_code;
        self
    }

    pub fn exit_code(&self) -> u8 {
        self.exit_code
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl From<crate::config::ConfigError> for CommandError {
    fn from(error: crate::config::ConfigError) -> Self {
        let hint = error.hint();
        Self::new(error).with_hint(hint)
    }
}

/// Logs go to stderr (stdout may be the MCP stream), filtered by `HOSTMCP_LOG`.
pub fn init_logging() {
    let directives = log_directives(std::env::var(env_vars::LOG).ok().as_deref());
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// The log filter without `HOSTMCP_LOG`.
const DEFAULT_LOG: &str = "info,rmcp=warn";

/// The filter for `HOSTMCP_LOG`: rmcp stays at `warn` unless the variable names rmcp, as
/// rmcp's info lines quote what a client sent (a whole 4 MB `clientInfo` per initialize).
fn log_directives(env: Option<&str>) -> String {
    match env.map(str::trim) {
        None | Some("") => DEFAULT_LOG.to_owned(),
        Some(directives) if directives.contains("rmcp") => directives.to_owned(),
        Some(directives) => format!("{directives},rmcp=warn"),
    }
}

/// The `[policy]` table made a policy (paths canonicalized), or the permissive default.
fn resolve_policy(
    config: Option<crate::policy::PolicyConfig>,
) -> Result<crate::policy::Policy, CommandError> {
    crate::policy::resolve_policy(config).map_err(|error| {
        let hint = error.hint();
        CommandError::new(format!("invalid config: {error}")).with_hint(hint)
    })
}

/// A multi-threaded runtime for the long-running subcommands.
fn runtime() -> Result<tokio::runtime::Runtime, CommandError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| CommandError::new(format!("cannot start the async runtime: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostmcp_log_keeps_rmcp_at_warn_unless_it_names_rmcp() {
        assert_eq!(log_directives(None), "info,rmcp=warn");
        assert_eq!(log_directives(Some(" ")), "info,rmcp=warn");
        assert_eq!(log_directives(Some("info")), "info,rmcp=warn");
        assert_eq!(
            log_directives(Some("hostmcp=debug")),
            "hostmcp=debug,rmcp=warn"
        );
        // Near miss: naming rmcp is the operator's choice and is kept.
        assert_eq!(log_directives(Some("info,rmcp=info")), "info,rmcp=info");
    }
}
