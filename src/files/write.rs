//! `file_write`'s operation: replace (or create) one regular file under a writable root
//! atomically. The new content goes to a temporary file in the same directory, which takes
//! the old file's mode (and owner, when the server is root), is synced, and is renamed over
//! the target through the directory's handle: a reader sees the old file or the new one,
//! never half of either. With `expected_sha256` the write happens only if the file still
//! has that content (checked when preparing and again just before the rename), so an edit
//! made since the caller read it is not lost.
//!
//! In two steps, so the tool can put the write on the audit record between them:
//! [`prepare`] checks and writes the temporary file, [`Prepared::commit`] renames it.
//! A [`Prepared`] dropped without commit removes its temporary file.

use std::{
    ffi::{OsStr, OsString},
    io::Write,
    os::unix::ffi::OsStrExt,
    path::Path,
};

use cap_std::fs::{Dir, MetadataExt, OpenOptions, OpenOptionsExt, Permissions, PermissionsExt};
use schemars::JsonSchema;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{FileError, Located, error::kind_name, mode_string, resolved_path, sha256_of};

/// The most bytes one `file_write` takes.
pub const MAX_WRITE_BYTES: usize = 4 * 1024 * 1024;
/// The mode of a file `file_write` creates.
const NEW_FILE_MODE: u32 = 0o644;

/// What a write did.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct WriteOutcome {
    /// The file as the kernel resolved its directory.
    pub path: String,
    /// The file did not exist before.
    pub created: bool,
    pub bytes: u64,
    /// SHA-256 of the new content.
    pub sha256: String,
    /// SHA-256 of the content it replaced; null when created.
    pub previous_sha256: Option<String>,
    /// Permission bits, octal: the old file's, or 0644 for a new one.
    pub mode: String,
}

/// A checked write whose content waits in a temporary file beside the target.
#[derive(Debug)]
pub struct Prepared {
    parent: Dir,
    name: OsString,
    temp: Option<OsString>,
    expected_sha256: Option<String>,
    outcome: WriteOutcome,
}

/// Check that `content` may replace the file at `located` and stage it.
pub fn prepare(
    located: &Located,
    content: &[u8],
    expected_sha256: Option<&str>,
) -> Result<Prepared, FileError> {
    let requested = || located.requested.clone();
    if !located.writable {
        return Err(FileError::ReadOnlyRoot {
            path: requested(),
            root: located.root.clone(),
        });
    }
    if content.len() > MAX_WRITE_BYTES {
        return Err(FileError::TooLarge {
            size: content.len(),
            limit: MAX_WRITE_BYTES,
        });
    }
    let io = |error| located.io_error(error);
    let name = located
        .relative
        .file_name()
        .filter(|_| !located.relative.as_os_str().as_bytes().ends_with(b"/"))
        .ok_or_else(|| FileError::NoFileName { path: requested() })?
        .to_owned();
    let parent_path = match located.relative.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let parent = located.dir.open_dir(parent_path).map_err(io)?;
    // Where the parent really is, whatever `..` and symlinks the path took: inside a nested
    // read-only root, the write is refused as if it had been spelled there. Unknown (no
    // /proc): refused too, when there is a read-only root to protect.
    if !located.read_only_inside.is_empty() {
        let landed = super::resolved_path(&parent);
        let inside = match &landed {
            Some(path) => located.read_only_root_of(path),
            None => located.read_only_inside.first().cloned(),
        };
        if let Some(root) = inside {
            return Err(FileError::ReadOnlyRoot {
                path: requested(),
                root,
            });
        }
    }
    // Nothing is created in the server's state directory either.
    if parent
        .dir_metadata()
        .is_ok_and(|metadata| located.protected.is_protected_dir(&metadata))
    {
        return Err(FileError::ServerFile { path: requested() });
    }
    let expected_sha256 = expected_sha256.map(str::to_ascii_lowercase);
    let (previous_sha256, mode, owner) = match parent.symlink_metadata(&name) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if expected_sha256.is_some() {
                return Err(FileError::ExpectedMissing { path: requested() });
            }
            (None, NEW_FILE_MODE, None)
        }
        Err(error) => return Err(io(error)),
        Ok(metadata) => {
            let file_type = metadata.file_type();
            if file_type.is_symlink() {
                return Err(FileError::WriteThroughSymlink { path: requested() });
            }
            if !file_type.is_file() {
                return Err(FileError::NotRegular {
                    path: requested(),
                    kind: kind_name(file_type),
                });
            }
            if located.protected.holds(&metadata).is_some() {
                return Err(FileError::ServerFile { path: requested() });
            }
            if metadata.nlink() > 1 {
                return Err(FileError::HardLinked {
                    path: requested(),
                    links: metadata.nlink(),
                });
            }
            let current = hash_of(&parent, &name).map_err(io)?;
            check_expected(located, expected_sha256.as_deref(), &current)?;
            (
                Some(current),
                metadata.mode() & 0o7777,
                Some((metadata.uid(), metadata.gid())),
            )
        }
    };
    let resolved = resolved_path(&parent)
        .unwrap_or_else(|| located.display_path(parent_path))
        .join(&name)
        .to_string_lossy()
        .into_owned();
    let temp = temp_name(&name);
    let prepared = Prepared {
        parent,
        name,
        temp: Some(temp.clone()),
        expected_sha256,
        outcome: WriteOutcome {
            path: resolved,
            created: previous_sha256.is_none(),
            bytes: content.len() as u64,
            sha256: hex::encode(Sha256::digest(content)),
            previous_sha256,
            mode: mode_string(mode),
        },
    };
    let mut options = OpenOptions::new();
    options
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW);
    let staged = (|| {
        let mut file = prepared.parent.open_with(&temp, &options)?;
        file.write_all(content)?;
        file.set_permissions(Permissions::from_mode(mode))?;
        if let Some((uid, gid)) = owner
            && nix::unistd::Uid::effective().is_root()
        {
            nix::unistd::fchown(
                &file,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )
            .map_err(std::io::Error::from)?;
        }
        file.sync_all()
    })();
    if let Err(error) = staged {
        // `prepared` drops here and removes what was staged.
        return Err(io(error));
    }
    Ok(prepared)
}

impl Prepared {
    /// The path the write replaces, as resolved.
    pub fn path(&self) -> &str {
        &self.outcome.path
    }

    pub fn outcome(&self) -> &WriteOutcome {
        &self.outcome
    }

    /// Rename the staged file over the target, after checking the guard once more.
    pub fn commit(mut self, located: &Located) -> Result<WriteOutcome, FileError> {
        let io = |error| located.io_error(error);
        if let Some(expected) = self.expected_sha256.clone() {
            let current = hash_of(&self.parent, &self.name).map_err(io)?;
            check_expected(located, Some(&expected), &current)?;
        }
        let Some(temp) = self.temp.take() else {
            return Err(FileError::BadRange("write already committed"));
        };
        if let Err(error) = self.parent.rename(&temp, &self.parent, &self.name) {
            self.temp = Some(temp);
            return Err(io(error));
        }
        // The rename is durable once the directory is synced; the file is already.
        let _ = nix::unistd::fsync(&self.parent);
        Ok(self.outcome.clone())
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            let _ = self.parent.remove_file(&temp);
        }
    }
}

fn check_expected(
    located: &Located,
    expected: Option<&str>,
    current: &str,
) -> Result<(), FileError> {
    match expected {
        Some(expected) if expected != current => Err(FileError::Conflict {
            path: located.requested.clone(),
            expected: expected.to_owned(),
            actual: current.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// SHA-256 of `dir/name`, opened without following a symlink.
fn hash_of(dir: &Dir, name: &OsStr) -> std::io::Result<String> {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK);
    sha256_of(dir.open_with(name, &options)?)
}

/// `.NAME.hostmcp-RANDOM.tmp`: hidden, beside the target, never an existing name.
fn temp_name(name: &OsStr) -> OsString {
    let mut random = [0u8; 8];
    // A failed fill leaves zeros: `create_new` still refuses to reuse an existing name.
    let _ = getrandom::fill(&mut random);
    let mut temp = OsString::from(".");
    temp.push(name);
    temp.push(format!(".hostmcp-{}.tmp", hex::encode(random)));
    temp
}
