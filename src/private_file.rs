//! Secrets the server makes for itself and keeps in its state directory (the generated
//! token, the gateway's signing seed): read back only while no other user can read them,
//! or made once, written to a new 0600 file in a 0700 directory and synced. What a secret
//! is and how it is checked stays with its owner (`auth::token`, `gateway::key`).

use std::{
    fs,
    io::{self, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

/// Why a private file cannot be read or made. `what` names the secret ("token file",
/// "gateway key"); the errors never carry its contents.
#[derive(Debug, thiserror::Error)]
pub enum PrivateFileError {
    #[error("cannot create state directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("cannot write {what} {path}: {source}")]
    Write {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{what} {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`")]
    TooOpen {
        what: &'static str,
        path: PathBuf,
        mode: u32,
    },
}

/// A private file's text, where it lives, and whether this call made it.
#[derive(Debug)]
pub struct PrivateText {
    pub text: String,
    pub path: PathBuf,
    pub created: bool,
}

/// Read `name` in `state_dir` (refused when group or others may read it), or, when it does
/// not exist, write the line `make` returns to a new file there.
pub fn read_or_create(
    state_dir: &Path,
    name: &str,
    what: &'static str,
    make: impl FnOnce() -> io::Result<String>,
) -> Result<PrivateText, PrivateFileError> {
    let path = state_dir.join(name);
    match fs::metadata(&path) {
        Ok(metadata) => {
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(PrivateFileError::TooOpen { what, path, mode });
            }
            let text = fs::read_to_string(&path).map_err(|source| PrivateFileError::Read {
                what,
                path: path.clone(),
                source,
            })?;
            Ok(PrivateText {
                text,
                path,
                created: false,
            })
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            create(state_dir, path, what, make)
        }
        Err(source) => Err(PrivateFileError::Read { what, path, source }),
    }
}

fn create(
    state_dir: &Path,
    path: PathBuf,
    what: &'static str,
    make: impl FnOnce() -> io::Result<String>,
) -> Result<PrivateText, PrivateFileError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(|source| PrivateFileError::CreateDir {
            path: state_dir.to_owned(),
            source,
        })?;
    let write_error = |source| PrivateFileError::Write {
        what,
        path: path.clone(),
        source,
    };
    let text = make().map_err(write_error)?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(write_error)?;
    writeln!(file, "{text}").map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    Ok(PrivateText {
        text,
        path,
        created: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_file_is_private_and_read_back_without_making_again() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let made = read_or_create(&state, "s", "secret", || Ok("one".to_owned())).unwrap();
        assert!(made.created);
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&made.path), 0o600);
        assert_eq!(mode(&state), 0o700);
        let again = read_or_create(&state, "s", "secret", || panic!("made again")).unwrap();
        assert!(!again.created);
        assert_eq!(again.text.trim(), "one");
    }

    #[test]
    fn a_file_others_can_read_is_refused_and_its_private_twin_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let made = read_or_create(dir.path(), "s", "secret", || Ok("x".to_owned())).unwrap();
        fs::set_permissions(&made.path, fs::Permissions::from_mode(0o640)).unwrap();
        let refused = read_or_create(dir.path(), "s", "secret", || Ok("y".to_owned()));
        assert!(matches!(
            refused,
            Err(PrivateFileError::TooOpen { mode: 0o640, .. })
        ));
        fs::set_permissions(&made.path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read_or_create(dir.path(), "s", "secret", || Ok("y".to_owned())).is_ok());
    }

    #[test]
    fn a_failed_make_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let failed = read_or_create(dir.path(), "s", "secret", || Err(io::Error::other("no")));
        assert!(matches!(failed, Err(PrivateFileError::Write { .. })));
        assert!(!dir.path().join("s").exists());
    }
}
