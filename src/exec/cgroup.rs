//! Per-command cgroups: where the host delegates them ([`detect`]), a command whose limits
//! set `memory`, `processes` or `cpu_percent` runs in its own cgroup
//! (`hostmcp/<server pid>-<command id>` under each usable controller), so the limit binds its
//! whole process tree, not each process. [`CommandCgroup`] makes it and writes its limits
//! before the spawn, hands the child the `cgroup.procs` files it joins through before exec
//! (`confine`), reads what happened (peak memory and CPU time of the tree, OOM kills,
//! refused forks: [`CgroupUsage`]), kills everything left in it, and removes it.
//!
//! An OOM ends the whole command on either version: v2 by `memory.oom.group`, v1 by an
//! [`oom`] watch that kills every process of the cgroup when its limit is reached. The
//! tree's CPU time comes from the cgroup (v1 `cpuacct.usage`, v2 `cpu.stat`), which counts
//! the daemonised grandchildren that no `wait` of the command's leader would.
//!
//! Which file each limit writes: [`crate::limits`].

pub mod detect;
mod events;
mod oom;
mod tree;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use detect::{Controller, Support, Version};

use crate::limits::ResourceLimits;

/// How long to wait for a killed command's processes to leave its cgroup before giving up
/// on removing it (it is then left behind, and logged).
const REMOVE_LIMIT: Duration = Duration::from_secs(5);
/// How often to try while waiting.
const REMOVE_STEP: Duration = Duration::from_millis(10);
/// Rounds of "list `cgroup.procs`, kill each" on v1, against a tree still forking.
const KILL_ROUNDS: usize = 64;
/// The CFS period `cpu_percent` is a share of, in microseconds.
const CPU_PERIOD_US: u64 = 100_000;

/// What the kernel counted for a command's cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupUsage {
    /// The most memory the whole tree held at once (v2 `memory.peak`, v1
    /// `memory.max_usage_in_bytes`), when the memory controller was used.
    pub peak_memory_bytes: Option<u64>,
    /// Processes killed for going past the memory limit: by the kernel's OOM killer, and
    /// on v1 by the watch that ends the whole command ([`oom`]).
    pub oom_kills: u64,
    /// Forks refused at the processes limit (`pids.events` `max`).
    pub pids_refused: u64,
    /// CPU time of every process that ran in the cgroup (v1 `cpuacct.usage`, v2 `cpu.stat`
    /// `usage_usec`), when the host counts it.
    pub cpu_time: Option<Duration>,
}

/// A cgroup that could not be made or set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the command's cgroup {}: {source}", .path.display())]
pub struct CgroupError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// One command's cgroup, in each hierarchy it uses (one directory on v2, one per
/// controller on v1). Dropped without [`Self::finish`], it kills what is in it and removes
/// itself (in the background if the processes take a while to go).
#[derive(Debug)]
pub struct CommandCgroup {
    version: Version,
    /// Each directory made, with the controllers it was made for.
    dirs: Vec<(PathBuf, Vec<Controller>)>,
    /// `cgroup.procs` of each directory, open for writing, until the spawn takes them.
    joins: Vec<File>,
    /// On v1 with a memory limit: what ends the whole command on an OOM.
    oom: Option<oom::OomWatch>,
    /// On v1: the most cgroups of the subtree seen waiting on an OOM (`under_oom`) when a
    /// kill came, e.g. a child cgroup with its own smaller limit the watch does not hear.
    under_oom: AtomicU64,
    done: bool,
}

/// What a command's cgroup counted so far, readable by someone who does not own it (a
/// terminal's reads, while its program runs). Reads nothing once the cgroup is removed.
#[derive(Debug, Clone)]
pub struct CgroupCounters {
    version: Version,
    dirs: Vec<(PathBuf, Vec<Controller>)>,
}

impl CgroupCounters {
    /// What the kernel has counted up to now ([`CommandCgroup::usage`] without the v1 OOM
    /// watch's kills, which end the command anyway).
    pub fn usage(&self) -> CgroupUsage {
        read_usage(self.version, &self.dirs)
    }
}

static NEXT: AtomicU64 = AtomicU64::new(1);

/// A limit this host's cgroups cannot enforce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{location}: limits.cpu_percent needs the cgroup cpu controller, and this host has {has}; \
     refusing to run commands without it (set [confinement] degrade = true to run them with \
     what the host has)"
)]
pub struct Unenforceable {
    pub location: String,
    pub has: String,
}

/// Check that `support` can enforce each `(location, limits)`: `cpu_percent` has no
/// rlimit to fall back on. (`memory` and `processes` fall back to their rlimits, per
/// process.) With `degrade`, what it cannot enforce is returned as warnings instead.
pub fn check<'a>(
    limits: impl IntoIterator<Item = (String, &'a ResourceLimits)>,
    support: &Support,
    degrade: bool,
) -> Result<Vec<Unenforceable>, Unenforceable> {
    let gaps: Vec<Unenforceable> = limits
        .into_iter()
        .filter(|(_, limits)| limits.cpu_percent.is_some() && !support.has(Controller::Cpu))
        .map(|(location, _)| Unenforceable {
            location,
            has: support.describe(),
        })
        .collect();
    match gaps.into_iter().next() {
        Some(gap) if !degrade => Err(gap),
        Some(gap) => Ok(vec![gap]),
        None => Ok(Vec::new()),
    }
}

/// Which of `limits` bind the whole command tree here, for `policy explain`, e.g.
/// `memory 96.0 MiB, processes 8 (cgroup v1); each process also has its rlimits`.
pub fn scope(limits: &ResourceLimits, support: &Support) -> String {
    let mut tree = Vec::new();
    let mut not = Vec::new();
    for (controller, limit) in [
        (
            Controller::Memory,
            limits
                .memory
                .map(|m| format!("memory {}", m.display().iec())),
        ),
        (
            Controller::Pids,
            limits.processes.map(|n| format!("processes {n}")),
        ),
        (
            Controller::Cpu,
            limits.cpu_percent.map(|n| format!("cpu_percent {n}")),
        ),
    ] {
        match limit {
            Some(limit) if support.has(controller) => tree.push(limit),
            Some(limit) => not.push(limit),
            None => {}
        }
    }
    let mut text = if tree.is_empty() {
        "no limit binds the whole tree (no cgroup)".to_owned()
    } else {
        let version = if support.version == Some(Version::V2) {
            "v2"
        } else {
            "v1"
        };
        format!("{} for the whole tree (cgroup {version})", tree.join(", "))
    };
    if !not.is_empty() {
        text.push_str(&format!(
            "; no controller here for {} (memory and processes stay per-process rlimits, \
             cpu_percent is not enforced)",
            not.join(", ")
        ));
    }
    text
}

/// Whether `limits` asks for anything a cgroup enforces.
pub fn wanted(limits: &ResourceLimits) -> bool {
    limits.memory.is_some() || limits.processes.is_some() || limits.cpu_percent.is_some()
}

impl CommandCgroup {
    /// The cgroup for a command under `limits`, or `None` when its limits need none or the
    /// host has none of the controllers they need. `label` names it (the audit command id).
    pub fn create(
        support: &Support,
        limits: &ResourceLimits,
        label: Option<&str>,
    ) -> Result<Option<Self>, CgroupError> {
        let Some(version) = support.version else {
            return Ok(None);
        };
        if !wanted(limits) {
            return Ok(None);
        }
        let needed: Vec<Controller> = [
            (Controller::Memory, limits.memory.is_some()),
            (Controller::Pids, limits.processes.is_some()),
            (Controller::Cpu, limits.cpu_percent.is_some()),
        ]
        .into_iter()
        .filter(|(controller, set)| *set && support.has(*controller))
        .map(|(controller, _)| controller)
        .collect();
        if needed.is_empty() {
            return Ok(None);
        }
        // Memory and CPU accounting too whenever they are there: the tree's peak memory
        // and CPU time are worth reporting.
        let mut used = needed;
        for counted in [Controller::Memory, Controller::Cpuacct] {
            if !used.contains(&counted) && support.has(counted) {
                used.push(counted);
            }
        }
        let name = format!(
            "{}-{}",
            std::process::id(),
            label.map_or_else(
                || format!("n{}", NEXT.fetch_add(1, Ordering::Relaxed)),
                sanitize
            )
        );
        let mut cgroup = Self {
            version,
            dirs: Vec::new(),
            joins: Vec::new(),
            oom: None,
            under_oom: AtomicU64::new(0),
            done: false,
        };
        for controller in used {
            let Some(base) = support.base(controller) else {
                continue;
            };
            let dir = base.join(&name);
            match cgroup.dirs.iter_mut().find(|(made, _)| *made == dir) {
                Some((_, controllers)) => controllers.push(controller),
                None => {
                    // Never writable by a command run as another user (whatever the
                    // umask): it cannot make child cgroups in it or move into them.
                    fs::DirBuilder::new()
                        .mode(0o755)
                        .create(&dir)
                        .map_err(|source| CgroupError {
                            path: dir.clone(),
                            source,
                        })?;
                    cgroup.dirs.push((dir, vec![controller]));
                }
            }
        }
        for (dir, controllers) in &cgroup.dirs {
            for controller in controllers {
                write_limits(version, dir, *controller, limits)?;
            }
            let procs = dir.join("cgroup.procs");
            let file = OpenOptions::new()
                .write(true)
                .open(&procs)
                .map_err(|source| CgroupError {
                    path: procs,
                    source,
                })?;
            cgroup.joins.push(file);
        }
        if version == Version::V1 && limits.memory.is_some() {
            cgroup.oom = cgroup
                .dirs
                .iter()
                .find(|(_, controllers)| controllers.contains(&Controller::Memory))
                .and_then(|(dir, _)| {
                    oom::OomWatch::arm(dir)
                        .inspect_err(|error| {
                            tracing::warn!(%error, cgroup = %dir.display(), "no OOM watch: an OOM kills one process of the command, not all");
                        })
                        .ok()
                });
        }
        Ok(Some(cgroup))
    }

    /// The open `cgroup.procs` files the child writes `0` to before exec, to join.
    pub(super) fn take_joins(&mut self) -> Vec<File> {
        std::mem::take(&mut self.joins)
    }

    /// The directories made, for tests and the log.
    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.dirs.iter().map(|(dir, _)| dir.as_path())
    }

    /// Kill every process in the cgroup and in the child cgroups made inside it:
    /// `cgroup.kill` on v2 (atomic, forks and descendants included), on v1 (or a v2 without
    /// it) rounds of listing each `cgroup.procs` of the subtree and SIGKILL until none is
    /// listed. On v1 it first notes a child cgroup waiting on an OOM (see [`Self::usage`]).
    pub fn kill_all(&self) {
        for (dir, controllers) in &self.dirs {
            if self.version == Version::V2 && fs::write(dir.join("cgroup.kill"), "1").is_ok() {
                continue;
            }
            if controllers.contains(&Controller::Memory) {
                let waiting = tree::under_oom(dir);
                self.under_oom.fetch_max(waiting, Ordering::Relaxed);
            }
            oom::kill_everything(dir);
        }
    }

    /// What the kernel counted: the tree's peak memory and CPU time, OOM kills (with the
    /// processes the v1 OOM watch killed), refused forks.
    pub fn usage(&self) -> CgroupUsage {
        let mut usage = read_usage(self.version, &self.dirs);
        if let Some(oom) = &self.oom {
            usage.oom_kills += oom.killed();
        }
        // A process that waited for memory was killed by us, not by the kernel: still an OOM.
        if usage.oom_kills == 0 {
            usage.oom_kills = self.under_oom.load(Ordering::Relaxed);
        }
        usage
    }

    /// A reader of this cgroup's counters for someone who does not own it.
    pub fn counters(&self) -> CgroupCounters {
        CgroupCounters {
            version: self.version,
            dirs: self.dirs.clone(),
        }
    }

    /// Kill what is left, read the usage, and remove the cgroup once its processes are
    /// gone (waiting up to [`REMOVE_LIMIT`]).
    pub async fn finish(mut self) -> CgroupUsage {
        self.kill_all();
        let usage = self.usage();
        // Watch no more: removing the cgroup fires its eventfd too.
        self.oom = None;
        let deadline = tokio::time::Instant::now() + REMOVE_LIMIT;
        while !self.try_remove() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(REMOVE_STEP).await;
            self.kill_all();
        }
        self.warn_left();
        self.done = true;
        usage
    }

    /// Remove each directory still there, its child cgroups first; true when none is left.
    fn try_remove(&mut self) -> bool {
        self.dirs
            .retain(|(dir, _)| tree::remove_subtree(dir).is_err());
        self.dirs.is_empty()
    }

    fn warn_left(&self) {
        for (dir, _) in &self.dirs {
            tracing::warn!(cgroup = %dir.display(), "a command's cgroup could not be removed");
        }
    }
}

impl Drop for CommandCgroup {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.kill_all();
        if self.try_remove() {
            return;
        }
        self.oom = None;
        let mut rest = Self {
            version: self.version,
            dirs: std::mem::take(&mut self.dirs),
            joins: Vec::new(),
            oom: None,
            under_oom: AtomicU64::new(0),
            done: true,
        };
        // The killed processes need a moment to leave; do not hold up the dropper.
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + REMOVE_LIMIT;
            while !rest.try_remove() && std::time::Instant::now() < deadline {
                std::thread::sleep(REMOVE_STEP);
                rest.kill_all();
            }
            rest.warn_left();
        });
    }
}

/// Write `controller`'s share of `limits` into the cgroup `dir`.
fn write_limits(
    version: Version,
    dir: &Path,
    controller: Controller,
    limits: &ResourceLimits,
) -> Result<(), CgroupError> {
    let mut files: Vec<(&str, String)> = Vec::new();
    match (controller, version) {
        (Controller::Memory, Version::V2) => {
            if let Some(memory) = limits.memory {
                files.push(("memory.max", memory.as_u64().to_string()));
                // The limit is the command's whole memory: no swapping past it, and an OOM
                // kill takes the whole command rather than one process of it.
                files.push(("memory.swap.max", "0".to_owned()));
                files.push(("memory.oom.group", "1".to_owned()));
            }
        }
        (Controller::Memory, Version::V1) => {
            if let Some(memory) = limits.memory {
                files.push(("memory.limit_in_bytes", memory.as_u64().to_string()));
                // memsw (memory + swap) only where swap accounting is on.
                files.push(("memory.memsw.limit_in_bytes", memory.as_u64().to_string()));
            }
        }
        (Controller::Pids, _) => {
            if let Some(processes) = limits.processes {
                files.push(("pids.max", processes.to_string()));
            }
        }
        (Controller::Cpu, Version::V2) => {
            if let Some(percent) = limits.cpu_percent {
                files.push(("cpu.max", format!("{} {CPU_PERIOD_US}", cpu_quota(percent))));
            }
        }
        (Controller::Cpu, Version::V1) => {
            if let Some(percent) = limits.cpu_percent {
                files.push(("cpu.cfs_period_us", CPU_PERIOD_US.to_string()));
                files.push(("cpu.cfs_quota_us", cpu_quota(percent).to_string()));
            }
        }
        // Only counts.
        (Controller::Cpuacct, _) => {}
    }
    for (name, value) in files {
        let path = dir.join(name);
        let optional = matches!(
            name,
            "memory.swap.max" | "memory.oom.group" | "memory.memsw.limit_in_bytes"
        );
        match fs::write(&path, value) {
            Err(error) if optional && error.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(CgroupError { path, source }),
            Ok(()) => {}
        }
    }
    Ok(())
}

/// The CFS quota, in microseconds per [`CPU_PERIOD_US`], of `percent` of one CPU (at least
/// the kernel's minimum of 1 ms).
pub(super) fn cpu_quota(percent: u64) -> u64 {
    (percent.saturating_mul(CPU_PERIOD_US) / 100).max(1_000)
}

/// A label safe as one path component: letters, digits, `-` and `_` kept, the rest `_`.
pub(super) fn sanitize(label: &str) -> String {
    label
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What the kernel counted in the cgroup's `dirs`: peak memory, OOM kills, refused forks,
/// CPU time.
fn read_usage(version: Version, dirs: &[(PathBuf, Vec<Controller>)]) -> CgroupUsage {
    let mut usage = CgroupUsage::default();
    for (dir, controllers) in dirs {
        for controller in controllers {
            match (controller, version) {
                (Controller::Memory, Version::V2) => {
                    usage.peak_memory_bytes =
                        read(dir, "memory.peak").and_then(|text| text.trim().parse().ok());
                    usage.oom_kills = read(dir, "memory.events")
                        .and_then(|text| events::count(&text, "oom_kill"))
                        .unwrap_or(0);
                }
                (Controller::Memory, Version::V1) => {
                    usage.peak_memory_bytes = read(dir, "memory.max_usage_in_bytes")
                        .and_then(|text| text.trim().parse().ok());
                    // The kernel's kills in the child cgroups too (their OOM killer may
                    // be back on).
                    usage.oom_kills = tree::sum(dir, "memory.oom_control", "oom_kill").unwrap_or(0);
                }
                (Controller::Pids, _) => {
                    usage.pids_refused = read(dir, "pids.events")
                        .and_then(|text| events::count(&text, "max"))
                        .unwrap_or(0);
                }
                (Controller::Cpuacct, Version::V1) => {
                    usage.cpu_time =
                        read(dir, "cpuacct.usage").and_then(|text| events::cpu_time_v1(&text));
                }
                (Controller::Cpuacct, Version::V2) => {
                    usage.cpu_time =
                        read(dir, "cpu.stat").and_then(|text| events::cpu_time_v2(&text));
                }
                (Controller::Cpu, _) => {}
            }
        }
    }
    usage
}

fn read(dir: &Path, name: &str) -> Option<String> {
    fs::read_to_string(dir.join(name)).ok()
}

#[cfg(test)]
mod tests;
