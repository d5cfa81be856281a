//! `file_read`'s operation: a byte range or a line range of one regular file under a root,
//! capped in size, with binary content detected and withheld rather than dumped.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};

use cap_std::fs::MetadataExt;
use schemars::JsonSchema;
use serde::Serialize;

use super::{FileError, Located, mode_string, resolved_path, sha256_of};

/// The most bytes one read returns.
pub const MAX_READ_BYTES: u64 = 256 * 1024;
/// Files up to this size are hashed whole when the caller asks (`sha256`, for
/// `file_write`'s guard).
pub const MAX_HASHED_BYTES: u64 = 16 * 1024 * 1024;
/// How much of the start of the selected bytes is checked for NUL bytes.
const BINARY_SNIFF: usize = 8 * 1024;

/// Which part of the file to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// `length` bytes from byte `offset` (0-based).
    Bytes { offset: u64, length: u64 },
    /// `count` lines from line `first` (1-based).
    Lines { first: u64, count: u64 },
}

/// What a read found.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ReadOutcome {
    /// The file's path as the kernel resolved it (symlinks followed inside the root).
    pub path: String,
    pub size: u64,
    /// Permission bits, octal, e.g. "0644".
    pub mode: String,
    /// Last modification, seconds since 1970.
    pub mtime: i64,
    /// SHA-256 of the whole file (for file_write's expected_sha256): given when the read
    /// returned the whole file, or when asked (files up to 16 MiB); else null.
    pub sha256: Option<String>,
    /// Byte offset where the returned content starts.
    pub offset: u64,
    /// Bytes returned.
    pub bytes: u64,
    /// First line returned (1-based), for a line range.
    pub first_line: Option<u64>,
    /// Lines returned, for a line range.
    pub lines: Option<u64>,
    /// The content as UTF-8 text; null when binary.
    pub content: Option<String>,
    /// The selected bytes hold NUL bytes or are not UTF-8: not shown.
    pub binary: bool,
    /// Where to continue: the byte offset (byte range) or line (line range) after what was
    /// returned; null at the end of the file.
    pub next: Option<u64>,
}

/// Read `range` of the file at `located`, at most `cap` bytes. The whole file's SHA-256 is
/// computed from the bytes in hand when the range covered the whole file; otherwise it
/// costs a read of the whole file, done only when `hash` asks (and the file is at most
/// [`MAX_HASHED_BYTES`]): a small range of a large file reads only that range.
pub fn read(
    located: &Located,
    range: Range,
    cap: u64,
    hash: bool,
) -> Result<ReadOutcome, FileError> {
    let cap = cap.clamp(1, MAX_READ_BYTES);
    let (mut file, metadata) = located.open_regular()?;
    let io = |error| located.io_error(error);
    let size = metadata.len();
    let path = resolved_path(&file)
        .unwrap_or_else(|| located.display_path(&located.relative))
        .to_string_lossy()
        .into_owned();
    let (offset, data, first_line, lines, next) = match range {
        Range::Bytes { offset, length } => {
            let length = length.min(cap);
            file.seek(SeekFrom::Start(offset)).map_err(io)?;
            let mut data = Vec::new();
            (&mut file)
                .take(length)
                .read_to_end(&mut data)
                .map_err(io)?;
            let end = offset + data.len() as u64;
            (offset, data, None, None, (end < size).then_some(end))
        }
        Range::Lines { first, count } => {
            if first == 0 {
                return Err(FileError::BadRange("line numbers start at 1"));
            }
            let mut reader = BufReader::new(&mut file);
            let mut offset = 0u64;
            let mut line = Vec::new();
            for _ in 1..first {
                line.clear();
                let read = reader.read_until(b'\n', &mut line).map_err(io)?;
                if read == 0 {
                    break;
                }
                offset += read as u64;
            }
            let mut data = Vec::new();
            let mut taken = 0u64;
            while taken < count {
                line.clear();
                let read = (&mut reader)
                    .take(cap - data.len() as u64)
                    .read_until(b'\n', &mut line)
                    .map_err(io)?;
                if read == 0 {
                    break;
                }
                data.extend_from_slice(&line);
                taken += 1;
                if data.len() as u64 >= cap {
                    break;
                }
            }
            let end = offset + data.len() as u64;
            let next = (end < size).then_some(first + taken);
            (offset, data, Some(first), Some(taken), next)
        }
    };
    let whole = offset == 0 && data.len() as u64 == size;
    let sha256 = if whole {
        Some(sha256_of(data.as_slice()).map_err(io)?)
    } else if hash && size <= MAX_HASHED_BYTES {
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        Some(sha256_of((&mut file).take(MAX_HASHED_BYTES)).map_err(io)?)
    } else {
        None
    };
    let binary = is_binary(&data);
    Ok(ReadOutcome {
        path,
        size,
        mode: mode_string(metadata.mode()),
        mtime: metadata.mtime(),
        sha256,
        offset,
        bytes: data.len() as u64,
        first_line,
        lines,
        content: (!binary).then(|| String::from_utf8_lossy(&data).into_owned()),
        binary,
        next,
    })
}

/// NUL bytes near the start, or bytes that are not UTF-8 (a character cut at the end of the
/// range is not counted against it).
pub fn is_binary(data: &[u8]) -> bool {
    if data[..data.len().min(BINARY_SNIFF)].contains(&0) {
        return true;
    }
    match std::str::from_utf8(data) {
        Ok(_) => false,
        Err(error) => error.error_len().is_some(),
    }
}
