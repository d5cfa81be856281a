//! Where records go: [`AuditLog`], an append-only JSON-lines file, or tracing when no file is
//! configured ([`AuditLog::disabled`]), so callers never hold an `Option`.
//!
//! The file is opened with `O_APPEND` by [`super::log_file`] (mode 0600, locked, its last line
//! read to continue `seq` and `prev`).
//!
//! Writes use group commit. One writer thread owns the file and the end of the chain; callers
//! hand it records through a bounded queue. The writer takes every record waiting in the
//! queue (up to `MAX_BATCH_RECORDS` records, or until the batch holds `MAX_BATCH_BYTES`),
//! gives them `seq` and `prev` in arrival order, writes all their lines with one `write(2)`,
//! calls `fdatasync` once, and only then answers each caller: [`AuditLog::record`] returns
//! `Ok` only once its line is on disk. Records that arrive during a sync wait for the next
//! batch, so the number of syncs follows the disk's speed, not the number of records.
//!
//! A batch succeeds or fails as a whole. If the write fails, every record of the batch gets
//! the error, whatever part of the batch reached the file is cut off again, and the chain does
//! not advance; if that cut fails, or if `fdatasync` fails (the kernel may have dropped the
//! data), the log is poisoned and every later record fails until the server is restarted.
//! A record whose caller stops waiting once it is queued is still written and chained.
//!
//! The writer is a plain thread, not a tokio task, so a log opened outside a runtime or shared
//! by several runtimes behaves the same. It stops when the last clone of the log is dropped,
//! after writing what is queued; that drop waits for it, so the file and its lock are released
//! when the drop returns.
//!
//! Deleted or renamed under a running server: before each batch the writer `stat`s the path
//! and compares device and inode with the open file's. If they differ (or the path is gone)
//! the batch fails with [`AuditError::Moved`], so commands are refused, until
//! [`AuditLog::reopen`] (SIGHUP) opens the file now at the path, or creates it. The chain goes
//! on across files: the new file's first line has the next `seq` and, as `prev`, the hash of
//! the old file's last line. So logrotate works with a `postrotate` that sends SIGHUP.
//!
//! Keyed (an [`AuditKey`] in the options): each line is sealed with its MAC before it is
//! hashed into the chain, and after each batch the anchor file ([`super::anchor_file`]) is
//! rewritten with the chain's end. Opening a keyed log checks its end against the anchor.
//! Opening a keyed log when neither the log nor its anchor file exists starts a new chain at
//! genesis, and says so: a warning in the server's log, and a first record
//! [`AuditEvent::ChainStarted`] written before `open` returns. On a host that had audit
//! history this is what a wipe (log and anchor deleted) looks like; nothing on the host can
//! tell the two apart, only an anchor kept elsewhere can.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::SystemTime;

use tokio::sync::{mpsc, oneshot};

use super::AuditError;
use super::anchor_file::{self, AnchorFileError, AnchorWriter, anchor_path};
use super::bounded::AuditText;
use super::events::{
    AuditContext, AuditEvent, AuditRecord, CommandLine, GENESIS_PREV, format_timestamp, line_hash,
};
use super::key::AuditKey;
use super::log_file::{self, FileId, LogFile, Tail};
use super::verify::Anchor;

/// The tracing target of records when no file is configured.
const TRACE_TARGET: &str = "hostmcp::audit";

/// How many records may wait for the writer; further callers wait to queue theirs.
const QUEUE_CAPACITY: usize = 1024;

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

/// The audit log. Cheap to clone; clones share one file, one chain and one writer.
#[derive(Debug, Clone)]
pub struct AuditLog {
    inner: Inner,
}

#[derive(Debug, Clone)]
enum Inner {
    /// No file: records go to tracing, with environment values redacted.
    Disabled,
    File {
        path: Arc<Path>,
        queue: Arc<Queue>,
    },
}

impl AuditLog {
    /// Open (or create, mode 0600) the log at `path`, continue its chain, and start its
    /// writer thread. Blocking: call it at startup, not on a busy runtime thread.
    pub fn open(path: impl AsRef<Path>, options: AuditOptions) -> Result<Self, AuditError> {
        let path = path.as_ref();
        let writer = Writer::open(path, options)?;
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let thread = std::thread::Builder::new()
            .name("hostmcp-audit".to_owned())
            .spawn(move || writer.run(receiver))
            .map_err(|source| AuditError::Open {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self {
            inner: Inner::File {
                path: Arc::from(path),
                queue: Arc::new(Queue {
                    sender,
                    _writer: JoinOnDrop(Some(thread)),
                }),
            },
        })
    }

    /// A log with no file: each record becomes one tracing event at info level (target
    /// `hostmcp::audit`) with the record's fields as structured fields, environment values
    /// always redacted. Recording never fails.
    pub fn disabled() -> Self {
        Self {
            inner: Inner::Disabled,
        }
    }

    /// The file written, if any.
    pub fn path(&self) -> Option<&Path> {
        match &self.inner {
            Inner::Disabled => None,
            Inner::File { path, .. } => Some(path),
        }
    }

    /// Queue a record without waiting for it to reach the disk: for an event whose
    /// action has already happened, when the caller's answer need not wait for the sync.
    /// Once queued it is written even if the server stops (the writer drains its queue);
    /// a full queue falls back to a task that waits for room. Failures are logged.
    pub fn record_detached(&self, context: AuditContext, event: AuditEvent) {
        let queue = match &self.inner {
            Inner::Disabled => return trace_record(&context, event),
            Inner::File { queue, .. } => queue,
        };
        let (reply, written) = oneshot::channel();
        let kind = event.kind();
        let report = async move {
            if let Ok(Err(error)) = written.await {
                tracing::error!(%error, event = kind, "cannot write to the audit log");
            }
        };
        match queue.sender.try_send(Message::Record(Request {
            context,
            event,
            reply,
        })) {
            Ok(()) => {
                tokio::spawn(report);
            }
            Err(tokio::sync::mpsc::error::TrySendError::Full(message)) => {
                let sender = queue.sender.clone();
                tokio::spawn(async move {
                    if sender.send(message).await.is_ok() {
                        report.await;
                    }
                });
            }
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!(event = kind, "audit writer is gone: record lost");
            }
        }
    }

    /// Reopen the log at its path, after the records queued before (what SIGHUP does, so
    /// logrotate can rename the file): if the path names another file, or none, the chain
    /// continues in the file now there (created if absent), which must be empty or end with the
    /// chain's last line. Until then, records fail with [`AuditError::Moved`].
    pub async fn reopen(&self) -> Result<Reopened, AuditError> {
        let queue = match &self.inner {
            Inner::Disabled => return Ok(Reopened::NoFile),
            Inner::File { queue, .. } => queue,
        };
        let (reply, answer) = oneshot::channel();
        queue
            .sender
            .send(Message::Reopen(reply))
            .await
            .map_err(|_| AuditError::WriterLost)?;
        answer.await.map_err(|_| AuditError::WriterLost)?
    }

    /// Record an event whose action has already happened (or cannot be held back): a
    /// failure can only be logged.
    pub async fn record_or_log(&self, context: AuditContext, event: AuditEvent) {
        let kind = event.kind();
        if let Err(error) = self.record(context, event).await {
            tracing::error!(%error, event = kind, "cannot write to the audit log");
        }
    }

    /// Append one record and wait until it is on disk (written and `fdatasync`ed). An `Err`
    /// means the record may not be in the log: a caller about to run a command must refuse
    /// to run it. Records are chained in the order they enter the writer's queue, and written
    /// in batches that share one sync; if this future is dropped once the record is queued
    /// (normally on its first poll), the line is still written and chained.
    pub async fn record(&self, context: AuditContext, event: AuditEvent) -> Result<(), AuditError> {
        let queue = match &self.inner {
            Inner::Disabled => {
                trace_record(&context, event);
                return Ok(());
            }
            Inner::File { queue, .. } => queue,
        };
        let (reply, written) = oneshot::channel();
        queue
            .sender
            .send(Message::Record(Request {
                context,
                event,
                reply,
            }))
            .await
            .map_err(|_| AuditError::WriterLost)?;
        written.await.map_err(|_| AuditError::WriterLost)?
    }
}

/// Hooks for tests: control the writer through its queue, in order with records.
#[cfg(test)]
impl AuditLog {
    fn queue_for_test(&self) -> &Queue {
        match &self.inner {
            Inner::File { queue, .. } => queue,
            Inner::Disabled => panic!("the log has no writer"),
        }
    }

    async fn control_for_test<T>(
        &self,
        control: impl FnOnce(oneshot::Sender<T>) -> TestControl,
    ) -> T {
        let (reply, answer) = oneshot::channel();
        let queue = self.queue_for_test();
        queue
            .sender
            .send(Message::Test(control(reply)))
            .await
            .expect("the audit writer is running");
        answer.await.expect("the audit writer answers")
    }

    /// Swap the open file once the records queued before are written, to make writes fail
    /// on purpose.
    pub(super) async fn replace_file_for_test(&self, file: File) {
        self.control_for_test(|done| TestControl::ReplaceFile { file, done })
            .await;
    }

    /// Stop the writer once the records queued before are written; it takes no more from
    /// the queue until the returned sender is dropped.
    pub(super) async fn hold_writer_for_test(&self) -> std::sync::mpsc::Sender<()> {
        let (release, released) = std::sync::mpsc::channel();
        self.control_for_test(|holding| TestControl::Hold { holding, released })
            .await;
        release
    }

    /// How many records wait in the queue.
    pub(super) fn queued_for_test(&self) -> usize {
        let sender = &self.queue_for_test().sender;
        sender.max_capacity() - sender.capacity()
    }

    /// How many times the writer has called `fdatasync` after writing a batch.
    pub(super) async fn data_syncs_for_test(&self) -> u64 {
        self.control_for_test(TestControl::DataSyncs).await
    }
}

/// The sending end of the writer's queue, and the writer thread.
#[derive(Debug)]
struct Queue {
    /// Dropped before `_writer` (fields drop in declaration order): that closes the queue, so
    /// the writer writes what is left in it and returns, and the join below ends.
    sender: mpsc::Sender<Message>,
    _writer: JoinOnDrop,
}

/// Joins the writer thread on drop, so the file and its lock are closed by then.
#[derive(Debug)]
struct JoinOnDrop(Option<JoinHandle<()>>);

impl Drop for JoinOnDrop {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take()
            && thread.join().is_err()
        {
            tracing::error!("the audit writer thread panicked");
        }
    }
}

// The other variants are rare and small; boxing records would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Message {
    Record(Request),
    /// Reopen the file at the log's path (SIGHUP).
    Reopen(oneshot::Sender<Result<Reopened, AuditError>>),
    #[cfg(test)]
    Test(TestControl),
}

/// One record to write, and where to say how that went.
struct Request {
    context: AuditContext,
    event: AuditEvent,
    reply: oneshot::Sender<Result<(), AuditError>>,
}

#[cfg(test)]
enum TestControl {
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
struct Writer {
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
    fn open(path: &Path, options: AuditOptions) -> Result<Self, AuditError> {
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
    fn run(mut self, mut queue: mpsc::Receiver<Message>) {
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
        if let Err(source) = self.file.sync_data() {
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

/// Open (or create) the anchor file of the log at `log`.
fn open_anchor(log: &Path, key: &AuditKey) -> Result<AnchorWriter, AuditError> {
    let path = anchor_path(log);
    AnchorWriter::open(path.clone(), key.clone())
        .map_err(|source| AuditError::Open { path, source })
}

/// The next `seq` and `prev` after a file's last line (an unkeyed log).
fn chain_end(path: &Path, tail: &Tail) -> Result<(u64, String), AuditError> {
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
fn resume_keyed(
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

/// One tracing event for a record when no file is configured.
fn trace_record(context: &AuditContext, mut event: AuditEvent) {
    event.settle_env(false);
    event.bound();
    let principal = context.principal.as_deref();
    let client = context.client.as_deref();
    let session = context.session.as_deref();
    let tool = context.tool.as_deref();
    let kind = event.kind();
    macro_rules! audit_event {
        ($($fields:tt)*) => {
            tracing::info!(
                target: TRACE_TARGET,
                event = kind,
                principal,
                client,
                session,
                tool,
                $($fields)*
            )
        };
    }
    match &event {
        AuditEvent::ChainStarted | AuditEvent::Authenticated => audit_event!(),
        AuditEvent::AuthFailed { reason } => audit_event!(reason = %reason),
        AuditEvent::AuthThrottled {
            retry_after_secs,
            refused_in_previous_window,
        } => audit_event!(retry_after_secs, refused_in_previous_window),
        AuditEvent::AuthFailedDropped { dropped } => audit_event!(dropped),
        AuditEvent::ToolDenied {
            tool: denied,
            rule,
            reason,
        } => audit_event!(denied_tool = %denied, rule = %rule, reason = %reason),
        AuditEvent::CommandStarted {
            command_id,
            command,
            rule,
            program,
            working_dir,
            run_as,
            env,
            timeout_secs,
            job_id,
        } => {
            let (argv, shell) = command_fields(command);
            audit_event!(
                command_id = %command_id,
                argv,
                command = shell,
                rule = %rule,
                program = %program,
                working_dir = working_dir.as_ref().map(tracing::field::display),
                run_as = run_as.as_deref(),
                env = %env,
                timeout_secs,
                job_id = job_id.as_deref(),
            )
        }
        AuditEvent::CommandFinished {
            command_id,
            exit_code,
            signal,
            timed_out,
            cancelled,
            duration_ms,
            stdout_bytes,
            stderr_bytes,
        } => audit_event!(
            command_id = %command_id,
            exit_code,
            signal,
            timed_out,
            cancelled,
            duration_ms,
            stdout_bytes,
            stderr_bytes,
        ),
        AuditEvent::CommandRefused {
            command,
            working_dir,
            reason,
            rule,
        } => {
            let (argv, shell) = command_fields(command);
            audit_event!(
                argv,
                command = shell,
                working_dir = working_dir.as_ref().map(tracing::field::display),
                reason = %reason,
                rule = rule.as_deref(),
            )
        }
        AuditEvent::JobAction { job_id, action } => {
            audit_event!(job_id = %job_id, action = %action)
        }
        AuditEvent::JobRefused {
            job_id,
            action,
            reason,
        } => audit_event!(job_id = %job_id, action = %action, reason = ?reason),
        AuditEvent::SessionOpened { transport } | AuditEvent::SessionClosed { transport } => {
            audit_event!(transport = transport.as_str())
        }
        AuditEvent::TokenRevoked { reason, ends_work } => {
            audit_event!(reason = reason.as_str(), ends_work)
        }
        AuditEvent::EndedByRevocation { ended, id, reason } => {
            audit_event!(ended = ended.as_str(), id = %id, reason = reason.as_str())
        }
        AuditEvent::OrphanKilled {
            pid,
            uid,
            reason,
            command_id,
        } => audit_event!(
            pid,
            uid,
            reason = reason.as_str(),
            command_id = command_id.as_deref()
        ),
    }
}

/// `argv` (as a debug list) or the shell string, as optional tracing fields.
fn command_fields(
    command: &CommandLine,
) -> (
    Option<tracing::field::DebugValue<&Vec<AuditText>>>,
    Option<tracing::field::DisplayValue<&AuditText>>,
) {
    match command {
        CommandLine::Argv(argv) => (Some(tracing::field::debug(argv)), None),
        CommandLine::Shell(script) => (None, Some(tracing::field::display(script))),
    }
}
