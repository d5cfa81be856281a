//! Why a `[policy]` table cannot be used: [`PolicyError`] says where
//! (`policy.deny[1].args`) and [`PolicyProblem`] what, with the hint that says what to do
//! next; and the one check both the table's validation (`config`) and rule parsing
//! (`rules`) make of a path pattern ([`path_components`]).

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
    #[error("a limit of zero would stop every command")]
    ZeroLimit,
    #[error("run_as {name:?} cannot be used: {reason}")]
    RunAs { name: String, reason: String },
    #[error("{0}")]
    Reach(crate::reach::ReachError),
    #[error("approve_reason is shown to an approver, and this rule asks for no approval")]
    ReasonWithoutApprove,
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
            Self::ZeroLimit => "remove the limit for none, or give a positive value",
            Self::Reach(_) => {
                "see docs/security.md#confinement: fs_read/fs_write take absolute roots that \
                 exist; network is \"none\", \"any\" or { connect = [\"*:443\"] }"
            }
            Self::ReasonWithoutApprove => "add `approve = true`, or remove approve_reason",
            Self::RunAs { .. } => {
                "name a user that exists on this host; switching to another user needs hostmcp \
                 to run as root (or with CAP_SETUID and CAP_SETGID)"
            }
        }
    }
}

impl PolicyError {
    pub(super) fn new(location: impl Into<String>, problem: PolicyProblem) -> Self {
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

/// The components of an absolute, normal path pattern, without the leading `/`.
pub(super) fn path_components<'a>(
    path: &'a str,
    location: &str,
) -> Result<Vec<&'a str>, PolicyError> {
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
