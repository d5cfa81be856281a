//! Running one command on a pseudo-terminal, for the interactive terminals
//! (`crate::terminals`): the engine's own recipe ([`super::process::configured`]: cleared
//! environment, the run-as user, the working directory) with the terminal's end as stdin,
//! stdout and stderr, in a session of its own whose controlling terminal it is, so the
//! line discipline turns Ctrl-C into SIGINT for the foreground job as on a real terminal.
//!
//! Owns the pty pair (opened close-on-exec from the start, so no other command spawned at
//! the same time inherits it), the reaper registration (`HOSTMCP_COMMAND_ID`, as for every
//! command), the command's cgroup when its limits ask for one (as for every command: the
//! memory and processes limits bind the terminal's whole tree, an OOM ends all of it, and
//! the cgroup is removed when the terminal ends), what the program used ([`Usage`]), and
//! ending the whole session: a shell's jobs run in process groups of their own, so a
//! terminal is ended by signalling every process of its session, not one group.
//!
//! The pty comes from nix (`posix_openpt` with `O_CLOEXEC`) rather than a pty crate: the
//! crates (`pty-process`, `portable-pty`) spawn through their own command types, which
//! would bypass this engine's recipe and whatever it adds to every command.

use std::{
    io,
    os::fd::{AsRawFd, OwnedFd},
    process::{ExitStatus, Stdio},
    sync::Arc,
    time::Duration,
};

use nix::{
    errno::Errno,
    fcntl::{FcntlArg, OFlag, fcntl},
    pty,
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use tokio::{io::unix::AsyncFd, process::Child};

use super::{
    BaseEnv, CommandSpec, ExecError,
    cgroup::{self, CgroupCounters, CommandCgroup},
    process::{self, GroupGuard},
    reaper,
    run::check_working_dir,
    usage::{ExitWatch, Usage},
};

/// The `TERM` a terminal's program gets unless the call sets one: what `vt100` renders.
pub const TERMINAL_TYPE: &str = "xterm-256color";

/// How long to wait for the leader after SIGKILL.
const KILL_WAIT_LIMIT: Duration = Duration::from_secs(5);

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalSize {
    pub rows: u16,
    pub cols: u16,
}

/// The program on a terminal: its leader, its session, its reaper registration, and its
/// cgroup. Dropping it before [`PtyProcess::finish`] kills its whole session and cgroup (a
/// runtime shutting down drops the task that drives it).
#[derive(Debug)]
pub struct PtyProcess {
    child: Child,
    session: Pid,
    guard: GroupGuard,
    registration: reaper::CommandRegistration,
    cgroup: Option<CommandCgroup>,
    /// The leader's exit, watched for its usage.
    watch: Option<ExitWatch>,
    /// What the leader used, once it has exited.
    usage: Option<Usage>,
    finished: bool,
}

/// The terminal's end the server holds: what the program writes is read here, what is
/// written here is the program's keyboard. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PtyHandle(Arc<AsyncFd<OwnedFd>>);

/// Start `spec` on a new terminal of `size`.
pub fn spawn(
    spec: CommandSpec,
    base_env: &BaseEnv,
    size: TerminalSize,
) -> Result<(PtyProcess, PtyHandle), ExecError> {
    if let Some(dir) = &spec.working_dir {
        check_working_dir(dir)?;
    }
    let terminal_error = |errno: Errno| ExecError::Terminal(io::Error::from(errno));
    let master = pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(terminal_error)?;
    pty::grantpt(&master).map_err(terminal_error)?;
    pty::unlockpt(&master).map_err(terminal_error)?;
    let name = pty::ptsname_r(&master).map_err(terminal_error)?;
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(terminal_error)?;
    // The terminal is its user's, as a login's is: a program run as another user that
    // opens it again (`/dev/tty`, `tty`) may.
    if let Some(user) = &spec.user
        && nix::unistd::Uid::effective().is_root()
    {
        nix::unistd::fchown(&slave, Some(user.uid()), None).map_err(terminal_error)?;
    }
    let master = OwnedFd::from(master);
    set_size(&master, size).map_err(ExecError::Terminal)?;

    let mut registration = reaper::CommandRegistration::new(spec.uid(), spec.owner.clone());
    let mut cgroup = CommandCgroup::create(
        cgroup::detect::here(),
        &spec.confinement.limits,
        spec.owner.command_id.as_deref(),
    )?;
    let mut cmd = process::configured(&spec, base_env, cgroup.as_mut())?;
    cmd.env(reaper::COMMAND_ID_VAR, registration.id());
    if !spec.env.iter().any(|(name, _)| name == "TERM") {
        cmd.env("TERM", TERMINAL_TYPE);
    }
    let clone = |fd: &OwnedFd| fd.try_clone().map_err(ExecError::Terminal);
    cmd.stdin(Stdio::from(clone(&slave)?))
        .stdout(Stdio::from(clone(&slave)?))
        .stderr(Stdio::from(slave));
    become_session_leader(&mut cmd);
    let (child, guard) = {
        let _no_sweep_while_spawning = registration.spawn_lock();
        // `cmd` (and with it the server's copies of the terminal's end) is dropped here.
        let (child, guard) = process::spawn(cmd, spec.program_name())?;
        if let Some(pid) = child.id() {
            registration.set_leader(pid);
        }
        (child, guard)
    };
    let session = guard.group().0;
    // Nothing reaps the leader before `wait` does, so the pid is still its own.
    let watch = child.id().and_then(|pid| {
        ExitWatch::new(pid)
            .inspect_err(|error| tracing::debug!(%error, "no pidfd: usage not reported"))
            .ok()
    });
    fcntl(&master, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(terminal_error)?;
    #[allow(unsafe_code)]
    // SAFETY: `master` is an `OwnedFd` moved into the `AsyncFd`: nothing else can close it,
    // and it stays the same descriptor until the `AsyncFd` is dropped.
    let master = unsafe { AsyncFd::register(master) }
        .map_err(|error| ExecError::Terminal(io::Error::from(error)))?;
    Ok((
        PtyProcess {
            child,
            session,
            guard,
            registration,
            cgroup,
            watch,
            usage: None,
            finished: false,
        },
        PtyHandle(Arc::new(master)),
    ))
}

/// In the child, before exec: a new session, with the terminal (its stdin) as controlling
/// terminal.
fn become_session_leader(cmd: &mut tokio::process::Command) {
    use std::os::unix::process::CommandExt;
    #[allow(unsafe_code)]
    // SAFETY: between fork and exec the closure makes two system calls (setsid, ioctl),
    // both async-signal-safe, and allocates nothing.
    unsafe {
        cmd.as_std_mut().pre_exec(|| {
            nix::unistd::setsid()?;
            if nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn set_size(fd: &impl AsRawFd, size: TerminalSize) -> io::Result<()> {
    let winsize = nix::libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    #[allow(unsafe_code)]
    // SAFETY: TIOCSWINSZ reads one `winsize`, which lives on the stack for the call.
    let result = unsafe { nix::libc::ioctl(fd.as_raw_fd(), nix::libc::TIOCSWINSZ, &winsize) };
    if result == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl PtyHandle {
    /// Read what the program wrote; `Ok(0)` once no process holds the terminal any more.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut ready = self.0.readable().await?;
            match ready.try_io(|fd| nix::unistd::read(fd.get_ref(), buf).map_err(io::Error::from)) {
                Ok(Err(error)) if error.raw_os_error() == Some(Errno::EIO as i32) => return Ok(0),
                Ok(result) => return result,
                Err(_would_block) => {}
            }
        }
    }

    /// Type `bytes` on the program's keyboard.
    pub async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let mut ready = self.0.writable().await?;
            match ready
                .try_io(|fd| nix::unistd::write(fd.get_ref(), bytes).map_err(io::Error::from))
            {
                Ok(written) => bytes = &bytes[written?..],
                Err(_would_block) => {}
            }
        }
        Ok(())
    }

    /// Tell the terminal (and through SIGWINCH its foreground job) its new size.
    pub fn resize(&self, size: TerminalSize) -> io::Result<()> {
        set_size(self.0.get_ref(), size)
    }
}

impl PtyProcess {
    /// The leader's pid, which is also its session and process group id.
    pub fn pid(&self) -> u32 {
        self.session.as_raw().unsigned_abs()
    }

    /// A reader of the counters of the terminal's cgroup, if it has one.
    pub fn cgroup_counters(&self) -> Option<CgroupCounters> {
        self.cgroup.as_ref().map(CommandCgroup::counters)
    }

    /// Wait for the leader to exit by itself (cancel-safe: nothing is lost when a `select!`
    /// drops it).
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        let (status, usage) = process::wait(&mut self.child, self.watch.as_ref()).await?;
        self.usage = self.usage.or(usage);
        Ok(status)
    }

    /// End the program: SIGHUP and SIGTERM to every process of its session (as when a real
    /// terminal hangs up), up to `grace` for the leader to exit, then SIGKILL to all of them
    /// (and to its whole cgroup, which holds the processes that left the session).
    pub async fn end(&mut self, grace: Duration) -> io::Result<ExitStatus> {
        signal_session(self.session, Signal::SIGHUP);
        signal_session(self.session, Signal::SIGTERM);
        signal_session(self.session, Signal::SIGCONT);
        if let Ok(status) = tokio::time::timeout(grace, self.wait()).await {
            return status;
        }
        signal_session(self.session, Signal::SIGKILL);
        if let Some(cgroup) = &self.cgroup {
            cgroup.kill_all();
        }
        if let Err(error) = self.child.start_kill() {
            tracing::debug!(%error, "SIGKILL to the terminal's leader failed");
        }
        let session = self.session;
        tokio::time::timeout(KILL_WAIT_LIMIT, self.wait())
            .await
            .unwrap_or_else(|_| {
                Err(io::Error::other(format!(
                    "the terminal's program {session} did not exit after SIGKILL and may still be running"
                )))
            })
    }

    /// Once the leader is reaped: kill what is left of its session, group and cgroup, let
    /// the reaper kill its orphans, remove the cgroup, and say what the program used (its
    /// whole tree's, from the cgroup, where it had one).
    pub async fn finish(&mut self) -> Option<Usage> {
        signal_session(self.session, Signal::SIGKILL);
        self.guard.kill_remaining();
        if let Some(cgroup) = &self.cgroup {
            cgroup.kill_all();
        }
        self.registration.end();
        self.finished = true;
        match self.cgroup.take() {
            Some(cgroup) => {
                let counted = cgroup.finish().await;
                self.usage.map(|usage| usage.with_cgroup(counted))
            }
            None => self.usage,
        }
    }
}

impl Drop for PtyProcess {
    fn drop(&mut self) {
        if !self.finished {
            signal_session(self.session, Signal::SIGKILL);
        }
        // The cgroup, if still held, kills what is in it and removes itself as it drops.
    }
}

/// Send `signal` to every process whose session is `session`.
fn signal_session(session: Pid, signal: Signal) {
    for pid in session_members(session) {
        match kill(pid, signal) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(error) => {
                tracing::warn!(%pid, %signal, %error, "cannot signal a terminal's process");
            }
        }
    }
}

/// The processes of `session`, from `/proc`.
pub fn session_members(session: Pid) -> Vec<Pid> {
    let Ok(processes) = procfs::process::all_processes() else {
        return vec![session];
    };
    processes
        .filter_map(Result::ok)
        .filter_map(|process| process.stat().ok())
        .filter(|stat| stat.session == session.as_raw())
        .map(|stat| Pid::from_raw(stat.pid))
        .collect()
}

#[cfg(test)]
mod tests;
