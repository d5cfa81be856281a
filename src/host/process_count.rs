//! How many processes (not threads) exist, for `host_info`: the numeric entries of /proc,
//! listed again only when a task may have been created or released since the last listing.
//!
//! # Why
//!
//! Listing /proc is the kernel's work, one dentry lookup per process: measured on this
//! project's 2-CPU VM with 1,235 processes, 400 µs a `getdents64` pass from C, more than
//! everything else `host_info` reads together. The kernel keeps no count of processes a
//! reader can get (sysinfo(2)'s `procs` and /proc/loadavg's total are threads). It does
//! keep two counters that together say whether the set of tasks changed, each read in
//! about 3-7 µs:
//!
//! - `forks`: /proc/stat's `processes`, every task (process or thread) ever created on the
//!   host, in every pid namespace. It only grows; every creation adds one.
//! - `threads`: /proc/loadavg's total, the tasks that exist now (`nr_threads`), zombies
//!   included until they are reaped. Only a creation raises it, only a release lowers it.
//!
//! # Why the count cannot be stale
//!
//! A listing is stored with `forks` read first, then `threads`, then the listing; a later
//! call reads `threads` first, then `forks`, and keeps the count only when both equal the
//! stored ones. Equal `forks` means nothing was created from the stored read to the new
//! one, so `threads` could only fall in between; equal `threads` then means nothing was
//! released between the two `threads` reads either. So no task appeared or went away from
//! before the listing to the new `threads` read: the stored count is the count at that
//! moment, which lies within the new call. A process's pid namespace never changes, so
//! the set /proc shows follows the set of tasks.
//!
//! The count is kept only where this holds: both files are the kernel's procfs (not a
//! FUSE view such as lxcfs's, whose figures are refreshed on a timer), the counters are
//! plausible (some task was created; at least as many threads as processes listed: an
//! emulated /proc that prints zeros never keeps a count), and /proc is mounted without
//! `hidepid`, under which a process can leave the caller's view by changing credentials
//! (exec of a set-uid program) with no task created or released. The mount options come
//! from [`super::mount_table`], re-read whenever the kernel marks a mount, unmount or
//! remount.

use parking_lot::Mutex;
use rustix::fs::{Mode, OFlags};

use super::{HostError, proc_dir::ProcDir};

/// The two kernel counters that say whether any task was created or released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskCounters {
    /// Tasks created since boot (/proc/stat `processes`).
    pub forks: u64,
    /// Tasks that exist now (/proc/loadavg's total).
    pub threads: u64,
}

/// Where the counters and the listing come from: the host's /proc, or a test's script.
pub trait TaskSource {
    /// Tasks created since boot; `None` when it cannot be read from the kernel itself.
    fn forks(&mut self) -> Option<u64>;
    /// Tasks that exist now; `None` when it cannot be read from the kernel itself.
    fn threads(&mut self) -> Option<u64>;
    /// Whether /proc lists every process whatever its credentials (no `hidepid`).
    fn lists_everyone(&mut self) -> bool;
    /// List /proc and count its processes.
    fn list(&mut self) -> Result<usize, HostError>;
}

/// The last listing's count and the counters read before it.
pub struct CountCache(Mutex<Option<(TaskCounters, usize)>>);

impl CountCache {
    pub const fn new() -> Self {
        Self(Mutex::new(None))
    }

    /// The number of processes now: the stored one when no task was created or released
    /// since it was listed, else a new listing (stored when the counters allow).
    pub fn count(&self, source: &mut impl TaskSource) -> Result<usize, HostError> {
        // Check order: threads, then forks (see the module's proof).
        let threads = source.threads();
        let forks = source.forks();
        if let (Some(threads), Some(forks)) = (threads, forks)
            && source.lists_everyone()
            && let Some((seen, count)) = *self.0.lock()
            && seen == (TaskCounters { forks, threads })
        {
            return Ok(count);
        }
        // Store order: forks, then threads, then the listing.
        let forks = source.forks();
        let threads = source.threads();
        let everyone = source.lists_everyone();
        let count = source.list()?;
        *self.0.lock() = match (forks, threads) {
            (Some(forks), Some(threads)) if everyone && forks > 0 && threads >= count as u64 => {
                Some((TaskCounters { forks, threads }, count))
            }
            _ => None,
        };
        Ok(count)
    }
}

impl Default for CountCache {
    fn default() -> Self {
        Self::new()
    }
}

/// The number of processes on this host now.
pub fn count() -> Result<usize, HostError> {
    static CACHE: CountCache = CountCache::new();
    CACHE.count(&mut HostProc)
}

/// The host's own /proc.
struct HostProc;

impl TaskSource for HostProc {
    fn forks(&mut self) -> Option<u64> {
        let mut buf = [0_u8; 8192];
        let text = read_procfs("/proc/stat", &mut buf)?;
        text.split(|byte| *byte == b'\n')
            .find_map(|line| line.strip_prefix(b"processes "))
            .and_then(parse_u64)
    }

    fn threads(&mut self) -> Option<u64> {
        let mut buf = [0_u8; 256];
        let text = read_procfs("/proc/loadavg", &mut buf)?;
        loadavg_threads(text)
    }

    fn lists_everyone(&mut self) -> bool {
        super::mount_table::current().is_ok_and(|mounts| proc_lists_everyone(&mounts))
    }

    fn list(&mut self) -> Result<usize, HostError> {
        ProcDir::open()?.count()
    }
}

/// `PROC_SUPER_MAGIC`: the filesystem type of the kernel's procfs.
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// The whole of a procfs file into `buf`; `None` when it cannot be read, does not fit,
/// or the file is not the kernel's procfs.
fn read_procfs<'a>(path: &str, buf: &'a mut [u8]) -> Option<&'a [u8]> {
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let stat = rustix::fs::fstatfs(&fd).ok()?;
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)] // differs by arch
    if i64::from(stat.f_type) != PROC_SUPER_MAGIC {
        return None;
    }
    let mut length = 0;
    loop {
        if length == buf.len() {
            return None;
        }
        match rustix::io::read(&fd, &mut buf[length..]) {
            Ok(0) => return Some(&buf[..length]),
            Ok(read) => length += read,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return None,
        }
    }
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    std::str::from_utf8(digits).ok()?.trim().parse().ok()
}

/// The total of /proc/loadavg's fourth field (`running/total`).
pub fn loadavg_threads(text: &[u8]) -> Option<u64> {
    let field = text.split(|byte| *byte == b' ').nth(3)?;
    let (_, total) = std::str::from_utf8(field).ok()?.split_once('/')?;
    total.parse().ok()
}

/// Whether the `proc` mounted at /proc in `mounts` (the last one mounted there is the
/// one seen) lists every process: no `hidepid` but `0`/`off`. `false` when there is none.
pub fn proc_lists_everyone(mounts: &[procfs::MountEntry]) -> bool {
    let Some(proc) = mounts
        .iter()
        .rev()
        .find(|mount| mount.fs_file == "/proc" && mount.fs_vfstype == "proc")
    else {
        return false;
    };
    match proc.fs_mntops.get("hidepid") {
        None => true,
        Some(value) => matches!(value.as_deref(), Some("0" | "off")),
    }
}

#[cfg(test)]
mod tests;
