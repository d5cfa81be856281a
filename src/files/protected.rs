//! The server's own files, which the file tools and the `file:///` resources never open,
//! whatever root contains them: the config file, the token file, the audit log, its anchor
//! and key, the TLS key, and every file directly in the state directory.
//!
//! They are recognised by identity — the (device, inode) of the descriptor the tool opened,
//! compared with a fresh `stat` of each protected path — never by path string: a hard link,
//! a bind mount, a symlink or another spelling of the same file is the same file, and a
//! file re-created under its path (a rotated audit log, a reloaded config) is recognised
//! by its new identity. The paths are stat'ed at each check (a handful of `stat` calls,
//! a few microseconds), so nothing goes stale between reloads.

use std::path::{Path, PathBuf};

use cap_std::fs::MetadataExt;

/// How many entries of the state directory are looked at (it holds a few files).
const MAX_STATE_ENTRIES: usize = 256;

/// The server's own files, by path; [`ProtectedFiles::holds`] compares identities.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtectedFiles {
    files: Vec<PathBuf>,
    /// Every regular file directly in these directories is protected (the state directory).
    dirs: Vec<PathBuf>,
}

impl ProtectedFiles {
    /// Protect `files`, and every file directly in `dirs`.
    pub fn new(
        files: impl IntoIterator<Item = PathBuf>,
        dirs: impl IntoIterator<Item = PathBuf>,
    ) -> Self {
        Self {
            files: files.into_iter().collect(),
            dirs: dirs.into_iter().collect(),
        }
    }

    /// The files the server's start-up checks name (`crate::hardening`): every one of them,
    /// and the state directory's files.
    pub fn of_server(files: &crate::hardening::ServerFiles) -> Self {
        Self::new(files.files().cloned(), files.state_dir.clone())
    }

    /// The protected path the file with this metadata is, if it is one.
    pub fn holds(&self, file: &cap_std::fs::Metadata) -> Option<PathBuf> {
        self.holds_identity(file.dev(), file.ino())
    }

    /// The protected path whose (device, inode) is `(dev, ino)`, if any.
    pub fn holds_identity(&self, dev: u64, ino: u64) -> Option<PathBuf> {
        let same = |path: &Path| {
            std::fs::metadata(path).is_ok_and(|metadata| {
                use std::os::unix::fs::MetadataExt as _;
                metadata.dev() == dev && metadata.ino() == ino
            })
        };
        if let Some(path) = self.files.iter().find(|path| same(path)) {
            return Some(path.clone());
        }
        self.dirs.iter().find_map(|dir| {
            std::fs::read_dir(dir)
                .ok()?
                .take(MAX_STATE_ENTRIES)
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .find(|path| same(path))
        })
    }

    /// Whether the directory with this metadata is one whose files are all protected.
    pub fn is_protected_dir(&self, dir: &cap_std::fs::Metadata) -> bool {
        self.dirs.iter().any(|path| {
            std::fs::metadata(path).is_ok_and(|metadata| {
                use std::os::unix::fs::MetadataExt as _;
                metadata.dev() == dir.dev() && metadata.ino() == dir.ino()
            })
        })
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.dirs.is_empty()
    }
}
