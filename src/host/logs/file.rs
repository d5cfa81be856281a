//! The tail of one configured log file, read only if it still is that file: the open
//! refuses a symlink in its place (`O_NOFOLLOW`), and the opened file's real path (from
//! `/proc/self/fd`) must be the configured path, so a symlink in any directory on the way
//! is refused too, with no window between check and use (the check is on the open file).
//! Only the last `max_scan_bytes` are read.

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use super::{
    select::{Collector, Order, Selected, Selection},
    time::LineClock,
};

/// A file that cannot be read as a configured log.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{} is a symlink: only the configured file itself is read", path.display())]
    Symlink { path: PathBuf },
    #[error(
        "{} is reached through a symlink (it is really {}): only the configured path is read",
        path.display(),
        real.display()
    )]
    Elsewhere { path: PathBuf, real: PathBuf },
    #[error("{} is not a regular file", path.display())]
    NotRegular { path: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What was read of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// The file's size when read.
    pub size: u64,
    /// Where reading started (0: the whole file was read).
    pub from: u64,
}

/// The entries of `path`'s tail that `selection` keeps; local times in `clock`'s zone.
pub fn select(
    path: &Path,
    max_scan_bytes: u64,
    selection: Selection,
    clock: &LineClock,
) -> Result<(Selected, Scanned), FileError> {
    let (text, scanned) = read_tail(path, max_scan_bytes)?;
    let mut collector = Collector::new(selection, Order::OldestFirst);
    let mut lines = text.split('\n');
    if scanned.from > 0 {
        // The first line was cut by the start of the read.
        lines.next();
        collector.stopped_early(format!(
            "read the last {} of the file's {} bytes",
            scanned.size - scanned.from,
            scanned.size
        ));
    }
    let mut last_time = None;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        // A line without a time of its own (a stack trace, a continuation) has the time
        // of the line before it.
        last_time = clock.time_of(line).or(last_time);
        collector.push(super::LogEntry {
            time_us: last_time,
            message: line.trim_end_matches('\r').to_owned(),
            ..super::LogEntry::default()
        });
    }
    Ok((collector.finish(), scanned))
}

/// The last `max_scan_bytes` of `path` (as text, invalid UTF-8 replaced).
pub fn read_tail(path: &Path, max_scan_bytes: u64) -> Result<(String, Scanned), FileError> {
    let io = |source| FileError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = open_exactly(path)?;
    let size = file.metadata().map_err(io)?.len();
    let from = size.saturating_sub(max_scan_bytes);
    file.seek(SeekFrom::Start(from)).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(max_scan_bytes)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    Ok((
        String::from_utf8_lossy(&bytes).into_owned(),
        Scanned { size, from },
    ))
}

/// `path` opened for reading, if it is a regular file at exactly that path.
fn open_exactly(path: &Path) -> Result<File, FileError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_flags())
        .open(path)
        .map_err(|source| {
            if source.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) {
                FileError::Symlink {
                    path: path.to_owned(),
                }
            } else {
                FileError::Io {
                    path: path.to_owned(),
                    source,
                }
            }
        })?;
    let metadata = file.metadata().map_err(|source| FileError::Io {
        path: path.to_owned(),
        source,
    })?;
    if !metadata.is_file() {
        return Err(FileError::NotRegular {
            path: path.to_owned(),
        });
    }
    let real = real_path(&file).map_err(|source| FileError::Io {
        path: path.to_owned(),
        source,
    })?;
    if real != path {
        return Err(FileError::Elsewhere {
            path: path.to_owned(),
            real,
        });
    }
    Ok(file)
}

/// No following a final symlink, no blocking on a FIFO put in the file's place.
fn libc_flags() -> i32 {
    (nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits()
}

/// The path the kernel knows an open file by.
fn real_path(file: &File) -> std::io::Result<PathBuf> {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

#[cfg(test)]
mod tests;
