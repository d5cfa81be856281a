//! What a command used: its peak memory and CPU time ([`Usage`]), read from the kernel at
//! the moment it exits and before anyone reaps it, so the numbers are its own and no other
//! command's.
//!
//! How, without racing tokio (which reaps the leader in `Child::wait`): a pidfd of the
//! leader, opened right after the spawn ([`ExitWatch::new`]), becomes readable when the
//! leader exits; then `waitid(P_PIDFD, .., WEXITED | WNOWAIT, &rusage)` reads the zombie's
//! resource usage without reaping it (`WNOWAIT`), and only then does tokio reap it.
//! `getrusage(RUSAGE_CHILDREN)` would mix in every other command the server has reaped.
//!
//! The numbers are `RUSAGE_BOTH` of the leader: its own and those of the descendants it
//! waited for (a shell's children), the peak resident set (`ru_maxrss`, the largest of any
//! one process) and user + system CPU time. A process that left the group, or was never
//! waited for, is not counted.
//!
//! A command that ran in its own cgroup ([`super::cgroup`]) reports the cgroup's peak
//! memory instead: the most its whole tree held at once, page cache included; the cgroup's
//! CPU time where the host accounts it (every process that ran in it, the daemonised and
//! orphaned ones no `wait` counts included); and what the kernel counted against its
//! limits ([`CgroupUsage`]).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use tokio::io::unix::AsyncFd;

use super::cgroup::CgroupUsage;

/// Peak memory and CPU time of a command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// The largest resident set of the leader or a descendant it waited for, in bytes.
    pub peak_memory_bytes: u64,
    /// User plus system CPU time of the leader and the descendants it waited for, or of
    /// its whole cgroup when it ran in one that accounts CPU time.
    pub cpu_time: Duration,
    /// What its cgroup counted, when it ran in one.
    pub cgroup: Option<CgroupUsage>,
}

impl Usage {
    /// This usage with its cgroup's counts, and the cgroup's peak and CPU time (the whole
    /// tree's) in place of the leader's where the cgroup has them.
    #[must_use]
    pub fn with_cgroup(self, counted: CgroupUsage) -> Self {
        Self {
            peak_memory_bytes: counted.peak_memory_bytes.unwrap_or(self.peak_memory_bytes),
            cpu_time: counted.cpu_time.unwrap_or(self.cpu_time),
            cgroup: Some(counted),
        }
    }

    /// `peak memory 12.3 MiB, CPU 0.42 s`.
    pub fn describe(&self) -> String {
        format!(
            "peak memory {}, CPU {:.2} s",
            bytesize::ByteSize::b(self.peak_memory_bytes)
                .display()
                .iec(),
            self.cpu_time.as_secs_f64()
        )
    }
}

/// Watches one spawned, not yet reaped process for its exit.
#[derive(Debug)]
pub(super) struct ExitWatch {
    pidfd: AsyncFd<OwnedFd>,
}

impl ExitWatch {
    /// Call right after the spawn, before anything may reap `pid`.
    pub(super) fn new(pid: u32) -> io::Result<Self> {
        let pid = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .ok_or_else(|| io::Error::other("no such pid"))?;
        let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::NONBLOCK)?;
        #[allow(unsafe_code)]
        // SAFETY: the `OwnedFd` is open, owned by the `AsyncFd` from here on and never
        // replaced or closed while it is (it closes when the watch drops), so its raw fd
        // stays the same open pidfd for the registration's whole life.
        let pidfd =
            unsafe { AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE)? };
        Ok(Self { pidfd })
    }

    /// Waits until the process has exited (it is then a zombie, not reaped) and returns
    /// what it used; `None` if the kernel would not say.
    pub(super) async fn exited(&self) -> Option<Usage> {
        loop {
            let mut ready = self.pidfd.readable().await.ok()?;
            match zombie_usage(self.pidfd.get_ref()) {
                Ok(Some(usage)) => return Some(usage),
                Ok(None) => ready.clear_ready(),
                Err(error) => {
                    tracing::debug!(%error, "waitid on the command's pidfd failed");
                    return None;
                }
            }
        }
    }
}

/// The usage of the exited process behind `pidfd`, leaving it unreaped; `Ok(None)` while
/// it still runs.
fn zombie_usage(pidfd: &OwnedFd) -> io::Result<Option<Usage>> {
    use nix::libc;
    const P_PIDFD: libc::c_long = 3;
    let fd = libc::c_long::from(pidfd.as_raw_fd());
    let options = libc::c_long::from(libc::WEXITED | libc::WNOWAIT | libc::WNOHANG);
    #[allow(unsafe_code)]
    // SAFETY: `waitid` with a rusage pointer (the raw system call's fifth argument, which
    // the libc wrapper lacks) writes one `siginfo_t` and one `rusage` into the two
    // zero-initialized locals, which outlive the call; both are plain C structs for which
    // all-zero bytes are valid values. `WNOWAIT` leaves the process for tokio to reap.
    let (result, info, usage) = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let mut usage: libc::rusage = std::mem::zeroed();
        let result = libc::syscall(
            libc::SYS_waitid,
            P_PIDFD,
            fd,
            &mut info as *mut libc::siginfo_t,
            options,
            &mut usage as *mut libc::rusage,
        );
        (result, info, usage)
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(unsafe_code)]
    // SAFETY: reading `si_pid` of a siginfo_t that `waitid` filled (or left zeroed).
    let pid = unsafe { info.si_pid() };
    if pid == 0 {
        return Ok(None);
    }
    let time = |tv: libc::timeval| {
        Duration::from_secs(u64::try_from(tv.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(tv.tv_usec).unwrap_or(0))
    };
    Ok(Some(Usage {
        // ru_maxrss is in KiB on Linux.
        peak_memory_bytes: u64::try_from(usage.ru_maxrss)
            .unwrap_or(0)
            .saturating_mul(1024),
        cpu_time: time(usage.ru_utime) + time(usage.ru_stime),
        cgroup: None,
    }))
}

#[cfg(test)]
mod tests;
