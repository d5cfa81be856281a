//! `file_search`'s operation: walk a directory under a root for files whose name matches a
//! glob and/or whose content matches a substring or regex. Bounded in files visited, bytes
//! read, time and matches; symlinks are never followed (a symlinked directory is not
//! entered), and binary files are not searched for content.

use std::{
    collections::VecDeque,
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use cap_std::fs::Dir;
use globset::{Glob, GlobMatcher};
use regex::Regex;
use schemars::JsonSchema;
use serde::Serialize;

use super::{FileError, Located, read::is_binary, resolved_path};

/// How far one search may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchLimits {
    pub max_matches: usize,
    pub max_entries: usize,
    pub max_bytes: u64,
    pub max_file_bytes: u64,
    pub max_depth: usize,
    pub max_time: Duration,
}

impl Default for SearchLimits {
    fn default() -> Self {
        Self {
            max_matches: 100,
            max_entries: 20_000,
            max_bytes: 32 * 1024 * 1024,
            max_file_bytes: 1024 * 1024,
            max_depth: 32,
            max_time: Duration::from_secs(5),
        }
    }
}

/// The most matches a caller may ask for.
pub const MAX_MATCHES: usize = 500;
/// The most characters of a matching line that are shown.
const LINE_CHARS: usize = 200;

/// What to look for: a name glob, a content pattern, or both (a file must match both).
#[derive(Debug, Clone)]
pub struct Query {
    name: Option<GlobMatcher>,
    content: Option<Regex>,
}

impl Query {
    /// `name`: a glob over the file name (`*.conf`), or over the path below the searched
    /// directory when it holds a `/` (`nginx/**/*.conf`). `content`: a substring, or a
    /// regex when `regex` is true.
    pub fn new(name: Option<&str>, content: Option<&str>, regex: bool) -> Result<Self, FileError> {
        let name = name
            .map(|pattern| {
                Glob::new(pattern)
                    .map(|glob| glob.compile_matcher())
                    .map_err(|error| FileError::BadPattern {
                        what: "name",
                        pattern: pattern.to_owned(),
                        message: error.kind().to_string(),
                    })
            })
            .transpose()?;
        let content = content
            .map(|pattern| {
                let source = if regex {
                    pattern.to_owned()
                } else {
                    regex::escape(pattern)
                };
                regex::RegexBuilder::new(&source)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|error| FileError::BadPattern {
                        what: "content",
                        pattern: pattern.to_owned(),
                        message: error.to_string(),
                    })
            })
            .transpose()?;
        if name.is_none() && content.is_none() {
            return Err(FileError::BadRange("give name, content, or both"));
        }
        Ok(Self { name, content })
    }
}

/// One file (name search) or one line (content search) that matched.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Match {
    /// The file's path under the root.
    pub path: String,
    /// 1-based line number of a content match.
    pub line: Option<u64>,
    /// The matching line, cut to 200 characters.
    pub text: Option<String>,
}

/// What a search found and how far it went.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SearchOutcome {
    /// The directory searched, as the kernel resolved it.
    pub path: String,
    pub matches: Vec<Match>,
    pub entries_visited: usize,
    pub bytes_read: u64,
    /// Why the search stopped before the end: "matches", "entries", "bytes" or "time"; null
    /// when it searched everything.
    pub stopped_by: Option<&'static str>,
}

/// Search below `located` for `query`.
pub fn search(
    located: &Located,
    query: &Query,
    limits: SearchLimits,
) -> Result<SearchOutcome, FileError> {
    let started = Instant::now();
    let top = located.dir.open_dir(&located.relative).map_err(|error| {
        if error.raw_os_error() == Some(nix::libc::ENOTDIR) {
            FileError::NotDirectory {
                path: located.requested.clone(),
            }
        } else {
            located.io_error(error)
        }
    })?;
    let base = located.display_path(&located.relative);
    let mut outcome = SearchOutcome {
        path: resolved_path(&top)
            .unwrap_or_else(|| base.clone())
            .to_string_lossy()
            .into_owned(),
        matches: Vec::new(),
        entries_visited: 0,
        bytes_read: 0,
        stopped_by: None,
    };
    let mut queue: VecDeque<(Dir, PathBuf, usize)> = VecDeque::from([(top, PathBuf::new(), 0)]);
    'walk: while let Some((dir, below, depth)) = queue.pop_front() {
        let Ok(entries) = dir.entries() else {
            continue;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(|entry| entry.file_name());
        for entry in entries {
            if let Some(reason) = over(&outcome, &limits, started) {
                outcome.stopped_by = Some(reason);
                break 'walk;
            }
            outcome.entries_visited += 1;
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            let relative = below.join(&name);
            if file_type.is_dir() {
                if depth + 1 < limits.max_depth
                    && let Ok(child) = dir.open_dir(&name)
                {
                    queue.push_back((child, relative, depth + 1));
                }
                continue;
            }
            if !file_type.is_file() {
                continue;
            }
            if let Some(glob) = &query.name {
                let subject = if glob.glob().glob().contains('/') {
                    relative.clone()
                } else {
                    PathBuf::from(&name)
                };
                if !glob.is_match(subject) {
                    continue;
                }
            }
            let shown = base.join(&relative).to_string_lossy().into_owned();
            let Some(pattern) = &query.content else {
                outcome.matches.push(Match {
                    path: shown,
                    line: None,
                    text: None,
                });
                continue;
            };
            search_file(
                &dir,
                &name,
                pattern,
                &shown,
                (&limits, &located.protected),
                &mut outcome,
            );
        }
    }
    outcome.matches.truncate(limits.max_matches);
    Ok(outcome)
}

/// Which bound the search has reached, if any.
fn over(outcome: &SearchOutcome, limits: &SearchLimits, started: Instant) -> Option<&'static str> {
    if outcome.matches.len() >= limits.max_matches {
        Some("matches")
    } else if outcome.entries_visited >= limits.max_entries {
        Some("entries")
    } else if outcome.bytes_read >= limits.max_bytes {
        Some("bytes")
    } else if started.elapsed() >= limits.max_time {
        Some("time")
    } else {
        None
    }
}

/// Add the lines of `dir/name` that match `pattern`; a binary file or one that cannot be
/// opened adds nothing.
fn search_file(
    dir: &Dir,
    name: &std::ffi::OsStr,
    pattern: &Regex,
    shown: &str,
    (limits, protected): (&SearchLimits, &super::ProtectedFiles),
    outcome: &mut SearchOutcome,
) {
    // Not a regular file, on procfs or sysfs, one of the server's own files, or unreadable:
    // nothing to search (a FIFO or device is never opened for reading).
    let Ok((file, _)) = super::open_regular(dir, Path::new(name), false, protected) else {
        return;
    };
    let budget = limits
        .max_file_bytes
        .min(limits.max_bytes.saturating_sub(outcome.bytes_read));
    let mut data = Vec::new();
    if file.take(budget).read_to_end(&mut data).is_err() {
        return;
    }
    outcome.bytes_read += data.len() as u64;
    if is_binary(&data) {
        return;
    }
    for (index, line) in BufReader::new(data.as_slice()).lines().enumerate() {
        let Ok(line) = line else { break };
        if pattern.is_match(&line) {
            outcome.matches.push(Match {
                path: shown.to_owned(),
                line: Some(index as u64 + 1),
                text: Some(line.chars().take(LINE_CHARS).collect()),
            });
            if outcome.matches.len() >= limits.max_matches {
                return;
            }
        }
    }
}
