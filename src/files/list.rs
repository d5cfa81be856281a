//! `file_list`'s operation: the entries of one directory under a root, sorted by name, in
//! pages; each with its type, size, modification time and mode. Symlinks are shown as
//! symlinks (with their target), not followed.

use cap_std::fs::MetadataExt;
use schemars::JsonSchema;
use serde::Serialize;

use super::{FileError, Located, mode_string, resolved_path};

/// The most entries one page holds.
pub const MAX_PAGE: usize = 500;
/// The most entries of one directory that are read; past this the listing says it is partial.
pub const MAX_SCANNED: usize = 100_000;

/// One directory entry.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Entry {
    pub name: String,
    /// "file", "dir", "symlink" or "other".
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub size: u64,
    /// Last modification, seconds since 1970.
    pub mtime: i64,
    /// Permission bits, octal, e.g. "0755".
    pub mode: String,
    /// Where a symlink points (as written in the link).
    pub target: Option<String>,
}

/// One page of a directory.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Listing {
    /// The directory as the kernel resolved it.
    pub path: String,
    pub entries: Vec<Entry>,
    /// Entries in the directory (up to 100,000 are read).
    pub total: usize,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
    /// The directory had more than 100,000 entries: only those were listed.
    pub partial: bool,
}

/// The page of `located`'s directory after the entry named `cursor`, at most `limit` long.
pub fn list(located: &Located, cursor: Option<&str>, limit: usize) -> Result<Listing, FileError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let io = |error| located.io_error(error);
    let dir = located.dir.open_dir(&located.relative).map_err(|error| {
        if error.raw_os_error() == Some(nix::libc::ENOTDIR) {
            FileError::NotDirectory {
                path: located.requested.clone(),
            }
        } else {
            located.io_error(error)
        }
    })?;
    let path = resolved_path(&dir)
        .unwrap_or_else(|| located.display_path(&located.relative))
        .to_string_lossy()
        .into_owned();
    let mut names = Vec::new();
    let mut partial = false;
    for entry in dir.entries().map_err(io)? {
        if names.len() == MAX_SCANNED {
            partial = true;
            break;
        }
        names.push(entry.map_err(io)?.file_name());
    }
    names.sort();
    let total = names.len();
    let start = match cursor {
        Some(after) => names.partition_point(|name| name.as_encoded_bytes() <= after.as_bytes()),
        None => 0,
    };
    let page = &names[start..(start + limit).min(total)];
    let mut entries = Vec::with_capacity(page.len());
    for name in page {
        // Gone since it was listed: skip it rather than fail the page.
        let Ok(metadata) = dir.symlink_metadata(name) else {
            continue;
        };
        let file_type = metadata.file_type();
        let kind = if file_type.is_symlink() {
            "symlink"
        } else if file_type.is_dir() {
            "dir"
        } else if file_type.is_file() {
            "file"
        } else {
            "other"
        };
        entries.push(Entry {
            name: name.to_string_lossy().into_owned(),
            kind,
            size: metadata.len(),
            mtime: metadata.mtime(),
            mode: mode_string(metadata.mode()),
            target: file_type
                .is_symlink()
                .then(|| dir.read_link_contents(name).ok())
                .flatten()
                .map(|target| target.to_string_lossy().into_owned()),
        });
    }
    let end = start + page.len();
    let next_cursor = (end < total)
        .then(|| page.last())
        .flatten()
        .map(|name| name.to_string_lossy().into_owned());
    Ok(Listing {
        path,
        entries,
        total,
        next_cursor,
        partial,
    })
}
