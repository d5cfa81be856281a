//! Why a command failed, when hostmcp's own confinement is the likely cause: a resource
//! limit that stopped it ([`limit_hit`]), or `no_new_privs` refusing a `sudo`, `su` or
//! `pkexec` ([`privilege_hint`]). Reads only the outcome and the limits it ran under; the
//! tool puts what it finds in the result.

use nix::sys::signal::Signal;

use super::{ExecOutcome, ResourceLimits, cgroup::CgroupUsage};

/// What the model is told when `sudo` and friends are refused.
pub const PRIVILEGE_HINT: &str = "sudo cannot raise privileges here; grant this command in the \
     policy with run_as = \"root\" on an allow rule (docs/policy.md#run-as)";

/// What `sudo`, `su` and `pkexec` print when `no_new_privs` (or a `nosuid` mount, or no
/// terminal for a password) stops them; checked on Debian 12 (sudo 1.9.13, util-linux su).
const REFUSALS: &[&str] = &[
    "\"no new privileges\" flag is set",
    "effective uid is not 0",
    "su: Authentication failure",
    "su: must be run from a terminal",
    "a terminal is required to read the password",
    "a password is required",
    "pkexec must be setuid root",
    "Error executing command as another user",
];

/// [`PRIVILEGE_HINT`] when the command failed and its stderr shows a privilege raise refused.
pub fn privilege_hint(outcome: &ExecOutcome) -> Option<&'static str> {
    if outcome.is_success() || outcome.timed_out || outcome.cancelled {
        return None;
    }
    let stderr = outcome.stderr.to_text();
    REFUSALS
        .iter()
        .any(|refusal| stderr.contains(refusal))
        .then_some(PRIVILEGE_HINT)
}

/// A limit that most likely stopped a command, said for the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitHit {
    /// The limit's name as configured: `memory`, `cpu_seconds`, `processes`, `file_size`.
    pub limit: &'static str,
    /// One sentence: what happened and what the limit was.
    pub message: String,
}

/// Failure messages of an allocation refused by `RLIMIT_DATA`.
const OUT_OF_MEMORY: &[&str] = &[
    "Cannot allocate memory",
    "MemoryError",
    "out of memory",
    "Out of memory",
    "memory exhausted",
    "failed to allocate",
    "bad_alloc",
];

/// Failure messages of a `fork` refused by `RLIMIT_NPROC`.
const NO_MORE_PROCESSES: &[&str] = &[
    "Resource temporarily unavailable",
    "fork: retry",
    "Cannot fork",
    "can't fork",
    "cannot fork",
];

/// The limit that stopped `outcome`, judged from how it ended (a signal, or a shell's exit
/// code 128 + signal) and what it printed: SIGXCPU
/// (or SIGKILL past the CPU limit's hard second) for `cpu_seconds`, SIGXFSZ for
/// `file_size`, an allocation failure for `memory`, a refused fork for `processes`. Only a
/// limit that was set is named; a command that succeeded or timed out hit none, unless its
/// cgroup counted an OOM kill or a refused fork ([`cgroup_hit`]), which the kernel is sure of.
pub fn limit_hit(outcome: &ExecOutcome, limits: &ResourceLimits) -> Option<LimitHit> {
    if let Some(hit) = outcome
        .usage
        .and_then(|usage| usage.cgroup)
        .and_then(|counted| cgroup_hit(&counted, limits))
    {
        return Some(hit);
    }
    if outcome.is_success() || outcome.timed_out || outcome.cancelled {
        return None;
    }
    // A shell reports a child killed by signal N as exit code 128 + N.
    let signal = outcome
        .signal
        .or_else(|| {
            outcome
                .exit_code
                .filter(|code| *code > 128)
                .map(|code| code - 128)
        })
        .and_then(|number| Signal::try_from(number).ok());
    if let (Some(Signal::SIGXCPU | Signal::SIGKILL), Some(seconds)) = (signal, limits.cpu_seconds)
        && (signal == Some(Signal::SIGXCPU) || outcome.duration.as_secs() >= seconds)
    {
        return Some(LimitHit {
            limit: "cpu_seconds",
            message: format!(
                "stopped by the cpu_seconds limit: a process used {seconds} s of CPU time"
            ),
        });
    }
    if let (Some(Signal::SIGXFSZ), Some(size)) = (signal, limits.file_size) {
        return Some(LimitHit {
            limit: "file_size",
            message: format!(
                "stopped by the file_size limit: a write went past {} in one file",
                size.display().iec()
            ),
        });
    }
    let stderr = outcome.stderr.to_text();
    let says = |needles: &[&str]| needles.iter().any(|needle| stderr.contains(needle));
    if let Some(memory) = limits.memory
        && (says(OUT_OF_MEMORY) || signal == Some(Signal::SIGABRT))
    {
        return Some(LimitHit {
            limit: "memory",
            message: format!(
                "stopped by the memory limit: an allocation past {} of private memory was refused",
                memory.display().iec()
            ),
        });
    }
    if let Some(processes) = limits.processes
        && says(NO_MORE_PROCESSES)
    {
        return Some(LimitHit {
            limit: "processes",
            message: format!(
                "stopped by the processes limit: a fork was refused past {processes} processes \
                 of the run-as user"
            ),
        });
    }
    None
}

/// What a command's cgroup `counted` against its limits: an OOM kill (`memory`), a refused
/// fork (`processes`). Also for a command still running (a terminal's).
pub fn cgroup_hit(counted: &CgroupUsage, limits: &ResourceLimits) -> Option<LimitHit> {
    if let Some(memory) = limits.memory
        && counted.oom_kills > 0
    {
        return Some(LimitHit {
            limit: "memory",
            message: format!(
                "killed: memory limit {} reached by the whole command (its cgroup); the \
                 command was ended ({} of its processes killed)",
                memory.display().iec(),
                counted.oom_kills
            ),
        });
    }
    if let Some(processes) = limits.processes
        && counted.pids_refused > 0
    {
        return Some(LimitHit {
            limit: "processes",
            message: format!(
                "stopped by the processes limit: {} forks were refused past {processes} \
                 processes of the command (its cgroup)",
                counted.pids_refused
            ),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::exec::CapturedOutput;

    fn ended(exit_code: Option<i32>, signal: Option<Signal>, stderr: &str) -> ExecOutcome {
        ExecOutcome {
            exit_code,
            signal: signal.map(|signal| signal as i32),
            stdout: CapturedOutput::default(),
            stderr: CapturedOutput::captured(1 << 20, stderr.as_bytes()),
            timed_out: false,
            cancelled: false,
            duration: Duration::from_secs(1),
            usage: None,
        }
    }

    const SUDO_NNP: &str =
        "sudo: The \"no new privileges\" flag is set, which prevents sudo from running as root.\n";

    #[test]
    fn sudo_refused_under_no_new_privs_gets_the_hint() {
        let outcome = ended(Some(1), None, SUDO_NNP);
        assert_eq!(privilege_hint(&outcome), Some(PRIVILEGE_HINT));
        let su = ended(Some(1), None, "Password: su: Authentication failure\n");
        assert_eq!(privilege_hint(&su), Some(PRIVILEGE_HINT));
    }

    #[test]
    fn a_failure_that_is_not_a_privilege_refusal_gets_no_hint() {
        assert_eq!(
            privilege_hint(&ended(Some(1), None, "ls: no such file\n")),
            None
        );
        // The same text from a command that succeeded is not a refusal.
        assert_eq!(privilege_hint(&ended(Some(0), None, SUDO_NNP)), None);
    }

    fn limits(text: &str) -> ResourceLimits {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn sigxcpu_is_the_cpu_limit_only_when_one_was_set() {
        let spun = ended(None, Some(Signal::SIGXCPU), "");
        let hit = limit_hit(&spun, &limits("cpu_seconds = 1")).unwrap();
        assert_eq!(hit.limit, "cpu_seconds");
        assert_eq!(limit_hit(&spun, &ResourceLimits::default()), None);
    }

    #[test]
    fn sigxfsz_is_the_file_size_limit() {
        let wrote = ended(None, Some(Signal::SIGXFSZ), "");
        let hit = limit_hit(&wrote, &limits("file_size = \"1MiB\"")).unwrap();
        assert_eq!(hit.limit, "file_size");
        assert!(hit.message.contains("1.0 MiB"), "{}", hit.message);
        let shell = ended(Some(128 + Signal::SIGXFSZ as i32), None, "");
        assert_eq!(
            limit_hit(&shell, &limits("file_size = 1024"))
                .unwrap()
                .limit,
            "file_size"
        );
        assert_eq!(
            limit_hit(&ended(Some(1), None, ""), &limits("file_size = 1024")),
            None
        );
    }

    #[test]
    fn a_refused_allocation_is_the_memory_limit_and_a_plain_failure_is_not() {
        let memory = limits("memory = \"64MiB\"");
        let hog = ended(Some(1), None, "Traceback ...\nMemoryError\n");
        assert_eq!(limit_hit(&hog, &memory).unwrap().limit, "memory");
        assert_eq!(limit_hit(&ended(Some(1), None, "nope\n"), &memory), None);
    }

    #[test]
    fn a_refused_fork_is_the_processes_limit() {
        let bomb = ended(
            Some(2),
            None,
            "sh: 1: Cannot fork\nsh: fork: Resource temporarily unavailable\n",
        );
        let hit = limit_hit(&bomb, &limits("processes = 16")).unwrap();
        assert_eq!(hit.limit, "processes");
    }
}
