//! Where records go: [`AuditLog`], an append-only JSON-lines file, or tracing when no file is
//! configured ([`AuditLog::disabled`]), so callers never hold an `Option`.
//!
//! The file is opened with `O_APPEND`, created with mode 0600, and locked (`flock`, exclusive)
//! so two servers cannot interleave two chains in it. Opening reads only the last line, to
//! continue `seq` and `prev`; it does not check the rest (that is `verify`'s job), and it
//! refuses a file whose last line is incomplete or not a record rather than append to it.
//!
//! Each record is one `write(2)` of the whole line followed by `fdatasync`; [`AuditLog::record`]
//! returns only after both, and returns an error if either failed. Writes are serialized by a
//! tokio mutex whose owned guard travels into the blocking write, so the chain state advances
//! exactly when a line reaches the file, even if the caller stops waiting (a dropped `record`
//! future still writes its line). After a failed write, any partial line is cut off again; if
//! that fails, or if `fdatasync` fails (the kernel may have dropped the data), the log is
//! poisoned and every later `record` fails until the server is restarted.
//!
//! Not handled: the file being renamed or deleted under a running server (records keep going
//! to the open file), and rotation; start a new file at another path and restart instead.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::AuditError;
use super::events::{
    AuditContext, AuditEvent, AuditRecord, CommandLine, GENESIS_PREV, format_timestamp,
};

/// How far back to read at a time while looking for the start of the last line.
const TAIL_CHUNK: u64 = 8 * 1024;

/// The tracing target of records when no file is configured.
const TRACE_TARGET: &str = "hostmcp::audit";

/// How records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditOptions {
    /// Write environment values as `"[redacted]"` (the default). `false` writes them as given.
    pub redact_env_values: bool,
}

impl Default for AuditOptions {
    fn default() -> Self {
        Self {
            redact_env_values: true,
        }
    }
}

/// The audit log. Cheap to clone; clones share one file and one chain.
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
        writer: Arc<Mutex<Writer>>,
    },
}

impl AuditLog {
    /// Open (or create, mode 0600) the log at `path` and continue its chain. Blocking: call
    /// it at startup, not on a busy runtime thread.
    pub fn open(path: impl AsRef<Path>, options: AuditOptions) -> Result<Self, AuditError> {
        let path = path.as_ref();
        let writer = Writer::open(path, options)?;
        Ok(Self {
            inner: Inner::File {
                path: Arc::from(path),
                writer: Arc::new(Mutex::new(writer)),
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

    /// Append one record and wait until it is on disk (written and `fdatasync`ed). An `Err`
    /// means the record may not be in the log: a caller about to run a command must refuse
    /// to run it. Records are written one at a time, in the order they get the lock; if this
    /// future is dropped once the write has begun, the line is still written and chained.
    pub async fn record(&self, context: AuditContext, event: AuditEvent) -> Result<(), AuditError> {
        let writer = match &self.inner {
            Inner::Disabled => {
                trace_record(&context, event);
                return Ok(());
            }
            Inner::File { writer, .. } => Arc::clone(writer),
        };
        // The owned guard moves into the blocking task: if this future is dropped, the task
        // still finishes the write and updates the chain before releasing the lock.
        let mut writer = writer.lock_owned().await;
        tokio::task::spawn_blocking(move || writer.append(context, event))
            .await
            .map_err(|_| AuditError::WriterLost)?
    }

    /// Swap the open file, to make writes fail on purpose.
    #[cfg(test)]
    pub(super) async fn replace_file_for_test(&self, file: File) {
        if let Inner::File { writer, .. } = &self.inner {
            writer.lock().await.file = file;
        }
    }
}

/// The open file and the end of its chain.
#[derive(Debug)]
struct Writer {
    path: PathBuf,
    file: File,
    /// `seq` of the next line.
    next_seq: u64,
    /// Hash of the last line, or [`GENESIS_PREV`].
    prev: String,
    disclose_env: bool,
    poisoned: bool,
}

/// The one field of the last line that opening needs.
#[derive(Deserialize)]
struct SeqOnly {
    seq: u64,
}

enum TailError {
    Io(io::Error),
    Incomplete,
}

impl Writer {
    fn open(path: &Path, options: AuditOptions) -> Result<Self, AuditError> {
        let open_error = |source| AuditError::Open {
            path: path.to_owned(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(open_error)?;
        let metadata = file.metadata().map_err(open_error)?;
        if !metadata.is_file() {
            return Err(AuditError::NotAFile {
                path: path.to_owned(),
            });
        }
        file.try_lock().map_err(|error| match error {
            std::fs::TryLockError::WouldBlock => AuditError::Locked {
                path: path.to_owned(),
            },
            std::fs::TryLockError::Error(source) => open_error(source),
        })?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format_args!("{mode:o}"),
                "audit log is readable or writable by other users; chmod 600 it"
            );
        }
        sync_parent_dir(path);

        let (next_seq, prev) = match read_last_line(&file, metadata.len()) {
            Ok(None) => (1, GENESIS_PREV.to_owned()),
            Ok(Some(line)) => {
                let bad_tail = |detail: String| AuditError::BadTail {
                    path: path.to_owned(),
                    detail,
                };
                let last: SeqOnly =
                    serde_json::from_slice(&line).map_err(|error| bad_tail(error.to_string()))?;
                let next_seq = last
                    .seq
                    .checked_add(1)
                    .ok_or_else(|| bad_tail("seq is at its maximum".to_owned()))?;
                (next_seq, hex::encode(Sha256::digest(&line)))
            }
            Err(TailError::Incomplete) => {
                return Err(AuditError::IncompleteTail {
                    path: path.to_owned(),
                });
            }
            Err(TailError::Io(source)) => {
                return Err(AuditError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Ok(Self {
            path: path.to_owned(),
            file,
            next_seq,
            prev,
            disclose_env: !options.redact_env_values,
            poisoned: false,
        })
    }

    /// Write one line with one `write(2)`, then `fdatasync`. The chain advances only if both
    /// succeed.
    fn append(&mut self, context: AuditContext, mut event: AuditEvent) -> Result<(), AuditError> {
        if self.poisoned {
            return Err(AuditError::Poisoned {
                path: self.path.clone(),
            });
        }
        event.settle_env(self.disclose_env);
        let time = format_timestamp(SystemTime::now());
        let record = AuditRecord::new(self.next_seq, time, context, event, self.prev.clone());
        let mut line = serde_json::to_vec(&record).map_err(AuditError::Encode)?;
        let hash = hex::encode(Sha256::digest(&line));
        line.push(b'\n');

        let length_before = match self.file.metadata() {
            Ok(metadata) => metadata.len(),
            Err(source) => return Err(self.write_error(source)),
        };
        let written = loop {
            match self.file.write(&line) {
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let failure = match written {
            Ok(count) if count == line.len() => None,
            Ok(count) => Some(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("only {count} of {} bytes were written", line.len()),
            )),
            Err(error) => Some(error),
        };
        if let Some(source) = failure {
            self.cut_back_to(length_before);
            return Err(self.write_error(source));
        }
        if let Err(source) = self.file.sync_data() {
            // After a failed fsync the kernel may have dropped the pages: nothing later can
            // be trusted to reach the disk, and a retry could report a false success.
            self.poisoned = true;
            return Err(AuditError::Sync {
                path: self.path.clone(),
                source,
            });
        }
        self.next_seq += 1;
        self.prev = hash;
        Ok(())
    }

    fn write_error(&self, source: io::Error) -> AuditError {
        AuditError::Write {
            path: self.path.clone(),
            source,
        }
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
}

/// The last line of the file without its newline; `None` for an empty file.
fn read_last_line(file: &File, length: u64) -> Result<Option<Vec<u8>>, TailError> {
    if length == 0 {
        return Ok(None);
    }
    let mut last_byte = [0u8];
    file.read_exact_at(&mut last_byte, length - 1)
        .map_err(TailError::Io)?;
    if last_byte[0] != b'\n' {
        return Err(TailError::Incomplete);
    }
    let end = length - 1;
    let mut start = end;
    while start > 0 {
        let chunk_start = start.saturating_sub(TAIL_CHUNK);
        let mut chunk = vec![0u8; (start - chunk_start) as usize];
        file.read_exact_at(&mut chunk, chunk_start)
            .map_err(TailError::Io)?;
        if let Some(newline) = chunk.iter().rposition(|&byte| byte == b'\n') {
            start = chunk_start + newline as u64 + 1;
            break;
        }
        start = chunk_start;
    }
    let mut line = vec![0u8; (end - start) as usize];
    file.read_exact_at(&mut line, start)
        .map_err(TailError::Io)?;
    Ok(Some(line))
}

/// Make a newly created file's directory entry durable. Best effort: some filesystems
/// refuse `fsync` on a directory.
fn sync_parent_dir(path: &Path) {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if let Err(error) = File::open(parent).and_then(|dir| dir.sync_all()) {
        tracing::warn!(
            dir = %parent.display(),
            %error,
            "cannot sync the audit log's directory"
        );
    }
}

/// One tracing event for a record when no file is configured.
fn trace_record(context: &AuditContext, mut event: AuditEvent) {
    event.settle_env(false);
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
        AuditEvent::Authenticated => audit_event!(),
        AuditEvent::AuthFailed { reason } => audit_event!(reason = %reason),
        AuditEvent::ToolDenied {
            tool: denied,
            rule,
            reason,
        } => audit_event!(denied_tool = %denied, rule = %rule, reason = %reason),
        AuditEvent::CommandStarted {
            command_id,
            command,
            working_dir,
            env,
            timeout_secs,
            job_id,
        } => {
            let (argv, shell) = command_fields(command);
            audit_event!(
                command_id = %command_id,
                argv,
                command = shell,
                working_dir = working_dir.as_ref().map(|dir| tracing::field::display(dir.display())),
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
                working_dir = working_dir.as_ref().map(|dir| tracing::field::display(dir.display())),
                reason = %reason,
                rule = rule.as_deref(),
            )
        }
        AuditEvent::JobAction { job_id, action } => {
            audit_event!(job_id = %job_id, action = %action)
        }
        AuditEvent::SessionOpened { transport } | AuditEvent::SessionClosed { transport } => {
            audit_event!(transport = transport.as_str())
        }
    }
}

/// `argv` (as a debug list) or the shell string, as optional tracing fields.
fn command_fields(
    command: &CommandLine,
) -> (
    Option<tracing::field::DebugValue<&Vec<String>>>,
    Option<&str>,
) {
    match command {
        CommandLine::Argv(argv) => (Some(tracing::field::debug(argv)), None),
        CommandLine::Shell(script) => (None, Some(script.as_str())),
    }
}
