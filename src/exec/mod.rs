//! The process engine: runs one command on the host and reports what happened.
//!
//! Owns everything between "this command may run" and "here is what it did": the child's
//! environment (cleared, then an explicit allowlist from the server, then the request's
//! own variables), its own process group, stdin, concurrent bounded capture of stdout and
//! stderr with live chunks for progress, the timeout, cancellation, and killing the whole
//! group (TERM, a grace period, KILL) so nothing the command started outlives the call.
//!
//! It decides nothing: whether a command may run is the policy's business, and turning an
//! [`ExecOutcome`] into a tool result is the tool's.
//!
//! Limits: a process that leaves the group (`setsid`, a daemon) is not killed; the call
//! stops waiting for its pipes after [`PIPE_DRAIN_LIMIT`].

mod output;
mod process;

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::Sender;
use tokio_util::sync::CancellationToken;

pub use output::CapturedOutput;

use output::{OutputBuffer, pump};
use process::{Ending, GroupGuard};

/// `PATH` for commands when the server itself has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The server variables a command inherits (see [`BaseEnv::from_server_env`]). Nothing
/// else from the server's environment (tokens, keys, `HOSTMCP_*`) reaches a command.
pub const INHERITED_VARS: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "TZ", "TMPDIR", "TERM",
];

/// Default [`ExecLimits::max_output_bytes`]: 32 KiB per stream keeps a result well under the
/// ~25,000 tokens at which some clients cut it.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 32 * 1024;

/// Default [`ExecLimits::kill_grace`].
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(2);

/// How long to keep reading after the command's group is gone, for pipes still held open by
/// a process that left the group.
pub const PIPE_DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// A shell script, run by `/bin/sh -c`.
    Shell(String),
    /// A program and its arguments, no shell; `argv[0]` is looked up in the command's
    /// `PATH` unless it contains a `/`.
    Argv(Vec<String>),
}

impl Program {
    /// The name to show for this program in messages: the shell or `argv[0]`.
    pub fn name(&self) -> &str {
        match self {
            Program::Shell(_) => process::SHELL,
            Program::Argv(argv) => argv.first().map_or("", String::as_str),
        }
    }
}

/// One command to run.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    pub program: Program,
    /// Where the command runs; `None` means the server's working directory.
    pub working_dir: Option<PathBuf>,
    /// Variables added on top of the [`BaseEnv`]; later entries win.
    pub env: Vec<(String, String)>,
    /// Bytes written to the command's stdin, which is then closed; `None` means `/dev/null`.
    pub stdin: Option<Vec<u8>>,
    /// Wall-clock limit, after which the command's process group is killed.
    pub timeout: Duration,
}

impl CommandSpec {
    /// A spec with no working directory, extra variables or input.
    pub fn new(program: Program, timeout: Duration) -> Self {
        Self {
            program,
            working_dir: None,
            env: Vec::new(),
            stdin: None,
            timeout,
        }
    }
}

/// Server-wide limits for every command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecLimits {
    /// Bytes kept per stream (half from the start, half from the end); the rest is counted.
    pub max_output_bytes: usize,
    /// Time between SIGTERM and SIGKILL when a command is ended.
    pub kill_grace: Duration,
}

impl Default for ExecLimits {
    fn default() -> Self {
        Self {
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            kill_grace: DEFAULT_KILL_GRACE,
        }
    }
}

/// A chunk of output as it was read, for live progress. Chunks are dropped, not queued, when
/// the observer's channel is full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputEvent {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct ExecOutcome {
    /// The exit code, if the command exited rather than being killed by a signal.
    pub exit_code: Option<i32>,
    /// The signal that killed the command, if one did.
    pub signal: Option<i32>,
    pub stdout: CapturedOutput,
    pub stderr: CapturedOutput,
    /// The command ran past its timeout and its process group was killed.
    pub timed_out: bool,
    /// The caller cancelled the command and its process group was killed.
    pub cancelled: bool,
    /// From just before the spawn to the end of output capture.
    pub duration: Duration,
}

impl ExecOutcome {
    /// Exited with code 0, on time and not cancelled.
    pub fn is_success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out && !self.cancelled
    }

    /// One line saying how the command ended, e.g. "exited with code 3" or
    /// "timed out after 5.0s; killed by signal 15 (SIGTERM)".
    pub fn describe_status(&self) -> String {
        let mut parts = Vec::new();
        if self.timed_out {
            parts.push(format!(
                "timed out after {:.1}s",
                self.duration.as_secs_f64()
            ));
        }
        if self.cancelled {
            parts.push("cancelled".to_owned());
        }
        if let Some(code) = self.exit_code {
            parts.push(format!("exited with code {code}"));
        }
        if let Some(signal) = self.signal {
            parts.push(format!(
                "killed by signal {signal} ({})",
                signal_name(signal)
            ));
        }
        if parts.is_empty() {
            parts.push("did not start".to_owned());
        }
        parts.join("; ")
    }
}

fn signal_name(signal: i32) -> &'static str {
    nix::sys::signal::Signal::try_from(signal).map_or("unknown", |s| s.as_str())
}

/// Why a command could not be run. Messages are written for the model that asked for it.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("working directory {} does not exist", .0.display())]
    WorkingDirNotFound(PathBuf),
    #[error("working directory {} is not a directory", .0.display())]
    WorkingDirNotADirectory(PathBuf),
    #[error("working directory {} cannot be used: {source}", .path.display())]
    WorkingDirInaccessible { path: PathBuf, source: io::Error },
    #[error("argv is empty: give at least the program to run")]
    EmptyArgv,
    #[error("could not start `{program}`: {source}{hint}", hint = spawn_hint(.source))]
    Spawn { program: String, source: io::Error },
    #[error("lost track of the command while waiting for it: {0}")]
    Wait(#[source] io::Error),
}

fn spawn_hint(error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::NotFound => " (no such program in PATH, or a missing script interpreter)",
        io::ErrorKind::PermissionDenied => " (the file is not executable by the server's user)",
        _ => "",
    }
}

/// The environment every command starts from (the server's own environment is never passed
/// on as a whole).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseEnv {
    vars: Vec<(String, String)>,
}

impl BaseEnv {
    /// The [`INHERITED_VARS`] the server has (non-UTF-8 values are skipped), with `PATH`
    /// defaulting to [`DEFAULT_PATH`] when unset or empty and `TERM` to `dumb` when unset.
    pub fn from_server_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`BaseEnv::from_server_env`], reading variables through `lookup` instead.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut env = Self::default();
        for &name in INHERITED_VARS {
            if let Some(value) = lookup(name) {
                env = env.with(name, value);
            }
        }
        if env.get("PATH").is_none_or(str::is_empty) {
            env = env.with("PATH", DEFAULT_PATH);
        }
        if env.get("TERM").is_none() {
            env = env.with("TERM", "dumb");
        }
        env
    }

    /// Sets `key` to `value`, replacing an earlier value.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let (key, value) = (key.into(), value.into());
        match self.vars.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.vars.push((key, value)),
        }
        self
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All variables, in the order they were set.
    pub fn vars(&self) -> &[(String, String)] {
        &self.vars
    }
}

/// Runs one command to completion and reports what it did.
///
/// The command gets a cleared environment plus `base_env` plus `spec.env`, its own process
/// group, and `spec.stdin` (or `/dev/null`). Its stdout and stderr are read while it runs,
/// kept within `limits.max_output_bytes` each, and offered chunk by chunk to `observer`.
/// On timeout or when `cancel` fires, the group gets SIGTERM, then SIGKILL after
/// `limits.kill_grace`. When the leader exits, what is left of its group is killed.
/// Dropping the returned future kills the group too.
///
/// A command that ran is an `Ok`, whatever its exit status; `Err` means it could not be
/// started (or, very rarely, could not be waited for). A `cancel` that has already fired
/// returns a cancelled outcome without starting anything.
pub async fn run(
    spec: CommandSpec,
    limits: &ExecLimits,
    base_env: &BaseEnv,
    cancel: CancellationToken,
    observer: Option<Sender<OutputEvent>>,
) -> Result<ExecOutcome, ExecError> {
    if let Some(dir) = &spec.working_dir {
        check_working_dir(dir)?;
    }
    let cmd = process::command(&spec, base_env)?;
    let started = Instant::now();
    if cancel.is_cancelled() {
        return Ok(not_started_cancelled());
    }
    let (mut child, mut group) = process::spawn(cmd, spec.program.name())?;
    let _stdin_task = process::feed_stdin(child.stdin.take(), spec.stdin);

    let mut stdout = OutputBuffer::new(limits.max_output_bytes);
    let mut stderr = OutputBuffer::new(limits.max_output_bytes);
    let (stdout_pipe, stderr_pipe) = (child.stdout.take(), child.stderr.take());
    let readers = async {
        tokio::join!(
            pump(
                stdout_pipe,
                &mut stdout,
                observer.as_ref(),
                OutputEvent::Stdout
            ),
            pump(
                stderr_pipe,
                &mut stderr,
                observer.as_ref(),
                OutputEvent::Stderr
            ),
        );
    };
    let supervised = process::supervise(
        &mut child,
        group.group(),
        spec.timeout,
        limits.kill_grace,
        &cancel,
    );
    let ended = run_to_end(supervised, readers, &mut group).await;
    let (status, ending) = ended.map_err(ExecError::Wait)?;
    Ok(outcome(status, ending, stdout, stderr, started.elapsed()))
}

/// One `stat`, done in place: `spawn` itself blocks on the same directory lookup.
fn check_working_dir(dir: &Path) -> Result<(), ExecError> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(ExecError::WorkingDirNotADirectory(dir.to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(ExecError::WorkingDirNotFound(dir.to_owned()))
        }
        Err(source) => Err(ExecError::WorkingDirInaccessible {
            path: dir.to_owned(),
            source,
        }),
    }
}

/// Drives the supervisor and the output readers together until the leader is reaped, kills
/// what is left of the group, then lets the readers drain for at most [`PIPE_DRAIN_LIMIT`].
async fn run_to_end(
    supervised: impl Future<Output = io::Result<(ExitStatus, Ending)>>,
    readers: impl Future<Output = ()>,
    group: &mut GroupGuard,
) -> io::Result<(ExitStatus, Ending)> {
    let mut readers = std::pin::pin!(readers);
    let mut supervised = std::pin::pin!(supervised);
    let mut readers_done = false;
    let ended = loop {
        tokio::select! {
            () = &mut readers, if !readers_done => readers_done = true,
            ended = &mut supervised => break ended,
        }
    };
    if ended.is_ok() {
        // The leader is reaped: stragglers such as `sleep 1000 &` go now, with the pipes
        // they hold.
        group.kill_remaining();
    }
    if !readers_done
        && tokio::time::timeout(PIPE_DRAIN_LIMIT, readers)
            .await
            .is_err()
    {
        tracing::warn!(
            "a process outside the command's group still holds its output pipes; output may be incomplete"
        );
    }
    ended
}

fn outcome(
    status: ExitStatus,
    ending: Ending,
    stdout: OutputBuffer,
    stderr: OutputBuffer,
    duration: Duration,
) -> ExecOutcome {
    use std::os::unix::process::ExitStatusExt;
    ExecOutcome {
        exit_code: status.code(),
        signal: status.signal(),
        stdout: stdout.finish(),
        stderr: stderr.finish(),
        timed_out: ending == Ending::TimedOut,
        cancelled: ending == Ending::Cancelled,
        duration,
    }
}

fn not_started_cancelled() -> ExecOutcome {
    ExecOutcome {
        exit_code: None,
        signal: None,
        stdout: CapturedOutput::default(),
        stderr: CapturedOutput::default(),
        timed_out: false,
        cancelled: true,
        duration: Duration::ZERO,
    }
}
