//! cgroup v1's stand-in for v2's `memory.oom.group`: an OOM inside a command's memory
//! cgroup ends the whole command, not just its largest process.
//!
//! v1's OOM killer kills one process (the largest) and lets the rest go on: a shell whose
//! memory hog was killed runs its next line and may exit 0. So on v1 [`OomWatch::arm`]
//! registers an eventfd for `memory.oom_control` (through `cgroup.event_control`) and then
//! turns the kernel's OOM killer off for the cgroup (`memory.oom_control` = 1): a process
//! that needs memory past the limit then waits in the kernel (killably) instead of one of
//! them being killed, the eventfd fires, and the watch's task SIGKILLs every process in the
//! cgroup and in the child cgroups the command made inside it (which inherit the disabled
//! OOM killer: [`super::tree`]), in rounds until none is listed, bounded. No process of the command
//! runs another instruction after the OOM, so none can print "survived" or exit 0.
//!
//! The OOM killer is only turned off once the eventfd is registered and the task that
//! answers it runs; if either cannot be had, the kernel's default (kill the largest) stays.
//! The eventfd also fires when the cgroup is removed: the task tells the two apart by
//! `memory.oom_control` still being there.

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::event::{EventfdFlags, eventfd};
use tokio::io::unix::AsyncFd;
use tokio::task::JoinHandle;

use super::KILL_ROUNDS;

/// The watch on one v1 memory cgroup; dropping it stops the watch (the OOM killer stays
/// off, which is harmless once nothing of the command is left to run).
#[derive(Debug)]
pub(super) struct OomWatch {
    killed: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl OomWatch {
    /// Watch the v1 memory cgroup `dir` (already limited, not yet joined): on an OOM in it,
    /// kill every process in it. Needs a tokio runtime (the watch is one of its tasks).
    pub(super) fn arm(dir: &Path) -> io::Result<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let event = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        let control = File::open(dir.join("memory.oom_control"))?;
        fs::write(
            dir.join("cgroup.event_control"),
            format!("{} {}", event.as_raw_fd(), control.as_raw_fd()),
        )?;
        let event = {
            let _entered = runtime.enter();
            #[allow(unsafe_code)]
            // SAFETY: the `OwnedFd` is moved into the `AsyncFd`, which owns it from here on:
            // nothing else can close or replace it, so its raw fd stays this eventfd for
            // the registration's whole life (it closes when the watch's task ends).
            unsafe {
                AsyncFd::register_with_interest(event, tokio::io::Interest::READABLE)?
            }
        };
        let killed = Arc::new(AtomicU64::new(0));
        let task = runtime.spawn(watch(event, dir.to_owned(), killed.clone()));
        // Only now that an OOM will be answered: no OOM kill of one process, a wait instead.
        if let Err(error) = fs::write(dir.join("memory.oom_control"), "1") {
            task.abort();
            return Err(error);
        }
        Ok(Self { killed, task })
    }

    /// How many processes the watch killed because the command ran out of memory.
    pub(super) fn killed(&self) -> u64 {
        self.killed.load(Ordering::Relaxed)
    }
}

impl Drop for OomWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Wait for the eventfd; on each OOM, kill everything in `dir` and count it in `killed`.
async fn watch(event: AsyncFd<OwnedFd>, dir: PathBuf, killed: Arc<AtomicU64>) {
    loop {
        let Ok(mut ready) = event.readable().await else {
            return;
        };
        let mut count = [0u8; 8];
        if let Err(error) = rustix::io::read(event.get_ref(), &mut count) {
            if error == rustix::io::Errno::AGAIN {
                ready.clear_ready();
                continue;
            }
            tracing::warn!(%error, cgroup = %dir.display(), "reading the OOM eventfd failed");
            return;
        }
        // Removed: the kernel's last word on this cgroup, not an OOM.
        if !dir.join("memory.oom_control").exists() {
            return;
        }
        let ended = kill_everything(&dir);
        // At least the process that waited for memory: it may have been killed otherwise
        // (a timeout) before the listing, and the command still ran out of memory.
        killed.fetch_add(ended.max(1), Ordering::Relaxed);
        tracing::info!(cgroup = %dir.display(), processes = ended, "out of memory: the whole command was killed");
    }
}

/// SIGKILL each process in the cgroup `dir` and in every child cgroup below it until none
/// is listed (at most [`KILL_ROUNDS`] rounds); returns how many different processes were
/// signalled.
pub(super) fn kill_everything(dir: &Path) -> u64 {
    super::tree::kill_subtree(dir, KILL_ROUNDS)
}
