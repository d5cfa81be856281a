//! Orphans: processes a command leaves behind outside its process group (a `setsid`
//! daemon, a double fork) and the zombies of killed grandchildren.
//!
//! [`start`] makes the server a child subreaper (`PR_SET_CHILD_SUBREAPER`), so every
//! orphaned descendant is reparented to the server instead of init. A sweeper then, on
//! SIGCHLD, after each command and every few seconds:
//! - reaps orphans that have exited (never a command leader: tokio owns those);
//! - judges every other orphan ([`judge`]). Each command's environment carries
//!   `HOSTMCP_COMMAND_ID`, a fresh 128-bit random token (not a counter: a command cannot
//!   name another's without reading that command's environment). An orphan is kept only
//!   while it names a running command *and* its real uid is that command's run-as uid;
//!   any other orphan is killed at once: no token, a token that names no running command
//!   (forged, or its command ended), or a token of a command run as another user.
//!
//! What this cannot tell apart: processes of the same uid can read each other's
//! `/proc/PID/environ`, so a command may adopt the token of a running command of the
//! same run-as user and live as long as that command. `docs/security.md` and the
//! start-up warnings say so.
//!
//! Every kill is audited (`orphan_killed`) under the principal of the command the orphan
//! named, when it named one, once [`start`] was given the audit log.
//!
//! Spawns take a shared lock and sweeps an exclusive one, so a sweep never mistakes a
//! just-spawned leader for an orphan.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{
        LazyLock, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use parking_lot::{Mutex, MutexGuard, RwLock, RwLockReadGuard};

use nix::{
    sys::{
        signal::{Signal, kill},
        wait::{WaitPidFlag, waitpid},
    },
    unistd::Pid,
};
use tokio::sync::Notify;

use crate::audit::{AuditContext, AuditEvent, AuditLog, OrphanReason};

/// The variable that marks a command's processes.
pub const COMMAND_ID_VAR: &str = "HOSTMCP_COMMAND_ID";
/// Sweep at least this often, in case a SIGCHLD was coalesced.
const SWEEP_INTERVAL: Duration = Duration::from_secs(2);
/// At most one sweep per this long.
const SWEEP_COALESCE: Duration = Duration::from_millis(50);
/// How many ended commands are remembered, to name the owner of their late orphans.
const ENDED_REMEMBERED: usize = 1024;

/// Who a command belongs to, for the audit record of its orphans.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owner {
    /// The principal (token name) that started the command.
    pub principal: Option<String>,
    /// The audit log's id of the command (`c-N`).
    pub command_id: Option<String>,
}

/// A registered command: who may hold its token.
#[derive(Debug, Clone)]
struct Entry {
    uid: u32,
    owner: Owner,
}

#[derive(Debug, Default)]
struct Live {
    commands: HashMap<u128, Entry>,
    leaders: HashSet<i32>,
    /// Recently ended commands, oldest first, so their orphans' kills name an owner.
    ended: VecDeque<(u128, Owner)>,
}

impl Live {
    fn ended_owner(&self, token: u128) -> Option<&Owner> {
        self.ended
            .iter()
            .rev()
            .find(|(ended, _)| *ended == token)
            .map(|(_, owner)| owner)
    }
}

static LIVE: LazyLock<Mutex<Live>> = LazyLock::new(Mutex::default);
/// Spawns hold it shared from before `spawn` until their leader is in [`LIVE`]; a sweep
/// holds it exclusively, so it never sees a leader it does not know.
static SPAWN_GATE: RwLock<()> = RwLock::new(());
static ENABLED: AtomicBool = AtomicBool::new(false);
static SWEEP_NOW: LazyLock<Notify> = LazyLock::new(Notify::new);
static AUDIT: OnceLock<AuditLog> = OnceLock::new();
/// Orphans whose environment read empty at the last sweep: judged if it still does.
static EMPTY_LAST_SWEEP: LazyLock<Mutex<HashSet<i32>>> = LazyLock::new(Mutex::default);

fn live_write() -> MutexGuard<'static, Live> {
    LIVE.lock()
}

/// A fresh unguessable token. `getrandom` failing means the kernel has no entropy source
/// at all; the server cannot run safely then, and the token must never be predictable.
fn fresh_token() -> u128 {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the kernel's random source is unavailable");
    u128::from_ne_bytes(bytes)
}

/// How a token is written into the environment: 32 lowercase hex digits.
fn format_token(token: u128) -> String {
    format!("{token:032x}")
}

/// The token in an environment value, if it is one (exactly 32 hex digits).
fn parse_token(value: &[u8]) -> Option<u128> {
    if value.len() != 32 || !value.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u128::from_str_radix(std::str::from_utf8(value).ok()?, 16).ok()
}

/// Keeps sweeps out while a command is being spawned and its leader recorded.
#[must_use]
pub struct SpawnGuard(#[allow(dead_code)] RwLockReadGuard<'static, ()>);

/// A running command, registered from before its spawn until it is dropped.
#[derive(Debug)]
pub struct CommandRegistration {
    token: u128,
    leader: Option<i32>,
}

impl CommandRegistration {
    /// Register a command that runs as `uid` on behalf of `owner`.
    pub fn new(uid: u32, owner: Owner) -> Self {
        let token = fresh_token();
        live_write().commands.insert(token, Entry { uid, owner });
        Self {
            token,
            leader: None,
        }
    }

    /// The value of [`COMMAND_ID_VAR`] for this command's environment.
    pub fn id(&self) -> String {
        format_token(self.token)
    }

    /// Hold this across `spawn` and [`Self::set_leader`]: no sweep runs until it is dropped.
    pub fn spawn_lock(&self) -> SpawnGuard {
        SpawnGuard(SPAWN_GATE.read())
    }

    /// Record the leader's pid, under the spawn lock.
    pub fn set_leader(&mut self, pid: u32) {
        if let Ok(pid) = i32::try_from(pid) {
            live_write().leaders.insert(pid);
            self.leader = Some(pid);
        }
    }
}

impl CommandRegistration {
    /// The command has ended (its leader is reaped): from now on its orphans are killed,
    /// without waiting for the drop (which may come after its pipes are drained, and the
    /// orphans hold those pipes). Idempotent.
    pub fn end(&mut self) {
        let mut live = live_write();
        if let Some(entry) = live.commands.remove(&self.token) {
            if live.ended.len() >= ENDED_REMEMBERED {
                live.ended.pop_front();
            }
            live.ended.push_back((self.token, entry.owner));
        }
        if let Some(leader) = self.leader.take() {
            live.leaders.remove(&leader);
        }
        drop(live);
        if ENABLED.load(Ordering::Relaxed) {
            SWEEP_NOW.notify_one();
        }
    }
}

impl Drop for CommandRegistration {
    fn drop(&mut self) {
        self.end();
    }
}

/// Become a child subreaper and start sweeping. Call once, inside the runtime. Kills are
/// audited in `audit` when it is given.
pub fn start(audit: Option<AuditLog>) {
    if let Err(error) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!(%error, "cannot become a child subreaper; daemons started by commands may outlive them");
        return;
    }
    if let Some(audit) = audit {
        let _ = AUDIT.set(audit);
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
            let kills = sweep();
            if let Some(audit) = AUDIT.get() {
                for killed in kills {
                    audit_kill(audit, killed).await;
                }
            }
            // Coalesce: under load every command's exit raises SIGCHLD; a sweep per batch
            // is enough, and keeps spawns from waiting on sweeps.
            tokio::time::sleep(SWEEP_COALESCE).await;
        }
    });
}

async fn audit_kill(audit: &AuditLog, killed: Killed) {
    let mut context = AuditContext::new();
    if let Some(principal) = &killed.owner.principal {
        context = context.with_principal(principal);
    }
    let event = AuditEvent::OrphanKilled {
        pid: killed.pid,
        uid: killed.uid,
        reason: killed.reason,
        command_id: killed.owner.command_id,
    };
    audit.record_or_log(context, event).await;
}

/// An orphan a sweep killed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Killed {
    pub pid: i32,
    pub uid: Option<u32>,
    pub reason: OrphanReason,
    /// The command the orphan named, if it named a running or recently ended one.
    pub owner: Owner,
}

/// What an orphan's environment says about its command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// No [`COMMAND_ID_VAR`] (or an environment that cannot be read).
    Absent,
    /// An environment of zero bytes: `env -i`, or a process caught inside `execve`, whose
    /// environment reads empty for an instant. [`sweep`] looks again once before judging.
    Empty,
    /// A value that is no token the server could have issued.
    Malformed,
    Token(u128),
}

/// Whether an orphan may live: `None` to keep it, else why it dies, with the owner of
/// the command it named (when it named one the server knows).
fn judge(claim: Claim, uid: Option<u32>, live: &Live) -> Option<(OrphanReason, Owner)> {
    let token = match claim {
        Claim::Absent | Claim::Empty => {
            return Some((OrphanReason::NoCommandId, Owner::default()));
        }
        Claim::Malformed => return Some((OrphanReason::UnknownCommandId, Owner::default())),
        Claim::Token(token) => token,
    };
    match live.commands.get(&token) {
        Some(entry) if Some(entry.uid) == uid => None,
        Some(entry) => Some((OrphanReason::WrongUser, entry.owner.clone())),
        None => match live.ended_owner(token) {
            Some(owner) => Some((OrphanReason::CommandEnded, owner.clone())),
            None => Some((OrphanReason::UnknownCommandId, Owner::default())),
        },
    }
}

/// One pass: reap exited orphans, kill the orphans [`judge`] condemns. Returns the kills.
pub fn sweep() -> Vec<Killed> {
    let me = std::process::id();
    let _no_spawns = SPAWN_GATE.write();
    let live = live_write();
    let mut empty_last_sweep = EMPTY_LAST_SWEEP.lock();
    let mut empty_now = HashSet::new();
    let mut kills = Vec::new();
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
        let claim = command_claim_of(pid);
        if claim == Claim::Empty && !empty_last_sweep.contains(&pid) {
            empty_now.insert(pid);
            continue;
        }
        let uid = real_uid_of(pid);
        if let Some((reason, owner)) = judge(claim, uid, &live) {
            tracing::info!(
                pid,
                reason = reason.as_str(),
                command_id = owner.command_id.as_deref(),
                "killing a process left behind by a command"
            );
            if kill(process, Signal::SIGKILL).is_ok() {
                kills.push(Killed {
                    pid,
                    uid,
                    reason,
                    owner,
                });
            }
        }
    }
    *empty_last_sweep = empty_now;
    kills
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

/// The real uid of a process, from /proc/PID/status.
fn real_uid_of(pid: i32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// What a process's environment says about its command.
fn command_claim_of(pid: i32) -> Claim {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return Claim::Absent;
    };
    if environ.is_empty() {
        return Claim::Empty;
    }
    let prefix = format!("{COMMAND_ID_VAR}=");
    match environ
        .split(|byte| *byte == 0)
        .find_map(|entry| entry.strip_prefix(prefix.as_bytes()))
    {
        None => Claim::Absent,
        Some(value) => parse_token(value).map_or(Claim::Malformed, Claim::Token),
    }
}

#[cfg(test)]
mod tests;
