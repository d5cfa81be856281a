//! The `[policy]` table as written ([`PolicyConfig`], strict serde: an unknown key is an
//! error naming it), its validation into the compiled [`Policy`] the decision reads, and the
//! built-in list of [`BYPASS_PROGRAMS`].
//!
//! Validation does no I/O: program patterns and working-dir roots are compared as written.
//! [`resolve_policy`](super::resolve_policy) additionally canonicalizes them.

use std::{fmt, path::Path};

use serde::{
    Deserialize, Deserializer,
    de::{self, MapAccess, Visitor, value::MapAccessDeserializer},
};

use super::{
    Policy, Role,
    args::{self, ArgPatterns, Matched, Mismatch, Options},
    glob::{Glob, GlobList, REST},
};

// ---------------------------------------------------------------------------------------
// The schema as written.
// ---------------------------------------------------------------------------------------

/// The `[policy]` table of the config file. Every key is optional; see the module docs of
/// [`policy`](super) for what each one means and its default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// What happens to a request no allow rule matches. Default: `deny`.
    pub default: Option<DefaultAction>,
    /// Subject admins to the policy like operators. Default: `false`.
    pub restrict_admin: Option<bool>,
    /// Who may use shell mode (a `command` string). Default: nobody.
    pub allow_shell: Option<ShellAccess>,
    /// Deny [`BYPASS_PROGRAMS`] unless an allow rule with `allow_interpreter = true`
    /// matches. Default: `true` when `default = "deny"`, else `false`.
    pub deny_interpreters: Option<bool>,
    /// Roots a command's working dir must be inside. Default: any directory.
    pub working_dirs: Option<Vec<String>>,
    /// Globs over the names of environment variables a request may set. Default: none.
    pub allow_env: Option<Vec<String>>,
    /// `[[policy.allow]]` rules.
    #[serde(default)]
    pub allow: Vec<AllowRule>,
    /// `[[policy.deny]]` rules.
    #[serde(default)]
    pub deny: Vec<DenyRule>,
}

/// `default = "deny" | "allow"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAction {
    Deny,
    Allow,
}

impl DefaultAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deny => "deny",
            Self::Allow => "allow",
        }
    }
}

/// `allow_shell = true | false | { principals = [...], roles = [...] }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellAccess {
    /// `true`: everyone the policy applies to; `false`: nobody.
    Everyone(bool),
    /// Only the listed principals and/or roles.
    Only(Grantees),
}

/// A set of callers: principals by name, roles, or both (a caller must then match both).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grantees {
    pub principals: Option<Vec<String>>,
    pub roles: Option<Vec<RoleName>>,
}

/// One `[[policy.allow]]` rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowRule {
    /// Absolute path or glob over the canonical path of the program.
    pub program: String,
    /// Globs matched element by element against the arguments; a final `**` matches any
    /// remaining ones. Absent: any arguments.
    pub args: Option<Vec<String>>,
    /// Principals (token names) the rule applies to. Absent: all.
    pub principals: Option<Vec<String>>,
    /// Roles the rule applies to. Absent: all.
    pub roles: Option<Vec<RoleName>>,
    /// Let this rule allow a program on the [`BYPASS_PROGRAMS`] list.
    #[serde(default)]
    pub allow_interpreter: bool,
    /// Let this rule's wildcards (`*`, `?`, `**`) match options, arguments that start with
    /// `-`. Without it only a pattern that itself starts with `-` matches an option.
    #[serde(default)]
    pub allow_options: bool,
    /// Free text, shown in explanations.
    pub note: Option<String>,
}

/// One `[[policy.deny]]` rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenyRule {
    /// Absolute path or glob over the canonical path of the program (`/**` for any).
    pub program: String,
    /// Globs matched element by element against the arguments, as for allow rules.
    pub args: Option<Vec<String>>,
    /// Globs of which at least one must match at least one argument, at any position.
    pub any_arg: Option<Vec<String>>,
    pub principals: Option<Vec<String>>,
    pub roles: Option<Vec<RoleName>>,
    /// Free text, shown in the denial (say what to do instead).
    pub note: Option<String>,
}

/// A role as written in the policy: `"read"`, `"operator"` or `"admin"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct RoleName(pub Role);

impl TryFrom<String> for RoleName {
    type Error = String;
    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.parse()
            .map(Self)
            .map_err(|_| format!("unknown role {name:?}; expected \"operator\" or \"admin\""))
    }
}

impl<'de> Deserialize<'de> for ShellAccess {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ShellAccessVisitor;
        impl<'de> Visitor<'de> for ShellAccessVisitor {
            type Value = ShellAccess;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false, or a table { principals = [...], roles = [...] }")
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<ShellAccess, E> {
                Ok(ShellAccess::Everyone(value))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ShellAccess, A::Error> {
                Grantees::deserialize(MapAccessDeserializer::new(map)).map(ShellAccess::Only)
            }
        }
        deserializer.deserialize_any(ShellAccessVisitor)
    }
}

// ---------------------------------------------------------------------------------------
// Validation errors.
// ---------------------------------------------------------------------------------------

/// A `[policy]` table that cannot be used: where (`policy.deny[1].args`) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy.{location}: {problem}")]
pub struct PolicyError {
    pub location: String,
    pub problem: PolicyProblem,
}

/// What is wrong with one key of the `[policy]` table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyProblem {
    #[error("{0:?} is not an absolute path")]
    NotAbsolute(String),
    #[error("{0:?} has an empty, `.` or `..` component, which a canonical path never has")]
    NotNormal(String),
    #[error(
        "`**` is only valid as the whole last element of `args` or of a program path \
         (found in element {0})"
    )]
    MisplacedRest(usize),
    #[error("an empty pattern matches nothing")]
    EmptyPattern,
    #[error("an empty list matches nobody")]
    EmptyList,
    #[error("role read never runs commands")]
    ReadRole,
    #[error("allow_options applies to `args` patterns, and this rule has none")]
    OptionsWithoutArgs,
}

impl PolicyProblem {
    /// What the user should do next.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::NotAbsolute(_) => {
                "rules match the canonical path of the program, e.g. /usr/bin/git; \
                 `readlink -f \"$(command -v git)\"` prints it"
            }
            Self::NotNormal(_) => "write the path without `//`, `/./` or `/../`",
            Self::MisplacedRest(_) => {
                "`**` as the last element means \"any remaining arguments\"; use `*` for one element"
            }
            Self::EmptyPattern => "remove the empty string, or use `*` for any one element",
            Self::EmptyList => {
                "list at least one entry, or remove the key (for allow_shell: write true)"
            }
            Self::ReadRole => "a read token cannot run commands; list operator and/or admin",
            Self::OptionsWithoutArgs => {
                "a rule without `args` already allows any arguments, options included; \
                 remove allow_options, or add the `args` it should apply to"
            }
        }
    }
}

impl PolicyError {
    fn new(location: impl Into<String>, problem: PolicyProblem) -> Self {
        Self {
            location: location.into(),
            problem,
        }
    }

    /// What the user should do next.
    pub fn hint(&self) -> &'static str {
        self.problem.hint()
    }
}

// ---------------------------------------------------------------------------------------
// The compiled policy's parts.
// ---------------------------------------------------------------------------------------

/// Which list a rule is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RuleKind {
    Allow,
    Deny,
}

/// A validated allow or deny rule.
#[derive(Debug, Clone)]
pub(super) struct Rule {
    pub(super) kind: RuleKind,
    pub(super) index: usize,
    pub(super) program: ProgramPattern,
    pub(super) args: Option<ArgPatterns>,
    pub(super) any_arg: Option<Vec<Glob>>,
    pub(super) grantees: Callers,
    pub(super) allow_interpreter: bool,
    pub(super) note: Option<String>,
}

impl Rule {
    /// `allow[3]` or `deny[0]`.
    pub(super) fn label(&self) -> String {
        let list = match self.kind {
            RuleKind::Allow => "allow",
            RuleKind::Deny => "deny",
        };
        format!("{list}[{}]", self.index)
    }

    /// `program /usr/bin/rm args ["-rf", "**"]`, plus whatever else the rule says.
    pub(super) fn describe(&self) -> String {
        let mut text = format!("program {}", self.program);
        if let Some(args) = &self.args {
            text.push_str(&format!(" args {args:?}"));
        }
        if let Some(any_arg) = &self.any_arg {
            text.push_str(&format!(" any_arg {any_arg:?}"));
        }
        text.push_str(&self.grantees.describe());
        if self.allow_interpreter {
            text.push_str(" allow_interpreter");
        }
        if self.allows_options() {
            text.push_str(" allow_options");
        }
        text
    }

    /// Whether this is an allow rule whose wildcards match options (`allow_options = true`).
    pub(super) fn allows_options(&self) -> bool {
        self.kind == RuleKind::Allow
            && self
                .args
                .as_ref()
                .is_some_and(|args| args.options() == Options::Wildcards)
    }

    /// `allow[3] (program ... )`.
    pub(super) fn title(&self) -> String {
        format!("{} ({})", self.label(), self.describe())
    }

    /// Whether the program and argument patterns match (who is asking is not considered),
    /// with which argument matched which pattern, or what did not match.
    pub(super) fn matches(&self, program: &Path, args: &[String]) -> RuleMatch {
        if !self.program.matches(program) {
            return RuleMatch::Program;
        }
        let mut matched = match &self.args {
            Some(patterns) => match patterns.check(args) {
                Ok(matched) => matched,
                Err(mismatch) => return RuleMatch::Args(mismatch),
            },
            None => Vec::new(),
        };
        if let Some(any_arg) = &self.any_arg {
            match args::find_any(any_arg, args) {
                Some(found) => matched.push(found),
                None => return RuleMatch::AnyArg,
            }
        }
        RuleMatch::Yes(matched)
    }
}

/// Whether a rule's patterns matched (and how each argument was matched: empty when the
/// rule has neither `args` nor `any_arg`), or which part did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RuleMatch {
    Yes(Vec<Matched>),
    Program,
    Args(Mismatch),
    AnyArg,
}

impl RuleMatch {
    pub(super) fn is_yes(&self) -> bool {
        matches!(self, Self::Yes(_))
    }
}

/// Principals and roles a rule or grant applies to; `None` means all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Callers {
    pub(super) principals: Option<Vec<String>>,
    pub(super) roles: Option<Vec<Role>>,
}

impl Callers {
    pub(super) fn includes(&self, principal: &str, role: Role) -> bool {
        self.principals
            .as_ref()
            .is_none_or(|names| names.iter().any(|name| name == principal))
            && self
                .roles
                .as_ref()
                .is_none_or(|roles| roles.contains(&role))
    }

    /// ` principals ["a"] roles ["admin"]`, or empty when the rule applies to everyone.
    pub(super) fn describe(&self) -> String {
        let mut text = String::new();
        if let Some(principals) = &self.principals {
            text.push_str(&format!(" principals {principals:?}"));
        }
        if let Some(roles) = &self.roles {
            let names: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
            text.push_str(&format!(" roles {names:?}"));
        }
        text
    }
}

/// Who may use shell mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ShellGrant {
    Nobody,
    Callers(Callers),
}

impl ShellGrant {
    pub(super) fn includes(&self, principal: &str, role: Role) -> bool {
        match self {
            Self::Nobody => false,
            Self::Callers(callers) => callers.includes(principal, role),
        }
    }
}

impl fmt::Display for ShellGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Nobody => f.write_str("nobody"),
            Self::Callers(callers) => match callers.describe().trim() {
                "" => f.write_str("everyone"),
                some => f.write_str(some),
            },
        }
    }
}

/// A program pattern: path components, each a [`Glob`], with an optional final `**`.
#[derive(Debug, Clone)]
pub(super) struct ProgramPattern {
    /// As written in the config.
    pub(super) written: String,
    /// What is matched: the written pattern, or its canonical form after
    /// [`resolve_policy`](super::resolve_policy).
    pub(super) effective: String,
    components: GlobList,
}

impl ProgramPattern {
    fn parse(written: &str, location: &str) -> Result<Self, PolicyError> {
        let components = path_components(written, location)?;
        let components = GlobList::parse(&components).map_err(|misplaced| {
            PolicyError::new(location, PolicyProblem::MisplacedRest(misplaced.index))
        })?;
        Ok(Self {
            written: written.to_owned(),
            effective: written.to_owned(),
            components,
        })
    }

    /// Whether the canonical program path matches. A non-UTF-8 path is compared lossily
    /// (the resolver refuses those anyway).
    pub(super) fn matches(&self, program: &Path) -> bool {
        let program = program.to_string_lossy();
        let Some(relative) = program.strip_prefix('/') else {
            return false;
        };
        let components: Vec<&str> = relative.split('/').collect();
        self.components.matches(&components)
    }

    /// The leading components that have no glob, for canonicalization. With
    /// `include_file`, a last literal component (the program file itself) counts too;
    /// without, only directories do.
    pub(super) fn literal_prefix(&self, include_file: bool) -> Vec<&str> {
        let elements = self.components.elements();
        let directories = if self.components.has_rest() {
            elements.len()
        } else {
            elements.len().saturating_sub(1)
        };
        let limit = if include_file {
            elements.len()
        } else {
            directories
        };
        elements
            .iter()
            .take(limit)
            .take_while(|glob| glob.is_literal())
            .map(Glob::as_str)
            .collect()
    }

    /// Replace the first `replaced` components with the canonical path `canonical`.
    pub(super) fn rebase(&mut self, replaced: usize, canonical: &str) {
        let mut elements: Vec<Glob> = canonical
            .trim_start_matches('/')
            .split('/')
            .filter(|c| !c.is_empty())
            .map(Glob::new)
            .collect();
        elements.extend(self.components.elements()[replaced..].iter().cloned());
        let rest = self.components.has_rest();
        self.components = GlobList::from_parts(elements, rest);
        self.effective = format!("/{}", self.components.patterns().join("/"));
    }
}

impl fmt::Display for ProgramPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.written == self.effective {
            f.write_str(&self.written)
        } else {
            write!(f, "{} (= {})", self.written, self.effective)
        }
    }
}

/// A working-dir root.
#[derive(Debug, Clone)]
pub(super) struct Root {
    pub(super) written: String,
    pub(super) effective: std::path::PathBuf,
}

impl fmt::Display for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let effective = self.effective.display().to_string();
        if self.written == effective {
            f.write_str(&self.written)
        } else {
            write!(f, "{} (= {})", self.written, effective)
        }
    }
}

/// The components of an absolute, normal path pattern, without the leading `/`.
fn path_components<'a>(path: &'a str, location: &str) -> Result<Vec<&'a str>, PolicyError> {
    let Some(relative) = path.strip_prefix('/') else {
        return Err(PolicyError::new(
            location,
            PolicyProblem::NotAbsolute(path.to_owned()),
        ));
    };
    if relative.is_empty() {
        return Ok(Vec::new());
    }
    let components: Vec<&str> = relative.split('/').collect();
    if components
        .iter()
        .any(|c| c.is_empty() || *c == "." || *c == "..")
    {
        return Err(PolicyError::new(
            location,
            PolicyProblem::NotNormal(path.to_owned()),
        ));
    }
    Ok(components)
}

// ---------------------------------------------------------------------------------------
// Validation: PolicyConfig -> Policy.
// ---------------------------------------------------------------------------------------

impl Policy {
    /// Validate a `[policy]` table. Does no I/O: program patterns and working-dir roots are
    /// compared exactly as written. The server uses
    /// [`resolve_policy`](super::resolve_policy), which also canonicalizes them.
    pub fn from_config(config: PolicyConfig) -> Result<Self, PolicyError> {
        let default = config.default.unwrap_or(DefaultAction::Deny);
        let shell = match config.allow_shell {
            None | Some(ShellAccess::Everyone(false)) => ShellGrant::Nobody,
            Some(ShellAccess::Everyone(true)) => ShellGrant::Callers(Callers::default()),
            Some(ShellAccess::Only(grantees)) => {
                if grantees.principals.is_none() && grantees.roles.is_none() {
                    return Err(PolicyError::new("allow_shell", PolicyProblem::EmptyList));
                }
                ShellGrant::Callers(callers("allow_shell", grantees.principals, grantees.roles)?)
            }
        };
        let working_dirs = config
            .working_dirs
            .map(|roots| {
                if roots.is_empty() {
                    return Err(PolicyError::new("working_dirs", PolicyProblem::EmptyList));
                }
                roots
                    .into_iter()
                    .enumerate()
                    .map(|(index, root)| {
                        path_components(&root, &format!("working_dirs[{index}]"))?;
                        Ok(Root {
                            effective: root.clone().into(),
                            written: root,
                        })
                    })
                    .collect()
            })
            .transpose()?;
        let allow_env = match config.allow_env {
            None => Some(Vec::new()),
            Some(names) => Some(
                names
                    .iter()
                    .enumerate()
                    .map(|(index, name)| {
                        if name.is_empty() {
                            Err(PolicyError::new(
                                format!("allow_env[{index}]"),
                                PolicyProblem::EmptyPattern,
                            ))
                        } else {
                            Ok(Glob::new(name))
                        }
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        let allow = config
            .allow
            .into_iter()
            .enumerate()
            .map(|(index, rule)| {
                let location = format!("allow[{index}]");
                if rule.allow_options && rule.args.is_none() {
                    return Err(PolicyError::new(
                        format!("{location}.allow_options"),
                        PolicyProblem::OptionsWithoutArgs,
                    ));
                }
                Ok(Rule {
                    kind: RuleKind::Allow,
                    index,
                    program: program_pattern(&rule.program, &location)?,
                    args: arg_patterns(
                        rule.args.as_deref(),
                        &location,
                        if rule.allow_options {
                            Options::Wildcards
                        } else {
                            Options::Named
                        },
                    )?,
                    any_arg: None,
                    grantees: callers(&location, rule.principals, rule.roles)?,
                    allow_interpreter: rule.allow_interpreter,
                    note: rule.note,
                })
            })
            .collect::<Result<_, PolicyError>>()?;
        let deny = config
            .deny
            .into_iter()
            .enumerate()
            .map(|(index, rule)| {
                let location = format!("deny[{index}]");
                Ok(Rule {
                    kind: RuleKind::Deny,
                    index,
                    program: program_pattern(&rule.program, &location)?,
                    args: arg_patterns(rule.args.as_deref(), &location, Options::Wildcards)?,
                    any_arg: rule
                        .any_arg
                        .map(|patterns| any_arg_patterns(&patterns, &location))
                        .transpose()?,
                    grantees: callers(&location, rule.principals, rule.roles)?,
                    allow_interpreter: false,
                    note: rule.note,
                })
            })
            .collect::<Result<_, PolicyError>>()?;
        Ok(Self {
            configured: true,
            default,
            restrict_admin: config.restrict_admin.unwrap_or(false),
            shell,
            deny_interpreters: config
                .deny_interpreters
                .unwrap_or(default == DefaultAction::Deny),
            working_dirs,
            allow_env,
            allow,
            deny,
        })
    }
}

fn program_pattern(program: &str, location: &str) -> Result<ProgramPattern, PolicyError> {
    let location = format!("{location}.program");
    if program.is_empty() {
        return Err(PolicyError::new(location, PolicyProblem::EmptyPattern));
    }
    ProgramPattern::parse(program, &location)
}

/// Positional `args`: `**` only as the whole last element.
fn arg_patterns(
    patterns: Option<&[String]>,
    location: &str,
    options: Options,
) -> Result<Option<ArgPatterns>, PolicyError> {
    let Some(patterns) = patterns else {
        return Ok(None);
    };
    GlobList::parse(patterns)
        .map(|list| Some(ArgPatterns::new(list, options)))
        .map_err(|misplaced| {
            PolicyError::new(
                format!("{location}.args"),
                PolicyProblem::MisplacedRest(misplaced.index),
            )
        })
}

/// `any_arg`: at least one glob, and no `**` (each glob is tried against each argument).
fn any_arg_patterns(patterns: &[String], location: &str) -> Result<Vec<Glob>, PolicyError> {
    let location = format!("{location}.any_arg");
    if patterns.is_empty() {
        return Err(PolicyError::new(location, PolicyProblem::EmptyList));
    }
    if let Some(index) = patterns.iter().position(|pattern| pattern.contains(REST)) {
        return Err(PolicyError::new(
            location,
            PolicyProblem::MisplacedRest(index),
        ));
    }
    Ok(patterns.iter().map(|pattern| Glob::new(pattern)).collect())
}

fn callers(
    location: &str,
    principals: Option<Vec<String>>,
    roles: Option<Vec<RoleName>>,
) -> Result<Callers, PolicyError> {
    if principals.as_ref().is_some_and(Vec::is_empty) {
        return Err(PolicyError::new(
            format!("{location}.principals"),
            PolicyProblem::EmptyList,
        ));
    }
    let roles = match roles {
        None => None,
        Some(roles) if roles.is_empty() => {
            return Err(PolicyError::new(
                format!("{location}.roles"),
                PolicyProblem::EmptyList,
            ));
        }
        Some(roles) => {
            if roles.iter().any(|role| role.0 == Role::Read) {
                return Err(PolicyError::new(
                    format!("{location}.roles"),
                    PolicyProblem::ReadRole,
                ));
            }
            Some(roles.into_iter().map(|role| role.0).collect())
        }
    };
    Ok(Callers { principals, roles })
}

// ---------------------------------------------------------------------------------------
// Known bypass programs.
// ---------------------------------------------------------------------------------------

/// A program that can run other programs, so allowing it allows (nearly) anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BypassProgram {
    /// Glob over the file name of the canonical program path (`python*` matches
    /// `/usr/bin/python3.11`).
    pub name: &'static str,
    /// Why allowing it allows arbitrary commands.
    pub why: &'static str,
}

const SHELL: &str = "is a shell: it runs any command line it is given";
const INTERPRETER: &str = "is a language interpreter: `-c`/`-e` or a script runs any code";
const RUNNER: &str = "runs its arguments as a command";
const PRIVILEGE: &str = "runs its arguments as a command, as another user";
const TRACER: &str = "starts and controls another program given as an argument";
const LOADER: &str = "is the dynamic loader: it runs any executable given as an argument";

macro_rules! bypass {
    ($($name:literal => $why:expr),* $(,)?) => {
        &[$(BypassProgram { name: $name, why: $why }),*]
    };
}

/// The built-in list behind `deny_interpreters`. Matched by the file name of the canonical
/// program, so a symlink or alternative (`/usr/bin/python3` -> `python3.11`) is recognised;
/// a copy renamed to something else is not. Known, not complete: the defence is an allowlist
/// with tight `args`, and this list is the net under it.
pub const BYPASS_PROGRAMS: &[BypassProgram] = bypass![
    // Shells and multi-call binaries.
    "sh" => SHELL, "ash" => SHELL, "dash" => SHELL, "bash" => SHELL, "rbash" => SHELL,
    "zsh" => SHELL, "ksh*" => SHELL, "mksh*" => SHELL, "pdksh" => SHELL, "oksh" => SHELL,
    "yash" => SHELL, "posh" => SHELL, "fish" => SHELL, "csh" => SHELL, "tcsh" => SHELL,
    "elvish" => SHELL, "nu" => SHELL, "xonsh" => SHELL, "pwsh" => SHELL,
    "busybox" => "is a multi-call binary: `busybox sh` is a shell",
    "toybox" => "is a multi-call binary: `toybox sh` is a shell",
    // Interpreters.
    "python*" => INTERPRETER, "pypy*" => INTERPRETER, "perl*" => INTERPRETER,
    "ruby*" => INTERPRETER, "irb*" => INTERPRETER, "php*" => INTERPRETER,
    "node" => INTERPRETER, "nodejs" => INTERPRETER, "deno" => INTERPRETER, "bun" => INTERPRETER,
    "lua*" => INTERPRETER, "tclsh*" => INTERPRETER, "wish*" => INTERPRETER,
    "expect" => INTERPRETER, "guile*" => INTERPRETER, "R" => INTERPRETER,
    "Rscript" => INTERPRETER, "julia" => INTERPRETER, "jshell" => INTERPRETER,
    "java" => "runs any code from a class path or jar, and -XX:OnError runs a command",
    "groovy*" => INTERPRETER, "erl" => INTERPRETER, "escript" => INTERPRETER,
    "elixir" => INTERPRETER, "iex" => INTERPRETER, "racket" => INTERPRETER,
    "sbcl" => INTERPRETER, "clisp" => INTERPRETER, "ocaml*" => INTERPRETER,
    "runghc" => INTERPRETER, "ghci" => INTERPRETER,
    "awk" => "awk's system() and pipes run commands", "gawk" => "awk's system() runs commands",
    "mawk" => "awk's system() runs commands", "nawk" => "awk's system() runs commands",
    "original-awk" => "awk's system() runs commands",
    // Command runners.
    "env" => RUNNER, "xargs" => RUNNER, "parallel" => RUNNER, "nohup" => RUNNER,
    "setsid" => RUNNER, "timeout" => RUNNER, "nice" => RUNNER, "ionice" => RUNNER,
    "chrt" => RUNNER, "taskset" => RUNNER, "stdbuf" => RUNNER, "time" => RUNNER,
    "watch" => RUNNER, "flock" => RUNNER, "chroot" => RUNNER, "unshare" => RUNNER,
    "nsenter" => RUNNER, "prlimit" => RUNNER, "setpriv" => RUNNER, "capsh" => RUNNER,
    "runcon" => RUNNER, "cgexec" => RUNNER, "firejail" => RUNNER, "bwrap" => RUNNER,
    "fakeroot*" => RUNNER, "catchsegv" => RUNNER, "daemonize" => RUNNER,
    "start-stop-daemon" => RUNNER, "systemd-run" => RUNNER,
    "script" => "`script -c` runs a command",
    "run-parts" => "runs every executable in a directory",
    "at" => "schedules any command", "batch" => "schedules any command",
    "crontab" => "schedules any command",
    // Privilege changers.
    "sudo" => PRIVILEGE, "su" => PRIVILEGE, "doas" => PRIVILEGE, "pkexec" => PRIVILEGE,
    "runuser" => PRIVILEGE, "sg" => PRIVILEGE, "sudoedit" => "edits any file as another user",
    // Tracers, debuggers, loaders.
    "strace" => TRACER, "ltrace" => TRACER, "gdb" => TRACER, "valgrind*" => TRACER,
    "perf" => TRACER, "ld-linux*" => LOADER, "ld.so" => LOADER, "ld-musl*" => LOADER,
    // Programs with an option or subcommand that runs commands.
    "find" => "-exec, -execdir, -ok and -okdir run any command",
    "git" => "-c alias.x=!cmd, -c core.pager/core.sshCommand, and hooks or core.fsmonitor \
              in a repository's config run any command",
    "make" => "recipes and --eval run any command", "gmake" => "recipes run any command",
    "cmake" => "-P scripts run any command (execute_process)",
    "tar" => "--to-command, --checkpoint-action=exec and --use-compress-program run commands",
    "rsync" => "-e/--rsh and --rsync-path run any command",
    "ssh" => "-o ProxyCommand=/LocalCommand= run a local command",
    "scp" => "-S runs any program", "sftp" => "-S runs any program",
    "zip" => "-TT/--unzip-command runs any command",
    "sed" => "GNU sed's `e` command and `s///e` flag run commands",
    "vi" => "`:!cmd` and -c run commands", "vim*" => "`:!cmd` and -c run commands",
    "nvim" => "`:!cmd` and -c run commands", "ex" => "`:!cmd` runs commands",
    "emacs*" => "--batch --eval runs any code", "ed" => "`!cmd` (from stdin) runs commands",
    "tmux" => "new-session runs any command", "screen" => "-dm runs any command",
    "socat" => "EXEC: and SYSTEM: addresses run commands",
    "nc" => "-e/-c run a program", "ncat" => "-e/-c run a program",
    "netcat" => "-e/-c run a program", "nc.*" => "-e/-c run a program",
    "npm" => "scripts and install hooks run commands", "npx" => "runs any package's binary",
    "yarn" => "scripts run commands", "pnpm" => "scripts run commands",
    "pip" => "installing runs a package's build code", "pip3*" => "installing runs build code",
    "pipx" => "runs any package's binary",
    "cargo" => "build scripts and `cargo run` run any code",
    "docker" => "runs containers with host mounts (root on the host)",
    "podman" => "runs containers with host mounts", "kubectl" => "exec runs commands in pods",
    "apt" => "-o APT::...::Pre-Invoke runs commands; packages run maintainer scripts",
    "apt-get" => "-o APT::...::Pre-Invoke runs commands; packages run maintainer scripts",
    "dpkg" => "packages run maintainer scripts as root",
    "rpm" => "packages run scriptlets as root", "dnf" => "packages run scriptlets as root",
    "yum" => "packages run scriptlets as root",
];

/// The [`BYPASS_PROGRAMS`] entry that `program` (a canonical path) is, if any.
pub fn bypass_program(program: &Path) -> Option<&'static BypassProgram> {
    let name = program.file_name()?.to_string_lossy();
    BYPASS_PROGRAMS
        .iter()
        .find(|entry| Glob::new(entry.name).matches(&name))
}
