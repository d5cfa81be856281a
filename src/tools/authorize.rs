//! From a validated tool request to a command the engine may run: the policy resolves the
//! program and working directory (symlinks followed, PATH searched) and decides; a denial
//! or an unresolvable request is recorded as `command_refused` and answered with its reason.
//! A permit comes with the facts `command_started` records ([`PermitFacts`]): the rule that
//! allowed it, the program that runs, where, and as which user.

use std::{path::PathBuf, time::Duration};

use crate::{
    audit::{AuditContext, AuditEvent, AuditText},
    auth::Principal,
    exec::{
        CommandSpec, DEFAULT_PATH, Program,
        run_as::{RunAsError, RunAsUser, current_user_name},
    },
    policy::{self, CommandRequest, Decision, RequestMode},
};

use super::{ToolsState, audited::command_line};
use crate::log_excerpt::log_excerpt;

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
    /// A description for job lists: the whole command.
    pub fn describe(&self) -> String {
        match &self.program {
            Program::Shell(command) => command.clone(),
            Program::Argv(argv) => format!("{argv:?}"),
        }
    }

    /// A description for the server's log, at most [`LOG_EXCERPT_BYTES`](crate::log_excerpt::LOG_EXCERPT_BYTES) of it.
    pub fn describe_for_log(&self) -> String {
        log_excerpt(&self.describe()).into_owned()
    }
}

/// Who may run a permitted command, what, where and as whom: what `command_started` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermitFacts {
    /// The policy rule that allowed it.
    pub rule: String,
    /// Canonical path of the program that runs (the shell, for a shell line).
    pub program: PathBuf,
    /// Canonical working directory; `None`: the server's.
    pub working_dir: Option<PathBuf>,
    /// The Unix user it runs as; `None` only if the server's own user has no name.
    pub run_as: Option<String>,
}

/// A command the policy permitted, ready to run, and what the log says of it.
#[derive(Debug)]
pub struct Authorized {
    pub spec: CommandSpec,
    pub facts: PermitFacts,
}

/// Judge `command` for `principal`; `Err` is the refusal text for the caller.
pub async fn authorize(
    state: &ToolsState,
    principal: &Principal,
    command: &ToolCommand,
    trail: &AuditContext,
) -> Result<Authorized, String> {
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
    let (rule, reason) = match policy::resolve_confined(&state.policy, &request, search_path) {
        Err(error) => (error.rule().to_owned(), error.to_string()),
        Ok(resolved) => match policy::decide(&state.policy, &resolved) {
            Decision::Permit(permit) => {
                let facts = PermitFacts {
                    rule: permit.rule().to_owned(),
                    program: permit.program().to_path_buf(),
                    working_dir: permit.working_dir().map(PathBuf::from),
                    run_as: None,
                };
                let spec = CommandSpec::permitted(permit, command.timeout, command.stdin.clone());
                match state.identities.user_for(principal) {
                    Ok(None) => {
                        let run_as = state.identities.own_name.clone();
                        let facts = PermitFacts { run_as, ..facts };
                        return Ok(Authorized { spec, facts });
                    }
                    Ok(Some(user)) => {
                        let run_as = Some(user.name().to_owned());
                        let facts = PermitFacts { run_as, ..facts };
                        let spec = spec.as_user(user);
                        return Ok(Authorized { spec, facts });
                    }
                    Err(reason) => ("run_as".to_owned(), reason),
                }
            }
            Decision::Deny(denial) => (denial.rule, denial.reason),
        },
    };
    let logged = log_excerpt(&reason);
    tracing::info!(principal = principal.name(), %rule, reason = %logged, "command refused");
    let event = AuditEvent::CommandRefused {
        command: command_line(&command.program),
        working_dir: command.working_dir.as_deref().map(AuditText::path),
        reason: AuditText::from(reason.as_str()),
        rule: Some(rule),
    };
    state.audit.record_or_log(trail.clone(), event).await;
    Err(reason)
}

/// Which Unix user runs a principal's commands: its token's `run_as`, else the server's.
/// When the server runs as root and neither names a user, commands are refused: root is
/// only ever used when configured so explicitly (`run_as = "root"`).
#[derive(Debug)]
pub struct Identities {
    default_user: Option<String>,
    /// The name of the server's own user, which runs commands when no `run_as` applies.
    own_name: Option<String>,
    server_is_root: bool,
    known: parking_lot::Mutex<std::collections::HashMap<String, RunAsUser>>,
}

impl Identities {
    pub fn new(default_user: Option<String>) -> Self {
        Self {
            default_user,
            own_name: current_user_name(),
            server_is_root: nix::unistd::Uid::effective().is_root(),
            known: parking_lot::Mutex::default(),
        }
    }

    /// Look the server-wide user up now, so a typo stops the server at start.
    pub fn check_default(&self) -> Result<(), RunAsError> {
        match &self.default_user {
            Some(name) => RunAsUser::lookup(name).map(|_| ()),
            None => Ok(()),
        }
    }

    /// `Ok(None)`: run as the server's own user.
    pub fn user_for(&self, principal: &Principal) -> Result<Option<RunAsUser>, String> {
        let Some(name) = principal.run_as().or(self.default_user.as_deref()) else {
            if self.server_is_root {
                return Err(format!(
                    "refused: hostmcp runs as root and no run_as user is configured for token {:?}; \
                     the operator must set run_as for the token or --run-as for the server \
                     (run_as = \"root\" to run commands as root)",
                    principal.name()
                ));
            }
            return Ok(None);
        };
        let mut known = self.known.lock();
        if let Some(user) = known.get(name) {
            return Ok(Some(user.clone()));
        }
        let user = RunAsUser::lookup(name).map_err(|error| format!("refused: run_as: {error}"))?;
        if !self.server_is_root && user.name() != current_user_name().as_deref().unwrap_or("") {
            return Err(format!(
                "refused: run_as {name:?} needs hostmcp to run as root, and it does not"
            ));
        }
        known.insert(name.to_owned(), user.clone());
        Ok(Some(user))
    }
}
