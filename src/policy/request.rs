//! What the policy judges and what it hands on: the request as a tool received it
//! ([`CommandRequest`]), the same request resolved to what would really run
//! ([`ResolvedRequest`], made only by [`resolve()`](super::resolve())), and the leave to run
//! it ([`Permit`], made only by [`decide`](super::decide)). Data only: the order of the
//! checks is in `decide`, the wording of a refusal in `denial`.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use crate::{auth::Role, command::CommandLine};

use super::DecidingRule;

/// A command as a tool received it, before anything is resolved.
#[derive(Debug, Clone, Copy)]
pub struct CommandRequest<'a> {
    pub principal_name: &'a str,
    pub role: Role,
    /// What the caller asked to run.
    pub command: &'a CommandLine,
    pub working_dir: Option<&'a Path>,
    /// Environment variables the request sets on top of the server's base environment.
    pub env: &'a [(String, String)],
}

/// A request with its program and working dir canonicalized: what would really run. Only
/// [`resolve()`](super::resolve()) makes one.
#[derive(Clone, PartialEq, Eq)]
pub struct ResolvedRequest {
    pub(super) program: PathBuf,
    /// `argv[0]` as given, or [`SHELL`](super::SHELL) in shell mode.
    pub(super) requested_program: String,
    pub(super) args: Vec<String>,
    pub(super) working_dir: Option<PathBuf>,
    pub(super) requested_working_dir: Option<PathBuf>,
    pub(super) env: Vec<(String, String)>,
    pub(super) shell: bool,
    pub(super) principal: String,
    pub(super) role: Role,
}

impl ResolvedRequest {
    /// Canonical path of the program (of the shell, in shell mode).
    pub fn program(&self) -> &Path {
        &self.program
    }
    /// `argv[0]` as the caller gave it, or [`SHELL`](super::SHELL) in shell mode.
    pub fn requested_program(&self) -> &str {
        &self.requested_program
    }
    /// Arguments after `argv[0]`; `["-c", script]` in shell mode.
    pub fn args(&self) -> &[String] {
        &self.args
    }
    /// Canonical working dir, if one was given.
    pub fn working_dir(&self) -> Option<&Path> {
        self.working_dir.as_deref()
    }
    /// The working dir as the caller gave it.
    pub fn requested_working_dir(&self) -> Option<&Path> {
        self.requested_working_dir.as_deref()
    }
    /// Names of the environment variables the request sets.
    pub fn env_names(&self) -> impl Iterator<Item = &str> {
        self.env.iter().map(|(name, _)| name.as_str())
    }
    pub fn is_shell(&self) -> bool {
        self.shell
    }
    pub fn principal(&self) -> &str {
        &self.principal
    }
    pub fn role(&self) -> Role {
        self.role
    }
}

impl fmt::Debug for ResolvedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedRequest")
            .field("program", &self.program)
            .field("requested_program", &self.requested_program)
            .field("args", &self.args)
            .field("working_dir", &self.working_dir)
            .field("env", &RedactedEnv(&self.env))
            .field("shell", &self.shell)
            .field("principal", &self.principal)
            .field("role", &self.role)
            .finish()
    }
}

/// Leave to run one command: exactly this program, these arguments, this working dir and
/// environment. Only [`decide`](super::decide) makes one; it cannot be cloned, defaulted or
/// built elsewhere.
///
/// The exec engine runs [`program`](Self::program) as is: no further `PATH` lookup, and
/// `argv[0]` = that same path (the default of `Command::new(path)`), never the name the
/// caller used, so a multi-call binary cannot be steered into a personality the policy did
/// not judge. It takes [`env`](Self::env) from here, not from the request.
pub struct Permit {
    program: PathBuf,
    args: Vec<String>,
    working_dir: Option<PathBuf>,
    env: Vec<(String, String)>,
    shell: bool,
    principal: String,
    role: Role,
    rule: DecidingRule,
    run_as: Option<String>,
    limits: crate::limits::ResourceLimits,
    reach: crate::reach::Reach,
    approval: Option<ApprovalNeed>,
}

/// An allow rule's `approve = true`: a person must approve the command before it runs,
/// shown `reason` (`approve_reason`) with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalNeed {
    pub reason: Option<String>,
}

impl Permit {
    /// The permit for `request`, by `rule` (the allow rule `allowed_by`, when one decided).
    /// Only [`decide`](super::decide) calls it.
    pub(super) fn new(
        request: &ResolvedRequest,
        rule: DecidingRule,
        allowed_by: Option<&super::rules::Rule>,
    ) -> Self {
        Self {
            run_as: allowed_by.and_then(|rule| rule.run_as.clone()),
            limits: allowed_by.map(|rule| rule.limits).unwrap_or_default(),
            reach: allowed_by
                .map(|rule| rule.reach.clone())
                .unwrap_or_default(),
            approval: allowed_by.and_then(|rule| rule.approval.clone()),
            program: request.program.clone(),
            args: request.args.clone(),
            working_dir: request.working_dir.clone(),
            env: request.env.clone(),
            shell: request.shell,
            principal: request.principal.clone(),
            role: request.role,
            rule,
        }
    }

    /// Canonical path of the program to execute (the shell, in shell mode).
    pub fn program(&self) -> &Path {
        &self.program
    }
    /// Arguments after `argv[0]`; `["-c", script]` in shell mode.
    pub fn args(&self) -> &[String] {
        &self.args
    }
    /// Canonical working dir; `None`: the server's (only possible without `working_dirs`).
    pub fn working_dir(&self) -> Option<&Path> {
        self.working_dir.as_deref()
    }
    /// Variables to set on top of the server's base environment.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }
    pub fn is_shell(&self) -> bool {
        self.shell
    }
    pub fn principal(&self) -> &str {
        &self.principal
    }
    pub fn role(&self) -> Role {
        self.role
    }
    /// The rule that allowed: `allow[i]`, `allow_shell`, `admin` or `default`.
    pub fn rule(&self) -> DecidingRule {
        self.rule
    }
    /// The user the allow rule that decided names (`run_as`), which wins over the token's.
    pub fn run_as(&self) -> Option<&str> {
        self.run_as.as_deref()
    }
    /// The resource limits of the allow rule that decided (none for other steps).
    pub fn limits(&self) -> crate::limits::ResourceLimits {
        self.limits
    }
    /// What the allow rule that decided lets its commands reach (unconfined for other
    /// steps).
    pub fn reach(&self) -> &crate::reach::Reach {
        &self.reach
    }
    /// Whether a person must approve the command first (its allow rule says `approve`):
    /// the permit holds only once approved.
    pub fn approval(&self) -> Option<&ApprovalNeed> {
        self.approval.as_ref()
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("working_dir", &self.working_dir)
            .field("env", &RedactedEnv(&self.env))
            .field("shell", &self.shell)
            .field("principal", &self.principal)
            .field("role", &self.role)
            .field("rule", &self.rule)
            .field("run_as", &self.run_as)
            .field("limits", &self.limits)
            .field("reach", &self.reach)
            .field("approval", &self.approval)
            .finish()
    }
}

/// Environment variables with the values hidden.
struct RedactedEnv<'a>(&'a [(String, String)]);

impl fmt::Debug for RedactedEnv<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(name, _)| (name, "[redacted]")))
            .finish()
    }
}
