//! Per-command resource limits ([`ResourceLimits`]), as a token or a policy allow rule
//! writes them: read and checked by `config` and `policy`, applied by `exec` in the child
//! (`exec::confine`). A ground-floor module, so the policy can carry limits without
//! importing `exec`.
//!
//! Which rlimit each limit sets, and why:
//! - `memory`: `RLIMIT_DATA`, the private writable memory (heap, anonymous `mmap`; counted
//!   since Linux 4.7), not `RLIMIT_AS`: the address space also counts shared libraries, file
//!   mappings and the large reservations of Go, the JVM or glibc's per-thread arenas, so an
//!   `RLIMIT_AS` that stops a real hog also breaks programs that use little memory. An
//!   allocation over the limit fails (`ENOMEM`); the program then usually reports it and
//!   exits, or aborts.
//! - `cpu_seconds`: `RLIMIT_CPU`, soft at the limit (SIGXCPU), hard one second later
//!   (SIGKILL, for a program that catches SIGXCPU). Per process: each process of the
//!   command may use that much CPU.
//! - `processes`: `RLIMIT_NPROC`, which the kernel counts per real uid, not per command:
//!   every process of the run-as user on the host counts, so commands of tokens that share a
//!   run-as user share the budget, and the limit does not bind root (`run_as = "root"`).
//!   A `fork` over it fails with `EAGAIN`.
//! - `file_size`: `RLIMIT_FSIZE`, the largest file a process may write; a write past it
//!   fails and raises SIGXFSZ, which ends the process.
//!
//! Where the host delegates cgroups ([`crate::exec::cgroup`]), a command with `memory`,
//! `processes` or `cpu_percent` also runs in its own cgroup, and those limits bind its
//! whole process tree too (the rlimits above still bind each process):
//! - `memory`: `memory.max` with `memory.swap.max = 0` and `memory.oom.group = 1` (v2), or
//!   `memory.limit_in_bytes` and `memory.memsw.limit_in_bytes` (v1): all of the tree's
//!   memory, page cache included, without swap. Past it the whole command is killed (v2:
//!   the kernel, by `memory.oom.group`; v1: the server, told by an eventfd on
//!   `memory.oom_control`, the kernel's OOM killer being off for the cgroup).
//! - `processes`: `pids.max`, the processes and threads of this command alone, whatever
//!   their user (root included). A `fork` over it fails with `EAGAIN`.
//! - `cpu_percent`: cgroup only, `cpu.max` (v2) or `cpu.cfs_quota_us` (v1): the share of
//!   one CPU the whole tree may use (200 = two CPUs); the command is throttled, not killed.
//!   A configuration that sets it on a host without the cpu controller is refused at load
//!   unless `[confinement] degrade = true`.

use bytesize::ByteSize;
use nix::sys::resource::{Resource, rlim_t};
use serde::Deserialize;

/// Per-command resource limits, as written in a token or a policy allow rule, e.g.
/// `limits = { memory = "512MiB", cpu_seconds = 30, processes = 64, file_size = "100MiB" }`.
/// An absent limit is not set (the command inherits the server's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceLimits {
    /// Private writable memory per process (`RLIMIT_DATA`), e.g. `"512MiB"` or bytes.
    pub memory: Option<ByteSize>,
    /// CPU time per process, in seconds (`RLIMIT_CPU`).
    pub cpu_seconds: Option<u64>,
    /// Processes of the run-as user (`RLIMIT_NPROC`).
    pub processes: Option<u64>,
    /// Largest file a process may write (`RLIMIT_FSIZE`), e.g. `"100MiB"`.
    pub file_size: Option<ByteSize>,
    /// Share of one CPU the whole command may use, in percent (cgroup `cpu` controller only).
    pub cpu_percent: Option<u64>,
}

/// A limit of zero, which no command could run under.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "limits.{0} = 0 would stop every command; remove it for no limit, or give a positive value"
)]
pub struct ZeroLimit(pub &'static str);

impl ResourceLimits {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Refuse a zero limit.
    pub fn validate(&self) -> Result<(), ZeroLimit> {
        let zero = [
            ("memory", self.memory.map(|size| size.as_u64())),
            ("cpu_seconds", self.cpu_seconds),
            ("processes", self.processes),
            ("file_size", self.file_size.map(|size| size.as_u64())),
            ("cpu_percent", self.cpu_percent),
        ]
        .into_iter()
        .find(|(_, value)| *value == Some(0));
        match zero {
            Some((name, _)) => Err(ZeroLimit(name)),
            None => Ok(()),
        }
    }

    /// Each limit the stricter (smaller) of the two; a limit only one of them sets is kept.
    #[must_use]
    pub fn stricter(self, other: Self) -> Self {
        fn min<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        Self {
            memory: min(self.memory, other.memory),
            cpu_seconds: min(self.cpu_seconds, other.cpu_seconds),
            processes: min(self.processes, other.processes),
            file_size: min(self.file_size, other.file_size),
            cpu_percent: min(self.cpu_percent, other.cpu_percent),
        }
    }

    /// `memory 512.0 MiB, cpu_seconds 30`, or `none`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(memory) = self.memory {
            parts.push(format!("memory {}", memory.display().iec()));
        }
        if let Some(seconds) = self.cpu_seconds {
            parts.push(format!("cpu_seconds {seconds}"));
        }
        if let Some(processes) = self.processes {
            parts.push(format!("processes {processes}"));
        }
        if let Some(size) = self.file_size {
            parts.push(format!("file_size {}", size.display().iec()));
        }
        if let Some(percent) = self.cpu_percent {
            parts.push(format!("cpu_percent {percent}"));
        }
        if parts.is_empty() {
            return "none".to_owned();
        }
        parts.join(", ")
    }

    /// The `(resource, soft, hard)` triples to set in the child.
    pub(crate) fn rlimits(&self) -> Vec<(Resource, rlim_t, rlim_t)> {
        let mut out = Vec::new();
        if let Some(memory) = self.memory {
            out.push((Resource::RLIMIT_DATA, memory.as_u64(), memory.as_u64()));
        }
        if let Some(seconds) = self.cpu_seconds {
            out.push((Resource::RLIMIT_CPU, seconds, seconds.saturating_add(1)));
        }
        if let Some(processes) = self.processes {
            out.push((Resource::RLIMIT_NPROC, processes, processes));
        }
        if let Some(size) = self.file_size {
            out.push((Resource::RLIMIT_FSIZE, size.as_u64(), size.as_u64()));
        }
        out
    }
}
