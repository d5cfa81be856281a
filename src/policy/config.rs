//! The `[policy]` table as written ([`PolicyConfig`], strict serde: an unknown key is an
//! error naming it) and its validation into the compiled [`Policy`] the decision reads
//! ([`Policy::from_config`]), with the errors that name what is wrong and where. Rule
//! parsing only: how a compiled rule matches a request is `rules`.
//!
//! Validation does no I/O: program patterns and working-dir roots are compared as written.
//! [`resolve_policy`](super::resolve_policy) additionally canonicalizes them.

use std::fmt;

use serde::{
    Deserialize, Deserializer,
    de::{self, MapAccess, Visitor, value::MapAccessDeserializer},
};

use super::{
    Policy, Role,
    args::{ArgPatterns, Options},
    error::{PolicyError, PolicyProblem, path_components},
    glob::{Glob, GlobList, REST},
    rules::{Callers, ProgramPattern, Root, Rule, RuleKind, ShellGrant},
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
    /// The Unix user the commands this rule allows run as, over the token's `run_as`
    /// (e.g. `"root"`). Checked at load: the user exists and hostmcp can switch to it.
    pub run_as: Option<String>,
    /// Resource limits of the commands this rule allows; with the token's, the stricter of
    /// the two wins, limit by limit.
    pub limits: Option<crate::limits::ResourceLimits>,
    /// Roots the commands this rule allows may read (and execute) beneath; with `fs_write`,
    /// nothing else of the filesystem is reachable (Landlock). The token's roots apply too.
    pub fs_read: Option<Vec<std::path::PathBuf>>,
    /// Roots the commands this rule allows may read and write beneath.
    pub fs_write: Option<Vec<std::path::PathBuf>>,
    /// `"none"`, `"any"` or `{ connect = ["*:443"] }`: the network of this rule's commands.
    pub network: Option<crate::reach::NetworkWritten>,
    /// A person must approve each command this rule allows before it runs (`crate::approval`).
    #[serde(default)]
    pub approve: bool,
    /// Shown to the approver with the command (only with `approve = true`).
    pub approve_reason: Option<String>,
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
                    run_as: rule_run_as(rule.run_as, &location)?,
                    limits: rule_limits(rule.limits, &location)?,
                    reach: crate::reach::ReachWritten {
                        fs_read: rule.fs_read,
                        fs_write: rule.fs_write,
                        network: rule.network,
                    }
                    .parse()
                    .map_err(|error| PolicyError::new(&location, PolicyProblem::Reach(error)))?,
                    approval: rule_approval(rule.approve, rule.approve_reason, &location)?,
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
                    run_as: None,
                    limits: crate::limits::ResourceLimits::default(),
                    reach: crate::reach::Reach::default(),
                    approval: None,
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

/// A rule's `run_as` as written: a non-empty name (whether the user exists is checked by
/// [`resolve_policy`](super::resolve_policy)).
fn rule_run_as(run_as: Option<String>, location: &str) -> Result<Option<String>, PolicyError> {
    match run_as {
        Some(name) if name.is_empty() => Err(PolicyError::new(
            format!("{location}.run_as"),
            PolicyProblem::EmptyPattern,
        )),
        run_as => Ok(run_as),
    }
}

/// A rule's `approve` and `approve_reason`: a reason only with `approve = true`.
fn rule_approval(
    approve: bool,
    reason: Option<String>,
    location: &str,
) -> Result<Option<super::ApprovalNeed>, PolicyError> {
    match (approve, reason) {
        (false, None) => Ok(None),
        (false, Some(_)) => Err(PolicyError::new(
            format!("{location}.approve_reason"),
            PolicyProblem::ReasonWithoutApprove,
        )),
        (true, reason) => Ok(Some(super::ApprovalNeed { reason })),
    }
}

/// A rule's `limits`: none may be zero.
fn rule_limits(
    limits: Option<crate::limits::ResourceLimits>,
    location: &str,
) -> Result<crate::limits::ResourceLimits, PolicyError> {
    let limits = limits.unwrap_or_default();
    limits.validate().map_err(|zero| {
        PolicyError::new(
            format!("{location}.limits.{}", zero.0),
            PolicyProblem::ZeroLimit,
        )
    })?;
    Ok(limits)
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
