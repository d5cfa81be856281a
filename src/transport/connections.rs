//! Connection accounting: how many HTTP connections are open, in total and per client IP
//! address, and the admission decision at accept. A connection is admitted by taking a
//! [`ConnectionGuard`]; dropping the guard (the connection task ended, whatever the
//! reason) gives the place back, so the counts cannot drift. Also here: the file limit
//! every connection spends a descriptor of, raised at start, and a warning that is
//! logged at a bounded rate however many refusals a flood causes.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use parking_lot::Mutex;

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the server has its maximum of {limit} open connections")]
    Total { limit: usize },
    #[error("the client address has its maximum of {limit} open connections")]
    PerAddress { limit: usize },
}

/// Open connections, in total and per client address.
#[derive(Debug)]
pub struct ConnectionTracker {
    max_total: usize,
    max_per_address: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

impl ConnectionTracker {
    pub fn new(max_total: usize, max_per_address: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_address,
            counts: Mutex::default(),
        })
    }

    /// Admit one more connection from `peer`, or say which cap it would pass.
    /// IPv4-mapped IPv6 addresses count as the IPv4 address they carry.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<ConnectionGuard, Refusal> {
        let address = peer.to_canonical();
        let mut counts = self.counts.lock();
        if counts.total >= self.max_total {
            return Err(Refusal::Total {
                limit: self.max_total,
            });
        }
        let from_address = counts.per_address.entry(address).or_insert(0);
        if *from_address >= self.max_per_address {
            return Err(Refusal::PerAddress {
                limit: self.max_per_address,
            });
        }
        *from_address += 1;
        counts.total += 1;
        Ok(ConnectionGuard {
            tracker: self.clone(),
            address,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.counts.lock().total
    }

    /// Connections open now from `peer`.
    pub fn open_from(&self, peer: IpAddr) -> usize {
        self.counts
            .lock()
            .per_address
            .get(&peer.to_canonical())
            .copied()
            .unwrap_or(0)
    }

    fn release(&self, address: IpAddr) {
        let mut counts = self.counts.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(count) = counts.per_address.get_mut(&address) {
            *count -= 1;
            if *count == 0 {
                counts.per_address.remove(&address);
            }
        }
    }
}

/// One admitted connection; dropping it gives its place back.
#[derive(Debug)]
pub struct ConnectionGuard {
    tracker: Arc<ConnectionTracker>,
    address: IpAddr,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.tracker.release(self.address);
    }
}

/// A warning logged at most once per [`RateLimitedLog::INTERVAL`]; the line says how
/// many were not logged since the previous one.
#[derive(Debug)]
pub struct RateLimitedLog {
    start: Instant,
    /// Milliseconds since `start` before which nothing is logged.
    quiet_until: AtomicU64,
    suppressed: AtomicU64,
}

impl Default for RateLimitedLog {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            quiet_until: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }
}

impl RateLimitedLog {
    pub const INTERVAL: Duration = Duration::from_secs(5);

    /// Call `log` with the count of suppressed events, unless one was logged less than
    /// [`Self::INTERVAL`] ago (then count this one as suppressed). Returns whether it logged.
    pub fn warn(&self, log: impl FnOnce(u64)) -> bool {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let quiet_until = self.quiet_until.load(Ordering::Relaxed);
        let next = now.saturating_add(Self::INTERVAL.as_millis() as u64);
        if now < quiet_until
            || self
                .quiet_until
                .compare_exchange(quiet_until, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        log(self.suppressed.swap(0, Ordering::Relaxed));
        true
    }
}

/// Descriptors kept for everything that is not a connection: listeners, the audit file,
/// and the pipes of running commands (three or four per command).
pub const FD_RESERVE: u64 = 256;

/// The soft file limit before and after [`raise_fd_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    pub before: u64,
    pub after: u64,
}

/// Raise this process's soft `RLIMIT_NOFILE` to its hard limit.
pub fn raise_fd_limit() -> nix::Result<FdLimit> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(FdLimit {
        before: soft,
        after: getrlimit(Resource::RLIMIT_NOFILE)?.0,
    })
}

/// The connection cap that fits in `fd_limit` descriptors with [`FD_RESERVE`] kept aside
/// (at least a quarter of the limit goes to connections on a tiny limit).
pub fn fit_to_fd_limit(max_total: usize, fd_limit: u64) -> usize {
    let for_connections = fd_limit.saturating_sub(FD_RESERVE).max(fd_limit / 4).max(1);
    max_total.min(usize::try_from(for_connections).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests;
