//! Reading many `/proc/<pid>` entries in one pass, cheaply: one handle on `/proc` for the
//! pass, every file opened relative to it (`openat`, the path formatted on the stack), one
//! reused buffer, the pid listing read by `getdents64` into one 64 KiB buffer (a single
//! call for about 2,000 processes), and of `/proc/<pid>/stat` only the fields the readers
//! use. What the process readers ([`super::processes`]) and the socket owner walk
//! ([`super::sockets`]) share.
//!
//! `/proc/<pid>/statm` ([`ProcDir::rss_pages`]) gives the resident memory alone at about
//! half the kernel's cost of `stat` (measured from C on this project's 2-CPU VM, 1,100
//! processes: 3.4 ms against 6.7 ms of CPU a pass): what a listing by memory reads of
//! every process.
//!
//! # Why not `procfs::process::all_processes()` here
//!
//! Measured with `strace -c` on 1,124 processes: procfs opens each `/proc/<pid>` as a
//! directory, checks it, then opens `stat` by a second path and parses all 52 of its
//! fields — 11 system calls a process (`openat`, `read`, `close`, `fcntl` twice each,
//! `fstat`, `statx`, `lseek`). Here a process costs four (`openat`, `read`, `close` of
//! `<pid>/stat` and a `statx` of `<pid>` for its owner) and the parse picks 8 fields.
//! procfs stays the reader of everything read once a call (meminfo, mounts, /proc/net).

use std::{ffi::CStr, os::fd::OwnedFd};

use rustix::fs::{AtFlags, Dir, Mode, OFlags, RawDir};

use super::HostError;

/// `/proc/<pid>/stat` is one line of at most about 1,100 bytes (52 numbers and a
/// 16-byte name); a read of this size gets it whole.
const STAT_BUF: usize = 4096;

/// The `getdents64` buffer of a /proc listing: a pid's entry takes 24-32 bytes.
const LISTING_BUF: usize = 64 << 10;

/// `<pid>` or `<pid>/<file>` relative to /proc, NUL-terminated on the stack: no allocation
/// per process.
struct PidPath {
    bytes: [u8; 48],
    length: usize,
}

impl PidPath {
    /// `pid` followed by `suffix` (empty, or `/stat` and the like; at most 24 bytes).
    fn new(pid: i32, suffix: &[u8]) -> Self {
        let mut path = Self {
            bytes: [0; 48],
            length: 0,
        };
        let mut digits = [0_u8; 12];
        let mut start = digits.len();
        let mut rest = pid.unsigned_abs();
        loop {
            start -= 1;
            digits[start] = b'0' + u8::try_from(rest % 10).unwrap_or(0);
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        let suffix = &suffix[..suffix.len().min(24)];
        for part in [&digits[start..], suffix] {
            path.bytes[path.length..path.length + part.len()].copy_from_slice(part);
            path.length += part.len();
        }
        path
    }

    fn as_c_str(&self) -> &CStr {
        // The array is zeroed past `length` and a pid's digits hold no NUL.
        CStr::from_bytes_until_nul(&self.bytes).unwrap_or_default()
    }
}

/// The fields of `/proc/<pid>/stat` the readers use (proc_pid_stat(5) numbering).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatLine {
    /// (1) pid.
    pub pid: i32,
    /// (2) comm, without its parentheses; lossy where it is not UTF-8.
    pub comm: String,
    /// (3) state letter.
    pub state: char,
    /// (4) parent pid.
    pub ppid: i32,
    /// (14) + (15) user and system time, in clock ticks.
    pub cpu_ticks: u64,
    /// (20) threads.
    pub num_threads: i64,
    /// (22) start time, clock ticks after boot.
    pub start_ticks: u64,
    /// (24) resident set, in pages.
    pub rss_pages: u64,
}

/// Parse one `/proc/<pid>/stat` line. The name is between the first `(` and the last
/// `)` (a name may itself hold spaces and parentheses); the fields after it are numbers
/// separated by single spaces. `None` for a line that is not one.
pub fn parse_stat(line: &[u8]) -> Option<StatLine> {
    let open = line.iter().position(|byte| *byte == b'(')?;
    let close = line.iter().rposition(|byte| *byte == b')')?;
    if close < open {
        return None;
    }
    let pid = std::str::from_utf8(&line[..open])
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let comm = String::from_utf8_lossy(&line[open + 1..close]).into_owned();
    let rest = std::str::from_utf8(&line[close + 1..]).ok()?;
    // fields[0] is field (3), so field (n) is fields[n - 3].
    let mut fields = rest.split_ascii_whitespace();
    let mut next = |skip: usize| fields.nth(skip);
    let state = next(0)?.chars().next()?;
    let ppid = next(0)?.parse().ok()?;
    let utime: u64 = next(14 - 5)?.parse().ok()?;
    let stime: u64 = next(0)?.parse().ok()?;
    let num_threads = next(20 - 16)?.parse().ok()?;
    let start_ticks = next(22 - 21)?.parse().ok()?;
    let rss_pages: i64 = next(24 - 23)?.parse().ok()?;
    Some(StatLine {
        pid,
        comm,
        state,
        ppid,
        cpu_ticks: utime.saturating_add(stime),
        num_threads,
        start_ticks,
        rss_pages: u64::try_from(rss_pages).unwrap_or(0),
    })
}

/// A handle on `/proc` for one pass over its processes.
pub struct ProcDir {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl ProcDir {
    /// Open `/proc`.
    pub fn open() -> Result<Self, HostError> {
        let fd = rustix::fs::open(
            "/proc",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| HostError::io("/proc")(errno.into()))?;
        Ok(Self {
            fd,
            buf: vec![0; STAT_BUF],
        })
    }

    /// The pids of every process now (the numeric entries of /proc; threads are not
    /// listed there), in the kernel's order (ascending).
    pub fn pids(&self) -> Result<Vec<i32>, HostError> {
        let mut pids = Vec::with_capacity(1024);
        self.each_pid(|pid| pids.push(pid))?;
        Ok(pids)
    }

    /// How many processes exist now: [`Self::pids`] counted, without keeping them.
    pub fn count(&self) -> Result<usize, HostError> {
        let mut count = 0;
        self.each_pid(|_| count += 1)?;
        Ok(count)
    }

    /// Call `found` with each pid of /proc, read with `getdents64` into one large buffer.
    fn each_pid(&self, mut found: impl FnMut(i32)) -> Result<(), HostError> {
        let listing = rustix::fs::openat(
            &self.fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| HostError::io("/proc")(errno.into()))?;
        let mut buf: Vec<u8> = Vec::with_capacity(LISTING_BUF);
        let mut entries = RawDir::new(&listing, buf.spare_capacity_mut());
        while let Some(entry) = entries.next() {
            let entry = entry.map_err(|errno| HostError::io("/proc")(errno.into()))?;
            if let Some(pid) = pid_of(entry.file_name().to_bytes()) {
                found(pid);
            }
        }
        Ok(())
    }

    /// The stat line of `pid`; `None` when it ended (or never was).
    pub fn stat(&mut self, pid: i32) -> Option<StatLine> {
        let length = self.read(pid, b"/stat")?;
        parse_stat(&self.buf[..length])
    }

    /// The resident memory of `pid` in pages (the second field of `/proc/<pid>/statm`,
    /// the same count as stat's field 24); `None` when it ended.
    pub fn rss_pages(&mut self, pid: i32) -> Option<u64> {
        let length = self.read(pid, b"/statm")?;
        parse_statm_rss(&self.buf[..length])
    }

    /// Read `/proc/<pid><file>` into the buffer; its length.
    fn read(&mut self, pid: i32, file: &[u8]) -> Option<usize> {
        let file = rustix::fs::openat(
            &self.fd,
            PidPath::new(pid, file).as_c_str(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        rustix::io::read(&file, &mut self.buf[..]).ok()
    }

    /// The owner of `/proc/<pid>` (the process's effective uid, or root for a process
    /// that made itself undumpable), as `procfs::process::Process::uid` reads it.
    pub fn owner(&self, pid: i32) -> Option<u32> {
        rustix::fs::statat(
            &self.fd,
            PidPath::new(pid, b"").as_c_str(),
            AtFlags::empty(),
        )
        .ok()
        .map(|stat| stat.st_uid)
    }

    /// The socket inodes among the open files of `pid` (the `socket:[INODE]` links of
    /// `/proc/<pid>/fd`), or nothing when they cannot be read (another user's process
    /// and this server not root, or the process ended).
    pub fn socket_inodes(&mut self, pid: i32) -> Vec<u64> {
        let Ok(fds) = rustix::fs::openat(
            &self.fd,
            format!("{pid}/fd"),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            return Vec::new();
        };
        let Ok(listing) = Dir::new(fds) else {
            return Vec::new();
        };
        let mut inodes = Vec::new();
        for entry in listing.filter_map(Result::ok) {
            let name = entry.file_name().to_bytes();
            if name.first() == Some(&b'.') {
                continue;
            }
            // Relative to /proc: the listing owns the fd directory's handle.
            let mut path = format!("{pid}/fd/").into_bytes();
            path.extend_from_slice(name);
            if let Ok(length) = rustix::fs::readlinkat_raw(&self.fd, path, &mut self.buf[..])
                && let Some(inode) = socket_inode(&self.buf[..length])
            {
                inodes.push(inode);
            }
        }
        inodes
    }
}

/// The second number of a statm line (`size resident shared text lib data dt`).
fn parse_statm_rss(line: &[u8]) -> Option<u64> {
    let line = std::str::from_utf8(line).ok()?;
    line.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// `socket:[12345]` to 12345.
fn socket_inode(link: &[u8]) -> Option<u64> {
    let inner = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(inner).ok()?.parse().ok()
}

/// A /proc entry name that is a pid.
fn pid_of(name: &[u8]) -> Option<i32> {
    if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_the_fields_and_a_name_with_parens_and_spaces() {
        // Fields as the kernel writes them; the name holds ") (" to fool a split.
        let line = b"4242 (a) (b c) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 \
                     2 0 5555 1000000 321 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 \
                     1 0 0 0 0 0\n";
        let stat = parse_stat(line).unwrap();
        assert_eq!(
            stat,
            StatLine {
                pid: 4242,
                comm: "a) (b c".to_owned(),
                state: 'S',
                ppid: 1,
                cpu_ticks: 10,
                num_threads: 2,
                start_ticks: 5555,
                rss_pages: 321,
            }
        );
        // Near miss: a line cut before the rss field is no line.
        let cut = b"4242 (a) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 2 0 5555";
        assert_eq!(parse_stat(cut), None);
        assert_eq!(parse_stat(b"garbage"), None);
    }

    #[test]
    fn this_process_reads_as_procfs_reads_it() {
        let me = std::process::id() as i32;
        let mut dir = ProcDir::open().unwrap();
        let fast = dir.stat(me).unwrap();
        let slow = procfs::process::Process::myself().unwrap().stat().unwrap();
        assert_eq!((fast.pid, fast.ppid), (slow.pid, slow.ppid));
        assert_eq!(fast.comm, slow.comm);
        assert_eq!(fast.start_ticks, slow.starttime);
        // Read first, so at most the ticks procfs read a moment later.
        assert!(fast.cpu_ticks <= slow.utime + slow.stime);
        assert!(fast.cpu_ticks + 100 >= slow.utime + slow.stime);
        assert_eq!(
            dir.owner(me),
            Some(procfs::process::Process::myself().unwrap().uid().unwrap())
        );
        assert!(dir.pids().unwrap().contains(&me));
        // statm's resident count is stat's (field 24); memory moves between the reads.
        let statm_pages = dir.rss_pages(me).unwrap();
        let stat_pages = dir.stat(me).unwrap().rss_pages;
        assert!(
            statm_pages.abs_diff(stat_pages) < 4096,
            "{statm_pages} vs {stat_pages}"
        );
        assert!(statm_pages > 0);
        // Near miss: a pid past pid_max is no process.
        assert_eq!(dir.stat(i32::MAX), None);
        assert_eq!(dir.owner(i32::MAX), None);
        assert_eq!(dir.rss_pages(i32::MAX), None);
    }

    #[test]
    fn pid_paths_and_statm_lines() {
        assert_eq!(PidPath::new(0, b"").as_c_str(), c"0");
        assert_eq!(PidPath::new(4242, b"/stat").as_c_str(), c"4242/stat");
        assert_eq!(
            PidPath::new(i32::MAX, b"/statm").as_c_str(),
            c"2147483647/statm"
        );
        assert_eq!(parse_statm_rss(b"2745 321 200 10 0 500 0\n"), Some(321));
        // Near miss: a kernel thread's line is all zeros; a cut line has no resident field.
        assert_eq!(parse_statm_rss(b"0 0 0 0 0 0 0\n"), Some(0));
        assert_eq!(parse_statm_rss(b"2745"), None);
    }

    #[test]
    fn the_listing_and_its_count_agree_with_read_dir() {
        let dir = ProcDir::open().unwrap();
        let pids = dir.pids().unwrap();
        let mut listed: Vec<i32> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        listed.sort_unstable();
        // Processes come and go between the two listings.
        let both = pids.iter().filter(|pid| listed.contains(pid)).count();
        assert!(both + 20 > listed.len(), "{both} of {}", listed.len());
        assert!(pids.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(pids.contains(&(std::process::id() as i32)));
        assert!(dir.count().unwrap().abs_diff(pids.len()) < 20);
    }

    #[test]
    fn a_socket_of_this_process_is_among_its_socket_inodes() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let inode = std::fs::metadata(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&listener)
        ))
        .map(|meta| std::os::unix::fs::MetadataExt::ino(&meta))
        .unwrap();
        let mut dir = ProcDir::open().unwrap();
        let me = std::process::id() as i32;
        assert!(dir.socket_inodes(me).contains(&inode));
        // Near miss: a plain file's link is no socket.
        assert_eq!(socket_inode(b"/dev/null"), None);
        assert_eq!(socket_inode(b"socket:[77]"), Some(77));
        assert_eq!(dir.socket_inodes(i32::MAX), Vec::<u64>::new());
    }
}
