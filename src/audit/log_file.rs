//! Opening the log file: create it (mode 0600), lock it (`flock`, exclusive, so two servers
//! cannot interleave two chains in it), remember which file it is (device and inode), and read
//! its last line to continue the chain. Opening does not check the rest (that is `verify`'s
//! job), and refuses a file whose last line is incomplete or not a record rather than append
//! to it.
//!
//! [`FileId`] is how the writer notices the file deleted or renamed under it: one `stat(2)` of
//! the path per batch, compared with the device and inode of the open file.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use serde::Deserialize;

use super::AuditError;
use super::events::line_hash;
use super::key::is_sealed;

/// How far back to read at a time while looking for the start of the last line.
const TAIL_CHUNK: u64 = 8 * 1024;

/// Which file an open descriptor or a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(metadata: &std::fs::Metadata) -> Self {
        Self {
            dev: metadata.dev(),
            ino: metadata.ino(),
        }
    }

    /// Whether `path` still names this file (one `stat(2)`).
    pub fn is_at(self, path: &Path) -> bool {
        std::fs::metadata(path).is_ok_and(|metadata| Self::of(&metadata) == self)
    }
}

/// The end of the chain found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    Empty,
    Last {
        seq: u64,
        /// [`line_hash`] of the last line.
        hash: String,
        /// The last line carries a MAC.
        sealed: bool,
    },
}

/// An open, locked log file.
#[derive(Debug)]
pub struct LogFile {
    pub file: File,
    pub id: FileId,
    pub tail: Tail,
}

/// Open (or create) and lock the log at `path`, and read the end of its chain.
pub fn open(path: &Path) -> Result<LogFile, AuditError> {
    let open_error = |source| AuditError::Open {
        path: path.to_owned(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(open_error)?;
    let metadata = file.metadata().map_err(open_error)?;
    if !metadata.is_file() {
        return Err(AuditError::NotAFile {
            path: path.to_owned(),
        });
    }
    file.try_lock().map_err(|error| match error {
        std::fs::TryLockError::WouldBlock => AuditError::Locked {
            path: path.to_owned(),
        },
        std::fs::TryLockError::Error(source) => open_error(source),
    })?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{mode:o}"),
            "audit log is readable or writable by other users; chmod 600 it"
        );
    }
    sync_parent_dir(path);
    let tail = read_tail(path, &file, metadata.len())?;
    Ok(LogFile {
        file,
        id: FileId::of(&metadata),
        tail,
    })
}

/// The one field of the last line that opening needs.
#[derive(Deserialize)]
struct SeqOnly {
    seq: u64,
}

fn read_tail(path: &Path, file: &File, length: u64) -> Result<Tail, AuditError> {
    let line = match read_last_line(file, length) {
        Ok(None) => return Ok(Tail::Empty),
        Ok(Some(line)) => line,
        Err(TailError::Incomplete) => {
            return Err(AuditError::IncompleteTail {
                path: path.to_owned(),
            });
        }
        Err(TailError::Io(source)) => {
            return Err(AuditError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let last: SeqOnly = serde_json::from_slice(&line).map_err(|error| AuditError::BadTail {
        path: path.to_owned(),
        detail: error.to_string(),
    })?;
    Ok(Tail::Last {
        seq: last.seq,
        hash: line_hash(&line),
        sealed: is_sealed(&line),
    })
}

enum TailError {
    Io(io::Error),
    Incomplete,
}

/// The last line of the file without its newline; `None` for an empty file.
fn read_last_line(file: &File, length: u64) -> Result<Option<Vec<u8>>, TailError> {
    if length == 0 {
        return Ok(None);
    }
    let mut last_byte = [0u8];
    file.read_exact_at(&mut last_byte, length - 1)
        .map_err(TailError::Io)?;
    if last_byte[0] != b'\n' {
        return Err(TailError::Incomplete);
    }
    let end = length - 1;
    let mut start = end;
    while start > 0 {
        let chunk_start = start.saturating_sub(TAIL_CHUNK);
        let mut chunk = vec![0u8; (start - chunk_start) as usize];
        file.read_exact_at(&mut chunk, chunk_start)
            .map_err(TailError::Io)?;
        if let Some(newline) = chunk.iter().rposition(|&byte| byte == b'\n') {
            start = chunk_start + newline as u64 + 1;
            break;
        }
        start = chunk_start;
    }
    let mut line = vec![0u8; (end - start) as usize];
    file.read_exact_at(&mut line, start)
        .map_err(TailError::Io)?;
    Ok(Some(line))
}

/// Make a newly created file's directory entry durable. Best effort: some filesystems
/// refuse `fsync` on a directory.
fn sync_parent_dir(path: &Path) {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if let Err(error) = File::open(parent).and_then(|dir| dir.sync_all()) {
        tracing::warn!(
            dir = %parent.display(),
            %error,
            "cannot sync the audit log's directory"
        );
    }
}
