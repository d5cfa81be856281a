//! The gateway's signing key: an ed25519 key pair in NATS's nkey encoding (an account key,
//! public half `A…`), its seed kept in `gateway.nk` in the state directory (directory
//! 0700, file 0600, created on first use). Every request the gateway sends a host is signed
//! with it; hosts list the public half in `[fleet] trusted_gateways`.

use std::{
    io,
    path::{Path, PathBuf},
};

use nkeys::KeyPair;

/// The seed file's name in the state directory.
pub const KEY_FILE_NAME: &str = "gateway.nk";

/// Why the gateway key cannot be loaded or made. Never carries the seed.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error(transparent)]
    File(#[from] crate::private_file::PrivateFileError),
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

/// Load the key in `state_dir`, or make one there (directory 0700, file 0600).
pub fn load_or_create(state_dir: &Path) -> Result<GatewayKey, KeyFileError> {
    let mut made = None;
    let stored =
        crate::private_file::read_or_create(state_dir, KEY_FILE_NAME, "gateway key", || {
            let mut raw = [0u8; 32];
            getrandom::fill(&mut raw).map_err(io::Error::other)?;
            let pair = KeyPair::new_from_raw(nkeys::KeyPairType::Account, raw)
                .map_err(|error| io::Error::other(error.to_string()))?;
            let seed = pair
                .seed()
                .map_err(|error| io::Error::other(error.to_string()))?;
            made = Some(pair);
            Ok(seed)
        })?;
    let pair = match made {
        Some(pair) => pair,
        None => KeyPair::from_seed(stored.text.trim())
            .ok()
            .filter(|pair| pair.key_pair_type() == nkeys::KeyPairType::Account)
            .ok_or_else(|| KeyFileError::NotASeed {
                path: stored.path.clone(),
            })?,
    };
    Ok(GatewayKey {
        pair,
        path: stored.path,
        created: stored.created,
    })
}

#[cfg(test)]
mod tests {
    use std::{fs, os::unix::fs::PermissionsExt};

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
            Err(KeyFileError::File(
                crate::private_file::PrivateFileError::TooOpen { .. }
            ))
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
