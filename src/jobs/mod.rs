//! Background jobs: commands that outlive the tool call that started them. A job belongs
//! to the principal that started it (others cannot see or touch it, and are told only that
//! no such job exists), keeps the last [`JobLimits::retained_bytes`] of each stream for
//! cursor-based reading, ends at its timeout at the latest, and is forgotten
//! [`JobLimits::keep_finished`] after it ends. A job holds its starter's [`Lease`]: when
//! the token is revoked under `on_revoke = "kill"` the job is killed like `job_signal`'s
//! stop (TERM, then KILL) and an `ended_by_revocation` record names it.

pub mod log;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use nix::sys::signal::Signal;
use parking_lot::{Mutex, MutexGuard};
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    audit::{AuditContext, AuditEvent, AuditLog, EndedWork},
    auth::Lease,
    exec::{
        self, BaseEnv, CommandSpec, ExecLimits, ExecOutcome, OutputEvent, OutputObserver,
        slots::CommandSlot,
    },
};
use log::{Page, StreamLog};

/// Called once when a job's command has ended (or failed to start), e.g. to audit it.
pub type OnJobEnd =
    Box<dyn FnOnce(Result<ExecOutcome, String>) -> futures::future::BoxFuture<'static, ()> + Send>;

/// Limits on jobs, from the `[jobs]` config table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobLimits {
    /// Jobs (running or finished, not yet forgotten) one principal may have.
    pub max_per_principal: usize,
    /// Bytes of each stream kept for reading.
    pub retained_bytes: usize,
    /// How long a finished job stays readable.
    pub keep_finished: Duration,
}

impl Default for JobLimits {
    fn default() -> Self {
        Self {
            max_per_principal: 32,
            retained_bytes: 1024 * 1024,
            keep_finished: Duration::from_secs(15 * 60),
        }
    }
}

/// What happened to a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobState {
    Running,
    Exited { exit_code: i32 },
    Killed { signal: i32 },
    TimedOut,
    Cancelled,
    FailedToStart { reason: String },
}

/// Why a job operation failed. Unknown and foreign jobs are indistinguishable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    #[error("no job with id {0:?} (it may have finished more than 15 minutes ago)")]
    NotFound(String),
    #[error("you already have {0} jobs; wait for some to finish and be forgotten, or kill them")]
    TooMany(usize),
    #[error("job {0} is no longer running")]
    NotRunning(String),
    #[error("cannot make a job id: {0}")]
    NoRandomness(String),
    #[error("cannot send {signal} to job {job}: {reason}")]
    Signal {
        job: String,
        signal: String,
        reason: String,
    },
}

/// One job.
#[derive(Debug)]
pub struct Job {
    id: String,
    owner: Arc<str>,
    description: String,
    started_at: SystemTime,
    started: Instant,
    cancel: CancellationToken,
    inner: Mutex<JobInner>,
    changed: Notify,
}

#[derive(Debug)]
struct JobInner {
    state: JobState,
    pgid: Option<i32>,
    stdout: StreamLog,
    stderr: StreamLog,
    duration: Option<Duration>,
    finished_at: Option<Instant>,
}

/// A read of a job's output and state.
#[derive(Debug, Serialize)]
pub struct JobRead {
    pub job_id: String,
    #[serde(flatten)]
    pub state: JobState,
    pub stdout: String,
    pub stderr: String,
    pub stdout_cursor: u64,
    pub stderr_cursor: u64,
    /// Bytes between the given cursor and the oldest byte still kept.
    pub stdout_skipped: u64,
    pub stderr_skipped: u64,
    pub duration_ms: u64,
}

/// A line of `job_list`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct JobSummary {
    pub job_id: String,
    pub command: String,
    #[serde(flatten)]
    pub state: JobState,
    pub started_at_unix: u64,
    /// The start in nanoseconds since 1970: the order `job_list` pages in (not shown).
    #[serde(skip)]
    #[schemars(skip)]
    pub started_at_unix_nanos: u128,
    pub duration_ms: u64,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
}

impl Job {
    fn lock(&self) -> MutexGuard<'_, JobInner> {
        self.inner.lock()
    }

    fn elapsed(&self, inner: &JobInner) -> Duration {
        inner.duration.unwrap_or_else(|| self.started.elapsed())
    }

    fn summary(&self) -> JobSummary {
        let inner = self.lock();
        JobSummary {
            job_id: self.id.clone(),
            command: self.description.clone(),
            state: inner.state.clone(),
            started_at_unix: self
                .started_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |since| since.as_secs()),
            started_at_unix_nanos: self
                .started_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |since| since.as_nanos()),
            duration_ms: millis(self.elapsed(&inner)),
            stdout_bytes: inner.stdout.total(),
            stderr_bytes: inner.stderr.total(),
        }
    }

    fn read(&self, stdout_cursor: u64, stderr_cursor: u64, max_bytes: usize) -> JobRead {
        let inner = self.lock();
        let page = |log: &StreamLog, cursor| log.read(cursor, max_bytes);
        let (out, err): (Page, Page) = (
            page(&inner.stdout, stdout_cursor),
            page(&inner.stderr, stderr_cursor),
        );
        JobRead {
            job_id: self.id.clone(),
            state: inner.state.clone(),
            stdout: String::from_utf8_lossy(&out.bytes).into_owned(),
            stderr: String::from_utf8_lossy(&err.bytes).into_owned(),
            stdout_cursor: out.next_cursor,
            stderr_cursor: err.next_cursor,
            stdout_skipped: out.skipped,
            stderr_skipped: err.skipped,
            duration_ms: millis(self.elapsed(&inner)),
        }
    }
}

/// Appends a running job's output to its logs.
struct JobObserver(Arc<Job>);

impl OutputObserver for JobObserver {
    fn observe(&self, event: OutputEvent) {
        {
            let mut inner = self.0.lock();
            match &event {
                OutputEvent::Stdout(bytes) => inner.stdout.append(bytes),
                OutputEvent::Stderr(bytes) => inner.stderr.append(bytes),
            }
        }
        self.0.changed.notify_waiters();
    }

    fn started(&self, pid: u32) {
        self.0.lock().pgid = i32::try_from(pid).ok();
    }
}

/// All jobs of the server.
#[derive(Debug)]
pub struct JobRegistry {
    limits: JobLimits,
    exec_limits: ExecLimits,
    base_env: BaseEnv,
    shutdown: CancellationToken,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
    /// Where jobs killed by a revocation are recorded.
    audit: AuditLog,
}

impl JobRegistry {
    /// A registry whose jobs are all killed when `shutdown` is cancelled.
    pub fn new(
        limits: JobLimits,
        base_env: BaseEnv,
        shutdown: CancellationToken,
        audit: AuditLog,
    ) -> Arc<Self> {
        Arc::new(Self {
            audit,
            limits,
            exec_limits: ExecLimits {
                // The outcome's own capture is not shown: the logs are the record.
                max_output_bytes: 4096,
                ..ExecLimits::default()
            },
            base_env,
            shutdown,
            jobs: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Job>>> {
        self.jobs.lock()
    }

    /// A fresh job id, for records made before the job starts.
    pub fn new_id() -> Result<String, JobError> {
        new_job_id()
    }

    /// Start `spec` in the background for `owner` as job `id` (from [`Self::new_id`]),
    /// holding `slot` until it ends, then calling `on_end`; killed if `lease` ends first.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        self: &Arc<Self>,
        id: String,
        owner: &str,
        lease: Lease,
        description: String,
        spec: CommandSpec,
        slot: CommandSlot,
        on_end: OnJobEnd,
    ) -> Result<JobSummary, JobError> {
        self.forget_expired();
        let job = Arc::new(Job {
            id: id.clone(),
            owner: Arc::from(owner),
            description,
            started_at: SystemTime::now(),
            started: Instant::now(),
            cancel: self.shutdown.child_token(),
            inner: Mutex::new(JobInner {
                state: JobState::Running,
                pgid: None,
                stdout: StreamLog::new(self.limits.retained_bytes),
                stderr: StreamLog::new(self.limits.retained_bytes),
                duration: None,
                finished_at: None,
            }),
            changed: Notify::new(),
        });
        {
            let mut jobs = self.lock();
            let mine = jobs.values().filter(|job| *job.owner == *owner).count();
            if mine >= self.limits.max_per_principal {
                return Err(JobError::TooMany(mine));
            }
            jobs.insert(id, job.clone());
        }
        let registry = self.clone();
        let runner = job.clone();
        tokio::spawn(async move {
            let observer: Arc<dyn OutputObserver> = Arc::new(JobObserver(runner.clone()));
            let run = exec::run(
                spec,
                &registry.exec_limits,
                &registry.base_env,
                runner.cancel.clone(),
                Some(observer),
            );
            tokio::pin!(run);
            let result = tokio::select! {
                result = &mut run => result,
                reason = lease.ended() => {
                    runner.cancel.cancel();
                    let context = AuditContext::new().with_principal(&*runner.owner);
                    let event = AuditEvent::EndedByRevocation {
                        ended: EndedWork::Job,
                        id: runner.id.clone(),
                        reason,
                    };
                    tracing::warn!(job = %runner.id, principal = %runner.owner, %reason, "job killed: its token was revoked");
                    registry.audit.record_or_log(context, event).await;
                    run.await
                }
            };
            drop(slot);
            let ended = match &result {
                Ok(outcome) => Ok(outcome.clone()),
                Err(error) => Err(error.to_string()),
            };
            finish(&runner, result);
            on_end(ended).await;
        });
        Ok(job.summary())
    }

    fn find(&self, owner: &str, id: &str) -> Result<Arc<Job>, JobError> {
        self.lock()
            .get(id)
            .filter(|job| *job.owner == *owner)
            .cloned()
            .ok_or_else(|| JobError::NotFound(id.to_owned()))
    }

    /// Whether job `id` exists and belongs to someone other than `owner`: for the audit log
    /// only (the caller is told [`JobError::NotFound`] either way).
    pub fn belongs_to_another(&self, owner: &str, id: &str) -> bool {
        self.lock().get(id).is_some_and(|job| *job.owner != *owner)
    }

    /// Read output from the cursors; with `wait`, first wait up to that long for new
    /// output or the end of the job.
    pub async fn read(
        &self,
        owner: &str,
        id: &str,
        cursors: (u64, u64),
        max_bytes: usize,
        wait: Duration,
    ) -> Result<JobRead, JobError> {
        let job = self.find(owner, id)?;
        if !wait.is_zero() {
            let changed = job.changed.notified();
            let has_news = {
                let inner = job.lock();
                inner.state != JobState::Running
                    || inner.stdout.total() > cursors.0
                    || inner.stderr.total() > cursors.1
            };
            if !has_news {
                let _ = tokio::time::timeout(wait, changed).await;
            }
        }
        Ok(job.read(cursors.0, cursors.1, max_bytes))
    }

    /// Send `signal` to a running job's whole process group.
    pub fn signal(&self, owner: &str, id: &str, signal: Signal) -> Result<JobSummary, JobError> {
        let job = self.find(owner, id)?;
        let inner = job.lock();
        let (JobState::Running, Some(pgid)) = (&inner.state, inner.pgid) else {
            return Err(JobError::NotRunning(id.to_owned()));
        };
        // The lock is held, so the job cannot be marked finished (and its group id reused)
        // while the signal is sent.
        nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), signal).map_err(|errno| {
            JobError::Signal {
                job: id.to_owned(),
                signal: signal.as_str().to_owned(),
                reason: errno.desc().to_owned(),
            }
        })?;
        drop(inner);
        Ok(job.summary())
    }

    /// Kill a job: TERM to its group, KILL after the grace period (as on timeout).
    pub fn kill(&self, owner: &str, id: &str) -> Result<JobSummary, JobError> {
        let job = self.find(owner, id)?;
        job.cancel.cancel();
        Ok(job.summary())
    }

    /// The jobs of `owner`, oldest first.
    pub fn list(&self, owner: &str) -> Vec<JobSummary> {
        self.forget_expired();
        let mut jobs: Vec<Arc<Job>> = self
            .lock()
            .values()
            .filter(|job| *job.owner == *owner)
            .cloned()
            .collect();
        jobs.sort_by_key(|job| job.started);
        jobs.iter().map(|job| job.summary()).collect()
    }

    /// Jobs still running, across all principals.
    pub fn running(&self) -> usize {
        self.lock()
            .values()
            .filter(|job| job.lock().state == JobState::Running)
            .count()
    }

    /// Drop finished jobs older than `keep_finished`.
    fn forget_expired(&self) {
        let keep = self.limits.keep_finished;
        self.lock().retain(|_, job| {
            job.lock()
                .finished_at
                .is_none_or(|finished| finished.elapsed() < keep)
        });
    }
}

fn finish(job: &Job, result: Result<ExecOutcome, exec::ExecError>) {
    let mut inner = job.lock();
    inner.state = match result {
        Err(error) => JobState::FailedToStart {
            reason: error.to_string(),
        },
        Ok(outcome) if outcome.timed_out => JobState::TimedOut,
        Ok(outcome) if outcome.cancelled => JobState::Cancelled,
        Ok(ExecOutcome {
            exit_code: Some(exit_code),
            ..
        }) => JobState::Exited { exit_code },
        Ok(outcome) => JobState::Killed {
            signal: outcome.signal.unwrap_or_default(),
        },
    };
    inner.duration = Some(job.started.elapsed());
    inner.finished_at = Some(Instant::now());
    inner.pgid = None;
    drop(inner);
    job.changed.notify_waiters();
    tracing::info!(job = %job.id, principal = %job.owner, "job ended");
}

/// `job_` and 96 random bits in hex: unguessable, so ids leak nothing about other jobs.
fn new_job_id() -> Result<String, JobError> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|error| JobError::NoRandomness(error.to_string()))?;
    Ok(format!("job_{}", hex::encode(bytes)))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Parse a signal name as given by a caller: `TERM`, `SIGTERM`, `kill`, ...
pub fn parse_signal(name: &str) -> Option<Signal> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    let allowed = [
        Signal::SIGTERM,
        Signal::SIGKILL,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGSTOP,
        Signal::SIGCONT,
    ];
    allowed.into_iter().find(|signal| signal.as_str() == full)
}

#[cfg(test)]
mod tests;
