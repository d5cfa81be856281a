//! Running one command: checks the working dir, spawns the child in its own process group
//! under the reaper's watch, feeds stdin, captures both streams, and supervises it to the
//! end (timeout, cancellation, the group killed). [`run`] is the engine's one entry.

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{
    BaseEnv, CapturedOutput, CommandSpec, ExecLimits, ExecOutcome, OutputEvent, OutputObserver,
    PIPE_DRAIN_LIMIT,
    cgroup::{self, CommandCgroup},
    output::{OutputBuffer, pump},
    process::{self, Ending, GroupGuard},
    reaper, usage,
};

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
    #[error("could not open a terminal for the command: {0}")]
    Terminal(#[source] io::Error),
    #[error("could not confine the command: {0}")]
    Confine(#[source] super::landlock::RulesetError),
    #[error("could not confine the command: {0}")]
    Cgroup(#[from] super::cgroup::CgroupError),
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
    // Its own cgroup, when its limits need one and the host delegates them.
    let mut cgroup = CommandCgroup::create(
        cgroup::detect::here(),
        &spec.confinement.limits,
        spec.owner.command_id.as_deref(),
    )?;
    let mut cmd = process::command(&spec, base_env, cgroup.as_mut())?;
    cmd.env(reaper::COMMAND_ID_VAR, registration.id());
    if cancel.is_cancelled() {
        return Ok(not_started_cancelled());
    }
    let started = Instant::now();
    let (mut child, mut group) = {
        let _no_sweep_while_spawning = registration.spawn_lock();
        let (child, group) = process::spawn(cmd, spec.program_name())?;
        if let Some(pid) = child.id() {
            registration.set_leader(pid);
        }
        (child, group)
    };
    // Nothing reaps the leader before `supervise` does, so the pid is still its own.
    let watch = child.id().and_then(|pid| {
        usage::ExitWatch::new(pid)
            .inspect_err(|error| tracing::debug!(%error, "no pidfd: usage not reported"))
            .ok()
    });
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
        watch.as_ref(),
        group.group(),
        spec.timeout,
        limits.kill_grace,
        &cancel,
    );
    let ended = run_to_end(
        supervised,
        readers,
        &mut group,
        &mut registration,
        cgroup.as_ref(),
    )
    .await;
    let (status, ending, usage) = ended.map_err(ExecError::Wait)?;
    let mut outcome = outcome(status, ending, stdout, stderr, started.elapsed());
    outcome.usage = match cgroup {
        Some(cgroup) => {
            let counted = cgroup.finish().await;
            usage.map(|usage| usage.with_cgroup(counted))
        }
        None => usage,
    };
    Ok(outcome)
}

/// One `stat`, done in place: `spawn` itself blocks on the same directory lookup.
pub(super) fn check_working_dir(dir: &Path) -> Result<(), ExecError> {
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
/// what is left of the group (and of the cgroup, which holds even the processes that left
/// the group), then lets the readers drain for at most [`PIPE_DRAIN_LIMIT`].
async fn run_to_end(
    supervised: impl Future<Output = io::Result<process::Ended>>,
    readers: impl Future<Output = ()>,
    group: &mut GroupGuard,
    registration: &mut reaper::CommandRegistration,
    cgroup: Option<&CommandCgroup>,
) -> io::Result<process::Ended> {
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
        if let Some(cgroup) = cgroup {
            cgroup.kill_all();
        }
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
        usage: None,
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
        usage: None,
    }
}
