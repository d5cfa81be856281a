//! A command's cgroup as a subtree: the child cgroups a command (root can) makes inside
//! its own cgroup directory and moves into are still the command's. This module walks
//! that subtree (deepest first, bounded in depth and in entries), kills every process
//! listed anywhere in it (through pidfds, each re-checked against the cgroup before the
//! signal), and removes its child directories before the command's own.
//!
//! Without the walk, a process in `sub/` is in none of the top directory's `cgroup.procs`:
//! the v1 OOM watch, the timeout and cancel kills and the removal all missed it.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};

/// How deep below the command's cgroup the walk goes (the command's cgroup is depth 0).
pub(super) const MAX_DEPTH: usize = 8;
/// How many directories the walk lists at most, the command's own included.
pub(super) const MAX_ENTRIES: usize = 512;

/// `dir` and every directory below it (at most [`MAX_DEPTH`] levels, [`MAX_ENTRIES`] in
/// all), deepest first: `dir` itself comes last. Symlinks are not followed.
pub(super) fn subtree(dir: &Path) -> Vec<PathBuf> {
    // Breadth first: the depths never decrease along the list, so reversed it is deepest
    // first.
    let mut found = vec![dir.to_owned()];
    let mut level = vec![dir.to_owned()];
    for _ in 0..MAX_DEPTH {
        let mut next = Vec::new();
        for parent in &level {
            let Ok(entries) = fs::read_dir(parent) else {
                continue;
            };
            for entry in entries.flatten() {
                if found.len() + next.len() >= MAX_ENTRIES {
                    break;
                }
                if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                    next.push(entry.path());
                }
            }
        }
        if next.is_empty() {
            break;
        }
        found.extend(next.iter().cloned());
        level = next;
        if found.len() >= MAX_ENTRIES {
            break;
        }
    }
    found.reverse();
    found
}

/// The pids listed in `cgroup.procs` of `dir` (none when it cannot be read).
fn procs(dir: &Path) -> HashSet<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .collect()
}

/// SIGKILL every process in `dir`'s subtree until none is listed (at most `rounds`
/// rounds); returns how many different processes were signalled.
///
/// Each pid is opened as a pidfd first, and signalled only if the cgroup still lists it
/// after the open: a pid that ended and was reused by a process elsewhere between the
/// listing and the signal is not killed (the pidfd names the process, not the number).
pub(super) fn kill_subtree(dir: &Path, rounds: usize) -> u64 {
    let mut signalled = HashSet::new();
    for _ in 0..rounds {
        let mut any = false;
        for cgroup in subtree(dir) {
            let listed = procs(&cgroup);
            if listed.is_empty() {
                continue;
            }
            any = true;
            let opened: Vec<(i32, OwnedFd)> = listed
                .into_iter()
                .filter_map(|pid| {
                    let fd = pidfd_open(Pid::from_raw(pid)?, PidfdFlags::empty()).ok()?;
                    Some((pid, fd))
                })
                .collect();
            let still = procs(&cgroup);
            for (pid, fd) in opened {
                if still.contains(&pid) && pidfd_send_signal(&fd, Signal::KILL).is_ok() {
                    signalled.insert(pid);
                }
            }
        }
        if !any {
            break;
        }
    }
    signalled.len() as u64
}

/// Remove `dir`'s child cgroups, deepest first, then `dir`. `Ok` once `dir` is gone (or
/// was already); the first other error (a directory still holding processes) otherwise.
pub(super) fn remove_subtree(dir: &Path) -> io::Result<()> {
    let mut first = None;
    for cgroup in subtree(dir) {
        match fs::remove_dir(&cgroup) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => {
                first.get_or_insert(error);
            }
        }
    }
    match first {
        Some(error) if dir.exists() => Err(error),
        _ => Ok(()),
    }
}

/// How many cgroups of `dir`'s subtree say `under_oom 1` in `memory.oom_control` (v1):
/// processes there wait for memory past a limit.
pub(super) fn under_oom(dir: &Path) -> u64 {
    subtree(dir)
        .iter()
        .filter_map(|cgroup| fs::read_to_string(cgroup.join("memory.oom_control")).ok())
        .filter(|text| super::events::count(text, "under_oom").unwrap_or(0) > 0)
        .count() as u64
}

/// The sum of a counter (`events::count`'s `key` in the file `name`) over `dir`'s subtree.
pub(super) fn sum(dir: &Path, name: &str, key: &str) -> Option<u64> {
    let mut total = None;
    for cgroup in subtree(dir) {
        if let Some(count) = fs::read_to_string(cgroup.join(name))
            .ok()
            .and_then(|text| super::events::count(&text, key))
        {
            *total.get_or_insert(0) += count;
        }
    }
    total
}
