//! Tokens: generation, SHA-256 digests, and the generated default token kept on disk.

use std::{
    io,
    path::{Path, PathBuf},
    sync::Arc,
    time::SystemTime,
};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use super::{Role, Secret};

/// Random bytes in a generated token (256 bits).
pub const TOKEN_ENTROPY_BYTES: usize = 32;
/// Prefix of generated tokens, so they are recognisable in a secret scanner.
pub const TOKEN_PREFIX: &str = "hmcp_";
/// File name of the generated token inside the state directory.
pub const TOKEN_FILE_NAME: &str = "token";

/// The SHA-256 of a token. Only digests are kept in memory and in config files.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn of_token(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Parse 64 hex characters (either case).
    pub fn from_hex(hex_digest: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_digest.trim(), &mut bytes).ok()?;
        Some(Self(bytes))
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

impl ConstantTimeEq for TokenDigest {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenDigest([redacted])")
    }
}

/// One accepted token: its name (the principal), digest and role.
#[derive(Debug, Clone)]
pub struct TokenEntry {
    name: String,
    digest: TokenDigest,
    role: Role,
    expires_at: Option<SystemTime>,
    run_as: Option<Arc<str>>,
}

impl TokenEntry {
    pub fn new(name: &str, digest: TokenDigest, role: Role) -> Self {
        Self {
            name: name.to_owned(),
            digest,
            role,
            expires_at: None,
            run_as: None,
        }
    }

    /// Commands of this token run as the Unix user `user`.
    pub fn running_as(mut self, user: &str) -> Self {
        self.run_as = Some(Arc::from(user));
        self
    }

    pub fn run_as(&self) -> Option<&Arc<str>> {
        self.run_as.as_ref()
    }

    /// The token stops working at `expires_at`.
    pub fn expiring_at(mut self, expires_at: SystemTime) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// When the token stops working, if it does.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|expires_at| now >= expires_at)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn digest(&self) -> &TokenDigest {
        &self.digest
    }

    pub fn role(&self) -> Role {
        self.role
    }
}

/// Token names appear in logs and audit records: keep them short and plain.
pub fn is_valid_token_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
}

/// A new token: `hmcp_` followed by 32 random bytes in URL-safe base64.
pub fn generate_token() -> io::Result<Secret> {
    let mut bytes = [0u8; TOKEN_ENTROPY_BYTES];
    getrandom::fill(&mut bytes).map_err(io::Error::other)?;
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    Ok(Secret::new(format!("{TOKEN_PREFIX}{encoded}")))
}

/// The generated default token and whether it was created just now.
#[derive(Debug)]
pub struct StoredToken {
    pub token: Secret,
    pub path: PathBuf,
    pub created: bool,
}

/// Errors reading or writing the generated token file.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error(transparent)]
    File(#[from] crate::private_file::PrivateFileError),
    #[error("token file {path} is empty; delete it to generate a new token")]
    Empty { path: PathBuf },
}

/// Load the token kept in `state_dir`, or create one there (directory 0700, file 0600).
pub fn load_or_create_token(state_dir: &Path) -> Result<StoredToken, TokenFileError> {
    let stored =
        crate::private_file::read_or_create(state_dir, TOKEN_FILE_NAME, "token file", || {
            generate_token().map(|token| token.expose().to_owned())
        })?;
    let token = stored.text.trim();
    if token.is_empty() {
        return Err(TokenFileError::Empty { path: stored.path });
    }
    Ok(StoredToken {
        token: Secret::new(token),
        path: stored.path,
        created: stored.created,
    })
}
