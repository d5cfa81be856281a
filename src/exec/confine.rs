//! What confines one command besides its argv: the switch to its run-as user, the
//! `no_new_privs` flag (always set) and its resource limits ([`ResourceLimits`], from its
//! token and its policy rule). All of it is applied in the child between fork and exec, in
//! the crate's one `unsafe` block ([`install`]).
//!
//! [`Confinement`] is what a [`CommandSpec`](super::CommandSpec) carries: limits now, and
//! room for what confines a command's file access later.
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

use std::os::unix::process::CommandExt;

use bytesize::ByteSize;
use nix::sys::resource::{Resource, rlim_t};
use serde::Deserialize;

use super::run_as::RunAsUser;

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
        if parts.is_empty() {
            return "none".to_owned();
        }
        parts.join(", ")
    }

    /// The `(resource, soft, hard)` triples to set in the child.
    fn rlimits(&self) -> Vec<(Resource, rlim_t, rlim_t)> {
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

/// Everything that confines a command beyond its user: its resource limits now; the paths
/// it may reach belong here too when they come.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confinement {
    pub limits: ResourceLimits,
}

/// Make `command` apply, in the child between fork and exec: `confinement`'s rlimits, the
/// switch to `user` (when it differs from the server's), and `no_new_privs`, so a setuid
/// program (`sudo`, `su`, `pkexec`) cannot raise the command's privileges. Forces fork+exec
/// (a `pre_exec` hook) for every command.
pub(super) fn install(
    command: &mut tokio::process::Command,
    user: Option<&RunAsUser>,
    confinement: &Confinement,
) {
    let ids = user.and_then(RunAsUser::switch_ids);
    let rlimits = confinement.limits.rlimits();
    // The crate's one `unsafe` (see `[lints]` in Cargo.toml).
    #[allow(unsafe_code)]
    // SAFETY: between fork and exec the closure only makes the setrlimit, setgroups, setgid,
    // setuid and prctl system calls, which are async-signal-safe, and allocates nothing:
    // the vectors it reads were built before the fork and are only borrowed.
    unsafe {
        command.as_std_mut().pre_exec(move || {
            for &(resource, soft, hard) in &rlimits {
                nix::sys::resource::setrlimit(resource, soft, hard)?;
            }
            if let Some((groups, gid, uid)) = &ids {
                nix::unistd::setgroups(groups)?;
                nix::unistd::setgid(*gid)?;
                nix::unistd::setuid(*uid)?;
            }
            nix::sys::prctl::set_no_new_privs()?;
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(text: &str) -> ResourceLimits {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn sizes_are_read_with_binary_units_and_plain_bytes() {
        let parsed = limits("memory = \"512MiB\"\nfile_size = 4096\ncpu_seconds = 3");
        assert_eq!(parsed.memory, Some(ByteSize::mib(512)));
        assert_eq!(parsed.file_size, Some(ByteSize::b(4096)));
        assert_eq!(parsed.cpu_seconds, Some(3));
        assert_eq!(parsed.processes, None);
    }

    #[test]
    fn an_unknown_limit_is_an_error() {
        assert!(toml::from_str::<ResourceLimits>("threads = 3").is_err());
    }

    #[test]
    fn the_stricter_of_two_wins_limit_by_limit() {
        let token = limits("memory = \"1GiB\"\ncpu_seconds = 10");
        let rule = limits("memory = \"256MiB\"\ncpu_seconds = 60\nprocesses = 8");
        let both = token.stricter(rule);
        assert_eq!(both.memory, Some(ByteSize::mib(256)));
        assert_eq!(both.cpu_seconds, Some(10));
        assert_eq!(both.processes, Some(8));
        assert_eq!(both.file_size, None);
        assert_eq!(both, rule.stricter(token));
    }

    #[test]
    fn a_zero_limit_is_refused_and_a_positive_one_is_not() {
        assert_eq!(
            limits("processes = 0").validate(),
            Err(ZeroLimit("processes"))
        );
        assert_eq!(limits("processes = 1").validate(), Ok(()));
    }

    #[test]
    fn cpu_gets_a_hard_limit_one_second_past_the_soft_one() {
        let rlimits = limits("cpu_seconds = 5\nmemory = 1024").rlimits();
        assert!(rlimits.contains(&(Resource::RLIMIT_CPU, 5, 6)));
        assert!(rlimits.contains(&(Resource::RLIMIT_DATA, 1024, 1024)));
    }

    /// Runs `script` under `limits` (no user switch).
    async fn confined(script: &str, limits_toml: &str) -> crate::exec::ExecOutcome {
        let spec = crate::exec::test_support::sh(script).confined(Confinement {
            limits: limits(limits_toml),
        });
        crate::exec::test_support::run_ok(spec).await
    }

    #[tokio::test]
    async fn every_command_runs_with_no_new_privs() {
        let outcome = confined("grep NoNewPrivs /proc/self/status", "").await;
        assert_eq!(
            outcome.stdout.to_text().split_whitespace().nth(1),
            Some("1")
        );
    }

    #[tokio::test]
    async fn a_cpu_spinner_is_stopped_by_cpu_seconds_and_a_short_command_is_not() {
        let spun = confined("while :; do :; done", "cpu_seconds = 1").await;
        assert_eq!(
            spun.signal,
            Some(libc_signal(nix::sys::signal::Signal::SIGXCPU))
        );
        let hit = crate::exec::diagnose::limit_hit(&spun, &limits("cpu_seconds = 1")).unwrap();
        assert_eq!(hit.limit, "cpu_seconds");
        assert!(confined("echo ok", "cpu_seconds = 1").await.is_success());
    }

    #[tokio::test]
    async fn a_file_past_file_size_is_stopped_and_a_smaller_one_is_written() {
        let dir = crate::exec::test_support::scratch_dir("fsize");
        let big = format!("head -c 2000000 /dev/zero > {}/big", dir.display());
        let wrote = confined(&big, "file_size = \"1MiB\"").await;
        // The shell reports its child's SIGXFSZ as exit code 128 + 25.
        assert_eq!(
            wrote.exit_code,
            Some(128 + libc_signal(nix::sys::signal::Signal::SIGXFSZ))
        );
        let hit = crate::exec::diagnose::limit_hit(&wrote, &limits("file_size = \"1MiB\""));
        assert_eq!(hit.map(|hit| hit.limit), Some("file_size"));
        let small = format!("head -c 500000 /dev/zero > {}/small", dir.display());
        assert!(confined(&small, "file_size = \"1MiB\"").await.is_success());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn an_allocation_past_memory_fails_and_a_smaller_one_succeeds() {
        let hog = confined(
            "exec python3 -c 'b = bytearray(256 * 1024 * 1024)'",
            "memory = \"64MiB\"",
        )
        .await;
        assert!(!hog.is_success());
        let hit = crate::exec::diagnose::limit_hit(&hog, &limits("memory = \"64MiB\""));
        assert_eq!(
            hit.map(|hit| hit.limit),
            Some("memory"),
            "{}",
            hog.stderr.to_text()
        );
        let near = confined(
            "exec python3 -c 'b = bytearray(8 * 1024 * 1024)'",
            "memory = \"64MiB\"",
        )
        .await;
        assert!(near.is_success(), "{}", near.stderr.to_text());
    }

    fn libc_signal(signal: nix::sys::signal::Signal) -> i32 {
        signal as i32
    }

    #[test]
    fn limits_are_described_for_people() {
        assert_eq!(ResourceLimits::default().describe(), "none");
        assert_eq!(
            limits("memory = \"512MiB\"\nprocesses = 64").describe(),
            "memory 512.0 MiB, processes 64"
        );
    }
}
