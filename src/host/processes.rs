//! Processes: every process of /proc (not its threads) with owner, state, memory, CPU
//! time and start; a CPU share measured between two readings ([`CpuSampler`]); command
//! line and I/O for the few a caller shows ([`details`]); ancestors and descendants of
//! one pid ([`tree`]).
//!
//! # How the CPU share is measured
//!
//! A share needs two readings of each process's CPU ticks. [`CpuSampler`] keeps the last
//! two readings it took. A call uses the newest one at least [`MIN_WINDOW`] old (and at
//! most [`MAX_BASELINE_AGE`]): the share is then "since an earlier call" and costs no
//! wait. Only when there is none (the first call, or none for ten minutes) does it read
//! twice [`SAMPLE`] apart and wait for it. The window is in the result
//! ([`Sampled::window_ms`]), so a reader knows what the percentages cover. Ticks are
//! 10 ms, hence the 100 ms floor: a shorter window would show shares in steps of 10 %.
//! Processes are matched by pid *and* start time, so a reused pid is a new process.
//!
//! # Reading only what the question needs
//!
//! A listing reads of every process only what its sort and filters need ([`Scan`]), and
//! the rest for the rows it shows ([`Completer`]): by memory, the resident size alone
//! (`/proc/<pid>/statm`, half the kernel's work of `stat`); by pid, nothing but the
//! listing; the owner (a `statx`) and its user name only under a user filter. A reading
//! that skips the stat lines has no CPU ticks to keep as a baseline: the baseline it uses
//! is the last full one, and when that is older than [`REFRESH`] such a call takes a full
//! reading too, so a later listing by CPU still covers a recent window.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use serde::Serialize;

use super::{HostError, proc_dir::ProcDir};

/// The shortest window a share is computed over.
pub const MIN_WINDOW: Duration = Duration::from_millis(100);
/// How long a reading serves as a baseline.
pub const MAX_BASELINE_AGE: Duration = Duration::from_secs(600);
/// The wait between two readings when no baseline serves.
pub const SAMPLE: Duration = Duration::from_millis(150);
/// The age past which a listing that reads no stat lines takes a full reading as well.
pub const REFRESH: Duration = Duration::from_secs(60);

/// What one pass reads of every process; see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    pub each: PerProcess,
    /// The owner (a `statx` of `/proc/<pid>`) and its user name.
    pub owner: bool,
}

/// The part of a process's figures a [`Scan`] reads for every process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerProcess {
    /// The pid only (the /proc listing).
    Pid,
    /// The resident memory (`/proc/<pid>/statm`).
    Memory,
    /// The stat line: parent, state, name, threads, memory, CPU ticks, start.
    Stat,
}

impl Scan {
    /// Everything of a [`ProcessRow`].
    pub const FULL: Self = Self {
        each: PerProcess::Stat,
        owner: true,
    };
}

/// One process as /proc shows it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ProcessRow {
    pub pid: i32,
    /// Parent pid (0 for the kernel's roots).
    pub ppid: i32,
    /// Real user id.
    pub uid: u32,
    /// The user's name, when /etc/passwd (NSS) knows the uid.
    pub user: Option<String>,
    /// State letter as ps shows it: R, S, D, Z, T, t, I, X.
    pub state: String,
    /// The executable's name (`comm`, at most 15 bytes).
    pub name: String,
    pub threads: u32,
    /// Resident memory.
    pub rss_bytes: u64,
    /// User + system CPU time since start, in milliseconds.
    pub cpu_time_ms: u64,
    /// Start time, Unix seconds.
    pub start_time_unix: u64,
    /// CPU share over the sample window in percent of one CPU (a busy process with
    /// several threads can show more than 100). `None` until measured.
    pub cpu_percent: Option<f64>,
    /// Start time in clock ticks after boot: with the pid, identifies the process.
    #[serde(skip)]
    pub start_ticks: u64,
    /// User + system ticks.
    #[serde(skip)]
    pub cpu_ticks: u64,
}

/// The command line and I/O of a process, read only for the processes shown.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct ProcessDetails {
    /// Arguments joined by spaces; empty for kernel threads.
    pub command_line: String,
    /// Bytes read from and written to storage, when /proc/PID/io is readable (own
    /// processes, or the server runs as root).
    pub io_read_bytes: Option<u64>,
    pub io_write_bytes: Option<u64>,
}

/// How many processes (not threads) exist: the numeric entries of /proc, listed again
/// only when a task was created or released since ([`super::process_count`]).
pub fn count() -> Result<usize, HostError> {
    super::process_count::count()
}

/// Processes one reading thread takes at least: below this a second thread costs more
/// to start than it saves.
const PIDS_PER_THREAD: usize = 256;
/// The most threads one reading uses.
const MAX_THREADS: usize = 4;

/// Every process now, in pid order. A process that ends while being read is left out.
///
/// Nearly all of the time is the kernel's, writing each `/proc/<pid>/stat` (measured on
/// this project's 2-CPU VM with 1,066 processes: 4.5-5 ms of `openat`/`read`/`close`
/// and 0.9 ms of `statx` from C, warm), so with many processes the pids are split over
/// up to one thread per CPU ([`MAX_THREADS`] at most, [`PIDS_PER_THREAD`] at least each).
pub fn read_all() -> Result<Vec<ProcessRow>, HostError> {
    scan(Scan::FULL)
}

/// Every process now, in pid order, with what `scan` asks for; the other fields of a row
/// are zero or empty until a [`Completer`] fills them.
pub fn scan(scan: Scan) -> Result<Vec<ProcessRow>, HostError> {
    let reader = RowReader::new(scan)?;
    let pids = reader.proc.pids()?;
    if scan.each == PerProcess::Pid && !scan.owner {
        return Ok(pids.into_iter().map(|pid| reader.bare(pid)).collect());
    }
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let threads = (pids.len() / PIDS_PER_THREAD).clamp(1, cpus.min(MAX_THREADS));
    read_rows(reader, &pids, threads)
}

/// The rows of `pids`, in their order, read by `threads` threads (the calling one too).
fn read_rows(
    mut reader: RowReader,
    pids: &[i32],
    threads: usize,
) -> Result<Vec<ProcessRow>, HostError> {
    if threads <= 1 {
        return Ok(pids.iter().filter_map(|pid| reader.row(*pid)).collect());
    }
    let scan = reader.scan;
    let mut parts = pids.chunks(pids.len().div_ceil(threads).max(1));
    let first = parts.next().unwrap_or_default();
    std::thread::scope(|scope| {
        let others: Vec<_> = parts
            .map(|part| {
                scope.spawn(move || {
                    let mut reader = RowReader::new(scan)?;
                    Ok(part
                        .iter()
                        .filter_map(|pid| reader.row(*pid))
                        .collect::<Vec<_>>())
                })
            })
            .collect();
        let mut rows: Vec<ProcessRow> = first.iter().filter_map(|pid| reader.row(*pid)).collect();
        for other in others {
            let part: Result<Vec<ProcessRow>, HostError> = other
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            rows.extend(part?);
        }
        Ok(rows)
    })
}

/// The process `pid` belongs to: itself for a process, its process for a thread id
/// (`/proc/<tid>` exists too, and `kill(tid)` signals the whole process). `None` when
/// there is no such task.
pub fn thread_group(pid: i32) -> Option<i32> {
    procfs::process::Process::new(pid)
        .ok()?
        .status()
        .ok()
        .map(|status| status.tgid)
}

/// One process by pid, without its CPU share.
pub fn read_one(pid: i32) -> Result<ProcessRow, HostError> {
    RowReader::new(Scan::FULL)?
        .row(pid)
        .ok_or(HostError::NoSuchProcess(pid))
}

/// What turns a /proc/PID into a [`ProcessRow`]: the /proc handle, what to read, the
/// boot time, the clock and page sizes, and the user names looked up so far.
struct RowReader {
    proc: ProcDir,
    scan: Scan,
    boot: u64,
    ticks: u64,
    page: u64,
    users: UserNames,
}

impl RowReader {
    fn new(scan: Scan) -> Result<Self, HostError> {
        Ok(Self {
            proc: ProcDir::open()?,
            scan,
            boot: super::os::boot_time_secs(),
            ticks: procfs::ticks_per_second().max(1),
            page: procfs::page_size(),
            users: UserNames::default(),
        })
    }

    /// The row of `pid` with what the scan asks for; `None` if it ended while being read.
    fn row(&mut self, pid: i32) -> Option<ProcessRow> {
        // /proc has no entry for a pid below 1 (and its path would name another process).
        if pid < 1 {
            return None;
        }
        let mut row = self.bare(pid);
        match self.scan.each {
            PerProcess::Pid => {}
            PerProcess::Memory => row.rss_bytes = self.proc.rss_pages(pid)? * self.page,
            PerProcess::Stat => self.fill_stat(&mut row)?,
        }
        if self.scan.owner {
            self.fill_owner(&mut row)?;
        }
        Some(row)
    }

    /// A row that knows its pid only.
    fn bare(&self, pid: i32) -> ProcessRow {
        ProcessRow {
            pid,
            ppid: 0,
            uid: 0,
            user: None,
            state: String::new(),
            name: String::new(),
            threads: 0,
            rss_bytes: 0,
            cpu_time_ms: 0,
            start_time_unix: 0,
            cpu_percent: None,
            start_ticks: 0,
            cpu_ticks: 0,
        }
    }

    /// The stat line's fields; `None` if the process ended.
    fn fill_stat(&mut self, row: &mut ProcessRow) -> Option<()> {
        let stat = self.proc.stat(row.pid)?;
        row.ppid = stat.ppid;
        row.state = stat.state.to_string();
        row.name = stat.comm;
        row.threads = u32::try_from(stat.num_threads).unwrap_or(0);
        row.rss_bytes = stat.rss_pages.saturating_mul(self.page);
        row.cpu_time_ms = stat.cpu_ticks.saturating_mul(1000) / self.ticks;
        row.start_time_unix = self.boot + stat.start_ticks / self.ticks;
        row.start_ticks = stat.start_ticks;
        row.cpu_ticks = stat.cpu_ticks;
        Some(())
    }

    /// The owner and its name; `None` if the process ended.
    fn fill_owner(&mut self, row: &mut ProcessRow) -> Option<()> {
        row.uid = self.proc.owner(row.pid)?;
        row.user = self.users.name(row.uid);
        Some(())
    }
}

/// Command line and I/O of `pid`; what cannot be read stays empty.
pub fn details(pid: i32) -> ProcessDetails {
    let Ok(process) = procfs::process::Process::new(pid) else {
        return ProcessDetails::default();
    };
    let io = process.io().ok();
    ProcessDetails {
        command_line: process
            .cmdline()
            .map(|args| args.join(" "))
            .unwrap_or_default(),
        io_read_bytes: io.as_ref().map(|io| io.read_bytes),
        io_write_bytes: io.as_ref().map(|io| io.write_bytes),
    }
}

/// Uid to user name, each uid looked up once per reading.
#[derive(Default)]
struct UserNames(HashMap<u32, Option<String>>);

impl UserNames {
    fn name(&mut self, uid: u32) -> Option<String> {
        self.0
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|user| user.name)
            })
            .clone()
    }
}

/// Processes with their CPU share, and what the share covers.
#[derive(Debug)]
pub struct Sampled {
    /// In pid order. Of a scan that reads less than [`Scan::FULL`], the rows hold what it
    /// read (and a CPU share only where it read the stat lines).
    pub processes: Vec<ProcessRow>,
    /// The window the shares cover, in milliseconds.
    pub window_ms: u64,
    /// `true`: the baseline was an earlier call's reading; `false`: this call read twice.
    pub since_earlier_call: bool,
}

/// One reading: each process's CPU ticks, keyed by (pid, start ticks).
#[derive(Debug)]
struct Reading {
    at: Instant,
    ticks: HashMap<(i32, u64), u64>,
}

impl Reading {
    fn of(rows: &[ProcessRow], at: Instant) -> Self {
        Self {
            at,
            ticks: rows
                .iter()
                .map(|row| ((row.pid, row.start_ticks), row.cpu_ticks))
                .collect(),
        }
    }

    /// The share of one CPU, in percent to one decimal, that `row` (its ticks read at
    /// `now`) had since this reading; a process started since counts all its ticks.
    fn share(&self, row: &ProcessRow, now: Instant, ticks_per_second: u64) -> f64 {
        let window_secs = now
            .saturating_duration_since(self.at)
            .as_secs_f64()
            .max(f64::EPSILON);
        let before = self
            .ticks
            .get(&(row.pid, row.start_ticks))
            .copied()
            .unwrap_or(0);
        #[allow(clippy::cast_precision_loss)]
        let seconds = row.cpu_ticks.saturating_sub(before) as f64 / ticks_per_second as f64;
        (seconds / window_secs * 1000.0).round() / 10.0
    }
}

/// The stat lines of every process, no owners: a reading's worth.
const TICKS_ONLY: Scan = Scan {
    each: PerProcess::Stat,
    owner: false,
};

/// Measures CPU shares between readings; see the module doc. One per server.
#[derive(Debug, Default)]
pub struct CpuSampler {
    /// The older and the newer of the last two readings.
    readings: Mutex<(Option<Shared>, Option<Shared>)>,
}

/// A reading a call may still hold while the sampler moves on.
type Shared = Arc<Reading>;

impl CpuSampler {
    /// Every process with its CPU share. Blocks for [`SAMPLE`] when no earlier reading
    /// serves as a baseline: call it off the async runtime.
    pub fn sample(&self) -> Result<Sampled, HostError> {
        self.sample_scan(Scan::FULL).map(|(sampled, _)| sampled)
    }

    /// Every process with what `scan` reads, each with its CPU share where the scan read
    /// the stat lines; the [`Completer`] gives a shown row the rest and its share. Blocks
    /// for [`SAMPLE`] when no earlier reading serves as a baseline: call it off the async
    /// runtime.
    pub fn sample_scan(&self, scan: Scan) -> Result<(Sampled, Completer), HostError> {
        let reads_ticks = scan.each == PerProcess::Stat;
        let mut rows = self::scan(scan)?;
        let mut now = Instant::now();
        let (baseline, since_earlier_call) = if let Some(baseline) = self.baseline(now) {
            (baseline, true)
        } else {
            let first = if reads_ticks {
                Reading::of(&rows, now)
            } else {
                let all = self::scan(TICKS_ONLY)?;
                Reading::of(&all, Instant::now())
            };
            let first = Arc::new(first);
            self.keep(first.clone());
            std::thread::sleep(SAMPLE);
            rows = self::scan(scan)?;
            now = Instant::now();
            (first, false)
        };
        let ticks_per_second = procfs::ticks_per_second().max(1);
        if reads_ticks {
            for row in &mut rows {
                row.cpu_percent = Some(baseline.share(row, now, ticks_per_second));
            }
            self.keep(Arc::new(Reading::of(&rows, now)));
        } else if self.newest_age(now) >= REFRESH {
            let all = self::scan(TICKS_ONLY)?;
            self.keep(Arc::new(Reading::of(&all, Instant::now())));
        }
        let window = now.saturating_duration_since(baseline.at);
        let completer = Completer {
            reader: RowReader::new(Scan::FULL)?,
            scan,
            baseline,
            ticks_per_second,
        };
        Ok((
            Sampled {
                processes: rows,
                window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
                since_earlier_call,
            },
            completer,
        ))
    }

    /// The newest reading at least [`MIN_WINDOW`] and at most [`MAX_BASELINE_AGE`] old.
    fn baseline(&self, now: Instant) -> Option<Arc<Reading>> {
        let usable = |reading: &&Arc<Reading>| {
            let age = now.saturating_duration_since(reading.at);
            (MIN_WINDOW..=MAX_BASELINE_AGE).contains(&age)
        };
        let readings = self.readings.lock();
        readings
            .1
            .as_ref()
            .filter(usable)
            .or(readings.0.as_ref().filter(usable))
            .cloned()
    }

    /// How old the newest reading is (forever without one).
    fn newest_age(&self, now: Instant) -> Duration {
        self.readings
            .lock()
            .1
            .as_ref()
            .map_or(Duration::MAX, |newest| {
                now.saturating_duration_since(newest.at)
            })
    }

    /// Keep `reading` as the newest, the newest so far as the older, unless the newest is
    /// younger than [`MIN_WINDOW`] (then it stays: the next call still finds a baseline
    /// at least that old).
    fn keep(&self, reading: Arc<Reading>) {
        let mut readings = self.readings.lock();
        let newest_is_old = readings
            .1
            .as_ref()
            .is_none_or(|newest| reading.at.saturating_duration_since(newest.at) >= MIN_WINDOW);
        if newest_is_old {
            readings.0 = readings.1.take();
            readings.1 = Some(reading);
        }
    }
}

/// Fills in, for the rows a listing shows, what its [`Scan`] did not read, with their
/// CPU share over the same baseline as the scan's.
pub struct Completer {
    reader: RowReader,
    scan: Scan,
    baseline: Arc<Reading>,
    ticks_per_second: u64,
}

impl Completer {
    /// Complete `row`; `false` when its process ended since the scan.
    pub fn complete(&mut self, row: &mut ProcessRow) -> bool {
        if self.scan.each != PerProcess::Stat {
            if self.reader.fill_stat(row).is_none() {
                return false;
            }
            row.cpu_percent = Some(
                self.baseline
                    .share(row, Instant::now(), self.ticks_per_second),
            );
        }
        self.scan.owner || self.reader.fill_owner(row).is_some()
    }
}

/// A process's ancestors and descendants.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Tree {
    pub process: ProcessRow,
    /// From the parent up to the root (pid 1, or 0's children).
    pub ancestors: Vec<ProcessRow>,
    /// Children first, then their children (breadth first), each with its depth.
    pub descendants: Vec<Descendant>,
    /// Descendants not listed past the cap.
    pub descendants_omitted: u32,
}

/// A process below the one asked for.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Descendant {
    /// 1 for a child, 2 for a grandchild, and so on.
    pub depth: u32,
    #[serde(flatten)]
    pub process: ProcessRow,
}

/// The tree around `pid` among `rows`, at most `max_descendants` below it.
pub fn tree(rows: &[ProcessRow], pid: i32, max_descendants: usize) -> Result<Tree, HostError> {
    let by_pid: HashMap<i32, &ProcessRow> = rows.iter().map(|row| (row.pid, row)).collect();
    let process = *by_pid.get(&pid).ok_or(HostError::NoSuchProcess(pid))?;
    let mut ancestors = Vec::new();
    let mut parent = process.ppid;
    while let Some(row) = by_pid.get(&parent) {
        if ancestors.len() > rows.len() {
            break; // a cycle cannot happen in /proc, but a bounded loop costs nothing
        }
        ancestors.push((*row).clone());
        parent = row.ppid;
    }
    let mut children: HashMap<i32, Vec<&ProcessRow>> = HashMap::new();
    for row in rows {
        children.entry(row.ppid).or_default().push(row);
    }
    let mut descendants = Vec::new();
    let mut omitted = 0_u32;
    let mut level = vec![pid];
    let mut depth = 0;
    while !level.is_empty() {
        depth += 1;
        let mut next = Vec::new();
        for parent in level {
            for child in children.get(&parent).into_iter().flatten() {
                if child.pid == pid {
                    continue;
                }
                next.push(child.pid);
                if descendants.len() < max_descendants {
                    descendants.push(Descendant {
                        depth,
                        process: (*child).clone(),
                    });
                } else {
                    omitted += 1;
                }
            }
        }
        level = next;
    }
    Ok(Tree {
        process: process.clone(),
        ancestors,
        descendants,
        descendants_omitted: omitted,
    })
}

/// The full name of a state letter.
pub fn state_name(state: &str) -> &'static str {
    match state {
        "R" => "running",
        "S" => "sleeping",
        "D" => "waiting on I/O",
        "Z" => "zombie",
        "T" => "stopped",
        "t" => "traced",
        "I" => "idle",
        "X" => "dead",
        "P" => "parked",
        _ => "other",
    }
}

#[cfg(test)]
mod tests;
