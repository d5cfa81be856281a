//! The one command pipeline `run_command` and `job_start` share: the arguments parsed and
//! validated ([`request`]), then the command judged by the policy, given a slot, and its
//! start put on record ([`admit`]). The two tools differ only in what they do with the
//! [`Admitted`] command: `run_command` runs it and waits, `job_start` registers it as a job.
//! Every refusal on the way is a [`Refusal`]; every message, audit event and limit is the
//! same for both.
//!
//! ```text
//! arguments --request--> ToolCommand --authorize--> Authorized --slot--> (job id)
//!           --audit command_started--> Admitted { spec, audited, slot, job_id }
//! ```

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use rmcp::{ErrorData as McpError, model::JsonObject};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{
    ToolsState,
    audited::AuditedCommand,
    authorize::{Authorized, ToolCommand, authorize},
    refusal::Refusal,
};
use crate::{
    approval::{
        broker::{Draft, StdinShown},
        gate::ClientLink,
    },
    audit::AuditContext,
    auth::Principal,
    command::CommandLine,
    exec::{CommandSpec, slots::CommandSlot},
    jobs::JobRegistry,
};

/// Arguments of `run_command`. Exactly one of `command` and `argv`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunCommandInput {
    /// Command line run by `/bin/sh -c`: use it for pipes, redirections, globs and `&&`.
    pub command: Option<String>,
    /// Program and arguments run without a shell (no quoting or expansion): use it to pass
    /// arguments verbatim. The program is looked up in PATH.
    pub argv: Option<Vec<String>>,
    /// Directory to run in (absolute, or relative to the server's directory).
    pub working_dir: Option<String>,
    /// Seconds before the command's whole process group is killed (default 30; the
    /// server caps it).
    pub timeout_secs: Option<u64>,
    /// Extra environment variables for the command.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Text written to the command's standard input (closed when absent).
    pub stdin: Option<String>,
}

/// What the admitted command is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// Run while the caller waits (`run_command`).
    Wait,
    /// Run in the background as a job (`job_start`): it gets a job id before its start is
    /// recorded, so `command_started` names the job.
    Job,
}

/// A command the policy permitted, holding its slot, with its start on record: ready to
/// spawn. Dropping it gives the slot back.
#[derive(Debug)]
pub struct Admitted {
    /// What exec runs, owned by the audited command (for its orphans' records).
    pub spec: CommandSpec,
    pub audited: AuditedCommand,
    pub slot: CommandSlot,
    /// The command as asked, for the record if it then cannot start.
    pub command: ToolCommand,
    /// The job id, for [`Launch::Job`].
    pub job_id: Option<String>,
}

/// Parse and validate the arguments of `tool` (`run_command` or `job_start`), with
/// `timeouts` = (default, max). An error here is the caller's malformed request
/// (`invalid_params`), not a refusal.
pub fn request(
    arguments: Option<JsonObject>,
    tool: &str,
    timeouts: (Duration, Duration),
) -> Result<ToolCommand, McpError> {
    let input: RunCommandInput = super::parse_arguments(arguments, tool)?;
    validate(input, timeouts)
}

/// Judge `command` for `principal`, wait for a person's approval when its rule asks for
/// one (offered to the client through `link`, when there is one), take a slot, make a job
/// id for a [`Launch::Job`], and record `command_started` under `trail`, in that order;
/// the first step that refuses ends it (a policy refusal is on record as
/// `command_refused`, an approval's request and decision as `approval_*`).
pub async fn admit(
    state: &ToolsState,
    principal: &Principal,
    trail: AuditContext,
    command: ToolCommand,
    launch: Launch,
    link: Option<ClientLink>,
) -> Result<Admitted, Refusal> {
    let Authorized { spec, facts } = authorize(state, principal, &command, &trail).await?;
    if let Some(need) = &facts.approval {
        let draft = Draft {
            principal: principal.name().to_owned(),
            command: command.command.clone(),
            program: facts.program.display().to_string(),
            working_dir: facts
                .working_dir
                .as_ref()
                .map(|dir| dir.display().to_string()),
            run_as: facts.run_as.clone(),
            rule: facts.rule.to_string(),
            reason: need.reason.clone(),
            tool: trail.tool.clone(),
            stdin: StdinShown::of(command.stdin.as_deref()),
        };
        crate::approval::obtain(&state.approvals, &state.audit, &trail, draft, link).await?;
    }
    let slot = state.slots.try_acquire(principal.name())?;
    let job_id = match launch {
        Launch::Wait => None,
        Launch::Job => Some(JobRegistry::new_id()?),
    };
    let audited =
        AuditedCommand::start(&state.audit, trail, &command, &facts, job_id.as_deref()).await?;
    Ok(Admitted {
        spec: spec.owned_by(audited.owner()),
        audited,
        slot,
        command,
        job_id,
    })
}

/// Validate the arguments, with `timeouts` = (default, max).
pub fn validate(
    input: RunCommandInput,
    timeouts: (Duration, Duration),
) -> Result<ToolCommand, McpError> {
    let invalid = |message: String| McpError::invalid_params(message, None);
    let command = match (input.command, input.argv) {
        (Some(command), None) if !command.trim().is_empty() => CommandLine::Shell(command),
        (None, Some(argv)) if !argv.is_empty() && !argv[0].is_empty() => CommandLine::Argv(argv),
        (Some(_), Some(_)) => {
            return Err(invalid("give either `command` or `argv`, not both".into()));
        }
        (None, None) => {
            return Err(invalid(
                "give `command` (a shell command line) or `argv`".into(),
            ));
        }
        _ => return Err(invalid("`command` or `argv` is empty".into())),
    };
    let timeout = match input.timeout_secs {
        Some(0) => return Err(invalid("timeout_secs must be at least 1".into())),
        Some(seconds) => Duration::from_secs(seconds).min(timeouts.1),
        None => timeouts.0,
    };
    if let Some(name) = input.env.keys().find(|name| !is_valid_env_name(name)) {
        return Err(invalid(format!(
            "env: {name:?} is not a valid variable name"
        )));
    }
    if input.env.values().any(|value| value.contains('\0')) {
        return Err(invalid("env: a value contains a NUL byte".into()));
    }
    Ok(ToolCommand {
        command,
        working_dir: input.working_dir.map(PathBuf::from),
        env: input.env.into_iter().collect(),
        stdin: input.stdin.map(String::into_bytes),
        timeout,
    })
}

fn is_valid_env_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['=', '\0'])
}

#[cfg(test)]
mod tests;
