//! From a validated tool request to a command the engine may run: the policy resolves the
//! program and working directory (symlinks followed, PATH searched) and decides, and the
//! principal's Unix user is looked up (the allow rule's `run_as` over the token's), with
//! the command's resource limits (the token's and the rule's, the stricter of each); a denial or an unresolvable request is recorded as
//! `command_refused` and returned as a typed [`Refusal`] naming the rule. A permit comes
//! with the facts `command_started` records ([`PermitFacts`]): the rule that allowed it,
//! the program that runs, where, as which user and under which limits.

use std::{path::PathBuf, time::Duration};

use crate::{
    audit::{AuditContext, AuditEvent, AuditText, CommandLine as AuditedLine},
    auth::Principal,
    command::CommandLine,
    exec::{CommandSpec, Confinement, DEFAULT_PATH, ResourceLimits},
    log_excerpt::log_excerpt,
    policy::{self, CommandRequest, DecidingRule, Decision},
};

use super::{ToolsState, refusal::Refusal};

/// A tool's command request, validated but not yet judged.
#[derive(Debug, Clone)]
pub struct ToolCommand {
    pub command: CommandLine,
    pub working_dir: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    pub stdin: Option<Vec<u8>>,
    pub timeout: Duration,
}

impl ToolCommand {
    /// A description for job lists: the whole command.
    pub fn describe(&self) -> String {
        self.command.describe()
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
    pub rule: DecidingRule,
    /// Canonical path of the program that runs (the shell, for a shell line).
    pub program: PathBuf,
    /// Canonical working directory; `None`: the server's.
    pub working_dir: Option<PathBuf>,
    /// The Unix user it runs as; `None` only if the server's own user has no name.
    pub run_as: Option<String>,
    /// Its resource limits: the token's and the rule's, the stricter of each.
    pub limits: ResourceLimits,
    /// A person must approve it first (its allow rule says `approve = true`).
    pub approval: Option<policy::ApprovalNeed>,
    /// What its token and its rule let it reach (for `command_started`).
    pub token_reach: crate::reach::Reach,
    pub rule_reach: crate::reach::Reach,
}

/// A command the policy permitted, ready to run, and what the log says of it.
#[derive(Debug)]
pub struct Authorized {
    pub spec: CommandSpec,
    pub facts: PermitFacts,
}

/// Judge `command` for `principal`; a refusal is recorded as `command_refused` under
/// `trail` before it is returned.
pub async fn authorize(
    state: &ToolsState,
    principal: &Principal,
    command: &ToolCommand,
    trail: &AuditContext,
) -> Result<Authorized, Refusal> {
    let refusal = match judge(state, principal, command) {
        Ok(authorized) => return Ok(authorized),
        Err(refusal) => refusal,
    };
    let reason = refusal.to_string();
    let rule = refusal.rule();
    crate::metrics::policy_refused(&rule);
    let logged = log_excerpt(&reason);
    tracing::info!(principal = principal.name(), %rule, reason = %logged, "command refused");
    let event = AuditEvent::CommandRefused {
        command: AuditedLine::of(&command.command),
        working_dir: command.working_dir.as_deref().map(AuditText::path),
        reason: AuditText::from(reason),
        rule: Some(rule),
    };
    state.audit.record_or_log(trail.clone(), event).await;
    Err(refusal)
}

/// Resolve, decide, and find the user: no I/O but the policy's lookups and the user's.
fn judge(
    state: &ToolsState,
    principal: &Principal,
    command: &ToolCommand,
) -> Result<Authorized, Refusal> {
    let request = CommandRequest {
        principal_name: principal.name(),
        role: principal.role(),
        command: &command.command,
        working_dir: command.working_dir.as_deref(),
        env: &command.env,
    };
    let search_path = state.base_env.get("PATH").unwrap_or(DEFAULT_PATH);
    let policy = state.policy.load();
    let resolved = policy::resolve_confined(&policy, &request, search_path)?;
    let permit = match policy::decide(&policy, &resolved) {
        Decision::Permit(permit) => permit,
        Decision::Deny(denial) => return Err(denial.into()),
    };
    let user = state.identities.user_for_rule(principal, permit.run_as())?;
    let limits = state
        .identities
        .token_limits(principal)
        .stricter(permit.limits());
    let token_reach = state.identities.token_reach(principal);
    let rule_reach = permit.reach().clone();
    let facts = PermitFacts {
        token_reach: token_reach.clone(),
        rule_reach: rule_reach.clone(),
        limits,
        approval: permit.approval().cloned(),
        rule: permit.rule(),
        program: permit.program().to_path_buf(),
        working_dir: permit.working_dir().map(PathBuf::from),
        run_as: match &user {
            None => state.identities.own_name.clone(),
            Some(user) => Some(user.name().to_owned()),
        },
    };
    let layers: Vec<_> = [token_reach, rule_reach]
        .into_iter()
        .filter(crate::reach::Reach::confines)
        .collect();
    let spec = CommandSpec::permitted(permit, command.timeout, command.stdin.clone())
        .confined(Confinement { limits, layers });
    let spec = match user {
        None => spec,
        Some(user) => spec.as_user(user),
    };
    Ok(Authorized { spec, facts })
}
