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

pub mod identities;
mod output;
mod process;
pub mod reaper;
pub mod run_as;
pub mod slots;

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;

use crate::policy::Permit;
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

/// One command to run. Outside this module the only way to make one is
/// [`CommandSpec::permitted`], from a policy [`Permit`]: no code path runs a command the
/// policy has not allowed.
#[derive(Debug)]
pub struct CommandSpec {
    program: Program,
    /// Where the command runs; `None` means the server's working directory.
    working_dir: Option<PathBuf>,
    /// Variables added on top of the [`BaseEnv`]; later entries win.
    env: Vec<(String, String)>,
    /// Bytes written to the command's stdin, which is then closed; `None` means `/dev/null`.
    stdin: Option<Vec<u8>>,
    /// Wall-clock limit, after which the command's process group is killed.
    timeout: Duration,
    /// The user the command runs as; `None` for the server's own user.
    user: Option<run_as::RunAsUser>,
    /// Whose command this is, for the audit records of the orphans it leaves.
    owner: reaper::Owner,
}

impl CommandSpec {
    /// The command a permit allows: its resolved program (an absolute path, run as is,
    /// with no PATH lookup), arguments, working directory and environment.
    pub fn permitted(permit: Permit, timeout: Duration, stdin: Option<Vec<u8>>) -> Self {
        let mut argv = Vec::with_capacity(permit.args().len() + 1);
        argv.push(permit.program().to_string_lossy().into_owned());
        argv.extend(permit.args().iter().cloned());
        Self {
            program: Program::Argv(argv),
            working_dir: permit.working_dir().map(PathBuf::from),
            env: permit.env().to_vec(),
            stdin,
            timeout,
            user: None,
            owner: reaper::Owner::default(),
        }
    }

    /// Run as `user`, with its identity variables (HOME, USER, LOGNAME, SHELL) set
    /// before the call's own variables.
    pub fn as_user(mut self, user: run_as::RunAsUser) -> Self {
        let identity = user.env().map(|(name, value)| (name.to_owned(), value));
        self.env.splice(0..0, identity);
        self.user = Some(user);
        self
    }

    /// Name the principal and audit command id its orphans are audited under.
    pub fn owned_by(mut self, owner: reaper::Owner) -> Self {
        self.owner = owner;
        self
    }

    /// The uid the command runs as: its run-as user's, else the server's own.
    fn uid(&self) -> u32 {
        self.user
            .as_ref()
            .map_or_else(nix::unistd::getuid, run_as::RunAsUser::uid)
            .as_raw()
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A spec with no working directory, extra variables or input (tests only: real
    /// commands come from [`Self::permitted`]).
    #[cfg(test)]
    pub(crate) fn new(program: Program, timeout: Duration) -> Self {
        Self {
            program,
            working_dir: None,
            env: Vec::new(),
            stdin: None,
            timeout,
            user: None,
            owner: reaper::Owner::default(),
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

/// A chunk of output as it was read, for live progress or a job's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputEvent {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

/// Receives each chunk of output as it is read. It runs on the reader's task, so it must
/// not block: a slow consumer should drop chunks (as the channel sender does) or buffer.
pub trait OutputObserver: Send + Sync {
    fn observe(&self, event: OutputEvent);

    /// Called once the command is spawned, with its pid, which is also its process group id.
    fn started(&self, _pid: u32) {}
}

/// A channel observer offers a chunk only if the channel has room right now: a slow
/// receiver loses chunks but never slows the child down.
impl OutputObserver for Sender<OutputEvent> {
    fn observe(&self, event: OutputEvent) {
        if let Ok(permit) = self.try_reserve() {
            permit.send(event);
        }
    }
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
    /// "timed out; killed by signal 15 (SIGTERM) after 5.0s".
    pub fn describe_status(&self) -> String {
        let mut parts = Vec::new();
        if self.timed_out {
            parts.push("timed out".to_owned());
        }
        if self.cancelled {
            parts.push("cancelled".to_owned());
        }
        if let Some(code) = self.exit_code {
            parts.push(format!("exited with code {code}"));
        }
        if let Some(signal) = self.signal {
            let name = signal_name(signal);
            parts.push(format!("killed by signal {signal} ({name})"));
        }
        let mut status = parts.join("; ");
        if self.timed_out || self.cancelled {
            status += &format!(" after {:.1}s", self.duration.as_secs_f64());
        }
        status
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
    #[error("lost track of the command: {0}")]
    Wait(#[source] io::Error),
}

fn spawn_hint(error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::NotFound => " (no such program in PATH, or a missing script interpreter)",
        io::ErrorKind::PermissionDenied => {
            " (the program is not executable, or the working directory may not be entered, \
             by the user the command runs as)"
        }
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
    observer: Option<Arc<dyn OutputObserver>>,
) -> Result<ExecOutcome, ExecError> {
    if let Some(dir) = &spec.working_dir {
        check_working_dir(dir)?;
    }
    let mut registration = reaper::CommandRegistration::new(spec.uid(), spec.owner.clone());
    let mut cmd = process::command(&spec, base_env)?;
    cmd.env(reaper::COMMAND_ID_VAR, registration.id());
    if cancel.is_cancelled() {
        return Ok(not_started_cancelled());
    }
    let started = Instant::now();
    let (mut child, mut group) = {
        let _no_sweep_while_spawning = registration.spawn_lock();
        let (child, group) = process::spawn(cmd, spec.program.name())?;
        if let Some(pid) = child.id() {
            registration.set_leader(pid);
        }
        (child, group)
    };
    let _stdin_task = process::feed_stdin(child.stdin.take(), spec.stdin);
    if let (Some(observer), Some(pid)) = (&observer, child.id()) {
        observer.started(pid);
    }

    let mut stdout = OutputBuffer::new(limits.max_output_bytes);
    let mut stderr = OutputBuffer::new(limits.max_output_bytes);
    let (stdout_pipe, stderr_pipe) = (child.stdout.take(), child.stderr.take());
    let observer = observer.as_deref();
    let readers = async {
        tokio::join!(
            pump(stdout_pipe, &mut stdout, observer, OutputEvent::Stdout),
            pump(stderr_pipe, &mut stderr, observer, OutputEvent::Stderr),
        );
    };
    let supervised = process::supervise(
        &mut child,
        group.group(),
        spec.timeout,
        limits.kill_grace,
        &cancel,
    );
    let ended = run_to_end(supervised, readers, &mut group, &mut registration).await;
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
    registration: &mut reaper::CommandRegistration,
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
        // ...and its daemons outside the group, which may hold the pipes too.
        registration.end();
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

/// Helpers shared by the tests of this module and its submodules.
#[cfg(test)]
mod test_support {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    use tokio_util::sync::CancellationToken;

    use super::{BaseEnv, CommandSpec, ExecLimits, ExecOutcome, Program, run};

    /// A shell command with a timeout that no test should reach.
    pub(super) fn sh(script: &str) -> CommandSpec {
        CommandSpec::new(Program::Shell(script.to_owned()), Duration::from_secs(30))
    }

    pub(super) fn limits(max_output_bytes: usize, kill_grace: Duration) -> ExecLimits {
        ExecLimits {
            max_output_bytes,
            kill_grace,
        }
    }

    /// Runs `spec` with default limits, the server's base environment, no cancel, no observer.
    pub(super) async fn run_ok(spec: CommandSpec) -> ExecOutcome {
        run_with(spec, &ExecLimits::default()).await
    }

    pub(super) async fn run_with(spec: CommandSpec, limits: &ExecLimits) -> ExecOutcome {
        run(
            spec,
            limits,
            &BaseEnv::from_server_env(),
            CancellationToken::new(),
            None,
        )
        .await
        .expect("command starts")
    }

    /// The whitespace-separated numbers on the first line of `text`.
    pub(super) fn pids(text: &str) -> Vec<i32> {
        let line = text.lines().next().unwrap_or_default();
        line.split_whitespace()
            .map(|p| {
                p.parse()
                    .unwrap_or_else(|_| panic!("not a pid: {p:?} in {text:?}"))
            })
            .collect()
    }

    /// `/proc/<pid>` exists: the process runs or is a zombie nobody reaped yet.
    pub(super) fn exists(pid: i32) -> bool {
        PathBuf::from(format!("/proc/{pid}")).exists()
    }

    /// The process exists and is not a zombie (a dead grandchild is reaped by init, which
    /// the test does not control).
    pub(super) fn is_running(pid: i32) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next());
        !matches!(state, Some('Z' | 'X') | None)
    }

    /// Polls `gone` until it holds or `within` passes.
    pub(super) async fn eventually(within: Duration, gone: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if gone() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        gone()
    }

    /// A fresh, empty directory under the system temp dir.
    pub(super) fn scratch_dir(name: &str) -> PathBuf {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("hostmcp-exec-{}-{n}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        dir
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::mpsc;
    use tokio_util::sync::CancellationToken;

    use super::test_support::{limits, run_ok, run_with, scratch_dir, sh};
    use super::*;

    fn argv(args: &[&str]) -> CommandSpec {
        let argv = args.iter().map(|a| a.to_string()).collect();
        CommandSpec::new(Program::Argv(argv), Duration::from_secs(30))
    }

    async fn run_env(spec: CommandSpec, base_env: &BaseEnv) -> Result<ExecOutcome, ExecError> {
        run(
            spec,
            &ExecLimits::default(),
            base_env,
            CancellationToken::new(),
            None,
        )
        .await
    }

    /// The lines of `env` output, sorted, without the reaper's marker (checked on its own).
    fn sorted_lines(text: &str) -> Vec<String> {
        let marker = format!("{}=", reaper::COMMAND_ID_VAR);
        let mut lines: Vec<String> = text
            .lines()
            .filter(|line| !line.starts_with(&marker))
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    }

    // --- environment ---

    #[tokio::test]
    async fn each_command_carries_its_own_reaper_marker() {
        let first = run_env(argv(&["/usr/bin/env"]), &BaseEnv::default())
            .await
            .unwrap();
        let second = run_env(argv(&["/usr/bin/env"]), &BaseEnv::default())
            .await
            .unwrap();
        let marker = |text: String| {
            text.lines()
                .find(|line| line.starts_with(reaper::COMMAND_ID_VAR))
                .map(str::to_owned)
                .expect("marker present")
        };
        assert_ne!(
            marker(first.stdout.to_text()),
            marker(second.stdout.to_text())
        );
    }

    #[tokio::test]
    async fn child_env_is_exactly_base_env_then_spec_env() {
        let base = BaseEnv::default().with("A", "base").with("KEEP", "k");
        let mut spec = argv(&["/usr/bin/env"]);
        spec.env = vec![("B".into(), "2".into()), ("A".into(), "spec".into())];
        let out = run_env(spec, &base).await.expect("env runs");
        // Nothing of the test process's own environment (CARGO_*, HOME, ...) shows up.
        assert_eq!(
            sorted_lines(&out.stdout.to_text()),
            ["A=spec", "B=2", "KEEP=k"]
        );
    }

    #[tokio::test]
    async fn server_secret_is_not_inherited_but_allowlisted_vars_are() {
        let server_env = |name: &str| match name {
            "HOSTMCP_TOKEN" => Some("s3cret-token".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("s3cret-key".to_owned()),
            "HOME" => Some("/home/op".to_owned()),
            "PATH" => Some("/usr/bin:/bin".to_owned()),
            _ => None,
        };
        let out = run_env(argv(&["/usr/bin/env"]), &BaseEnv::from_lookup(server_env))
            .await
            .expect("env runs");
        let text = out.stdout.to_text();
        assert!(!text.contains("s3cret"), "secret leaked: {text}");
        assert_eq!(
            sorted_lines(&text),
            ["HOME=/home/op", "PATH=/usr/bin:/bin", "TERM=dumb"]
        );
    }

    #[test]
    fn base_env_from_server_env_holds_only_allowlisted_vars() {
        let env = BaseEnv::from_server_env();
        for (key, _) in env.vars() {
            assert!(
                INHERITED_VARS.contains(&key.as_str()),
                "unexpected variable {key}"
            );
        }
        assert!(env.get("PATH").is_some_and(|p| !p.is_empty()));
    }

    #[test]
    fn base_env_defaults_path_and_term_only_when_missing() {
        let empty = BaseEnv::from_lookup(|_| None);
        assert_eq!(empty.get("PATH"), Some(DEFAULT_PATH));
        assert_eq!(empty.get("TERM"), Some("dumb"));
        assert_eq!(empty.vars().len(), 2);

        let set = BaseEnv::from_lookup(|name| match name {
            "PATH" => Some("/opt/bin".to_owned()),
            "TERM" => Some("xterm".to_owned()),
            _ => None,
        });
        assert_eq!(set.get("PATH"), Some("/opt/bin"));
        assert_eq!(set.get("TERM"), Some("xterm"));

        let empty_path = BaseEnv::from_lookup(|name| (name == "PATH").then(String::new));
        assert_eq!(empty_path.get("PATH"), Some(DEFAULT_PATH));
    }

    #[test]
    fn base_env_with_replaces_an_earlier_value() {
        let env = BaseEnv::default()
            .with("A", "1")
            .with("B", "2")
            .with("A", "3");
        assert_eq!(
            env.vars(),
            [("A".into(), "3".into()), ("B".into(), "2".into())]
        );
    }

    // --- what to run, and where ---

    #[tokio::test]
    async fn argv_program_is_found_through_path_without_a_shell() {
        let out = run_ok(argv(&["echo", "$HOME", "a b"])).await;
        assert_eq!(out.stdout.to_text(), "$HOME a b\n");
        assert!(out.is_success());
    }

    #[tokio::test]
    async fn missing_argv_program_is_a_spawn_error_naming_it() {
        let err = run_env(
            argv(&["hostmcp-no-such-program"]),
            &BaseEnv::from_server_env(),
        )
        .await
        .expect_err("cannot start");
        assert!(
            matches!(&err, ExecError::Spawn { program, source }
                if program == "hostmcp-no-such-program" && source.kind() == io::ErrorKind::NotFound),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("`hostmcp-no-such-program`"), "{message}");
        assert!(message.contains("PATH"), "{message}");
    }

    #[tokio::test]
    async fn empty_argv_is_rejected() {
        let err = run_env(argv(&[]), &BaseEnv::from_server_env())
            .await
            .expect_err("empty");
        assert!(matches!(err, ExecError::EmptyArgv), "{err:?}");
    }

    #[tokio::test]
    async fn command_runs_in_its_working_dir() {
        let dir = scratch_dir("cwd");
        let mut spec = sh("pwd");
        spec.working_dir = Some(dir.clone());
        let out = run_ok(spec).await;
        assert_eq!(
            out.stdout.to_text().trim_end(),
            dir.to_str().expect("utf-8 temp dir")
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn missing_working_dir_is_reported_before_spawning() {
        let dir = scratch_dir("gone");
        let marker = dir.join("ran");
        let missing = dir.join("missing");
        let mut spec = sh(&format!("touch {}", marker.display()));
        spec.working_dir = Some(missing.clone());
        let err = run_env(spec, &BaseEnv::from_server_env())
            .await
            .expect_err("no dir");
        assert!(
            matches!(&err, ExecError::WorkingDirNotFound(p) if *p == missing),
            "{err:?}"
        );
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert!(!marker.exists(), "the command ran anyway");
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn file_as_working_dir_is_not_a_directory() {
        let dir = scratch_dir("file");
        let file = dir.join("plain");
        std::fs::write(&file, b"x").expect("write file");
        let mut spec = sh("true");
        spec.working_dir = Some(file.clone());
        let err = run_env(spec, &BaseEnv::from_server_env())
            .await
            .expect_err("a file");
        assert!(
            matches!(&err, ExecError::WorkingDirNotADirectory(p) if *p == file),
            "{err:?}"
        );
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn unusable_working_dir_path_is_reported_with_the_os_reason() {
        let dir = scratch_dir("under-file");
        let file = dir.join("plain");
        std::fs::write(&file, b"x").expect("write file");
        let mut spec = sh("true");
        spec.working_dir = Some(file.join("sub"));
        let err = run_env(spec, &BaseEnv::from_server_env())
            .await
            .expect_err("bad path");
        assert!(
            matches!(&err, ExecError::WorkingDirInaccessible { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("plain/sub cannot be used"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).ok();
    }

    // --- exit status ---

    #[tokio::test]
    async fn exit_code_is_reported() {
        let out = run_ok(sh("exit 3")).await;
        assert_eq!((out.exit_code, out.signal), (Some(3), None));
        assert!(!out.is_success());
        assert_eq!(out.describe_status(), "exited with code 3");
    }

    #[tokio::test]
    async fn death_by_signal_is_reported() {
        let out = run_ok(sh("kill -9 $$")).await;
        assert_eq!((out.exit_code, out.signal), (None, Some(9)));
        assert!(!out.timed_out && !out.cancelled);
        assert_eq!(out.describe_status(), "killed by signal 9 (SIGKILL)");
    }

    #[tokio::test]
    async fn duration_is_measured() {
        let out = run_ok(sh("sleep 0.3")).await;
        assert!(
            out.duration >= Duration::from_millis(300),
            "{:?}",
            out.duration
        );
        assert!(out.duration < Duration::from_secs(10), "{:?}", out.duration);
    }

    #[tokio::test]
    async fn already_cancelled_call_starts_nothing() {
        let dir = scratch_dir("precancel");
        let marker = dir.join("ran");
        let cancel = CancellationToken::new();
        cancel.cancel();
        let spec = sh(&format!("touch {}", marker.display()));
        let out = run(
            spec,
            &ExecLimits::default(),
            &BaseEnv::from_server_env(),
            cancel,
            None,
        )
        .await
        .expect("not an error");
        assert!(out.cancelled && out.exit_code.is_none());
        assert_eq!(out.describe_status(), "cancelled after 0.0s");
        assert!(!marker.exists(), "the command ran");
        std::fs::remove_dir_all(dir).ok();
    }

    // --- stdin ---

    #[tokio::test]
    async fn stdin_bytes_are_written_then_closed() {
        let mut spec = sh("cat; echo end");
        spec.stdin = Some(b"hello\n".to_vec());
        let out = run_ok(spec).await;
        assert_eq!(out.stdout.to_text(), "hello\nend\n");
    }

    #[tokio::test]
    async fn stdin_is_dev_null_when_not_given_and_a_pipe_when_given() {
        let out = run_ok(sh("readlink /proc/self/fd/0")).await;
        assert_eq!(out.stdout.to_text(), "/dev/null\n");

        let mut spec = sh("readlink /proc/self/fd/0");
        spec.stdin = Some(Vec::new());
        let out = run_ok(spec).await;
        assert!(
            out.stdout.to_text().starts_with("pipe:"),
            "{}",
            out.stdout.to_text()
        );
    }

    #[tokio::test]
    async fn large_stdin_is_delivered_whole() {
        let mut spec = sh("wc -c");
        spec.stdin = Some(vec![b'x'; 1_000_000]);
        let out = run_ok(spec).await;
        assert_eq!(out.stdout.to_text().trim(), "1000000");
    }

    #[tokio::test]
    async fn unread_stdin_does_not_hang_the_call() {
        let mut spec = sh("echo ignored");
        spec.stdin = Some(vec![0; 8 * 1024 * 1024]);
        let out = run_ok(spec).await;
        assert_eq!(out.exit_code, Some(0));
        assert!(out.duration < Duration::from_secs(10), "{:?}", out.duration);
    }

    // --- output ---

    #[tokio::test]
    async fn invalid_utf8_output_is_counted_exactly_and_decoded_lossily() {
        let out = run_ok(sh(r"printf '\377\376'")).await;
        assert_eq!(out.stdout.total_bytes(), 2);
        assert_eq!(out.stdout.head(), b"\xff\xfe");
        assert_eq!(out.stdout.to_text(), "\u{FFFD}\u{FFFD}");
    }

    #[tokio::test]
    async fn huge_output_is_bounded_and_counted() {
        let spec = sh("head -c 200000000 /dev/zero; echo done >&2");
        let out = run_with(spec, &limits(64 * 1024, DEFAULT_KILL_GRACE)).await;
        assert_eq!(out.exit_code, Some(0));
        assert_eq!(out.stdout.total_bytes(), 200_000_000);
        assert!(out.stdout.is_truncated());
        assert_eq!(
            (out.stdout.head().len(), out.stdout.tail().len()),
            (32 * 1024, 32 * 1024)
        );
        assert!(
            out.stdout
                .head()
                .iter()
                .chain(out.stdout.tail())
                .all(|&b| b == 0)
        );
        assert_eq!(out.stderr.to_text(), "done\n");
        assert!(out.duration < Duration::from_secs(10), "{:?}", out.duration);
    }

    #[tokio::test]
    async fn stdout_and_stderr_are_drained_concurrently() {
        // Each stream overflows a pipe buffer while the other is still being written: a
        // reader that drained one stream at a time would deadlock until the timeout.
        let spec = sh(
            "head -c 1000000 /dev/zero >&2; head -c 1000000 /dev/zero; head -c 1000 /dev/zero >&2",
        );
        let out = run_ok(spec).await;
        assert!(!out.timed_out);
        assert_eq!(out.stdout.total_bytes(), 1_000_000);
        assert_eq!(out.stderr.total_bytes(), 1_001_000);
    }

    #[tokio::test]
    async fn observer_receives_chunks_of_each_stream() {
        let (tx, mut rx) = mpsc::channel(64);
        let spec = sh("printf out; printf err >&2");
        let out = run(
            spec,
            &ExecLimits::default(),
            &BaseEnv::from_server_env(),
            CancellationToken::new(),
            Some(Arc::new(tx)),
        )
        .await
        .expect("runs");
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        while let Ok(event) = rx.try_recv() {
            match event {
                OutputEvent::Stdout(bytes) => stdout.extend(bytes),
                OutputEvent::Stderr(bytes) => stderr.extend(bytes),
            }
        }
        assert_eq!(
            (stdout.as_slice(), stderr.as_slice()),
            (&b"out"[..], &b"err"[..])
        );
        assert_eq!(out.stdout.to_text(), "out");
    }

    #[tokio::test]
    async fn full_observer_loses_chunks_but_never_stalls_the_command() {
        let (tx, mut rx) = mpsc::channel(1);
        let spec = sh("head -c 10000000 /dev/zero");
        let out = run(
            spec,
            &ExecLimits::default(),
            &BaseEnv::from_server_env(),
            CancellationToken::new(),
            Some(Arc::new(tx)),
        )
        .await
        .expect("runs");
        assert_eq!(out.stdout.total_bytes(), 10_000_000);
        assert!(matches!(rx.try_recv(), Ok(OutputEvent::Stdout(_))));
        assert!(rx.try_recv().is_err(), "more chunks than the channel holds");
    }

    // --- messages ---

    #[test]
    fn status_description_names_timeout_and_signal() {
        let outcome = ExecOutcome {
            exit_code: None,
            signal: Some(15),
            stdout: CapturedOutput::default(),
            stderr: CapturedOutput::default(),
            timed_out: true,
            cancelled: false,
            duration: Duration::from_millis(5040),
        };
        assert_eq!(
            outcome.describe_status(),
            "timed out; killed by signal 15 (SIGTERM) after 5.0s"
        );
        assert!(!outcome.is_success());
    }
}
