//! The on-disk writer: one thread that owns the open file and the end of its chain, takes
//! records from the handle's queue ([`super::handle`]) and commits them in batches.
//!
//! The file is opened with `O_APPEND` by [`super::log_file`] (mode 0600, locked, its last line
//! read to continue `seq` and `prev`, as [`super::resume`] decides).
//!
//! Writes use group commit. The writer takes every record waiting in the queue (up to
//! `MAX_BATCH_RECORDS` records, or until the batch holds `MAX_BATCH_BYTES`), gives them `seq`
//! and `prev` in arrival order, writes all their lines with one `write(2)`, calls `fdatasync`
//! once, and only then answers each caller. Records that arrive during a sync wait for the
//! next batch, so the number of syncs follows the disk's speed, not the number of records.
//!
//! A batch succeeds or fails as a whole. If the write fails, every record of the batch gets
//! the error, whatever part of the batch reached the file is cut off again, and the chain does
//! not advance; if that cut fails, or if `fdatasync` fails (the kernel may have dropped the
//! data), the log is poisoned and every later record fails until the server is restarted.
//!
//! Deleted or renamed under a running server: before each batch the writer `stat`s the path
//! and compares device and inode with the open file's. If they differ (or the path is gone)
//! the batch fails with [`AuditError::Moved`], so commands are refused, until a reopen
//! (SIGHUP) opens the file now at the path, or creates it. The chain goes on across files: the
//! new file's first line has the next `seq` and, as `prev`, the hash of the old file's last
//! line. So logrotate works with a `postrotate` that sends SIGHUP.
//!
//! Keyed (an [`AuditKey`] in the options): each line is sealed with its MAC before it is
//! hashed into the chain, and after each batch the anchor file ([`super::anchor_file`]) is
//! rewritten with the chain's end. A new keyed chain starts with an
//! [`AuditEvent::ChainStarted`] record written before the log is returned to the caller.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tokio::sync::{mpsc, oneshot};

use super::AuditError;
use super::anchor_file::{AnchorWriter, anchor_path};
use super::events::{AuditContext, AuditEvent, AuditRecord, format_timestamp, line_hash};
use super::key::AuditKey;
use super::log_file::{self, FileId, LogFile, Tail};
use super::resume::{chain_end, open_anchor, resume_keyed};
use super::verify::Anchor;

/// How many records may wait for the writer; further callers wait to queue theirs.
pub(super) const QUEUE_CAPACITY: usize = 1024;

/// A batch takes no more records than this, so the first of them is not kept waiting while
/// the writer drains a queue that keeps refilling.
const MAX_BATCH_RECORDS: usize = QUEUE_CAPACITY;

/// A batch takes no more records once its lines reach this many bytes (the line that crosses
/// the mark is included), so one `write(2)` stays bounded when lines are long.
const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// How records are written.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Write environment values as `"[redacted]"` (the default). `false` writes them as given.
    pub redact_env_values: bool,
    /// Seal each line with this key and keep the anchor file beside the log.
    pub key: Option<AuditKey>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            redact_env_values: true,
            key: None,
        }
    }
}

/// What [`AuditLog::reopen`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reopened {
    /// No file is configured.
    NoFile,
    /// The path still names the open file; it is kept.
    Unchanged,
    /// The path named another file (or none): that file is now written, continuing the chain.
    NewFile,
}

// The other variants are rare and small; boxing records would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub(super) enum Message {
    Record(Request),
    /// Reopen the file at the log's path (SIGHUP).
    Reopen(oneshot::Sender<Result<Reopened, AuditError>>),
    #[cfg(test)]
    Test(TestControl),
}

/// One record to write, and where to say how that went.
pub(super) struct Request {
    pub(super) context: AuditContext,
    pub(super) event: AuditEvent,
    pub(super) reply: oneshot::Sender<Result<(), AuditError>>,
}

#[cfg(test)]
pub(super) enum TestControl {
    ReplaceFile {
        file: File,
        done: oneshot::Sender<()>,
    },
    Hold {
        holding: oneshot::Sender<()>,
        released: std::sync::mpsc::Receiver<()>,
    },
    DataSyncs(oneshot::Sender<u64>),
}

/// The open file and the end of its chain. Owned by the writer thread.
#[derive(Debug)]
pub(super) struct Writer {
    path: PathBuf,
    file: File,
    /// Which file `file` is, to notice the path naming another one (or none).
    id: FileId,
    /// `seq` of the next line on disk.
    next_seq: u64,
    /// Hash of the last line on disk, or [`GENESIS_PREV`].
    prev: String,
    disclose_env: bool,
    /// Seals each line, when the chain is keyed.
    key: Option<AuditKey>,
    /// The anchor file, rewritten after each batch, when the chain is keyed.
    anchor: Option<AnchorWriter>,
    poisoned: bool,
    /// The path no longer names the open file; said once in the server's log.
    moved: bool,
    /// Calls of `fdatasync` after a batch.
    #[cfg(test)]
    data_syncs: u64,
}

/// Lines given `seq` and `prev` but not yet on disk, and their callers.
struct Batch {
    /// Whole lines, each with its newline, in `seq` order.
    lines: Vec<u8>,
    /// One per line, in the same order.
    replies: Vec<oneshot::Sender<Result<(), AuditError>>>,
    /// `seq` of the line after the last one staged.
    next_seq: u64,
    /// Hash of the last line staged, or the writer's `prev` while none is.
    prev: String,
}

impl Batch {
    fn is_full(&self) -> bool {
        self.replies.len() >= MAX_BATCH_RECORDS || self.lines.len() >= MAX_BATCH_BYTES
    }
}

/// Why a batch did not reach the disk; copied into one error per record.
enum Failure {
    /// The path no longer names the open file: it was deleted or renamed.
    Moved,
    Write(io::Error),
    Sync(io::Error),
}

impl Failure {
    fn to_error(&self, path: &Path) -> AuditError {
        match self {
            Self::Moved => AuditError::Moved {
                path: path.to_owned(),
            },
            Self::Write(source) => AuditError::Write {
                path: path.to_owned(),
                source: copy_io_error(source),
            },
            Self::Sync(source) => AuditError::Sync {
                path: path.to_owned(),
                source: copy_io_error(source),
            },
        }
    }
}

/// An `io::Error` with the same OS error code, or else the same kind and message.
fn copy_io_error(error: &io::Error) -> io::Error {
    match error.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(error.kind(), error.to_string()),
    }
}

impl Writer {
    /// Open (or create) the log at `path` and find where its chain continues; a new keyed
    /// chain gets its first record before this returns.
    pub(super) fn open(path: &Path, options: AuditOptions) -> Result<Self, AuditError> {
        let LogFile { file, id, tail } = log_file::open(path)?;
        let (next_seq, prev, new_keyed_chain) = match &options.key {
            Some(key) => resume_keyed(path, key, &tail)?,
            None => {
                let (next_seq, prev) = chain_end(path, &tail)?;
                (next_seq, prev, false)
            }
        };
        let anchor = options
            .key
            .as_ref()
            .map(|key| open_anchor(path, key))
            .transpose()?;
        let mut writer = Self {
            path: path.to_owned(),
            file,
            id,
            next_seq,
            prev,
            disclose_env: !options.redact_env_values,
            key: options.key,
            anchor,
            poisoned: false,
            moved: false,
            #[cfg(test)]
            data_syncs: 0,
        };
        writer.write_anchor();
        if new_keyed_chain {
            writer.start_chain()?;
        }
        Ok(writer)
    }

    /// Write [`AuditEvent::ChainStarted`] as the first record of a new keyed chain, and warn.
    fn start_chain(&mut self) -> Result<(), AuditError> {
        tracing::warn!(
            path = %self.path.display(),
            anchor = %anchor_path(&self.path).display(),
            "NEW AUDIT CHAIN: neither the keyed audit log nor its anchor file exists, so a new \
             chain starts at genesis (seq 1). On a new install this is expected; if this host \
             had audit records, they were removed: compare with an anchor kept off the host \
             (`hostmcp audit verify --key KEY --anchor SEQ:HASH`)"
        );
        let (reply, mut written) = oneshot::channel();
        let mut batch = self.empty_batch();
        self.stage(
            &mut batch,
            Request {
                context: AuditContext::default(),
                event: AuditEvent::ChainStarted,
                reply,
            },
        );
        self.commit(&mut batch);
        // `commit` has answered already; no waiting (this may run on a runtime thread).
        written.try_recv().unwrap_or(Err(AuditError::WriterLost))
    }

    /// SIGHUP: if the path no longer names the open file (renamed by logrotate, or deleted),
    /// open the file now at the path (creating it) and continue the chain in it. A file found
    /// there must be empty or end with the chain's last line. The anchor file is reopened too.
    fn reopen(&mut self) -> Result<Reopened, AuditError> {
        if let Some(key) = &self.key {
            self.anchor = Some(open_anchor(&self.path, key)?);
            self.write_anchor();
        }
        if self.id.is_at(&self.path) {
            self.moved = false;
            return Ok(Reopened::Unchanged);
        }
        let LogFile { file, id, tail } = log_file::open(&self.path)?;
        match tail {
            Tail::Empty => {}
            Tail::Last { hash, .. } if hash == self.prev => {}
            Tail::Last { .. } => {
                return Err(AuditError::NotContinuation {
                    path: self.path.clone(),
                });
            }
        }
        self.file = file;
        self.id = id;
        self.moved = false;
        tracing::info!(
            path = %self.path.display(),
            next_seq = self.next_seq,
            "audit log reopened; the chain continues in it"
        );
        Ok(Reopened::NewFile)
    }

    /// Rewrite the anchor file with the end of the chain on disk. A failure is logged: the
    /// records are on disk, and `verify --key` will report the stale anchor.
    fn write_anchor(&self) {
        let Some(anchor) = &self.anchor else { return };
        let seq = self.next_seq - 1;
        let end = Anchor {
            seq,
            hash: self.prev.clone(),
        };
        if let Err(error) = anchor.write(&end) {
            tracing::error!(
                path = %anchor.path().display(),
                %error,
                "cannot write the audit anchor file"
            );
        }
    }

    /// The writer thread: batch whatever is queued, commit it, repeat until the queue is
    /// closed and empty.
    pub(super) fn run(mut self, mut queue: mpsc::Receiver<Message>) {
        let mut batch = self.empty_batch();
        while let Some(first) = queue.blocking_recv() {
            let mut next = Some(first);
            while let Some(message) = next.take() {
                match message {
                    Message::Record(request) => self.stage(&mut batch, request),
                    Message::Reopen(reply) => {
                        self.commit(&mut batch);
                        let _ = reply.send(self.reopen());
                    }
                    #[cfg(test)]
                    Message::Test(control) => {
                        self.commit(&mut batch);
                        self.control(control);
                    }
                }
                if !batch.is_full() {
                    next = queue.try_recv().ok();
                }
            }
            self.commit(&mut batch);
        }
    }

    fn empty_batch(&self) -> Batch {
        Batch {
            lines: Vec::new(),
            replies: Vec::new(),
            next_seq: self.next_seq,
            prev: self.prev.clone(),
        }
    }

    /// Give a record the next `seq` and `prev` after the batch's last line and add its line
    /// to the batch, or answer it at once if it cannot be written.
    fn stage(&self, batch: &mut Batch, request: Request) {
        let Request {
            context,
            mut event,
            reply,
        } = request;
        if self.poisoned {
            // The caller may have stopped waiting; nothing else to tell.
            let _ = reply.send(Err(AuditError::Poisoned {
                path: self.path.clone(),
            }));
            return;
        }
        event.settle_env(self.disclose_env);
        let time = format_timestamp(SystemTime::now());
        let record = AuditRecord::new(batch.next_seq, time, context, event, batch.prev.clone());
        let mut line = match serde_json::to_vec(&record) {
            Ok(line) => line,
            Err(error) => {
                let _ = reply.send(Err(AuditError::Encode(error)));
                return;
            }
        };
        if let Some(key) = &self.key {
            key.seal_line(&mut line);
        }
        batch.next_seq += 1;
        batch.prev = line_hash(&line);
        batch.lines.extend_from_slice(&line);
        batch.lines.push(b'\n');
        batch.replies.push(reply);
    }

    /// Write the batch with one `write(2)` and one `fdatasync`, advance the chain if both
    /// succeeded, answer every record of the batch, and leave the batch empty and starting
    /// at the end of the chain.
    fn commit(&mut self, batch: &mut Batch) {
        if batch.replies.is_empty() {
            return;
        }
        let outcome = self.write_and_sync(&batch.lines);
        if outcome.is_ok() {
            self.next_seq = batch.next_seq;
            self.prev.clone_from(&batch.prev);
            self.write_anchor();
        } else {
            batch.next_seq = self.next_seq;
            batch.prev.clone_from(&self.prev);
        }
        batch.lines.clear();
        batch.lines.shrink_to(MAX_BATCH_BYTES);
        // A caller that stopped waiting has dropped its receiver; nothing to tell it.
        for reply in batch.replies.drain(..) {
            let answer = match &outcome {
                Ok(()) => Ok(()),
                Err(failure) => Err(failure.to_error(&self.path)),
            };
            let _ = reply.send(answer);
        }
    }

    fn write_and_sync(&mut self, lines: &[u8]) -> Result<(), Failure> {
        if !self.id.is_at(&self.path) {
            if !self.moved {
                tracing::error!(
                    path = %self.path.display(),
                    "the audit log was deleted or renamed under the server: commands are \
                     refused until SIGHUP reopens it at its path"
                );
                self.moved = true;
            }
            return Err(Failure::Moved);
        }
        let length_before = self.file.metadata().map_err(Failure::Write)?.len();
        let written = loop {
            match self.file.write(lines) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let failure = match written {
            Ok(count) if count == lines.len() => None,
            Ok(count) => Some(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("only {count} of {} bytes were written", lines.len()),
            )),
            Err(error) => Some(error),
        };
        if let Some(source) = failure {
            self.cut_back_to(length_before);
            return Err(Failure::Write(source));
        }
        #[cfg(test)]
        {
            self.data_syncs += 1;
        }
        if let Err(source) = crate::metrics::time_audit_sync(|| self.file.sync_data()) {
            // After a failed fsync the kernel may have dropped the pages: nothing later can
            // be trusted to reach the disk, and a retry could report a false success.
            tracing::error!(
                path = %self.path.display(),
                error = %source,
                "cannot flush the audit log to disk; the audit log is poisoned"
            );
            self.poisoned = true;
            return Err(Failure::Sync(source));
        }
        Ok(())
    }

    /// Remove whatever a failed write left after `length`, or poison the log if that fails.
    fn cut_back_to(&mut self, length: u64) {
        let cut = self.file.metadata().and_then(|metadata| {
            if metadata.len() > length {
                self.file.set_len(length)?;
                self.file.sync_data()?;
            }
            Ok(())
        });
        if let Err(error) = cut {
            tracing::error!(
                path = %self.path.display(),
                %error,
                "cannot remove a partial audit line; the audit log is poisoned"
            );
            self.poisoned = true;
        }
    }

    #[cfg(test)]
    fn control(&mut self, control: TestControl) {
        match control {
            TestControl::ReplaceFile { file, done } => {
                self.file = file;
                let _ = done.send(());
            }
            TestControl::Hold { holding, released } => {
                let _ = holding.send(());
                // Returns when the test sends or drops its end.
                let _ = released.recv();
            }
            TestControl::DataSyncs(reply) => {
                let _ = reply.send(self.data_syncs);
            }
        }
    }
}
