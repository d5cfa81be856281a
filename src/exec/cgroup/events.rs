//! Reading the kernel's flat-keyed cgroup files: `memory.events`, `memory.oom_control`,
//! `pids.events`, lines of `key value`.

/// The value of `key` in a flat-keyed file, e.g. `oom_kill` in `memory.events`.
pub(super) fn count(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok())?
    })
}
