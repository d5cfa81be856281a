//! The kernel side of a command's [`Reach`]: what this host can enforce ([`Support`], probed
//! once: the Landlock ABI and whether the server may make network namespaces), whether a
//! configuration's reaches can be enforced here ([`check`], fail closed unless
//! `[confinement] degrade = true`), and the Landlock rulesets of one command, built in the
//! parent ([`rulesets`]) so the child only calls `landlock_restrict_self` on their file
//! descriptors (`exec::confine`).
//!
//! Rights: a read root gives `Execute | ReadFile | ReadDir` beneath it; a write root every
//! filesystem right Landlock knows (ABI 5: also `Refer`, `Truncate`, `IoctlDev`). Anything
//! not beneath a root is refused by the kernel, whatever the path (symlinks are resolved
//! first). Landlock does not keep a root command from reading `/proc/<server pid>/environ`
//! under a `/proc` root (tested on Linux 6.18), so such a root is refused at load
//! (`commands::confinement`).
//! Network: ABI 4 handles TCP `bind` and `connect`; `{ connect = [...] }` allows connect to
//! the listed ports and no bind.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, NetPort, PathBeneath, PathFd,
    Ruleset, RulesetAttr, RulesetCreatedAttr,
};

use crate::reach::{Network, Reach};

/// The newest ABI whose rights hostmcp asks for.
const TARGET_ABI: ABI = ABI::V5;
/// The first ABI with network rules.
const NET_ABI: i32 = 4;

/// What this host can enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Support {
    /// The Landlock ABI version, 0 when Landlock is missing or disabled.
    pub landlock_abi: i32,
    /// The server may create network namespaces (CAP_SYS_ADMIN).
    pub netns: bool,
}

impl Support {
    /// This host's, probed once.
    pub fn here() -> Self {
        static SUPPORT: OnceLock<Support> = OnceLock::new();
        *SUPPORT.get_or_init(|| Self {
            landlock_abi: probe_abi(),
            netns: has_sys_admin(),
        })
    }

    /// One line for the start-up log and `policy explain`.
    pub fn describe(&self) -> String {
        let landlock = match self.landlock_abi {
            0 => "Landlock missing (fs_read/fs_write and network connect lists cannot be enforced)"
                .to_owned(),
            abi if abi < NET_ABI => {
                format!("Landlock ABI {abi} (filesystem; no network rules)")
            }
            abi => format!("Landlock ABI {abi} (filesystem and TCP network rules)"),
        };
        let netns = if self.netns {
            "network = \"none\" by a fresh network namespace"
        } else {
            "no network namespaces (no CAP_SYS_ADMIN): network = \"none\" by Landlock, TCP only"
        };
        format!("{landlock}; {netns}")
    }

    /// Whether `network = "none"` gets a fresh namespace here.
    pub fn none_by_namespace(&self) -> bool {
        self.netns
    }
}

/// The highest Landlock ABI the kernel accepts, found by asking for each ABI's rights as a
/// hard requirement, newest first (the crate does not expose the version call).
fn probe_abi() -> i32 {
    for abi in (1..=7).rev() {
        let mut ruleset = Ruleset::default().set_compatibility(CompatLevel::HardRequirement);
        let handled = if abi >= NET_ABI {
            ruleset
                .handle_access(AccessFs::from_all(ABI::from(abi)))
                .and_then(|ruleset| ruleset.handle_access(AccessNet::from_all(ABI::from(abi))))
        } else {
            ruleset.handle_access(AccessFs::from_all(ABI::from(abi)))
        };
        ruleset = match handled {
            Ok(ruleset) => ruleset,
            Err(_) => continue,
        };
        if ruleset.create().is_ok() {
            return abi;
        }
    }
    0
}

/// CAP_SYS_ADMIN in the effective set (bit 21 of `CapEff` in `/proc/self/status`).
fn has_sys_admin() -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("CapEff:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_ADMIN) != 0)
}

/// A reach this host cannot enforce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{location}: {what} needs {needs}, and this host has {has}; refusing to run commands \
     unconfined (set [confinement] degrade = true to run them with what the host has)"
)]
pub struct Unenforceable {
    pub location: String,
    pub what: &'static str,
    pub needs: &'static str,
    pub has: String,
}

/// Check that `support` can enforce each `(location, reach)`. With `degrade`, what it
/// cannot enforce is returned as warnings instead of an error.
pub fn check<'a>(
    reaches: impl IntoIterator<Item = (String, &'a Reach)>,
    support: Support,
    degrade: bool,
) -> Result<Vec<Unenforceable>, Unenforceable> {
    let has = format!("Landlock ABI {}", support.landlock_abi);
    let mut gaps = Vec::new();
    for (location, reach) in reaches {
        let gap = |what, needs| Unenforceable {
            location: location.clone(),
            what,
            needs,
            has: has.clone(),
        };
        if reach.confines_fs() && support.landlock_abi < 1 {
            gaps.push(gap("fs_read/fs_write", "Landlock"));
        }
        match &reach.network {
            Some(Network::Connect(_)) if support.landlock_abi < NET_ABI => {
                gaps.push(gap("network.connect", "Landlock ABI 4 (TCP rules)"));
            }
            Some(Network::None) if !support.netns && support.landlock_abi < NET_ABI => {
                gaps.push(gap(
                    "network = \"none\"",
                    "CAP_SYS_ADMIN (network namespace) or Landlock ABI 4",
                ));
            }
            _ => {}
        }
    }
    match gaps.into_iter().next() {
        Some(gap) if !degrade => Err(gap),
        Some(gap) => Ok(vec![gap]),
        None => Ok(Vec::new()),
    }
}

/// A root that cannot be opened for its rule when a command starts.
#[derive(Debug, thiserror::Error)]
pub enum RulesetError {
    #[error("confinement root {} cannot be opened: {source}", .root.display())]
    Root {
        root: PathBuf,
        source: landlock::PathFdError,
    },
    #[error("cannot build the Landlock ruleset: {0}")]
    Landlock(#[from] landlock::RulesetError),
}

/// The Landlock ruleset of each layer of `layers` that confines something Landlock
/// enforces, as file descriptors for `landlock_restrict_self` in the child. `network =
/// "none"` is left to the namespace when `support` has one. Empty on a host without
/// Landlock (only reachable with `degrade`, after [`check`]).
pub fn rulesets(layers: &[Reach], support: Support) -> Result<Vec<OwnedFd>, RulesetError> {
    let mut fds = Vec::new();
    for layer in layers {
        let net = match &layer.network {
            Some(Network::Connect(ports)) => Some(ports.as_slice()),
            Some(Network::None) if !support.none_by_namespace() => Some(&[][..]),
            _ => None,
        };
        if !layer.confines_fs() && net.is_none() {
            continue;
        }
        let mut ruleset = Ruleset::default();
        if layer.confines_fs() {
            ruleset = ruleset.handle_access(AccessFs::from_all(TARGET_ABI))?;
        }
        if net.is_some() {
            ruleset = ruleset.handle_access(AccessNet::from_all(TARGET_ABI))?;
        }
        let mut created = ruleset.create()?;
        for root in layer.fs_read.iter().flatten() {
            created = created.add_rule(beneath(root, AccessFs::from_read(TARGET_ABI))?)?;
        }
        for root in layer.fs_write.iter().flatten() {
            created = created.add_rule(beneath(root, AccessFs::from_all(TARGET_ABI))?)?;
        }
        for port in net.into_iter().flatten() {
            created = created.add_rule(NetPort::new(*port, AccessNet::ConnectTcp))?;
        }
        if let Some(fd) = Option::<OwnedFd>::from(created) {
            fds.push(fd);
        }
    }
    Ok(fds)
}

/// A rule for `root` with `access`, cut to the rights a file can have when it is one.
fn beneath(
    root: &Path,
    access: landlock::BitFlags<AccessFs>,
) -> Result<PathBeneath<PathFd>, RulesetError> {
    let fd = PathFd::new(root).map_err(|source| RulesetError::Root {
        root: root.to_owned(),
        source,
    })?;
    let access = if root.is_dir() {
        access
    } else {
        access & AccessFs::from_file(TARGET_ABI)
    };
    Ok(PathBeneath::new(fd, access))
}

#[cfg(test)]
mod tests;
