//! The gateway's signing key: an ed25519 key pair in NATS's nkey encoding (an account key,
//! public half `A…`), its seed kept in `gateway.nk` in the state directory (directory
//! 0700, file 0600, created on first use). Every request the gateway sends a host is signed
//! with it; hosts list the public half in `[fleet] trusted_gateways`.

use std::{
    fs,
    io::{self, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use nkeys::KeyPair;

/// The seed file's name in the state directory.
pub const KEY_FILE_NAME: &str = "gateway.nk";

/// Why the gateway key cannot be loaded or made. Never carries the seed.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot create state directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot read gateway key {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write gateway key {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "gateway key {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("gateway key {path} is not an nkey account seed (`SA…`); delete it to make a new key")]
    NotASeed { path: PathBuf },
}

/// The gateway's key pair and where its seed lives.
pub struct GatewayKey {
    pub pair: KeyPair,
    pub path: PathBuf,
    /// Made by this call (not read from an existing file).
    pub created: bool,
}

impl std::fmt::Debug for GatewayKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayKey")
            .field("public", &self.pair.public_key())
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Load the key in `state_dir`, or make one there.
pub fn load_or_create(state_dir: &Path) -> Result<GatewayKey, KeyFileError> {
    let path = state_dir.join(KEY_FILE_NAME);
    match fs::metadata(&path) {
        Ok(metadata) => {
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyFileError::TooOpen { path, mode });
            }
            let text = fs::read_to_string(&path).map_err(|source| KeyFileError::Read {
                path: path.clone(),
                source,
            })?;
            let pair = KeyPair::from_seed(text.trim())
                .ok()
                .filter(|pair| pair.key_pair_type() == nkeys::KeyPairType::Account)
                .ok_or_else(|| KeyFileError::NotASeed { path: path.clone() })?;
            Ok(GatewayKey {
                pair,
                path,
                created: false,
            })
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => create(state_dir, path),
        Err(source) => Err(KeyFileError::Read { path, source }),
    }
}

fn create(state_dir: &Path, path: PathBuf) -> Result<GatewayKey, KeyFileError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(|source| KeyFileError::CreateDir {
            path: state_dir.to_owned(),
            source,
        })?;
    let write_error = |source| KeyFileError::Write {
        path: path.clone(),
        source,
    };
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|error| write_error(io::Error::other(error)))?;
    let pair = KeyPair::new_from_raw(nkeys::KeyPairType::Account, raw)
        .map_err(|error| write_error(io::Error::other(error.to_string())))?;
    let seed = pair
        .seed()
        .map_err(|error| write_error(io::Error::other(error.to_string())))?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(write_error)?;
    writeln!(file, "{seed}").map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    Ok(GatewayKey {
        pair,
        path,
        created: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_is_kept_private_and_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let made = load_or_create(&state).unwrap();
        assert!(made.created);
        assert!(made.pair.public_key().starts_with('A'));
        let mode = fs::metadata(&made.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = load_or_create(&state).unwrap();
        assert!(!again.created);
        assert_eq!(again.pair.public_key(), made.pair.public_key());
    }

    #[test]
    fn a_key_others_can_read_is_refused_and_a_private_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let made = load_or_create(dir.path()).unwrap();
        fs::set_permissions(&made.path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            load_or_create(dir.path()),
            Err(KeyFileError::TooOpen { .. })
        ));
        fs::set_permissions(&made.path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load_or_create(dir.path()).is_ok());
    }

    #[test]
    fn a_user_seed_is_not_a_gateway_key_but_an_account_seed_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        let user = KeyPair::new_from_raw(nkeys::KeyPairType::User, [7; 32]).unwrap();
        fs::write(&path, user.seed().unwrap()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            load_or_create(dir.path()),
            Err(KeyFileError::NotASeed { .. })
        ));
        let account = KeyPair::new_from_raw(nkeys::KeyPairType::Account, [7; 32]).unwrap();
        fs::write(&path, account.seed().unwrap()).unwrap();
        assert_eq!(
            load_or_create(dir.path()).unwrap().pair.public_key(),
            account.public_key()
        );
    }
}
