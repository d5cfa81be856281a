//! The largest directories under a path, as `du` counts them (allocated blocks, each
//! hard-linked file once), bounded in time and entries. Permission errors are counted,
//! not fatal; by default the walk stays on the starting filesystem (`du -x`) and never
//! follows a symbolic link.

use std::{
    collections::HashSet,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use serde::Serialize;

use super::HostError;

/// Deeper directories are counted in their parent's total but not entered: a guard
/// against a pathological tree exhausting the stack.
const MAX_RECURSION: u32 = 256;

/// What bounds a walk.
#[derive(Debug, Clone, Copy)]
pub struct WalkLimits {
    /// Directories this many levels below the path are listed (1: its children).
    pub depth: u32,
    /// How many of the largest directories to return.
    pub top: usize,
    /// Stop after this long; the answer says it is partial.
    pub time_budget: Duration,
    /// Stop after this many entries.
    pub max_entries: u64,
    /// Do not descend into other filesystems mounted below the path.
    pub one_filesystem: bool,
}

/// The answer of [`largest_directories`].
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DirectoryUsage {
    pub path: String,
    /// Bytes allocated under the path (what was walked).
    pub total_bytes: u64,
    /// The largest directories below the path, largest first.
    pub largest: Vec<Directory>,
    pub entries_scanned: u64,
    /// Entries that could not be read (permission denied, vanished).
    pub unreadable: u64,
    /// `false` when the time or entry budget ran out: the sizes are lower bounds.
    pub complete: bool,
    pub elapsed_ms: u64,
}

/// One directory and its size.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Directory {
    pub path: String,
    pub bytes: u64,
    /// Levels below the walked path (1: a child).
    pub depth: u32,
}

struct Walk {
    limits: WalkLimits,
    device: u64,
    deadline: Instant,
    seen_links: HashSet<(u64, u64)>,
    dirs: Vec<Directory>,
    scanned: u64,
    unreadable: u64,
    stopped: bool,
}

/// Walk `path` within `limits`.
pub fn largest_directories(path: &Path, limits: WalkLimits) -> Result<DirectoryUsage, HostError> {
    let started = Instant::now();
    let meta =
        std::fs::symlink_metadata(path).map_err(HostError::io(path.display().to_string()))?;
    if !meta.is_dir() {
        return Err(HostError::Io {
            path: path.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
        });
    }
    let mut walk = Walk {
        limits,
        device: meta.dev(),
        deadline: started + limits.time_budget,
        seen_links: HashSet::new(),
        dirs: Vec::new(),
        scanned: 0,
        unreadable: 0,
        stopped: false,
    };
    let total = meta.blocks() * 512 + walk.directory(path, 0);
    let mut largest = walk.dirs;
    largest.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
    largest.truncate(limits.top);
    Ok(DirectoryUsage {
        path: path.display().to_string(),
        total_bytes: total,
        largest,
        entries_scanned: walk.scanned,
        unreadable: walk.unreadable,
        complete: !walk.stopped,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

impl Walk {
    /// Bytes of the entries inside `dir` (not its own blocks), recording directories at
    /// the listed depths.
    fn directory(&mut self, dir: &Path, depth: u32) -> u64 {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(_) => {
                self.unreadable += 1;
                return 0;
            }
        };
        let mut bytes = 0;
        for entry in entries {
            if self.over_budget() {
                break;
            }
            self.scanned += 1;
            let Ok(entry) = entry else {
                self.unreadable += 1;
                continue;
            };
            let Ok(meta) = entry.metadata() else {
                self.unreadable += 1;
                continue;
            };
            if meta.nlink() > 1
                && !meta.is_dir()
                && !self.seen_links.insert((meta.dev(), meta.ino()))
            {
                continue;
            }
            let own = meta.blocks() * 512;
            if !meta.is_dir() {
                bytes += own;
                continue;
            }
            if self.limits.one_filesystem && meta.dev() != self.device {
                continue; // a mount point: du -x leaves it out entirely
            }
            let path: PathBuf = entry.path();
            let inside = if depth < MAX_RECURSION {
                self.directory(&path, depth + 1)
            } else {
                0
            };
            let size = own + inside;
            if depth < self.limits.depth {
                self.dirs.push(Directory {
                    path: path.display().to_string(),
                    bytes: size,
                    depth: depth + 1,
                });
            }
            bytes += size;
        }
        bytes
    }

    fn over_budget(&mut self) -> bool {
        if !self.stopped
            && (self.scanned >= self.limits.max_entries || Instant::now() >= self.deadline)
        {
            self.stopped = true;
        }
        self.stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> WalkLimits {
        WalkLimits {
            depth: 1,
            top: 10,
            time_budget: Duration::from_secs(30),
            max_entries: 1_000_000,
            one_filesystem: true,
        }
    }

    fn du_bytes(path: &Path) -> u64 {
        let output = std::process::Command::new("du")
            .args(["-s", "-x", "-B1"])
            .arg(path)
            .output()
            .unwrap();
        String::from_utf8(output.stdout)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        let small = dir.path().join("small/inner");
        std::fs::create_dir_all(&big).unwrap();
        std::fs::create_dir_all(&small).unwrap();
        std::fs::write(big.join("a"), vec![7_u8; 3 << 20]).unwrap();
        std::fs::write(small.join("b"), vec![7_u8; 100_000]).unwrap();
        std::fs::hard_link(big.join("a"), big.join("a-again")).unwrap();
        std::os::unix::fs::symlink("/usr", dir.path().join("usr-link")).unwrap();
        dir
    }

    #[test]
    fn sizes_match_du_and_the_largest_comes_first() {
        let dir = tree();
        let usage = largest_directories(dir.path(), limits()).unwrap();
        assert!(usage.complete);
        assert_eq!(usage.total_bytes, du_bytes(dir.path()));
        let names: Vec<&str> = usage.largest.iter().map(|d| d.path.as_str()).collect();
        assert!(names[0].ends_with("/big"), "{names:?}");
        assert_eq!(usage.largest[0].bytes, du_bytes(&dir.path().join("big")));
        // The hard link is counted once;
        // the symlink to /usr is not followed.
        assert!(usage.total_bytes < (3 << 20) * 2);
        assert_eq!(usage.largest.len(), 2);
    }

    #[test]
    fn an_entry_budget_makes_a_partial_answer() {
        let dir = tree();
        let usage = largest_directories(
            dir.path(),
            WalkLimits {
                max_entries: 2,
                ..limits()
            },
        )
        .unwrap();
        assert!(!usage.complete);
        assert!(usage.entries_scanned <= 2);
        // Near miss: the same walk with room enough is complete.
        assert!(largest_directories(dir.path(), limits()).unwrap().complete);
    }
}
