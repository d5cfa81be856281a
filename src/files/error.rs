//! Why a file operation was refused or failed: one variant per rule, so the tool's answer
//! and the audit record say which.

use std::path::PathBuf;

/// A file operation that did not happen, and why. The message is what the model reads.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(
        "no file roots are configured: the file tools reach no files on this host; the operator \
         can add [[files.roots]] entries to the config (see docs/files.md)"
    )]
    NoRoots,
    #[error("{path:?} is not an absolute path; give a full path under one of the roots: {roots}")]
    NotAbsolute { path: String, roots: String },
    #[error("{path:?} is not under any configured root; the roots are: {roots}")]
    OutsideRoots { path: String, roots: String },
    #[error("{path:?} leads outside the root {root:?} (through '..' or a symlink); refused")]
    Escape { path: String, root: PathBuf },
    #[error("the root {root:?} cannot be opened: {source}")]
    RootUnavailable {
        root: PathBuf,
        source: std::io::Error,
    },
    #[error("{path:?}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path:?} is a {kind}, not a regular file")]
    NotRegular { path: String, kind: &'static str },
    #[error("{path:?} is not a directory")]
    NotDirectory { path: String },
    #[error(
        "{path:?} is on {filesystem}, which the file tools never read: it holds the live state \
         of processes (the server's own environment and memory among them); use the host tools \
         (process_list, host_info) instead"
    )]
    PseudoFilesystem {
        path: String,
        filesystem: &'static str,
    },
    #[error(
        "{path:?} is one of hostmcp's own files (its config, a token, the audit log or key, the \
         TLS key, or its state); the file tools never open them, whatever root holds them"
    )]
    ServerFile { path: String },
    #[error(
        "{path:?} is under the read-only root {root:?}; file_write needs a root with write = true"
    )]
    ReadOnlyRoot { path: String, root: PathBuf },
    #[error("{path:?} is a symlink; write to the path of the file it points to")]
    WriteThroughSymlink { path: String },
    #[error(
        "{path:?} has {links} hard links; file_write refuses it, as replacing it would leave the \
         other names with the old content"
    )]
    HardLinked { path: String, links: u64 },
    #[error("{path:?} names no file (it ends in '/', '.' or '..')")]
    NoFileName { path: String },
    #[error(
        "{path:?} changed: its sha256 is {actual}, not the expected {expected}; read it again \
         and redo the edit"
    )]
    Conflict {
        path: String,
        expected: String,
        actual: String,
    },
    #[error("{path:?} does not exist, but expected_sha256 says it should")]
    ExpectedMissing { path: String },
    #[error("content is {size} bytes; file_write takes at most {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("invalid {what} pattern {pattern:?}: {message}")]
    BadPattern {
        what: &'static str,
        pattern: String,
        message: String,
    },
    #[error("{0}")]
    BadRange(&'static str),
}

impl FileError {
    /// An I/O error on `path` under `root`, with `cap-std`'s "outside the sandbox" refusal
    /// (and the kernel's `EXDEV` from `RESOLVE_BENEATH`) made [`FileError::Escape`].
    pub(super) fn from_io(path: &str, root: &std::path::Path, source: std::io::Error) -> Self {
        let escape = (source.kind() == std::io::ErrorKind::PermissionDenied
            && source.raw_os_error().is_none())
            || source.raw_os_error() == Some(nix::libc::EXDEV);
        if escape {
            Self::Escape {
                path: path.to_owned(),
                root: root.to_owned(),
            }
        } else {
            Self::Io {
                path: path.to_owned(),
                source,
            }
        }
    }

    /// A short name of the rule, for the audit record.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::NoRoots => "no_roots",
            Self::NotAbsolute { .. } => "not_absolute",
            Self::OutsideRoots { .. } => "outside_roots",
            Self::Escape { .. } => "escape",
            Self::RootUnavailable { .. } => "root_unavailable",
            Self::Io { .. } => "io",
            Self::NotRegular { .. } => "not_regular",
            Self::PseudoFilesystem { .. } => "pseudo_filesystem",
            Self::ServerFile { .. } => "server_file",
            Self::NotDirectory { .. } => "not_directory",
            Self::ReadOnlyRoot { .. } => "read_only_root",
            Self::WriteThroughSymlink { .. } => "symlink",
            Self::HardLinked { .. } => "hard_linked",
            Self::NoFileName { .. } => "no_file_name",
            Self::Conflict { .. } => "conflict",
            Self::ExpectedMissing { .. } => "expected_missing",
            Self::TooLarge { .. } => "too_large",
            Self::BadPattern { .. } => "bad_pattern",
            Self::BadRange(_) => "bad_range",
        }
    }
}

/// What kind of file a non-regular one is, for [`FileError::NotRegular`].
pub(super) fn kind_name(file_type: cap_std::fs::FileType) -> &'static str {
    use cap_std::fs::FileTypeExt;
    if file_type.is_dir() {
        "directory"
    } else if file_type.is_symlink() {
        "symlink"
    } else if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "device"
    } else {
        "special file"
    }
}
