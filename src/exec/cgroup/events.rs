//! Reading the kernel's cgroup counter files: the flat-keyed ones (`memory.events`,
//! `memory.oom_control`, `pids.events`, `cpu.stat`: lines of `key value`) and v1's
//! `cpuacct.usage` (one number, nanoseconds).

use std::time::Duration;

/// The value of `key` in a flat-keyed file, e.g. `oom_kill` in `memory.events`.
pub(super) fn count(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok())?
    })
}

/// The CPU time in v1's `cpuacct.usage`: nanoseconds, user and system, of every task
/// that ran in the cgroup.
pub(super) fn cpu_time_v1(text: &str) -> Option<Duration> {
    text.trim().parse().ok().map(Duration::from_nanos)
}

/// The CPU time in v2's `cpu.stat`: its `usage_usec`, microseconds, user and system.
pub(super) fn cpu_time_v2(text: &str) -> Option<Duration> {
    count(text, "usage_usec").map(Duration::from_micros)
}
