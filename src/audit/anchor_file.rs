//! The anchor file beside a keyed log (`<log>.anchor`): where the chain ended at the last
//! sync, sealed with the audit key, so that `audit verify --key` sees lines cut off the end and
//! an emptied log, which no MAC inside the log can show.
//!
//! One line of fixed length, `SEQ:HASH MAC` with `SEQ` as 20 digits, so the writer rewrites it
//! in place with one `pwrite(2)` after each batch's `fdatasync`, with no sync of its own: the
//! anchor is never ahead of the data on disk, and after a crash it may lag behind it (verify
//! accepts a log that goes on past its anchor). `SEQ` 0 with a hash of 64 zeros is a chain with
//! no line yet.
//!
//! The anchor names the end of the chain, not of a file: after rotation it names a line of the
//! newest file, and the server continues a new, empty log after it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::key::AuditKey;
use super::verify::Anchor;

/// Bytes of an anchor file: 20 digits, `:`, 64 hex, space, 64 hex, newline.
const ANCHOR_FILE_LEN: usize = 20 + 1 + 64 + 1 + 64 + 1;

/// The anchor file of the log at `log`: the same path with `.anchor` added.
pub fn anchor_path(log: &Path) -> PathBuf {
    let mut path = log.as_os_str().to_owned();
    path.push(".anchor");
    PathBuf::from(path)
}

/// Why an anchor file could not be read or trusted.
#[derive(Debug, thiserror::Error)]
pub enum AnchorFileError {
    #[error("cannot read anchor file {}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("anchor file {} is not `SEQ:HASH MAC`", .path.display())]
    Malformed { path: PathBuf },
    #[error(
        "the MAC of anchor file {} does not match: it was written without this key, or edited",
        .path.display()
    )]
    Forged { path: PathBuf },
}

/// The line written for `anchor`.
fn encode(anchor: &Anchor, key: &AuditKey) -> String {
    let text = format!("{:020}:{}", anchor.seq, anchor.hash);
    let mac = key.anchor_mac(&text);
    format!("{text} {mac}\n")
}

/// Read the anchor file at `path` and check its MAC.
pub fn read(path: &Path, key: &AuditKey) -> Result<Anchor, AnchorFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| AnchorFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    let malformed = || AnchorFileError::Malformed {
        path: path.to_owned(),
    };
    let (anchor_text, mac) = text
        .strip_suffix('\n')
        .and_then(|line| line.split_once(' '))
        .ok_or_else(malformed)?;
    let anchor: Anchor = anchor_text.parse().map_err(|_| malformed())?;
    if !key.anchor_mac_matches(anchor_text, mac) {
        return Err(AnchorFileError::Forged {
            path: path.to_owned(),
        });
    }
    Ok(anchor)
}

/// The open anchor file of a running writer.
#[derive(Debug)]
pub struct AnchorWriter {
    path: PathBuf,
    file: File,
    key: AuditKey,
}

impl AnchorWriter {
    /// Open (or create, mode 0600) the anchor file at `path`.
    pub fn open(path: PathBuf, key: AuditKey) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)?;
        Ok(Self { path, file, key })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rewrite the anchor in place: one `pwrite(2)`, no sync.
    pub fn write(&self, anchor: &Anchor) -> io::Result<()> {
        let line = encode(anchor, &self.key);
        debug_assert_eq!(line.len(), ANCHOR_FILE_LEN);
        self.file.write_all_at(line.as_bytes(), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AuditKey {
        AuditKey::from_bytes_for_test([7; 32])
    }

    #[test]
    fn a_written_anchor_reads_back_and_is_rewritten_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl.anchor");
        let writer = AnchorWriter::open(path.clone(), key()).unwrap();
        let first = Anchor {
            seq: 123_456,
            hash: "ab".repeat(32),
        };
        writer.write(&first).unwrap();
        assert_eq!(read(&path, &key()).unwrap(), first);
        let second = Anchor {
            seq: 7,
            hash: "cd".repeat(32),
        };
        writer.write(&second).unwrap();
        assert_eq!(read(&path, &key()).unwrap(), second);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            ANCHOR_FILE_LEN as u64
        );
    }

    #[test]
    fn an_anchor_rewritten_without_the_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.anchor");
        let writer = AnchorWriter::open(path.clone(), key()).unwrap();
        writer
            .write(&Anchor {
                seq: 9,
                hash: "ab".repeat(32),
            })
            .unwrap();
        // Near miss: the same file read with the same key is trusted.
        assert!(read(&path, &key()).is_ok());
        // A shorter chain claimed with the old MAC, and the same anchor under another key.
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replacen("00000000000000000009:", "00000000000000000005:", 1),
        )
        .unwrap();
        assert!(matches!(
            read(&path, &key()),
            Err(AnchorFileError::Forged { .. })
        ));
        std::fs::write(&path, &text).unwrap();
        let other = AuditKey::from_bytes_for_test([8; 32]);
        assert!(matches!(
            read(&path, &other),
            Err(AnchorFileError::Forged { .. })
        ));
    }

    #[test]
    fn the_anchor_path_adds_a_suffix() {
        assert_eq!(
            anchor_path(Path::new("/var/lib/hostmcp/audit.jsonl")),
            Path::new("/var/lib/hostmcp/audit.jsonl.anchor")
        );
    }
}
