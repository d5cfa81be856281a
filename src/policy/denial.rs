//! Why a request was refused, and the one place its wording lives.
//!
//! [`decide`](super::decide) returns a [`Denial`]: which rule decided ([`DecidingRule`]) and
//! the facts that rule saw, as data. Its `Display` renders the text a caller (an LLM or a
//! person) reads: `denied by <rule title>: <what was asked, why it is refused, what would
//! be allowed>`. Nothing else words a denial; the audit log records the rule and this text.

use std::{fmt, path::PathBuf};

use crate::auth::Role;

use super::{args::Mismatch, bypass::BypassProgram, shown::show_args};

/// How many allowed programs a denial lists.
const SHOWN_ALLOW_RULES: usize = 8;

/// The step of the decision order that decided: the `rule` of a [`Permit`](super::Permit)
/// or a [`Denial`], written `allow[2]`, `deny[0]`, `default`, `role`, ...
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecidingRule {
    /// Role `read` never runs commands.
    Role,
    /// Role `admin`, not bound by the policy (`restrict_admin = false`).
    Admin,
    /// `allow_shell`: a shell line, refused or permitted.
    AllowShell,
    /// The deny rule at this index.
    Deny(usize),
    /// `working_dirs`: no working dir, or one outside the roots.
    WorkingDirs,
    /// `allow_env`: a variable the request may not set.
    AllowEnv,
    /// `deny_interpreters`: a known bypass program.
    DenyInterpreters,
    /// The allow rule at this index.
    Allow(usize),
    /// `default`: no rule decided.
    Default,
}

impl DecidingRule {
    /// The step's name: `allow` and `deny` for a rule, without its index.
    fn step(self) -> &'static str {
        match self {
            Self::Role => "role",
            Self::Admin => "admin",
            Self::AllowShell => "allow_shell",
            Self::Deny(_) => "deny",
            Self::WorkingDirs => "working_dirs",
            Self::AllowEnv => "allow_env",
            Self::DenyInterpreters => "deny_interpreters",
            Self::Allow(_) => "allow",
            Self::Default => "default",
        }
    }

    /// The index of an allow or deny rule.
    pub fn index(self) -> Option<usize> {
        match self {
            Self::Deny(index) | Self::Allow(index) => Some(index),
            _ => None,
        }
    }

    /// Whether `text` is how this rule is written (`allow[2]`, `default`).
    fn is_written(self, text: &str) -> bool {
        match self.index() {
            None => text == self.step(),
            Some(index) => text
                .strip_prefix(self.step())
                .and_then(|rest| rest.strip_prefix('['))
                .and_then(|rest| rest.strip_suffix(']'))
                .is_some_and(|written| written == index.to_string()),
        }
    }
}

impl fmt::Display for DecidingRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index() {
            None => f.write_str(self.step()),
            Some(index) => write!(f, "{}[{index}]", self.step()),
        }
    }
}

/// Written as the log and the messages write it: `"allow[2]"`.
impl fmt::Debug for DecidingRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string(), f)
    }
}

impl PartialEq<str> for DecidingRule {
    fn eq(&self, other: &str) -> bool {
        self.is_written(other)
    }
}

impl PartialEq<&str> for DecidingRule {
    fn eq(&self, other: &&str) -> bool {
        self.is_written(other)
    }
}

/// Who asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asker {
    pub principal: String,
    pub role: Role,
}

/// The command as a denial shows it: the canonical program, the name it was asked by, and
/// its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownCommand {
    pub program: PathBuf,
    pub requested: String,
    pub args: Vec<String>,
}

/// What the caller may run instead, for the end of a denial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// `default = "allow"`: anything no deny rule matches.
    Anything,
    /// The allow rules that apply to the caller, each as `program args` (none: no rule).
    Rules(Vec<String>),
}

/// An allow rule for the program that failed only on an option its wildcard does not
/// match: named so the caller learns that options must be named in a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionHint {
    /// `allow[1]`.
    pub rule: DecidingRule,
    pub mismatch: Mismatch,
}

/// Why a request was denied: the rule that decided and what it saw. Rendered (`Display`) as
/// `denied by <rule title>: <why>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// Role `read`.
    #[error("denied by role: {}", read_role(.0))]
    ReadRole(Asker),
    /// A shell line from a caller `allow_shell` does not grant.
    #[error("denied by allow_shell (granted to: {granted_to}): {}", shell(.asker, .allowed))]
    Shell {
        asker: Asker,
        /// Who `allow_shell` grants, as the policy describes it.
        granted_to: String,
        allowed: Allowed,
    },
    /// A deny rule matched.
    #[error("denied by {title}: {}", deny_rule(.command, .note.as_deref()))]
    DenyRule {
        rule: DecidingRule,
        /// `deny[1] (program /usr/bin/rm args ["-rf", "**"])`.
        title: String,
        command: Box<ShownCommand>,
        note: Option<String>,
    },
    /// `working_dirs` is set and the request gave no working dir.
    #[error(
        "denied by working_dirs ({roots}): no working_dir was given, and this policy runs \
         commands only inside its working_dirs; pass a working_dir inside one of them"
    )]
    NoWorkingDir { roots: String },
    /// The working dir, as the caller gave it, is outside every root. It names the dir
    /// only as given: what it resolves to, or whether it exists at all, is not the caller's
    /// to learn.
    #[error(
        "denied by working_dirs ({roots}): working dir {} is not inside an allowed root; \
         pass a working_dir that is a root or inside one, after `..` and symlinks are resolved.",
        .given.display()
    )]
    OutsideRoots { roots: String, given: PathBuf },
    /// A variable `allow_env` does not name.
    #[error(
        "denied by allow_env ({}): environment variable {name} may not be set by this \
         request: variables such as LD_PRELOAD, PATH or GIT_* change what an allowed \
         program does. Drop it from env.",
        allowed_env(.allowed)
    )]
    Env {
        name: String,
        /// The name globs `allow_env` grants, as written.
        allowed: Vec<String>,
    },
    /// A known bypass program no allow rule with `allow_interpreter = true` permits.
    #[error("denied by deny_interpreters (built-in entry {:?}): {}", .bypass.name, interpreter(self))]
    Interpreter {
        bypass: &'static BypassProgram,
        program: PathBuf,
        hint: Option<Box<OptionHint>>,
        allowed: Allowed,
    },
    /// No rule matched and `default = "deny"`.
    #[error("denied by default (default = \"deny\"): {}", default(self))]
    Default {
        command: Box<ShownCommand>,
        asker: Asker,
        hint: Option<Box<OptionHint>>,
        allowed: Allowed,
    },
}

impl Denial {
    /// The rule that denied: `deny[2]`, `default`, `role`, `allow_shell`, `working_dirs`,
    /// `allow_env` or `deny_interpreters`.
    pub fn rule(&self) -> DecidingRule {
        match self {
            Self::ReadRole(_) => DecidingRule::Role,
            Self::Shell { .. } => DecidingRule::AllowShell,
            Self::DenyRule { rule, .. } => *rule,
            Self::NoWorkingDir { .. } | Self::OutsideRoots { .. } => DecidingRule::WorkingDirs,
            Self::Env { .. } => DecidingRule::AllowEnv,
            Self::Interpreter { .. } => DecidingRule::DenyInterpreters,
            Self::Default { .. } => DecidingRule::Default,
        }
    }

    /// What the caller reads (the same as `to_string()`).
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

fn read_role(asker: &Asker) -> String {
    format!(
        "principal {:?} has role read, which never runs commands; running a command needs a \
         token with role operator or admin",
        asker.principal
    )
}

fn shell(asker: &Asker, allowed: &Allowed) -> String {
    format!(
        "shell mode (a `command` string) is not permitted for principal {:?} (role {}), \
         because the policy judges a program and its arguments and a shell line can hide \
         any program. Pass `argv` instead: the program and each argument as separate \
         strings, e.g. [\"ls\", \"-la\", \"/srv\"]; no shell syntax (`;`, `|`, `$()`, \
         globs, redirections) is interpreted there. {allowed}",
        asker.principal, asker.role,
    )
}

fn deny_rule(command: &ShownCommand, note: Option<&str>) -> String {
    let note = note
        .map(|note| format!(" Note: {note}"))
        .unwrap_or_default();
    format!("{command} matches this deny rule, and deny rules win over allow rules.{note}")
}

fn allowed_env(allowed: &[String]) -> String {
    if allowed.is_empty() {
        "none may be set".to_owned()
    } else {
        format!("allowed names: {allowed:?}")
    }
}

fn interpreter(denial: &Denial) -> String {
    let Denial::Interpreter {
        bypass,
        program,
        hint,
        allowed,
    } = denial
    else {
        return String::new();
    };
    format!(
        "{} {}, so allowing it would allow any command. Call the program you need directly; \
         an administrator can allow this one with an allow rule that sets \
         allow_interpreter = true.{} {allowed}",
        program.display(),
        bypass.why,
        show_hint(hint.as_deref()),
    )
}

fn default(denial: &Denial) -> String {
    let Denial::Default {
        command,
        asker,
        hint,
        allowed,
    } = denial
    else {
        return String::new();
    };
    format!(
        "no allow rule matches {command} for principal {:?} (role {}).{} {allowed}",
        asker.principal,
        asker.role,
        show_hint(hint.as_deref()),
    )
}

/// ` In allow[1], argv[2] "--host=x" is an option, and "*" ...`, or nothing.
fn show_hint(hint: Option<&OptionHint>) -> String {
    hint.map(|hint| format!(" In {}, {}.", hint.rule, hint.mismatch))
        .unwrap_or_default()
}

/// `Allowed for you: ...`, `No allow rule applies to you.` or `Anything no deny rule
/// matches is allowed.`
impl fmt::Display for Allowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rules = match self {
            Self::Anything => return f.write_str("Anything no deny rule matches is allowed."),
            Self::Rules(rules) if rules.is_empty() => {
                return f.write_str("No allow rule applies to you.");
            }
            Self::Rules(rules) => rules,
        };
        let shown = &rules[..rules.len().min(SHOWN_ALLOW_RULES)];
        write!(f, "Allowed for you: {}", shown.join("; "))?;
        let more = rules.len() - shown.len();
        if more > 0 {
            write!(f, "; and {more} more")?;
        }
        f.write_str(".")
    }
}

/// `/usr/bin/rm ["-rf", "/"]`, shortened past [`SHOWN_ARGS_CHARS`](super::shown::SHOWN_ARGS_CHARS).
impl fmt::Display for ShownCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.requested == self.program.to_string_lossy() {
            write!(f, "{}", self.program.display())?;
        } else {
            write!(
                f,
                "{} (resolved from {:?})",
                self.program.display(),
                self.requested
            )?;
        }
        write!(f, " {}", show_args(&self.args))
    }
}
