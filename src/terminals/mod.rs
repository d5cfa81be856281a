//! Interactive terminals: a program on a pseudo-terminal that a principal drives key by
//! key (`terminal_open`, `terminal_send`, `terminal_read`, `terminal_resize`,
//! `terminal_close`), for REPLs, installers that ask questions, `top`, pagers and editors.
//!
//! A terminal belongs to the principal that opened it: another principal's `terminal_id`
//! is answered exactly like an unknown one ([`TerminalError::NotFound`]). A principal has
//! at most [`TerminalSettings::max_per_principal`] terminals (open, or ended and not yet
//! closed). The program runs through the engine ([`crate::exec::pty`]): the policy's
//! permitted command, its run-as user, the cleared environment, the reaper's watch.
//!
//! One task per terminal reads what the program writes into its [`screen::Screen`] and
//! ends the program's whole session (HUP and TERM, then KILL) on the first of:
//! `terminal_close`, no call on it for [`TerminalSettings::idle_timeout`], the end of the
//! MCP session it was opened in ([`crate::session_ends`]), the revocation of its token
//! (its [`Lease`], audited `ended_by_revocation`), and the server's shutdown. Its
//! `command_finished` record then carries the exit status; an ended terminal's screen
//! stays readable until it is closed or idle for as long again.
//!
//! A terminal whose limits ask for a cgroup runs in one, as a command does: its memory and
//! processes limits bind its whole tree, an OOM ends the whole terminal, and the cgroup is
//! removed when the program ends. A limit the cgroup counted is said while the terminal
//! runs (`terminal_read`: a refused fork) and when it has ended (its [`TerminalExit`], and
//! the `command_finished` record's `limit_hit`, beside the tree's peak memory and CPU time).

pub mod keys;
pub mod screen;

use std::{
    collections::HashMap,
    process::ExitStatus,
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::{Mutex, MutexGuard};
use regex::Regex;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    audit::{AuditContext, AuditEvent, AuditLog, EndedWork},
    auth::Lease,
    exec::{
        BaseEnv, CapturedOutput, CommandSpec, ExecError, ExecOutcome, ResourceLimits, Usage,
        cgroup::CgroupCounters,
        diagnose::{self, LimitHit},
        pty::{self, PtyHandle, PtyProcess, TerminalSize},
        slots::CommandSlot,
    },
};
use screen::{Screen, ScreenView};

/// Time between HUP/TERM and KILL when a terminal is ended.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// How long output is still read after the program exits (what it wrote last).
const DRAIN_LIMIT: Duration = Duration::from_millis(500);
/// Longest a `terminal_close` waits for the program to be gone.
const CLOSE_WAIT_LIMIT: Duration = Duration::from_secs(15);

/// Limits of terminals, from the `[terminals]` config table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalSettings {
    /// Terminals one principal may have at once.
    pub max_per_principal: usize,
    /// A terminal with no call on it for this long is ended.
    pub idle_timeout: Duration,
    /// Scroll-back rows kept per terminal.
    pub scrollback_lines: usize,
}

impl Default for TerminalSettings {
    fn default() -> Self {
        Self {
            max_per_principal: 4,
            idle_timeout: Duration::from_secs(30 * 60),
            scrollback_lines: 10_000,
        }
    }
}

/// The `[terminals]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTerminals {
    pub max_per_principal: Option<usize>,
    pub idle_timeout_secs: Option<u64>,
    pub scrollback_lines: Option<usize>,
}

impl TerminalSettings {
    /// The settings of `file`, defaults where it says nothing.
    pub fn resolve(file: &FileTerminals) -> Result<Self, &'static str> {
        let defaults = Self::default();
        let settings = Self {
            max_per_principal: file.max_per_principal.unwrap_or(defaults.max_per_principal),
            idle_timeout: file
                .idle_timeout_secs
                .map_or(defaults.idle_timeout, Duration::from_secs),
            scrollback_lines: file.scrollback_lines.unwrap_or(defaults.scrollback_lines),
        };
        if settings.idle_timeout.is_zero() {
            return Err("terminals: idle_timeout_secs must be at least 1");
        }
        Ok(settings)
    }
}

/// Why a terminal operation failed. Unknown and foreign terminals are indistinguishable.
#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    #[error("no terminal with id {0:?} (it may have been closed, or ended by its idle timeout)")]
    NotFound(String),
    #[error(
        "you already have {0} terminals, the most allowed: close one with terminal_close first"
    )]
    TooMany(usize),
    #[error("terminal {0} has ended; read its last screen with terminal_read, then close it")]
    Ended(String),
    #[error(transparent)]
    Key(#[from] keys::UnknownKey),
    #[error("cannot type into terminal {id}: {source}")]
    Write { id: String, source: std::io::Error },
    #[error("cannot resize terminal {id}: {source}")]
    Resize { id: String, source: std::io::Error },
    #[error("cannot make a terminal id: {0}")]
    NoRandomness(String),
    #[error(transparent)]
    Start(#[from] ExecError),
}

/// Why a terminal's program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// It exited by itself.
    Exited,
    /// `terminal_close`.
    Closed,
    /// No call on it for the idle timeout.
    IdleTimeout,
    /// The MCP session it was opened in ended.
    SessionEnded,
    /// Its token was revoked.
    Revoked,
    /// The server shut down.
    Shutdown,
}

/// How a terminal's program ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct TerminalExit {
    /// Its exit code, or null when a signal ended it.
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub reason: EndReason,
    /// The resource limit that stopped it or refused it something (`memory`,
    /// `processes`, ...), when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_hit: Option<String>,
    /// What that limit did, in one sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl TerminalExit {
    /// An end with no status known (the program did not go in time).
    fn unknown(reason: EndReason) -> Self {
        Self {
            exit_code: None,
            signal: None,
            reason,
            limit_hit: None,
            hint: None,
        }
    }
}

/// Called once when a terminal's program has ended (or with the reason it could not
/// start), e.g. to audit it.
pub type OnTerminalEnd =
    Box<dyn FnOnce(Result<ExecOutcome, String>) -> futures::future::BoxFuture<'static, ()> + Send>;

/// What opening a terminal needs besides its owner.
pub struct Opening {
    /// The permitted command.
    pub spec: CommandSpec,
    /// The owner's lease: the terminal ends when it does.
    pub lease: Lease,
    /// The MCP session it is opened in, if the transport has sessions.
    pub session: Option<String>,
    /// The command as the caller gave it, for listings.
    pub description: String,
    /// The `command_id` of its `command_started` record.
    pub command_id: String,
    pub size: TerminalSize,
    /// Held until the program ends.
    pub slot: CommandSlot,
    pub on_end: OnTerminalEnd,
}

/// A terminal just opened.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Opened {
    pub terminal_id: String,
    /// The program's pid (also its session and process group id).
    pub pid: u32,
    pub rows: u16,
    pub cols: u16,
}

/// One `terminal_read`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TerminalRead {
    pub terminal_id: String,
    #[serde(flatten)]
    pub view: ScreenView,
    /// Set once the program has ended.
    pub exit: Option<TerminalExit>,
    /// With `wait_for`: whether the pattern was on the screen (or in the new scroll-back)
    /// when the read returned.
    pub matched: Option<bool>,
    /// A resource limit its cgroup has counted against it (a refused fork, an OOM), as in
    /// its `exit` once ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_hit: Option<String>,
    /// What that limit did, in one sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// What a read waits for before it looks, at most `timeout`.
#[derive(Debug, Clone, Default)]
pub struct Wait {
    /// Until this is on the screen or in the new scroll-back.
    pub until: Option<Regex>,
    /// Until the program has written nothing for this long.
    pub settle: Option<Duration>,
    pub timeout: Duration,
}

/// One terminal.
struct Terminal {
    id: String,
    owner: Arc<str>,
    command_id: String,
    handle: PtyHandle,
    close: CancellationToken,
    /// The resource limits it runs under, and its cgroup's counters when it has one.
    limits: ResourceLimits,
    counters: Option<CgroupCounters>,
    state: Mutex<TerminalState>,
    /// Woken on new output and on the end.
    changed: Notify,
}

struct TerminalState {
    screen: Screen,
    exit: Option<TerminalExit>,
    last_call: Instant,
    last_output: Instant,
}

impl Terminal {
    fn lock(&self) -> MutexGuard<'_, TerminalState> {
        self.state.lock()
    }

    /// A call used the terminal: its idle time starts again.
    fn touch(&self) {
        self.lock().last_call = Instant::now();
    }

    /// The limit hit so far: the exit's once ended, else what the cgroup has counted.
    fn limit_hit(&self, exit: Option<&TerminalExit>) -> (Option<String>, Option<String>) {
        if let Some(exit) = exit {
            return (exit.limit_hit.clone(), exit.hint.clone());
        }
        let hit = self
            .counters
            .as_ref()
            .and_then(|counters| diagnose::cgroup_hit(&counters.usage(), &self.limits));
        split(hit)
    }
}

fn split(hit: Option<LimitHit>) -> (Option<String>, Option<String>) {
    hit.map_or((None, None), |hit| {
        (Some(hit.limit.to_owned()), Some(hit.message))
    })
}

/// All terminals of the server.
pub struct TerminalRegistry {
    settings: TerminalSettings,
    base_env: BaseEnv,
    shutdown: CancellationToken,
    terminals: Mutex<HashMap<String, Arc<Terminal>>>,
    audit: AuditLog,
}

impl std::fmt::Debug for TerminalRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalRegistry")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl TerminalRegistry {
    /// A registry whose terminals are all ended when `shutdown` is cancelled.
    pub fn new(
        settings: TerminalSettings,
        base_env: BaseEnv,
        shutdown: CancellationToken,
        audit: AuditLog,
    ) -> Arc<Self> {
        Arc::new(Self {
            settings,
            base_env,
            shutdown,
            terminals: Mutex::default(),
            audit,
        })
    }

    pub fn settings(&self) -> TerminalSettings {
        self.settings
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Terminal>>> {
        self.terminals.lock()
    }

    /// Refuse a principal at its limit before anything is started or recorded.
    pub fn check_room(&self, owner: &str) -> Result<(), TerminalError> {
        self.forget_idle_ended();
        let mine = self.count(owner);
        if mine >= self.settings.max_per_principal {
            return Err(TerminalError::TooMany(mine));
        }
        Ok(())
    }

    fn count(&self, owner: &str) -> usize {
        self.lock()
            .values()
            .filter(|terminal| *terminal.owner == *owner)
            .count()
    }

    /// Start `opening`'s program on a new terminal owned by `owner`.
    pub fn open(self: &Arc<Self>, owner: &str, opening: Opening) -> Result<Opened, TerminalError> {
        let Opening {
            spec,
            lease,
            session,
            description,
            command_id,
            size,
            slot,
            on_end,
        } = opening;
        let limits = spec.confinement().limits;
        let started = new_terminal_id().and_then(|id| {
            let (process, handle) = pty::spawn(spec, &self.base_env, size)?;
            Ok((id, process, handle))
        });
        let (id, mut process, handle) = match started {
            Ok(started) => started,
            Err(error) => {
                let reason = error.to_string();
                tokio::spawn(on_end(Err(reason)));
                return Err(error);
            }
        };
        let now = Instant::now();
        let terminal = Arc::new(Terminal {
            id: id.clone(),
            owner: Arc::from(owner),
            command_id,
            handle,
            close: CancellationToken::new(),
            limits,
            counters: process.cgroup_counters(),
            state: Mutex::new(TerminalState {
                screen: Screen::new(size.rows, size.cols, self.settings.scrollback_lines),
                exit: None,
                last_call: now,
                last_output: now,
            }),
            changed: Notify::new(),
        });
        {
            let mut terminals = self.lock();
            let mine = terminals
                .values()
                .filter(|terminal| *terminal.owner == *owner)
                .count();
            if mine >= self.settings.max_per_principal {
                drop(terminals);
                // Lost a race with another open: the program goes at once.
                tokio::spawn(async move {
                    let _ = process.end(Duration::ZERO).await;
                    process.finish().await;
                    on_end(Err(TerminalError::TooMany(mine).to_string())).await;
                });
                return Err(TerminalError::TooMany(mine));
            }
            terminals.insert(id.clone(), terminal.clone());
        }
        let opened = Opened {
            terminal_id: id,
            pid: process.pid(),
            rows: size.rows,
            cols: size.cols,
        };
        tracing::info!(terminal = %opened.terminal_id, principal = owner, pid = opened.pid, %description, "terminal opened");
        let ends = Ends {
            close: terminal.close.clone(),
            session: session.as_deref().map(crate::session_ends::watch),
            lease,
            shutdown: self.shutdown.clone(),
            idle_timeout: self.settings.idle_timeout,
        };
        let registry = self.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let (status, reason, usage) = drive(&terminal, &mut process, ends, &registry).await;
            drop(slot);
            let outcome = ExecOutcome {
                exit_code: status.as_ref().and_then(ExitStatus::code),
                signal: status
                    .as_ref()
                    .and_then(std::os::unix::process::ExitStatusExt::signal),
                stdout: CapturedOutput::default(),
                stderr: CapturedOutput::default(),
                timed_out: reason == EndReason::IdleTimeout,
                cancelled: !matches!(reason, EndReason::Exited | EndReason::IdleTimeout),
                duration: started.elapsed(),
                usage,
            };
            let exit = ended(&outcome, reason, &terminal.limits);
            {
                let mut state = terminal.lock();
                state.exit = Some(exit.clone());
                state.last_call = Instant::now();
            }
            terminal.changed.notify_waiters();
            tracing::info!(terminal = %terminal.id, principal = %terminal.owner, ?reason, limit_hit = exit.limit_hit.as_deref(), "terminal ended");
            on_end(Ok(outcome)).await;
        });
        Ok(opened)
    }

    fn find(&self, owner: &str, id: &str) -> Result<Arc<Terminal>, TerminalError> {
        self.lock()
            .get(id)
            .filter(|terminal| *terminal.owner == *owner)
            .cloned()
            .ok_or_else(|| TerminalError::NotFound(id.to_owned()))
    }

    /// Whether terminal `id` exists and belongs to someone other than `owner`: for the log
    /// only (the caller is told [`TerminalError::NotFound`] either way).
    pub fn belongs_to_another(&self, owner: &str, id: &str) -> bool {
        self.lock()
            .get(id)
            .is_some_and(|terminal| *terminal.owner != *owner)
    }

    /// Type `text` then `keys` into terminal `id`; returns the bytes sent and the
    /// terminal's `command_id`.
    pub async fn send(
        &self,
        owner: &str,
        id: &str,
        text: &str,
        keys: &[String],
    ) -> Result<(u64, String), TerminalError> {
        let terminal = self.find(owner, id)?;
        let application_cursor = {
            let mut state = terminal.lock();
            if state.exit.is_some() {
                return Err(TerminalError::Ended(id.to_owned()));
            }
            state.last_call = Instant::now();
            state.screen.application_cursor()
        };
        let mut bytes = text.as_bytes().to_vec();
        for key in keys {
            bytes.extend(keys::encode(key, application_cursor)?);
        }
        terminal
            .handle
            .write_all(&bytes)
            .await
            .map_err(|source| TerminalError::Write {
                id: id.to_owned(),
                source,
            })?;
        Ok((bytes.len() as u64, terminal.command_id.clone()))
    }

    /// The screen of terminal `id` and its scroll-back after `since`, once `wait` is met.
    pub async fn read(
        &self,
        owner: &str,
        id: &str,
        since: u64,
        max_lines: usize,
        wait: Wait,
    ) -> Result<TerminalRead, TerminalError> {
        let terminal = self.find(owner, id)?;
        terminal.touch();
        let deadline = tokio::time::Instant::now() + wait.timeout;
        let matched = loop {
            let changed = terminal.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let (view, ended, quiet_for) = {
                let state = terminal.lock();
                (
                    state.screen.view(since, max_lines),
                    state.exit.is_some(),
                    state.last_output.elapsed(),
                )
            };
            let matched = wait.until.as_ref().map(|pattern| {
                pattern.is_match(&view.screen)
                    || view.scrollback.iter().any(|line| pattern.is_match(line))
            });
            let settled = wait.settle.is_none_or(|settle| quiet_for >= settle);
            let done = ended
                || (matched != Some(false)
                    && settled
                    && (wait.until.is_some() || wait.settle.is_some()))
                || (wait.until.is_none() && wait.settle.is_none());
            let now = tokio::time::Instant::now();
            if done || now >= deadline {
                break matched;
            }
            // Wake on output, when the program may have settled, or at the deadline.
            let mut wake = deadline;
            if let Some(settle) = wait.settle {
                wake = wake.min(
                    now + settle
                        .saturating_sub(quiet_for)
                        .max(Duration::from_millis(10)),
                );
            }
            let _ = tokio::time::timeout_at(wake, changed).await;
        };
        terminal.touch();
        let (view, exit) = {
            let state = terminal.lock();
            (state.screen.view(since, max_lines), state.exit.clone())
        };
        let (limit_hit, hint) = terminal.limit_hit(exit.as_ref());
        Ok(TerminalRead {
            terminal_id: id.to_owned(),
            view,
            exit,
            matched,
            limit_hit,
            hint,
        })
    }

    /// Resize terminal `id`: the emulator, and the terminal (SIGWINCH to its program).
    pub fn resize(&self, owner: &str, id: &str, size: TerminalSize) -> Result<(), TerminalError> {
        let terminal = self.find(owner, id)?;
        let mut state = terminal.lock();
        state.last_call = Instant::now();
        if state.exit.is_some() {
            return Err(TerminalError::Ended(id.to_owned()));
        }
        terminal
            .handle
            .resize(size)
            .map_err(|source| TerminalError::Resize {
                id: id.to_owned(),
                source,
            })?;
        state.screen.resize(size.rows, size.cols);
        Ok(())
    }

    /// Close terminal `id`: end its program if it still runs, forget it, and say how it ended.
    pub async fn close(&self, owner: &str, id: &str) -> Result<TerminalExit, TerminalError> {
        let terminal = self.find(owner, id)?;
        terminal.close.cancel();
        let ended = async {
            loop {
                let changed = terminal.changed.notified();
                if let Some(exit) = terminal.lock().exit.clone() {
                    return exit;
                }
                changed.await;
            }
        };
        let exit = tokio::time::timeout(CLOSE_WAIT_LIMIT, ended).await;
        self.lock().remove(id);
        Ok(exit.unwrap_or_else(|_| TerminalExit::unknown(EndReason::Closed)))
    }

    /// Terminals (of all principals) whose program still runs.
    pub fn running(&self) -> usize {
        self.lock()
            .values()
            .filter(|terminal| terminal.lock().exit.is_none())
            .count()
    }

    /// Forget ended terminals nobody has looked at for the idle timeout.
    fn forget_idle_ended(&self) {
        let idle = self.settings.idle_timeout;
        self.lock().retain(|_, terminal| {
            let state = terminal.lock();
            state.exit.is_none() || state.last_call.elapsed() < idle
        });
    }
}

/// What ends a terminal, besides its program exiting.
struct Ends {
    close: CancellationToken,
    session: Option<CancellationToken>,
    lease: Lease,
    shutdown: CancellationToken,
    idle_timeout: Duration,
}

/// How a terminal's program ended, as its `outcome` says, under `limits`.
fn ended(outcome: &ExecOutcome, reason: EndReason, limits: &ResourceLimits) -> TerminalExit {
    let (limit_hit, hint) = split(diagnose::limit_hit(outcome, limits));
    TerminalExit {
        exit_code: outcome.exit_code,
        signal: outcome.signal,
        reason,
        limit_hit,
        hint,
    }
}

/// Read the program's output into the screen until the program ends or something ends it;
/// then what it wrote last, the rest of its session and cgroup killed, and what it used.
async fn drive(
    terminal: &Terminal,
    process: &mut PtyProcess,
    ends: Ends,
    registry: &TerminalRegistry,
) -> (Option<ExitStatus>, EndReason, Option<Usage>) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut eof = false;
    let session_ended = async {
        match &ends.session {
            Some(token) => token.cancelled().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(session_ended);
    let mut idle_check = tokio::time::interval(
        (ends.idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(5)),
    );
    let reason = loop {
        tokio::select! {
            read = terminal.handle.read(&mut buf), if !eof => match read {
                Ok(0) | Err(_) => eof = true,
                Ok(n) => record_output(terminal, &buf[..n]),
            },
            status = process.wait() => {
                let status = status.ok();
                drain(terminal, &mut buf, eof).await;
                let usage = process.finish().await;
                return (status, EndReason::Exited, usage);
            }
            () = ends.close.cancelled() => break EndReason::Closed,
            () = &mut session_ended => break EndReason::SessionEnded,
            () = ends.shutdown.cancelled() => break EndReason::Shutdown,
            revoked = ends.lease.ended() => {
                let context = AuditContext::new().with_principal(&*terminal.owner);
                let event = AuditEvent::EndedByRevocation {
                    ended: EndedWork::Terminal,
                    id: terminal.id.clone(),
                    reason: revoked,
                };
                tracing::warn!(terminal = %terminal.id, principal = %terminal.owner, reason = %revoked, "terminal ended: its token was revoked");
                registry.audit.record_or_log(context, event).await;
                break EndReason::Revoked;
            }
            _ = idle_check.tick() => {
                if terminal.lock().last_call.elapsed() >= ends.idle_timeout {
                    break EndReason::IdleTimeout;
                }
            }
        }
    };
    tracing::debug!(terminal = %terminal.id, ?reason, "ending terminal");
    let status = process.end(KILL_GRACE).await;
    if let Err(error) = &status {
        tracing::warn!(terminal = %terminal.id, %error, "terminal's program did not end cleanly");
    }
    drain(terminal, &mut buf, eof).await;
    let usage = process.finish().await;
    (status.ok(), reason, usage)
}

fn record_output(terminal: &Terminal, bytes: &[u8]) {
    {
        let mut state = terminal.lock();
        state.screen.feed(bytes);
        state.last_output = Instant::now();
    }
    terminal.changed.notify_waiters();
}

/// Read what is left of the output, for at most [`DRAIN_LIMIT`].
async fn drain(terminal: &Terminal, buf: &mut [u8], eof: bool) {
    if eof {
        return;
    }
    let _ = tokio::time::timeout(DRAIN_LIMIT, async {
        while let Ok(n) = terminal.handle.read(buf).await {
            if n == 0 {
                break;
            }
            record_output(terminal, &buf[..n]);
        }
    })
    .await;
}

/// `term_` and 96 random bits in hex: unguessable, so ids leak nothing about other terminals.
fn new_terminal_id() -> Result<String, TerminalError> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|error| TerminalError::NoRandomness(error.to_string()))?;
    Ok(format!("term_{}", hex::encode(bytes)))
}

#[cfg(test)]
mod tests;
