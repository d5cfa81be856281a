//! What callers hold: [`AuditLog`], a cheap-to-clone handle on either the file writer
//! ([`super::writer`]) or the no-file mode ([`super::no_file`], [`AuditLog::disabled`]), so
//! callers never hold an `Option`.
//!
//! Owns the queue to the writer thread and the thread's lifetime. [`AuditLog::record`]
//! returns `Ok` only once its line is on disk (written and `fdatasync`ed, in a batch that
//! shares one sync with the records queued beside it); a record whose caller stops waiting once
//! it is queued is still written and chained. [`AuditLog::record_detached`] queues without
//! waiting, for an action that has already happened. [`AuditLog::reopen`] (SIGHUP) asks the
//! writer to continue the chain in the file now at the path.
//!
//! The writer is a plain thread, not a tokio task, so a log opened outside a runtime or shared
//! by several runtimes behaves the same. It stops when the last clone of the log is dropped,
//! after writing what is queued; that drop waits for it, so the file and its lock are released
//! when the drop returns.

#[cfg(test)]
use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use super::AuditError;
use super::events::{AuditContext, AuditEvent};
use super::no_file::trace_record;
#[cfg(test)]
use super::writer::TestControl;
use super::writer::{AuditOptions, Message, QUEUE_CAPACITY, Reopened, Request, Writer};

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

    /// How many records wait for the writer now (0 without a file).
    pub fn queue_depth(&self) -> usize {
        match &self.inner {
            Inner::Disabled => 0,
            Inner::File { queue, .. } => queue.sender.max_capacity() - queue.sender.capacity(),
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
