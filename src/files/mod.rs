//! Files under the configured roots: which roots there are ([`FileRoots`]), how a path a
//! caller gives is contained in one of them, and the operations the file tools perform
//! ([`read`], [`list`], [`search`], [`write`]). No I/O happens anywhere else for them.
//!
//! Containment is capability-based, never a string prefix:
//! - A caller's path must be absolute. The root it belongs to is the longest configured root
//!   that is a whole-component prefix of it (so `/srv/app` and `/srv` may both be roots, with
//!   different write rights); the rest of the path is resolved *inside* that root's
//!   directory handle by `cap-std`, which walks it one component at a time with `openat`
//!   (`openat2(RESOLVE_BENEATH)` where the kernel has it). A `..` that would climb above the
//!   root, an absolute symlink, or a relative symlink whose target leaves the root fails
//!   with "outside the root"; a symlink that stays inside the root is followed. Because every
//!   step is relative to a held directory descriptor, swapping a symlink or directory while
//!   a call runs cannot make it leave the root: it either sees the old tree or the new one.
//! - The path a result and the audit log name ([`Located::resolved`]) is what the kernel says
//!   the opened descriptor is (`/proc/self/fd`), not the caller's spelling.
//! - Hard links are not paths and cannot be contained by path resolution: a hard link inside
//!   a root to a file elsewhere *is* that file. Reading one is allowed (creating it needed
//!   access to the file, and `fs.protected_hardlinks` restricts that to its owner);
//!   `file_write` refuses a file with more than one link, because an atomic replace would
//!   silently split it (the other names would keep the old content).
//! - Only regular files are read or written; devices, FIFOs and sockets are refused before
//!   they are opened for reading ([`open_regular`]): the path is opened with `O_PATH` (which
//!   opens no device and waits on no FIFO), its type checked with `fstat`, and only a regular
//!   file is then reopened for reading through that descriptor, so what is read is the inode
//!   that was checked.
//! - The server's own files (config, tokens, audit log, anchor and key, TLS key, state
//!   directory) are refused by identity, whatever root holds them ([`protected`]).
//!
//! Whose rights: the server's. The tools that call these refuse tokens whose commands run as
//! another user (see `crate::tools::file_gate`).

mod error;
pub mod list;
pub mod protected;
pub mod read;
pub mod search;
pub mod write;

use std::{
    os::fd::AsRawFd,
    path::{Component, Path, PathBuf},
};

use cap_std::{ambient_authority, fs::Dir};
use serde::Deserialize;

pub use error::FileError;
pub use protected::ProtectedFiles;

/// One `[[files.roots]]` entry as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootConfig {
    /// An absolute directory.
    pub path: PathBuf,
    /// Whether `file_write` may replace files under it (default: no).
    #[serde(default)]
    pub write: bool,
}

/// The `[files]` table as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    #[serde(default)]
    pub roots: Vec<RootConfig>,
}

/// The validated roots the file tools may reach; none configured: every file call says so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileRoots {
    roots: Vec<RootConfig>,
    /// The server's own files: never opened, whatever root holds them.
    protected: ProtectedFiles,
}

/// Why a `[files]` table was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RootsError {
    #[error("files.roots[{index}]: {path:?} is not an absolute path")]
    NotAbsolute { index: usize, path: PathBuf },
    #[error("files.roots[{index}]: {path:?} is listed twice")]
    Duplicate { index: usize, path: PathBuf },
}

impl FileRoots {
    /// Validate the table: absolute paths, each once. The directories themselves are opened
    /// at each call, so a root created after the server started works.
    pub fn new(config: FilesConfig) -> Result<Self, RootsError> {
        let mut roots: Vec<RootConfig> = Vec::with_capacity(config.roots.len());
        for (index, root) in config.roots.into_iter().enumerate() {
            if !root.path.is_absolute() {
                return Err(RootsError::NotAbsolute {
                    index,
                    path: root.path,
                });
            }
            let path: PathBuf = root.path.components().collect();
            if roots.iter().any(|seen| seen.path == path) {
                return Err(RootsError::Duplicate { index, path });
            }
            roots.push(RootConfig { path, ..root });
        }
        Ok(Self {
            roots,
            protected: ProtectedFiles::default(),
        })
    }

    /// These roots, with the server's own `protected` files refused under them.
    #[must_use]
    pub fn with_protected(self, protected: ProtectedFiles) -> Self {
        Self { protected, ..self }
    }

    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// The configured roots, as written (normalised).
    pub fn roots(&self) -> &[RootConfig] {
        &self.roots
    }

    /// The root `path` belongs to and the rest of it, with the root's directory open.
    pub fn locate(&self, path: &str) -> Result<Located, FileError> {
        if self.roots.is_empty() {
            return Err(FileError::NoRoots);
        }
        let requested = Path::new(path);
        if !requested.is_absolute() {
            return Err(FileError::NotAbsolute {
                path: path.to_owned(),
                roots: self.listing(),
            });
        }
        let (root, relative) = self
            .roots
            .iter()
            .filter_map(|root| {
                requested
                    .strip_prefix(&root.path)
                    .ok()
                    .map(|rest| (root, rest))
            })
            .max_by_key(|(root, _)| root.path.components().count())
            .ok_or_else(|| FileError::OutsideRoots {
                path: path.to_owned(),
                roots: self.listing(),
            })?;
        let dir = Dir::open_ambient_dir(&root.path, ambient_authority()).map_err(|source| {
            FileError::RootUnavailable {
                root: root.path.clone(),
                source,
            }
        })?;
        let relative: PathBuf = if relative.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            relative.to_owned()
        };
        // Read-only roots inside this one: a write reaching them through `..` or a symlink
        // (spelled under this root) is refused once the kernel has resolved where it lands.
        let read_only_inside = self
            .roots
            .iter()
            .filter(|other| {
                !other.write && other.path != root.path && other.path.starts_with(&root.path)
            })
            .map(|other| other.path.clone())
            .collect();
        Ok(Located {
            protected: self.protected.clone(),
            root: root.path.clone(),
            writable: root.write,
            read_only_inside,
            dir,
            relative,
            requested: path.to_owned(),
        })
    }

    fn listing(&self) -> String {
        self.roots
            .iter()
            .map(|root| {
                format!(
                    "{} ({})",
                    root.path.display(),
                    if root.write {
                        "read-write"
                    } else {
                        "read-only"
                    }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A caller's path placed in its root: the root's directory handle and the path inside it.
#[derive(Debug)]
pub struct Located {
    pub root: PathBuf,
    pub writable: bool,
    /// The read-only roots nested in `root` (checked against resolved paths before a write).
    read_only_inside: Vec<PathBuf>,
    dir: Dir,
    /// Relative to `root`; `.` for the root itself. May hold `..` and symlinks: `cap-std`
    /// resolves them inside `dir`.
    relative: PathBuf,
    /// As the caller wrote it.
    pub requested: String,
    /// The server's own files, refused by identity.
    protected: ProtectedFiles,
}

impl Located {
    /// The path as the caller sees it: the root joined with the relative part, lexically.
    pub fn display_path(&self, relative: &Path) -> PathBuf {
        let mut path = self.root.clone();
        for component in relative.components() {
            match component {
                Component::Normal(name) => path.push(name),
                Component::ParentDir => {
                    path.pop();
                }
                _ => {}
            }
        }
        path
    }

    /// The nested read-only root `resolved` (a directory the kernel resolved) lies in, if any.
    /// Both sides are compared canonical, so a root configured through a symlink still counts.
    fn read_only_root_of(&self, resolved: &Path) -> Option<PathBuf> {
        self.read_only_inside.iter().find_map(|inner| {
            let canonical = std::fs::canonicalize(inner).unwrap_or_else(|_| inner.clone());
            resolved.starts_with(&canonical).then(|| inner.clone())
        })
    }

    /// Open the located file for reading, refused unless it is a regular file the tools may
    /// read ([`open_regular`]; symlinks inside the root are followed).
    fn open_regular(&self) -> Result<(cap_std::fs::File, cap_std::fs::Metadata), FileError> {
        open_regular(&self.dir, &self.relative, true, &self.protected).map_err(|refusal| {
            let path = self.requested.clone();
            match refusal {
                NotOpened::Io(source) => self.io_error(source),
                NotOpened::NotRegular(kind) => FileError::NotRegular { path, kind },
                NotOpened::Pseudo(filesystem) => FileError::PseudoFilesystem { path, filesystem },
                NotOpened::Protected => FileError::ServerFile { path },
            }
        })
    }

    /// An I/O error of this path, with `cap-std`'s sandbox refusal named as such.
    fn io_error(&self, source: std::io::Error) -> FileError {
        FileError::from_io(&self.requested, &self.root, source)
    }
}

/// Why [`open_regular`] did not open a file.
#[derive(Debug)]
enum NotOpened {
    Io(std::io::Error),
    NotRegular(&'static str),
    Pseudo(&'static str),
    Protected,
}

/// Open `path` in `dir` for reading, if it is a regular file that is neither on a pseudo
/// filesystem nor one of the server's `protected` files. The checks run on an `O_PATH`
/// descriptor (no device is opened, no FIFO waited on); the file is then reopened for
/// reading through `/proc/self/fd`, which names that same inode whatever happens to `path`.
fn open_regular(
    dir: &Dir,
    path: &Path,
    follow: bool,
    protected: &ProtectedFiles,
) -> Result<(cap_std::fs::File, cap_std::fs::Metadata), NotOpened> {
    use cap_std::fs::{OpenOptions, OpenOptionsExt};
    use nix::libc::{O_NOFOLLOW, O_PATH};
    let mut options = OpenOptions::new();
    options
        .read(true)
        .custom_flags(O_PATH | if follow { 0 } else { O_NOFOLLOW });
    let handle = dir.open_with(path, &options).map_err(NotOpened::Io)?;
    let metadata = handle.metadata().map_err(NotOpened::Io)?;
    if !metadata.is_file() {
        return Err(NotOpened::NotRegular(error::kind_name(
            metadata.file_type(),
        )));
    }
    if let Some(filesystem) = pseudo_filesystem(&handle) {
        return Err(NotOpened::Pseudo(filesystem));
    }
    if protected.holds(&metadata).is_some() {
        return Err(NotOpened::Protected);
    }
    let mut reopen = std::fs::OpenOptions::new();
    reopen.read(true);
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut reopen, nix::libc::O_NOCTTY);
    let file = reopen
        .open(format!("/proc/self/fd/{}", handle.as_raw_fd()))
        .map_err(NotOpened::Io)?;
    Ok((cap_std::fs::File::from_std(file), metadata))
}

/// The name of the kernel pseudo filesystem `file` is on (procfs, sysfs), if it is on one:
/// `/proc/<server pid>/environ` or `mem` under a root of `/` must not be readable.
fn pseudo_filesystem(file: &impl std::os::fd::AsFd) -> Option<&'static str> {
    use nix::sys::statfs::{PROC_SUPER_MAGIC, SYSFS_MAGIC, fstatfs};
    let kind = fstatfs(file).ok()?.filesystem_type();
    if kind == PROC_SUPER_MAGIC {
        Some("procfs")
    } else if kind == SYSFS_MAGIC {
        Some("sysfs")
    } else {
        None
    }
}

/// The path the kernel gives an open descriptor: the resolved path, whatever the caller's
/// spelling and symlinks were.
fn resolved_path(file: &impl AsRawFd) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
}

/// SHA-256 of everything `reader` yields, in lowercase hex.
fn sha256_of(mut reader: impl std::io::Read) -> std::io::Result<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buffer)? {
            0 => return Ok(hex::encode(hasher.finalize())),
            read => hasher.update(&buffer[..read]),
        }
    }
}

/// The mode bits, as results show them: octal, e.g. "0644".
fn mode_string(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

#[cfg(test)]
mod tests;
