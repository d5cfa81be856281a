//! The compiled policy's parts and how they match: a validated allow or deny [`Rule`]
//! (program pattern, argument patterns, who it applies to), the callers a grant names, the
//! working-dir roots. Rule matching only: reading them from the config is `config`.

use std::{fmt, path::Path};

use super::{
    Role,
    args::{self, ArgPatterns, Matched, Mismatch, Options},
    denial::DecidingRule,
    error::{PolicyError, PolicyProblem, path_components},
    glob::{Glob, GlobList},
};

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
    /// Allow rules only: the user its commands run as, over the token's.
    pub(super) run_as: Option<String>,
    /// Allow rules only: its commands' resource limits.
    pub(super) limits: crate::limits::ResourceLimits,
    /// Allow rules only: what its commands may reach (filesystem roots, network).
    pub(super) reach: crate::reach::Reach,
    /// Allow rules only: a person must approve each command it allows.
    pub(super) approval: Option<super::ApprovalNeed>,
}

impl Rule {
    /// `allow[3]` or `deny[0]`.
    pub(super) fn decided_by(&self) -> DecidingRule {
        match self.kind {
            RuleKind::Allow => DecidingRule::Allow(self.index),
            RuleKind::Deny => DecidingRule::Deny(self.index),
        }
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
        if let Some(user) = &self.run_as {
            text.push_str(&format!(" run_as {user:?}"));
        }
        if !self.limits.is_empty() {
            text.push_str(&format!(" limits {{{}}}", self.limits.describe()));
        }
        if self.reach.confines() {
            text.push_str(&format!(" reach {{{}}}", self.reach.describe()));
        }
        if let Some(approval) = &self.approval {
            text.push_str(" approve");
            if let Some(reason) = &approval.reason {
                text.push_str(&format!(" approve_reason {reason:?}"));
            }
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
        format!("{} ({})", self.decided_by(), self.describe())
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
    pub(super) fn parse(written: &str, location: &str) -> Result<Self, PolicyError> {
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
