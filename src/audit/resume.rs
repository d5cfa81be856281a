//! Where a chain continues when its file is opened: after the file's last line, or, for a
//! keyed log, after what its anchor file says, refusing a log that was cut short or lost its
//! anchor.
//!
//! Opening a keyed log when neither the log nor its anchor file exists starts a new chain at
//! genesis, and the writer says so: a warning in the server's log, and a first record
//! [`super::AuditEvent::ChainStarted`]. On a host that had audit history this is what a wipe
//! (log and anchor deleted) looks like; nothing on the host can tell the two apart, only an
//! anchor kept elsewhere can.

use std::io;
use std::path::Path;

use super::AuditError;
use super::anchor_file::{self, AnchorFileError, AnchorWriter, anchor_path};
use super::events::GENESIS_PREV;
use super::key::AuditKey;
use super::log_file::Tail;

/// Open (or create) the anchor file of the log at `log`.
pub(super) fn open_anchor(log: &Path, key: &AuditKey) -> Result<AnchorWriter, AuditError> {
    let path = anchor_path(log);
    AnchorWriter::open(path.clone(), key.clone())
        .map_err(|source| AuditError::Open { path, source })
}

/// The next `seq` and `prev` after a file's last line (an unkeyed log).
pub(super) fn chain_end(path: &Path, tail: &Tail) -> Result<(u64, String), AuditError> {
    match tail {
        Tail::Empty => Ok((1, GENESIS_PREV.to_owned())),
        Tail::Last { seq, hash, .. } => {
            let next_seq = seq.checked_add(1).ok_or_else(|| AuditError::BadTail {
                path: path.to_owned(),
                detail: "seq is at its maximum".to_owned(),
            })?;
            Ok((next_seq, hash.clone()))
        }
    }
}

/// The next `seq` and `prev` of a keyed log, checked against its anchor file: an empty log
/// continues after the anchor (a log rotated while the server was stopped); a log that ends
/// before its anchor, or a sealed log without an anchor, is refused (lines were cut off the
/// end, or the anchor deleted). A log whose last line carries no MAC may have no anchor: the
/// key was just configured.
/// The third value says whether the chain is new: neither log lines nor an anchor file.
pub(super) fn resume_keyed(
    path: &Path,
    key: &AuditKey,
    tail: &Tail,
) -> Result<(u64, String, bool), AuditError> {
    let anchor_path = anchor_path(path);
    let anchor = match anchor_file::read(&anchor_path, key) {
        Ok(anchor) => Some(anchor),
        Err(AnchorFileError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            None
        }
        Err(error) => return Err(AuditError::Anchor(error)),
    };
    match (tail, anchor) {
        (Tail::Empty, Some(anchor)) => {
            let next_seq = anchor
                .seq
                .checked_add(1)
                .ok_or_else(|| AuditError::BadTail {
                    path: path.to_owned(),
                    detail: "the anchor's seq is at its maximum".to_owned(),
                })?;
            Ok((next_seq, anchor.hash, false))
        }
        (Tail::Empty, None) => Ok((1, GENESIS_PREV.to_owned(), true)),
        (Tail::Last { sealed: true, .. }, None) => {
            Err(AuditError::AnchorMissing { path: anchor_path })
        }
        (Tail::Last { seq, hash, .. }, Some(anchor))
            if anchor.seq > *seq || (anchor.seq == *seq && anchor.hash != *hash) =>
        {
            Err(AuditError::BehindAnchor {
                path: path.to_owned(),
                anchor_seq: anchor.seq,
                last_seq: *seq,
            })
        }
        _ => chain_end(path, tail).map(|(next_seq, prev)| (next_seq, prev, false)),
    }
}
