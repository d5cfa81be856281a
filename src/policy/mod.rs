//! Command policy: whether a principal may run a command, decided in one pure function.
//!
//! Owns the `[policy]` schema ([`PolicyConfig`]), its validated form ([`Policy`]), the one
//! I/O step that turns a request into what would really run ([`resolve()`]), the pure
//! decision ([`decide`]) and its explanation ([`explain`]). It runs nothing: the exec engine
//! takes a [`Permit`], which only [`decide`] can make, and runs exactly the program, args,
//! working dir and environment the permit carries.
//!
//! # Flow
//!
//! ```text
//! CommandRequest --resolve (PATH lookup, canonicalize; the only I/O)--> ResolvedRequest
//! ResolvedRequest + Policy --decide (pure)--> Permit | Denial
//! ```
//!
//! [`resolve()`] looks `argv[0]` up in the given `PATH` the way `execvp` does (a name with a
//! `/` is a path, relative ones against the working dir; empty and relative `PATH` entries
//! are skipped) and canonicalizes it: every symlink followed, so a binary is judged by what
//! it really is (`/usr/bin/python3` is judged as `/usr/bin/python3.11`, an `ls` symlink to
//! `rm` as `/usr/bin/rm`). Shell mode resolves to the canonical `/bin/sh` (e.g.
//! `/usr/bin/dash`) with args `["-c", script]`. The working dir is canonicalized too, so
//! `..` and symlinks are gone before any rule sees it.
//!
//! # The `[policy]` table
//!
//! ```toml
//! [policy]
//! default = "deny"              # "deny" | "allow": requests no allow rule matches
//! restrict_admin = false        # true: admins are judged like operators
//! allow_shell = false           # true | false | { principals = [..], roles = [..] }
//! deny_interpreters = true      # default: true when default = "deny", else false
//! working_dirs = ["/srv/app"]   # roots; default: any directory
//! allow_env = ["LANG", "LC_*"]  # names a request may set; default: none
//!
//! [[policy.allow]]
//! program = "/usr/bin/systemctl"   # absolute path or glob over the canonical path
//! args = ["status", "*"]           # element-wise globs; a final "**" = any remaining
//! principals = ["deploy"]          # optional: token names
//! roles = ["operator"]             # optional: "operator", "admin"
//! allow_interpreter = false        # may this rule allow a known bypass program?
//! allow_options = false            # may its wildcards match options (args starting with -)?
//! note = "read-only unit status"   # optional free text
//!
//! [[policy.deny]]
//! program = "/usr/bin/git"
//! any_arg = ["-c*", "--exec-path*", "--config-env*"]   # deny only: any position
//! note = "git config overrides run commands"
//! ```
//!
//! Unknown keys are errors that name the key. Validation ([`Policy::from_config`]) refuses
//! relative or non-normal paths, `**` other than as the whole last element, empty
//! `principals`/`roles`/`working_dirs`/`any_arg` lists and an empty `allow_shell` table
//! (which would match nobody, or read as everybody), role `read` in a rule, and
//! `allow_options` on a rule without `args` (which allows any arguments already).
//!
//! # Semantics
//!
//! Without a `[policy]` table at all ([`Policy::permissive`]) operators may run anything,
//! in shell mode too, with any environment, in any directory: the permissive default,
//! which keeps a fresh install usable. As soon as a `[policy]` table exists, even an empty
//! one, `default` is `"deny"` unless written otherwise, and shell mode and request
//! environment are off unless granted (`default = "allow"` alone does not turn them
//! back on: a shell line or `LD_PRELOAD` would walk around every deny rule).
//!
//! A [`ResolvedRequest`] is judged in this order; the first step that decides wins, and its
//! name is the `rule` of the [`Permit`] or [`Denial`]:
//!
//! 1. `role`: role `read` is always denied; it never runs commands.
//! 2. `admin`: role `admin` is permitted everything, unless `restrict_admin = true`, in
//!    which case admins go through the steps below like operators (rules may name them
//!    with `roles = ["admin"]`).
//! 3. `allow_shell`: a shell-mode request (`command` string) is denied unless `allow_shell`
//!    grants this principal or role; the denial tells the caller to pass `argv` instead.
//! 4. `deny[i]`: the first deny rule that applies to the caller and matches denies. Deny
//!    wins over allow.
//! 5. `working_dirs`: if roots are configured, a working dir must be given (a request
//!    without one is denied: no silent default) and, canonical, must equal a root or lie
//!    inside one by whole path components: `/srv/app2` is not inside `/srv/app`,
//!    `/srv/app/../etc` is `/srv/etc`, and a symlink in a root that points outside is
//!    judged by its target. Roots are canonicalized at load by [`resolve_policy`].
//!    [`resolve_confined`] applies this step first, before resolving anything else, and
//!    gives a dir outside the roots one answer whether it exists or not.
//! 6. `allow_env`: every environment variable the request sets must match a name glob of
//!    `allow_env` (none do when it is absent). `LD_PRELOAD`, `PATH`, `BASH_ENV`, `GIT_*`,
//!    `PYTHONPATH` and friends change what an allowed program does: grant names, not `*`.
//! 7. `allow_shell` permits a shell-mode request that passed 4-6.
//! 8. `deny_interpreters`: a program on the built-in [`BYPASS_PROGRAMS`] list is denied
//!    unless a matching allow rule says `allow_interpreter = true`, which then permits.
//! 9. `allow[i]`: the first allow rule that applies and matches permits.
//! 10. `default`: `"allow"` permits, `"deny"` denies with the list of what the caller may
//!     run.
//!
//! A rule applies to a caller when its `principals` (if present) contain the principal's
//! name and its `roles` (if present) contain its role. It matches when:
//!
//! - `program`, a pattern over the *canonical* path split at `/`: each component a glob in
//!   which `*` and `?` never cross a `/`, and a final `/**` any number of components. A
//!   literal path is exact: `/usr/bin/systemctl` does not match `/usr/bin/systemctl-evil`.
//!   [`resolve_policy`] canonicalizes each pattern's leading literal directories, so
//!   `/bin/*` means `/usr/bin/*` on a merged-`/usr` system. A deny rule's literal file is
//!   canonicalized too (deny `/usr/bin/python3` denies `/usr/bin/python3.11`, under any
//!   name); an allow rule's is not, because following it could widen the rule
//!   (`/usr/sbin/reboot` is `/usr/bin/systemctl`): write allow rules with the canonical
//!   path `hostmcp policy explain` prints.
//! - `args` (if present), matched element by element against the arguments after
//!   `argv[0]`, each glob against the *whole* element (`-c*` matches `-calias.x=!sh` and
//!   `-c`, not `x-c`); the lengths must agree unless the last pattern is `**`. `args = []`
//!   means no arguments at all. In an allow rule a wildcard never matches an *option* (an
//!   argument that starts with `-`, or with `@`: a response file, from which gcc, clang,
//!   ld, javac and 7z read more options): only a pattern that itself starts with the same
//!   character does (`-u`, `--since=*`, `-*`, `@/srv/build/*`), so `["status", "*"]`
//!   refuses `status --host=me@elsewhere` and `["-c", "*"]` refuses `gcc -c @/tmp/opts`.
//!   `allow_options = true` lets the rule's wildcards match options too. A literal `--`
//!   changes nothing. Deny rules' wildcards match options like any argument. See the
//!   `args` submodule.
//! - `any_arg` (deny rules only, if present): some argument, at any position, matches
//!   one of these globs. Positional `args` cannot say "`-c` anywhere", and options can
//!   come in any order.
//!
//! Globs: `*` any run of characters, `?` one character, nothing else is special (no
//! escapes, no classes). See the `glob` submodule.
//!
//! Arguments are never shell-interpreted: in argv mode, `["status", "nginx; reboot"]` is
//! two arguments, the second a strange unit name, and `args = ["status", "*"]` allows it.
//! Nothing runs `reboot`. Only shell mode has shell syntax, and shell mode is judged as the
//! shell itself.
//!
//! # What a policy cannot see (read before writing one)
//!
//! - **Shell mode allows whatever the shell can do.** Granting `allow_shell` grants every
//!   program the shell can reach. Deny rules still match the shell program, with
//!   `["-c", script]` as its args, but a pattern over script text is no defence (a script
//!   can spell a command in endless ways); only a deny on the shell itself is.
//! - **Bypass programs.** Allowing any of these allows arbitrary commands, because they
//!   run programs named in their arguments or code: shells (`sh`, `bash`), interpreters
//!   (`python3`, `perl`, `awk`), `env`, `xargs`, `find` (`-exec`), `git` (`-c alias.x=!sh`,
//!   `core.pager`, hooks), `sudo`/`su`/`doas`, `nohup`, `setsid`, `timeout`, `nice`,
//!   `strace`, the dynamic loader, and [more](BYPASS_PROGRAMS). `deny_interpreters`
//!   (on by default with `default = "deny"`) denies them unless an allow rule says
//!   `allow_interpreter = true`; with it, tighten `args` and deny dangerous options with
//!   `any_arg`. The list matches canonical file names: a copy of `bash` renamed `tool` in
//!   an allowed directory is not recognised, so never allow globs over directories that
//!   callers can write.
//! - **Files are not commands.** `working_dirs` fixes where a command starts, not what it
//!   may touch: an allowed program opens whatever its user may open, and a file argument
//!   (`cat /etc/shadow`, `ls /root`) is not confined to the roots. Programs that write
//!   files (`tee`, `cp`, `dd`) can rewrite what others later execute.
//! - **Options of the allowed program.** A rule judges strings, not what the program makes
//!   of them: an option a rule names (`-*`, `allow_options = true`) is allowed whatever it
//!   does (`systemctl -H` runs ssh, `journalctl -D` reads other files, `tar --to-command`
//!   runs a command). Name options one by one, and read the program's manual for those that
//!   execute, connect or read files first.
//! - **Time of check.** Canonical paths are checked, then executed; a caller who can
//!   replace a directory on that path between the two can race it. Keep roots and program
//!   directories unwritable by callers.
//! - **Multi-call binaries** (`busybox`, `systemctl` as `reboot`) share one canonical path
//!   for all their personalities, so the policy cannot tell them apart. The exec engine
//!   therefore runs [`Permit::program`] with `argv[0]` set to that same path, never the
//!   caller's name: otherwise a caller's symlink `reboot` -> `systemctl` would turn an
//!   allowed `systemctl status x` into a reboot. `busybox` is on the bypass list.

mod args;
mod glob;
mod resolve;
mod rules;

use std::{
    fmt,
    path::{Path, PathBuf},
};

use crate::auth::Role;

pub use glob::args_match;
pub use resolve::{ResolveError, SHELL, resolve, resolve_confined, resolve_policy};
pub use rules::{
    AllowRule, BYPASS_PROGRAMS, BypassProgram, DefaultAction, DenyRule, Grantees, PolicyConfig,
    PolicyError, PolicyProblem, RoleName, ShellAccess, bypass_program,
};

use rules::{Root, Rule, RuleMatch, ShellGrant};

/// The longest rendering of an argument list in a message, in characters.
const SHOWN_ARGS_CHARS: usize = 300;
/// The longest rendering of one argument in a message, in characters.
const SHOWN_ARG_CHARS: usize = 100;
/// How many allowed programs a denial lists.
const SHOWN_ALLOW_RULES: usize = 8;

/// A validated policy: the data [`decide`] reads. Build it with [`resolve_policy`] (what the
/// server does), [`Policy::from_config`] (no I/O) or [`Policy::permissive`].
#[derive(Debug, Clone)]
pub struct Policy {
    /// Whether a `[policy]` table was given (false: [`Policy::permissive`]).
    configured: bool,
    default: DefaultAction,
    restrict_admin: bool,
    shell: ShellGrant,
    deny_interpreters: bool,
    working_dirs: Option<Vec<Root>>,
    /// `None`: any variable; `Some(globs)`: names matching one of them.
    allow_env: Option<Vec<glob::Glob>>,
    allow: Vec<Rule>,
    deny: Vec<Rule>,
}

impl Policy {
    /// The policy when the config has no `[policy]` table: operators may run anything,
    /// shell mode and request environment included; only role `read` is denied.
    pub fn permissive() -> Self {
        Self {
            configured: false,
            default: DefaultAction::Allow,
            restrict_admin: false,
            shell: ShellGrant::Callers(rules::Callers::default()),
            deny_interpreters: false,
            working_dirs: None,
            allow_env: None,
            allow: Vec::new(),
            deny: Vec::new(),
        }
    }

    /// Whether this came from a `[policy]` table (false for [`Policy::permissive`]).
    pub fn is_configured(&self) -> bool {
        self.configured
    }

    /// One line: the settings that are not rules.
    fn summary(&self) -> String {
        if !self.configured {
            return "no [policy] table: permissive (operators may run anything)".to_owned();
        }
        let roots = match &self.working_dirs {
            None => "any".to_owned(),
            Some(roots) => join_display(roots),
        };
        let env = match &self.allow_env {
            None => "any".to_owned(),
            Some(globs) if globs.is_empty() => "none".to_owned(),
            Some(globs) => format!("{globs:?}"),
        };
        format!(
            "default {}; restrict_admin {}; allow_shell {}; deny_interpreters {}; \
             working_dirs {roots}; allow_env {env}; {} allow and {} deny rules",
            self.default.as_str(),
            self.restrict_admin,
            self.shell,
            self.deny_interpreters,
            self.allow.len(),
            self.deny.len(),
        )
    }
}

/// How a command was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestMode<'a> {
    /// A shell command line, run by `/bin/sh -c`.
    Shell(&'a str),
    /// A program and its arguments; no shell.
    Argv(&'a [String]),
}

/// A command as a tool received it, before anything is resolved.
#[derive(Debug, Clone, Copy)]
pub struct CommandRequest<'a> {
    pub principal_name: &'a str,
    pub role: Role,
    pub mode: RequestMode<'a>,
    pub working_dir: Option<&'a Path>,
    /// Environment variables the request sets on top of the server's base environment.
    pub env: &'a [(String, String)],
}

/// A request with its program and working dir canonicalized: what would really run. Only
/// [`resolve()`] makes one.
#[derive(Clone, PartialEq, Eq)]
pub struct ResolvedRequest {
    program: PathBuf,
    /// `argv[0]` as given, or [`SHELL`] in shell mode.
    requested_program: String,
    args: Vec<String>,
    working_dir: Option<PathBuf>,
    requested_working_dir: Option<PathBuf>,
    env: Vec<(String, String)>,
    shell: bool,
    principal: String,
    role: Role,
}

impl ResolvedRequest {
    /// Canonical path of the program (of the shell, in shell mode).
    pub fn program(&self) -> &Path {
        &self.program
    }
    /// `argv[0]` as the caller gave it, or [`SHELL`] in shell mode.
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

/// The outcome of [`decide`].
#[derive(Debug)]
pub enum Decision {
    Permit(Permit),
    Deny(Denial),
}

impl Decision {
    /// The rule that decided: `allow[2]`, `deny[0]`, `default`, `role`, ...
    pub fn rule(&self) -> &str {
        match self {
            Self::Permit(permit) => permit.rule(),
            Self::Deny(denial) => &denial.rule,
        }
    }

    pub fn is_permit(&self) -> bool {
        matches!(self, Self::Permit(_))
    }

    pub fn into_result(self) -> Result<Permit, Denial> {
        match self {
            Self::Permit(permit) => Ok(permit),
            Self::Deny(denial) => Err(denial),
        }
    }
}

/// Leave to run one command: exactly this program, these arguments, this working dir and
/// environment. Only [`decide`] makes one; it cannot be cloned, defaulted or built
/// elsewhere.
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
    rule: String,
}

impl Permit {
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
    pub fn rule(&self) -> &str {
        &self.rule
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
            .finish()
    }
}

/// Why a request was denied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Denial {
    /// The rule that denied: `deny[2]`, `default`, `role`, `allow_shell`, `working_dirs`,
    /// `allow_env` or `deny_interpreters`.
    pub rule: String,
    /// For the caller (an LLM or a person): which rule, what was asked, why it is denied,
    /// and what would be allowed. Starts with `denied by <rule>`.
    pub reason: String,
}

impl Denial {
    fn new(rule: impl Into<String>, title: &str, why: String) -> Self {
        Self {
            rule: rule.into(),
            reason: format!("denied by {title}: {why}"),
        }
    }
}

/// Decide whether `request` may run under `policy`. Pure: no I/O, no clock, no globals;
/// the same inputs always give the same decision. See the module docs for the order.
#[must_use]
pub fn decide(policy: &Policy, request: &ResolvedRequest) -> Decision {
    match evaluate(policy, request) {
        Ok(rule) => Decision::Permit(Permit {
            program: request.program.clone(),
            args: request.args.clone(),
            working_dir: request.working_dir.clone(),
            env: request.env.clone(),
            shell: request.shell,
            principal: request.principal.clone(),
            role: request.role,
            rule,
        }),
        Err(denial) => Decision::Deny(denial),
    }
}

/// The steps of the module docs; `Ok(rule)` permits.
fn evaluate(policy: &Policy, request: &ResolvedRequest) -> Result<String, Denial> {
    if let Some(verdict) = role_step(policy, request) {
        return verdict;
    }
    shell_step(policy, request)?;
    if let Some(rule) = first_deny(policy, request) {
        return Err(deny_rule_denial(rule, request));
    }
    working_dir_step(policy, request)?;
    env_step(policy, request)?;
    if request.shell {
        return Ok("allow_shell".to_owned());
    }
    // Every allow rule that applies to the caller, judged once: the permit is the first
    // match, and a denial explains the near matches.
    let judged: Vec<(&Rule, RuleMatch)> = policy
        .allow
        .iter()
        .filter(|rule| rule.grantees.includes(&request.principal, request.role))
        .map(|rule| (rule, rule.matches(&request.program, &request.args)))
        .collect();
    let mut allowing = judged
        .iter()
        .filter(|(_, outcome)| outcome.is_yes())
        .map(|(rule, _)| *rule);
    if policy.deny_interpreters
        && let Some(bypass) = bypass_program(&request.program)
    {
        return match allowing.find(|rule| rule.allow_interpreter) {
            Some(rule) => Ok(rule.label()),
            None => Err(interpreter_denial(policy, bypass, request, &judged)),
        };
    }
    if let Some(rule) = allowing.next() {
        return Ok(rule.label());
    }
    match policy.default {
        DefaultAction::Allow => Ok("default".to_owned()),
        DefaultAction::Deny => Err(Denial::new(
            "default",
            "default (default = \"deny\")",
            format!(
                "no allow rule matches {} for principal {:?} (role {}).{} {}",
                show_command(request),
                request.principal,
                request.role,
                option_hint(&judged),
                allowed_summary(policy, request),
            ),
        )),
    }
}

/// ` In allow[1], argv[2] "--host=x" is an option, and "*" ...`: when an allow rule for this
/// program failed only on an option its wildcard does not match, say so, so the caller
/// learns that options must be named in a rule rather than retrying variations.
fn option_hint(judged: &[(&Rule, RuleMatch)]) -> String {
    judged
        .iter()
        .find_map(|(rule, outcome)| match outcome {
            RuleMatch::Args(mismatch @ args::Mismatch::Option { .. }) => {
                Some(format!(" In {}, {mismatch}.", rule.label()))
            }
            _ => None,
        })
        .unwrap_or_default()
}

/// Steps 1 and 2: `Some` when the role alone decides.
fn role_step(policy: &Policy, request: &ResolvedRequest) -> Option<Result<String, Denial>> {
    match request.role {
        Role::Read => Some(Err(Denial::new(
            "role",
            "role",
            format!(
                "principal {:?} has role read, which never runs commands; running a command \
                 needs a token with role operator or admin",
                request.principal
            ),
        ))),
        Role::Admin if !policy.restrict_admin => Some(Ok("admin".to_owned())),
        Role::Operator | Role::Admin => None,
    }
}

fn shell_step(policy: &Policy, request: &ResolvedRequest) -> Result<(), Denial> {
    if !request.shell || policy.shell.includes(&request.principal, request.role) {
        return Ok(());
    }
    Err(Denial::new(
        "allow_shell",
        &format!("allow_shell (granted to: {})", policy.shell),
        format!(
            "shell mode (a `command` string) is not permitted for principal {:?} (role {}), \
             because the policy judges a program and its arguments and a shell line can hide \
             any program. Pass `argv` instead: the program and each argument as separate \
             strings, e.g. [\"ls\", \"-la\", \"/srv\"]; no shell syntax (`;`, `|`, `$()`, \
             globs, redirections) is interpreted there. {}",
            request.principal,
            request.role,
            allowed_summary(policy, request),
        ),
    ))
}

fn first_deny<'p>(policy: &'p Policy, request: &ResolvedRequest) -> Option<&'p Rule> {
    policy.deny.iter().find(|rule| {
        rule.grantees.includes(&request.principal, request.role)
            && rule.matches(&request.program, &request.args).is_yes()
    })
}

fn deny_rule_denial(rule: &Rule, request: &ResolvedRequest) -> Denial {
    let note = rule
        .note
        .as_deref()
        .map(|note| format!(" Note: {note}"))
        .unwrap_or_default();
    Denial::new(
        rule.label(),
        &rule.title(),
        format!(
            "{} matches this deny rule, and deny rules win over allow rules.{note}",
            show_command(request)
        ),
    )
}

fn working_dir_step(policy: &Policy, request: &ResolvedRequest) -> Result<(), Denial> {
    let Some(roots) = &policy.working_dirs else {
        return Ok(());
    };
    let title = format!("working_dirs ({})", join_display(roots));
    let Some(dir) = &request.working_dir else {
        return Err(Denial::new(
            "working_dirs",
            &title,
            "no working_dir was given, and this policy runs commands only inside its \
             working_dirs; pass a working_dir inside one of them"
                .to_owned(),
        ));
    };
    if inside_roots(roots, dir) {
        return Ok(());
    }
    let given = request.requested_working_dir.as_deref().unwrap_or(dir);
    Err(outside_roots(roots, given))
}

/// Whether the canonical `dir` is a root or inside one, by whole components.
fn inside_roots(roots: &[Root], dir: &Path) -> bool {
    roots.iter().any(|root| dir.starts_with(&root.effective))
}

/// The refusal of a working dir outside the roots. It names the dir only as the caller gave
/// it: what it resolves to, or whether it exists at all, is not the caller's to learn
/// (the same text for `/etc` and for `/no/such/dir`; see [`resolve_confined`]).
fn outside_roots(roots: &[Root], given: &Path) -> Denial {
    Denial::new(
        "working_dirs",
        &format!("working_dirs ({})", join_display(roots)),
        format!(
            "working dir {} is not inside an allowed root; pass a working_dir that is \
             a root or inside one, after `..` and symlinks are resolved.",
            given.display()
        ),
    )
}

fn env_step(policy: &Policy, request: &ResolvedRequest) -> Result<(), Denial> {
    let Some(globs) = &policy.allow_env else {
        return Ok(());
    };
    let Some(name) = request
        .env_names()
        .find(|name| !globs.iter().any(|glob| glob.matches(name)))
    else {
        return Ok(());
    };
    let allowed = if globs.is_empty() {
        "none may be set".to_owned()
    } else {
        format!("allowed names: {globs:?}")
    };
    Err(Denial::new(
        "allow_env",
        &format!("allow_env ({allowed})"),
        format!(
            "environment variable {name} may not be set by this request: variables such as \
             LD_PRELOAD, PATH or GIT_* change what an allowed program does. Drop it from env."
        ),
    ))
}

fn interpreter_denial(
    policy: &Policy,
    bypass: &BypassProgram,
    request: &ResolvedRequest,
    judged: &[(&Rule, RuleMatch)],
) -> Denial {
    Denial::new(
        "deny_interpreters",
        &format!("deny_interpreters (built-in entry {:?})", bypass.name),
        format!(
            "{} {}, so allowing it would allow any command. Call the program you need \
             directly; an administrator can allow this one with an allow rule that sets \
             allow_interpreter = true.{} {}",
            request.program.display(),
            bypass.why,
            option_hint(judged),
            allowed_summary(policy, request),
        ),
    )
}

/// `Allowed for you: ...`: the allow rules that apply to the caller.
fn allowed_summary(policy: &Policy, request: &ResolvedRequest) -> String {
    if policy.default == DefaultAction::Allow {
        return "Anything no deny rule matches is allowed.".to_owned();
    }
    let rules: Vec<String> = policy
        .allow
        .iter()
        .filter(|rule| rule.grantees.includes(&request.principal, request.role))
        .map(|rule| match &rule.args {
            Some(args) => format!("{} {args:?}", rule.program.effective),
            None => format!("{} (any args)", rule.program.effective),
        })
        .collect();
    if rules.is_empty() {
        return "No allow rule applies to you.".to_owned();
    }
    let more = rules.len().saturating_sub(SHOWN_ALLOW_RULES);
    let mut text = format!(
        "Allowed for you: {}",
        rules[..rules.len().min(SHOWN_ALLOW_RULES)].join("; ")
    );
    if more > 0 {
        text.push_str(&format!("; and {more} more"));
    }
    text.push('.');
    text
}

/// `/usr/bin/rm ["-rf", "/"]`, shortened past [`SHOWN_ARGS_CHARS`].
fn show_command(request: &ResolvedRequest) -> String {
    let program = if request.requested_program == request.program.to_string_lossy() {
        request.program.display().to_string()
    } else {
        format!(
            "{} (resolved from {:?})",
            request.program.display(),
            request.requested_program
        )
    };
    format!("{program} {}", show_args(&request.args))
}

/// One argument quoted, shortened past [`SHOWN_ARG_CHARS`].
fn show_arg(arg: &str) -> String {
    match arg.char_indices().nth(SHOWN_ARG_CHARS) {
        Some((end, _)) => format!("{:?}...", &arg[..end]),
        None => format!("{arg:?}"),
    }
}

fn show_args(args: &[String]) -> String {
    let mut shown = Vec::new();
    let mut used = 0;
    for arg in args {
        let quoted = show_arg(arg);
        if used + quoted.len() > SHOWN_ARGS_CHARS {
            break;
        }
        used += quoted.len() + 2;
        shown.push(quoted);
    }
    let left = args.len() - shown.len();
    if left > 0 {
        shown.push(format!("... {left} more"));
    }
    format!("[{}]", shown.join(", "))
}

fn join_display<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
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

/// A multi-line account of how `policy` judges `request`: what was resolved, every check
/// and rule with whether it applied and matched, and the decision (the same one [`decide`]
/// returns). For `hostmcp policy explain`; runs nothing.
pub fn explain(policy: &Policy, request: &ResolvedRequest) -> String {
    let mut out = Vec::new();
    out.push(format!(
        "principal: {} (role {})",
        request.principal, request.role
    ));
    if request.shell {
        let script = request.args.get(1).map_or("", String::as_str);
        out.push(format!("request: shell command {script:?}"));
    } else {
        out.push(format!("request: argv[0] {:?}", request.requested_program));
    }
    out.push(format!(
        "program: {} -> {}",
        request.requested_program,
        request.program.display()
    ));
    out.push(format!("args: {}", show_args(&request.args)));
    out.push(
        match (&request.requested_working_dir, &request.working_dir) {
            (Some(given), Some(dir)) => {
                format!("working dir: {} -> {}", given.display(), dir.display())
            }
            _ => "working dir: (none given)".to_owned(),
        },
    );
    let env: Vec<&str> = request.env_names().collect();
    out.push(format!("env: {env:?}"));
    out.push(format!("policy: {}", policy.summary()));
    out.push("checks:".to_owned());

    out.push(format!(
        "  role: {}",
        match request.role {
            Role::Read => "read never runs commands",
            Role::Admin if !policy.restrict_admin => {
                "admin is not subject to the policy (restrict_admin = false); rules below are not applied"
            }
            Role::Admin => "admin is judged like an operator (restrict_admin = true)",
            Role::Operator => "operator is subject to the policy",
        }
    ));
    out.push(format!(
        "  allow_shell (granted to: {}): {}",
        policy.shell,
        if !request.shell {
            "not a shell request"
        } else if policy.shell.includes(&request.principal, request.role) {
            "granted"
        } else {
            "NOT granted"
        }
    ));
    for rule in &policy.deny {
        out.push(format!(
            "  {}: {}",
            rule.title(),
            rule_outcome(rule, request)
        ));
    }
    out.push(format!(
        "  working_dirs: {}",
        match working_dir_step(policy, request) {
            Ok(()) if policy.working_dirs.is_none() => "any directory".to_owned(),
            Ok(()) => "inside a root".to_owned(),
            Err(denial) => format!("FAILS: {}", denial.reason),
        }
    ));
    out.push(format!(
        "  allow_env: {}",
        match env_step(policy, request) {
            Ok(()) => "ok".to_owned(),
            Err(denial) => format!("FAILS: {}", denial.reason),
        }
    ));
    out.push(format!(
        "  deny_interpreters ({}): {}",
        if policy.deny_interpreters {
            "on"
        } else {
            "off"
        },
        match bypass_program(&request.program) {
            None => format!(
                "{} is not a known bypass program",
                request.program.display()
            ),
            Some(bypass) => format!(
                "{} is known bypass program {:?}: {}",
                request.program.display(),
                bypass.name,
                bypass.why
            ),
        }
    ));
    for rule in &policy.allow {
        out.push(format!(
            "  {}: {}",
            rule.title(),
            rule_outcome(rule, request)
        ));
    }
    out.push(format!("  default: {}", policy.default.as_str()));
    out.push(match decide(policy, request) {
        Decision::Permit(permit) => format!("decision: PERMIT by {}", permit.rule()),
        Decision::Deny(denial) => format!("decision: DENY by {}\n  {}", denial.rule, denial.reason),
    });
    out.join("\n")
}

fn rule_outcome(rule: &Rule, request: &ResolvedRequest) -> String {
    if !rule.grantees.includes(&request.principal, request.role) {
        return format!(
            "does not apply to principal {:?} (role {})",
            request.principal, request.role
        );
    }
    match rule.matches(&request.program, &request.args) {
        RuleMatch::Yes(_) if rule.args.is_none() && rule.any_arg.is_none() => {
            "MATCHES (any args)".to_owned()
        }
        RuleMatch::Yes(matched) => format!(
            "MATCHES: {}",
            args::describe_matches(&matched, &request.args)
        ),
        RuleMatch::Program => "program does not match".to_owned(),
        RuleMatch::Args(mismatch) => format!("args do not match: {mismatch}"),
        RuleMatch::AnyArg => "no argument matches any_arg".to_owned(),
    }
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
