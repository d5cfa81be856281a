//! From a validated tool request to a command the engine may run: the policy resolves the
//! program and working directory (symlinks followed, PATH searched) and decides; a denial
//! or an unresolvable request is recorded as `command_refused` and answered with its reason.

use std::{path::PathBuf, time::Duration};

use crate::{
    audit::{AuditContext, AuditEvent},
    auth::Principal,
    exec::{CommandSpec, DEFAULT_PATH, Program},
    policy::{self, CommandRequest, Decision, RequestMode},
};

use super::{ToolsState, audited::command_line};

/// A tool's command request, validated but not yet judged.
#[derive(Debug, Clone)]
pub struct ToolCommand {
    pub program: Program,
    pub working_dir: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    pub stdin: Option<Vec<u8>>,
    pub timeout: Duration,
}

impl ToolCommand {
    /// A short description for logs and job lists.
    pub fn describe(&self) -> String {
        match &self.program {
            Program::Shell(command) => command.clone(),
            Program::Argv(argv) => format!("{argv:?}"),
        }
    }
}

/// Judge `command` for `principal`; `Err` is the refusal text for the caller.
pub async fn authorize(
    state: &ToolsState,
    principal: &Principal,
    command: &ToolCommand,
    trail: &AuditContext,
) -> Result<CommandSpec, String> {
    let mode = match &command.program {
        Program::Shell(script) => RequestMode::Shell(script),
        Program::Argv(argv) => RequestMode::Argv(argv),
    };
    let request = CommandRequest {
        principal_name: principal.name(),
        role: principal.role(),
        mode,
        working_dir: command.working_dir.as_deref(),
        env: &command.env,
    };
    let search_path = state.base_env.get("PATH").unwrap_or(DEFAULT_PATH);
    let (rule, reason) = match policy::resolve(&request, search_path) {
        Err(error) => ("resolve".to_owned(), error.to_string()),
        Ok(resolved) => match policy::decide(&state.policy, &resolved) {
            Decision::Permit(permit) => {
                return Ok(CommandSpec::permitted(
                    permit,
                    command.timeout,
                    command.stdin.clone(),
                ));
            }
            Decision::Deny(denial) => (denial.rule, denial.reason),
        },
    };
    tracing::info!(principal = principal.name(), %rule, %reason, "command refused");
    let event = AuditEvent::CommandRefused {
        command: command_line(&command.program),
        working_dir: command.working_dir.clone(),
        reason: reason.clone(),
        rule: Some(rule),
    };
    if let Err(error) = state.audit.record(trail.clone(), event).await {
        tracing::error!(%error, "cannot write to the audit log");
    }
    Err(reason)
}
