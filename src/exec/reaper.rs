//! Orphans: processes a command leaves behind outside its process group (a `setsid`
//! daemon, a double fork) and the zombies of killed grandchildren.
//!
//! [`start`] makes the server a child subreaper (`PR_SET_CHILD_SUBREAPER`), so every
//! orphaned descendant is reparented to the server instead of init. A sweeper then, on
//! SIGCHLD, after each command and every few seconds:
//! - reaps orphans that have exited (never a command leader: tokio owns those);
//! - kills orphans whose command has ended. A command's processes carry
//!   `HOSTMCP_COMMAND_ID` in their environment; an orphan whose id is not a running
//!   command is killed. An orphan without the variable (it cleared its environment) is
//!   killed as soon as no command is running.
//!
//! Spawns take a shared lock and sweeps an exclusive one, so a sweep never mistakes a
//! just-spawned leader for an orphan.

use std::{
    collections::HashSet,
    sync::{
        LazyLock, Mutex, RwLock, RwLockReadGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use nix::{
    sys::{
        signal::{Signal, kill},
        wait::{WaitPidFlag, waitpid},
    },
    unistd::Pid,
};
use tokio::sync::Notify;

/// The variable that marks a command's processes.
pub const COMMAND_ID_VAR: &str = "HOSTMCP_COMMAND_ID";
/// Sweep at least this often, in case a SIGCHLD was coalesced.
const SWEEP_INTERVAL: Duration = Duration::from_secs(2);
/// At most one sweep per this long.
const SWEEP_COALESCE: Duration = Duration::from_millis(50);

#[derive(Debug, Default)]
struct Live {
    commands: HashSet<u64>,
    leaders: HashSet<i32>,
}

static LIVE: LazyLock<Mutex<Live>> = LazyLock::new(Mutex::default);
/// Spawns hold it shared from before `spawn` until their leader is in [`LIVE`]; a sweep
/// holds it exclusively, so it never sees a leader it does not know.
static SPAWN_GATE: RwLock<()> = RwLock::new(());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static ENABLED: AtomicBool = AtomicBool::new(false);
static SWEEP_NOW: LazyLock<Notify> = LazyLock::new(Notify::new);

fn live_write() -> std::sync::MutexGuard<'static, Live> {
    // Every update is one insert or remove; a poisoned lock is still consistent.
    LIVE.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// Keeps sweeps out while a command is being spawned and its leader recorded.
#[must_use]
pub struct SpawnGuard(#[allow(dead_code)] RwLockReadGuard<'static, ()>);

/// A running command, registered from before its spawn until it is dropped.
#[derive(Debug)]
pub struct CommandRegistration {
    id: u64,
    leader: Option<i32>,
}

impl CommandRegistration {
    pub fn new() -> Self {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        live_write().commands.insert(id);
        Self { id, leader: None }
    }

    /// The value of [`COMMAND_ID_VAR`] for this command's environment.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Hold this across `spawn` and [`Self::set_leader`]: no sweep runs until it is dropped.
    pub fn spawn_lock(&self) -> SpawnGuard {
        SpawnGuard(
            SPAWN_GATE
                .read()
                .unwrap_or_else(|poison| poison.into_inner()),
        )
    }

    /// Record the leader's pid, under the spawn lock.
    pub fn set_leader(&mut self, pid: u32) {
        if let Ok(pid) = i32::try_from(pid) {
            live_write().leaders.insert(pid);
            self.leader = Some(pid);
        }
    }
}

impl Default for CommandRegistration {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for CommandRegistration {
    fn drop(&mut self) {
        let mut live = live_write();
        live.commands.remove(&self.id);
        if let Some(leader) = self.leader {
            live.leaders.remove(&leader);
        }
        drop(live);
        if ENABLED.load(Ordering::Relaxed) {
            SWEEP_NOW.notify_one();
        }
    }
}

/// Become a child subreaper and start sweeping. Call once, inside the runtime.
pub fn start() {
    if let Err(error) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!(%error, "cannot become a child subreaper; daemons started by commands may outlive them");
        return;
    }
    ENABLED.store(true, Ordering::Relaxed);
    tokio::spawn(async {
        let mut sigchld =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child()).ok();
        loop {
            tokio::select! {
                _ = async { match &mut sigchld { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
                () = SWEEP_NOW.notified() => {}
                () = tokio::time::sleep(SWEEP_INTERVAL) => {}
            }
            sweep();
            // Coalesce: under load every command's exit raises SIGCHLD; a sweep per batch
            // is enough, and keeps spawns from waiting on sweeps.
            tokio::time::sleep(SWEEP_COALESCE).await;
        }
    });
}

/// One pass: reap exited orphans, kill orphans of ended commands.
pub fn sweep() {
    let me = std::process::id();
    let _no_spawns = SPAWN_GATE
        .write()
        .unwrap_or_else(|poison| poison.into_inner());
    let live = live_write();
    for pid in children_of(me) {
        if live.leaders.contains(&pid) {
            continue;
        }
        let Some(state) = process_state(pid) else {
            continue;
        };
        let process = Pid::from_raw(pid);
        if state == 'Z' {
            let _ = waitpid(process, Some(WaitPidFlag::WNOHANG));
            continue;
        }
        let orphan_of_ended_command = match command_id_of(pid) {
            Some(id) => !live.commands.contains(&id),
            None => live.commands.is_empty(),
        };
        if orphan_of_ended_command {
            tracing::info!(pid, "killing a process left behind by a finished command");
            let _ = kill(process, Signal::SIGKILL);
        }
    }
}

/// Pids whose parent is `parent` (this process): from each thread's `children` file,
/// which is cheap, else from a scan of /proc.
fn children_of(parent: u32) -> Vec<i32> {
    if let Some(children) = children_from_task_files() {
        return children;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| parent_of(*pid) == Some(parent))
        .collect()
}

fn children_from_task_files() -> Option<Vec<i32>> {
    let mut children = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let text = std::fs::read_to_string(task.ok()?.path().join("children")).ok()?;
        children.extend(
            text.split_whitespace()
                .filter_map(|pid| pid.parse::<i32>().ok()),
        );
    }
    Some(children)
}

/// `(state, ppid)` from /proc/PID/stat; the command name may contain spaces and parens.
fn stat_fields(pid: i32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = stat.rsplit_once(')')?.1.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((state, ppid))
}

fn parent_of(pid: i32) -> Option<u32> {
    stat_fields(pid).map(|(_, ppid)| ppid)
}

fn process_state(pid: i32) -> Option<char> {
    stat_fields(pid).map(|(state, _)| state)
}

fn command_id_of(pid: i32) -> Option<u64> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{COMMAND_ID_VAR}=");
    environ
        .split(|byte| *byte == 0)
        .find_map(|entry| entry.strip_prefix(prefix.as_bytes()))
        .and_then(|value| std::str::from_utf8(value).ok()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_odd_command_names() {
        let (state, ppid) = stat_fields(std::process::id() as i32).unwrap();
        assert!(matches!(state, 'R' | 'S'));
        assert_eq!(ppid, nix::unistd::getppid().as_raw() as u32);
    }

    #[test]
    fn registrations_are_unique_and_leave_no_trace() {
        let first = CommandRegistration::new();
        let second = CommandRegistration::new();
        assert_ne!(first.id(), second.id());
        let id = first.id();
        drop(first);
        assert!(!live_write().commands.contains(&id));
    }
}
