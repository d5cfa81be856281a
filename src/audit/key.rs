//! The audit key: 32 random bytes that make the hash chain a keyed one.
//!
//! Owns the key file (`hostmcp audit keygen FILE` writes it, 64 hex digits and a newline, mode
//! 0600; the server and `audit verify --key` read it and refuse one that other users may read
//! or write) and the two MACs made with the key: the MAC of a line ([`AuditKey::seal_line`],
//! [`AuditKey::open_line`]) and the MAC of an anchor ([`AuditKey::anchor_mac`]).
//!
//! A sealed line is the record's JSON with one more member at the end, `"mac"`: the
//! HMAC-SHA256 of the line as it was before the member was added (`{…,"prev":"…"}`). Since that
//! line carries `seq` and `prev`, and `prev` is the hash of the whole previous line with its
//! own `"mac"`, the MACs vouch for the order too. Anyone can recompute a hash chain after an
//! edit; only a holder of the key can recompute the MACs.
//!
//! The key never reaches a log or an error message: [`AuditKey`]'s `Debug` prints
//! `[redacted]`.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Bytes of key material.
const KEY_BYTES: usize = 32;

/// What a sealed line ends with, before the 64 hex digits of its MAC.
const MAC_PREFIX: &[u8] = b",\"mac\":\"";
/// What a sealed line ends with, after its MAC.
const MAC_SUFFIX: &[u8] = b"\"}";
/// Bytes a seal adds to a line: the member, minus the `}` it replaces.
const SEAL_LEN: usize = MAC_PREFIX.len() + 64 + MAC_SUFFIX.len();

/// Domain separation between the MAC of a line and the MAC of an anchor.
const ANCHOR_CONTEXT: &[u8] = b"hostmcp audit anchor v1\n";

/// The audit key. Cheap to clone.
#[derive(Clone)]
pub struct AuditKey(Arc<[u8; KEY_BYTES]>);

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey([redacted])")
    }
}

/// Why a key file could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read audit key {}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("audit key {} is not a regular file", .path.display())]
    NotAFile { path: PathBuf },
    #[error("audit key {} has mode {mode:o}: other users may read or change it", .path.display())]
    Exposed { path: PathBuf, mode: u32 },
    #[error("audit key {} is not 64 hex digits", .path.display())]
    Malformed { path: PathBuf },
    #[error("audit key {} already exists", .path.display())]
    Exists { path: PathBuf },
    #[error("cannot write audit key {}: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot make an audit key: no randomness ({0})")]
    Random(getrandom::Error),
}

impl KeyError {
    /// What the operator should do next.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::Read { .. } | Self::NotAFile { .. } | Self::Malformed { .. } => {
                "make a key with `hostmcp audit keygen FILE` and set [audit] key_file to it"
            }
            Self::Exposed { .. } => "chmod 600 the key file (and keep it away from commands)",
            Self::Exists { .. } => {
                "a key already exists there; keep it (logs sealed with it need it to verify)"
            }
            Self::Write { .. } => "check that the directory exists and that you may write it",
            Self::Random(_) => "the system has no usable random source",
        }
    }
}

/// What [`AuditKey::open_line`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seal {
    /// The line ends with a MAC that the key confirms.
    Valid,
    /// The line ends with a MAC that the key does not confirm.
    Invalid,
    /// The line carries no MAC.
    Missing,
}

impl AuditKey {
    /// Make a new key at `path` (mode 0600, never over an existing file).
    pub fn generate(path: &Path) -> Result<Self, KeyError> {
        let mut bytes = [0u8; KEY_BYTES];
        getrandom::fill(&mut bytes).map_err(KeyError::Random)?;
        let write_error = |source| KeyError::Write {
            path: path.to_owned(),
            source,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| match source.kind() {
                io::ErrorKind::AlreadyExists => KeyError::Exists {
                    path: path.to_owned(),
                },
                _ => write_error(source),
            })?;
        file.write_all(format!("{}\n", hex::encode(bytes)).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(write_error)?;
        Ok(Self(Arc::new(bytes)))
    }

    /// Read the key at `path`, refusing a file that other users may read or write.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let read_error = |source| KeyError::Read {
            path: path.to_owned(),
            source,
        };
        let metadata = fs::metadata(path).map_err(read_error)?;
        if !metadata.is_file() {
            return Err(KeyError::NotAFile {
                path: path.to_owned(),
            });
        }
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Exposed {
                path: path.to_owned(),
                mode,
            });
        }
        let text = fs::read_to_string(path).map_err(read_error)?;
        let malformed = || KeyError::Malformed {
            path: path.to_owned(),
        };
        let decoded = hex::decode(text.trim()).map_err(|_| malformed())?;
        let bytes: [u8; KEY_BYTES] = decoded.try_into().map_err(|_| malformed())?;
        Ok(Self(Arc::new(bytes)))
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.as_slice())
            .expect("HMAC takes a key of any length");
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// `line` (a record's JSON, ending with `}`) with its `"mac"` member added.
    pub fn seal_line(&self, line: &mut Vec<u8>) {
        debug_assert_eq!(line.last(), Some(&b'}'));
        let mac = hex::encode(self.mac(&[line]));
        line.pop();
        line.extend_from_slice(MAC_PREFIX);
        line.extend_from_slice(mac.as_bytes());
        line.extend_from_slice(MAC_SUFFIX);
    }

    /// Check the `"mac"` member at the end of `line` (without its newline).
    pub fn open_line(&self, line: &[u8]) -> Seal {
        let Some((body, mac)) = split_seal(line) else {
            return Seal::Missing;
        };
        let Ok(mac) = hex::decode(mac) else {
            return Seal::Invalid;
        };
        let expected = self.mac(&[body, b"}"]);
        if bool::from(expected.as_slice().ct_eq(&mac)) {
            Seal::Valid
        } else {
            Seal::Invalid
        }
    }

    /// The MAC of an anchor (`SEQ:HASH`), in hex.
    pub fn anchor_mac(&self, anchor: &str) -> String {
        hex::encode(self.mac(&[ANCHOR_CONTEXT, anchor.as_bytes()]))
    }

    /// Whether `mac` (hex) is the MAC of `anchor`, compared in constant time.
    pub fn anchor_mac_matches(&self, anchor: &str, mac: &str) -> bool {
        let expected = self.anchor_mac(anchor);
        bool::from(expected.as_bytes().ct_eq(mac.as_bytes()))
    }
}

/// Whether a line ends with a `"mac"` member (whatever its value).
pub fn is_sealed(line: &[u8]) -> bool {
    split_seal(line).is_some()
}

/// A sealed line's body without its closing `}`, and the MAC's hex digits.
fn split_seal(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let start = line.len().checked_sub(SEAL_LEN)?;
    let (body, seal) = line.split_at(start);
    let mac = seal.strip_prefix(MAC_PREFIX)?.strip_suffix(MAC_SUFFIX)?;
    mac.iter().all(u8::is_ascii_hexdigit).then_some((body, mac))
}

#[cfg(test)]
impl AuditKey {
    pub(super) fn from_bytes_for_test(bytes: [u8; KEY_BYTES]) -> Self {
        Self(Arc::new(bytes))
    }
}
