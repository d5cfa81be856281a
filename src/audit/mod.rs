//! The audit log: one JSON line per decision, hash-chained so that editing, deleting or
//! reordering lines is detectable.
//!
//! Owns the typed events and their envelope ([`events`]), environment values and their
//! redaction ([`env`]), the handle callers record through
//! ([`handle`]), the append-only file writer that refuses to lose a record silently
//! ([`writer`]) and notices its file renamed or deleted ([`log_file`]), where a chain
//! continues when its file is opened ([`resume`]), the no-file mode that sends records to
//! tracing ([`no_file`]), the key that seals each line of a keyed chain ([`key`]) and the anchor file
//! that remembers where the chain ended ([`anchor_file`]), and the offline checker behind
//! `hostmcp audit verify FILE...` ([`verify`]). It decides nothing: callers record what the auth
//! layer, the policy and the exec engine decided. A caller that must not act unaudited (the
//! command engine before it spawns) treats an `Err` from [`AuditLog::record`] as a refusal.
//!
//! Secrets: environment values given to a call are held in [`AuditEnv`], which serializes them
//! as `"[redacted]"` unless the log was opened with `redact_env_values = false`. Bearer tokens
//! never reach this module. Command lines (argv or a shell string) are recorded as given, up to
//! a bound: text a caller chose is kept whole up to 4 KiB a string and 64 KiB a record, and past
//! that as its head, length and SHA-256 ([`bounded`]), so huge refused calls cannot fill the disk.

mod anchor_file;
mod bounded;
mod env;
mod events;
mod handle;
mod key;
mod log_file;
mod no_file;
mod resume;
mod verify;
mod writer;

#[cfg(test)]
mod tests;

use std::io;
use std::path::PathBuf;

pub use anchor_file::{AnchorFileError, anchor_path, read as read_anchor_file};
pub use bounded::{AuditText, MAX_RECORD_TEXT_BYTES, MAX_TEXT_BYTES};
pub use env::{AuditEnv, EnvVar, REDACTED};
pub use events::{
    AuditConfinement, AuditContext, AuditEvent, AuditGrant, AuditRecord, AuditStdin, CommandLine,
    EndedWork, FileOperation, GENESIS_PREV, JobRefusal, OAuthStep, OrphanReason, RevokeReason,
    Transport, format_timestamp, line_hash,
};
pub use handle::AuditLog;
pub use key::{AuditKey, KeyError};
pub use verify::{
    Anchor, BadAnchor, Problem, ProblemKind, Start, VerifyOptions, VerifyReport, verify,
    verify_files, verify_reader, verify_with_anchor,
};
pub use writer::{AuditOptions, Reopened};

/// Why the audit log could not be opened, written or read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot open audit log {}: {source}", .path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("audit log {} is not a regular file", .path.display())]
    NotAFile { path: PathBuf },
    #[error("audit log {} is in use by another process", .path.display())]
    Locked { path: PathBuf },
    #[error(
        "audit log {} ends inside a line (a torn write or a truncated file), so the chain \
         cannot be continued",
        .path.display()
    )]
    IncompleteTail { path: PathBuf },
    #[error(
        "the last line of audit log {} is not an audit record ({detail}), so the chain \
         cannot be continued",
        .path.display()
    )]
    BadTail { path: PathBuf, detail: String },
    #[error("cannot write audit log {}: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot flush audit log {} to disk: {source}", .path.display())]
    Sync { path: PathBuf, source: io::Error },
    #[error(
        "audit log {} is no longer written: an earlier failure may have left it in an unknown \
         state",
        .path.display()
    )]
    Poisoned { path: PathBuf },
    #[error("cannot read audit log {}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "audit log {} was deleted or renamed under the server; nothing is written until it is \
         reopened",
        .path.display()
    )]
    Moved { path: PathBuf },
    #[error(
        "the file now at {} does not continue this audit log's chain (it is neither empty nor \
         ends with the chain's last line)",
        .path.display()
    )]
    NotContinuation { path: PathBuf },
    #[error(transparent)]
    Anchor(AnchorFileError),
    #[error(
        "audit log {} is sealed but its anchor file {} is missing",
        .path.with_extension("").display(), .path.display()
    )]
    AnchorMissing { path: PathBuf },
    #[error(
        "audit log {} ends at seq {last_seq}, before its anchor (seq {anchor_seq}): lines were \
         cut off the end",
        .path.display()
    )]
    BehindAnchor {
        path: PathBuf,
        anchor_seq: u64,
        last_seq: u64,
    },
    #[error("cannot encode an audit record: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("the audit writer stopped before finishing a record")]
    WriterLost,
}

impl AuditError {
    /// What the operator should do next.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::Open { .. } => {
                "check that the directory exists and that the server's user may create and \
                 write the file"
            }
            Self::NotAFile { .. } => "give the audit log the path of a regular file",
            Self::Locked { .. } => "give each hostmcp server its own audit log file",
            Self::IncompleteTail { .. } | Self::BadTail { .. } => {
                "run `hostmcp audit verify FILE`, keep the file as evidence, and start a new log \
                 at another path"
            }
            Self::Write { .. } | Self::Sync { .. } => {
                "commands are refused until the audit log can be written: check free space, \
                 permissions and the disk"
            }
            Self::Poisoned { .. } => {
                "check the disk, run `hostmcp audit verify FILE`, then restart hostmcp"
            }
            Self::Read { .. } => "check the path and that you may read the file",
            Self::Moved { .. } => {
                "send the server SIGHUP to reopen the log at its path (it creates the file if \
                 it is gone and continues the chain in it)"
            }
            Self::NotContinuation { .. } => {
                "move that file away and send SIGHUP again: the server creates a new one"
            }
            Self::Anchor(_) | Self::AnchorMissing { .. } | Self::BehindAnchor { .. } => {
                "run `hostmcp audit verify --key KEY FILE`, keep the log and anchor as evidence, \
                 and start a new log at another path"
            }
            Self::Encode(_) | Self::WriterLost => "this is a bug in hostmcp; please report it",
        }
    }

    /// Why a command was refused, for the caller: no path, no detail of the host.
    pub fn refusal_reason(&self) -> &'static str {
        match self {
            Self::Moved { .. } | Self::NotContinuation { .. } => {
                "the audit log file was deleted or renamed, and the server has not reopened it"
            }
            Self::Write { .. } | Self::Sync { .. } | Self::Poisoned { .. } => {
                "the audit log file cannot be written"
            }
            _ => "the audit log is unavailable",
        }
    }
}
