//! One module per subcommand: each turns validated settings into a running thing.
//! Errors leave as [`CommandError`], printed as `error:` and `hint:` lines.

mod approval_server;
pub mod approvals;
pub mod audit;
pub mod call;
pub mod check;
pub mod check_oauth;
mod client_snippets;
pub mod confinement;
pub mod connect;
pub mod gateway;
pub mod generate;
pub mod journal;
pub mod logging;
pub mod oauth;
pub mod policy;
pub mod reload;
mod remote;
pub mod serve;
pub mod stdio;
pub mod token;
pub mod tools;

use std::fmt;

pub use logging::init_logging;

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

/// The `[policy]` table made a policy (paths canonicalized), or the permissive default.
fn resolve_policy(
    config: Option<crate::policy::PolicyConfig>,
) -> Result<crate::policy::Policy, CommandError> {
    crate::policy::resolve_policy(config, &crate::exec::run_as::RunAsUser::check_switchable)
        .map_err(|error| {
            let hint = error.hint();
            CommandError::new(format!("invalid config: {error}")).with_hint(hint)
        })
}

/// What the tools of a served configuration run under: its limits, jobs, terminals, call
/// rate and services, with the policy, default run-as user and file roots the subcommand
/// settled (each of `serve`, `stdio` and `gateway` protects different files).
fn tool_settings(
    config: &crate::config::Config,
    policy: crate::policy::Policy,
    run_as: Option<String>,
    files: crate::files::FileRoots,
) -> crate::tools::ToolSettings {
    crate::tools::ToolSettings {
        limits: config.limits,
        jobs: config.jobs,
        terminals: config.terminals,
        tool_calls_per_minute: config.abuse.tool_calls_per_minute,
        policy,
        run_as,
        services: config.services.clone(),
        files,
    }
}

/// A multi-threaded runtime for the long-running subcommands.
fn runtime() -> Result<tokio::runtime::Runtime, CommandError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| CommandError::new(format!("cannot start the async runtime: {error}")))
}
