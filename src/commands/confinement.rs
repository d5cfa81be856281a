//! The load-time checks of command confinement, shared by `serve`, `stdio` and reload: no
//! token's or rule's filesystem root reaches the server's own files, and this host can
//! enforce every configured reach (else refuse, unless `[confinement] degrade = true`).

use std::path::PathBuf;

use crate::{
    exec::cgroup,
    exec::landlock::{self, Support},
    hardening::ServerFiles,
    policy::Policy,
    reach::{Reach, ReachError},
};

/// Why a configuration's confinement cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfinementError {
    #[error("{location}: {problem}")]
    Protected {
        location: String,
        problem: ReachError,
    },
    #[error(transparent)]
    Unenforceable(#[from] landlock::Unenforceable),
    #[error(transparent)]
    Cgroup(#[from] cgroup::Unenforceable),
}

impl ConfinementError {
    pub fn hint(&self) -> &'static str {
        match self {
            Self::Protected { .. } => {
                "list roots that leave out the server's state dir, keys, config and audit log \
                 (e.g. /usr and /srv/app rather than /)"
            }
            Self::Unenforceable(_) => {
                "run on a kernel with Landlock (5.13+; network rules 6.7+), or set \
                 [confinement] degrade = true to accept weaker confinement"
            }
            Self::Cgroup(_) => {
                "run where the cpu controller is delegated (cgroup v2 Delegate=yes, or a v1 cpu \
                 hierarchy the server may write), or set [confinement] degrade = true"
            }
        }
    }
}

/// Every `(location, reach)` of the configuration: tokens, then allow rules.
fn reaches<'a>(
    token_reach: &'a std::collections::HashMap<String, Reach>,
    policy: &'a Policy,
) -> Vec<(String, &'a Reach)> {
    let mut all: Vec<(String, &Reach)> = token_reach
        .iter()
        .map(|(name, reach)| (format!("token {name:?}"), reach))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all.extend(policy.reaches());
    all
}

/// The server's own files as canonical paths (as written when they do not exist yet), and
/// its `/proc/<pid>`: Landlock does not stop a root command from reading another process's
/// `/proc/<pid>/environ` (checked on Linux 6.18), so a root holding `/proc` is refused.
pub fn protected_paths(files: &ServerFiles) -> Vec<PathBuf> {
    files
        .state_dir
        .iter()
        .chain(files.files())
        .map(|path| std::fs::canonicalize(path).unwrap_or_else(|_| path.clone()))
        .chain([PathBuf::from(format!("/proc/{}", std::process::id()))])
        .collect()
}

/// Check the configuration's reaches against the server's files and this host (`support`);
/// returns the warnings to log (what `degrade` lets run weaker).
pub fn check(
    token_reach: &std::collections::HashMap<String, Reach>,
    policy: &Policy,
    files: &ServerFiles,
    support: Support,
    degrade: bool,
) -> Result<Vec<String>, ConfinementError> {
    let all = reaches(token_reach, policy);
    let protected = protected_paths(files);
    for (location, reach) in &all {
        reach
            .check_protected(&protected)
            .map_err(|problem| ConfinementError::Protected {
                location: location.clone(),
                problem,
            })?;
    }
    let gaps = landlock::check(all.iter().map(|(l, r)| (l.clone(), *r)), support, degrade)?;
    Ok(gaps.iter().map(ToString::to_string).collect())
}

/// [`check`] for a starting server: logs what this host enforces and any degradation.
pub fn check_at_start(
    token_reach: &std::collections::HashMap<String, Reach>,
    policy: &Policy,
    files: &ServerFiles,
    degrade: bool,
) -> Result<(), super::CommandError> {
    let support = Support::here();
    let warnings = check(token_reach, policy, files, support, degrade)
        .map_err(|error| super::CommandError::new(&error).with_hint(error.hint()))?;
    if support.landlock_abi == 0 {
        tracing::warn!(support = %support.describe(), "confinement: commands cannot be confined by path");
    } else {
        tracing::info!(support = %support.describe(), "confinement");
    }
    for warning in warnings {
        tracing::warn!("confinement degraded ([confinement] degrade = true): {warning}");
    }
    Ok(())
}

/// The cgroup half of the checks: a token's or rule's limit this host's cgroups
/// (`support`) cannot enforce. Returns the warnings to log (what `degrade` lets run weaker).
pub fn check_cgroups(
    token_limits: &std::collections::HashMap<String, crate::limits::ResourceLimits>,
    policy: &Policy,
    support: &cgroup::Support,
    degrade: bool,
) -> Result<Vec<String>, ConfinementError> {
    let mut all: Vec<(String, &crate::limits::ResourceLimits)> = token_limits
        .iter()
        .map(|(name, limits)| (format!("token {name:?}"), limits))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all.extend(policy.limits());
    let gaps = cgroup::check(all, support, degrade)?;
    Ok(gaps.iter().map(ToString::to_string).collect())
}

/// [`check_cgroups`] for a starting server: finds the cgroups this host delegates (under
/// `[confinement] cgroup_parent` on v2 when set), logs them once, and refuses limits it
/// cannot enforce.
pub fn cgroups_at_start(
    config: &crate::config::Config,
    policy: &Policy,
) -> Result<(), super::CommandError> {
    let support = cgroup::detect::init(config.cgroup_parent.as_deref());
    if support.version.is_some() {
        tracing::info!(support = %support.describe(), "confinement: per-command cgroups");
    } else {
        tracing::warn!(support = %support.describe(), "confinement: no per-command cgroups");
    }
    let warnings = check_cgroups(
        &config.token_limits,
        policy,
        support,
        config.confinement_degrade,
    )
    .map_err(|error| super::CommandError::new(&error).with_hint(error.hint()))?;
    for warning in warnings {
        tracing::warn!("confinement degraded ([confinement] degrade = true): {warning}");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
