//! Why a command a tool was asked to run did not start, as one typed [`Refusal`]: the
//! policy's [`Denial`] (with the rule that decided), a request that does not resolve, no
//! Unix user to run it, no free slot, no job id, or an audit log that cannot record it.
//! Each variant's text is rendered here or by the error it carries, in one place; the
//! tools answer with it and the audit log records it with [`Refusal::rule`].

use crate::{
    exec::{identities::RunAsRefusal, slots::SlotError},
    jobs::JobError,
    policy::{Denial, ResolveError},
};

/// Why a command a tool was asked to run did not start. Its `Display` is what the caller
/// reads; [`Refusal::rule`] is what decided, for the log.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The request names something that does not exist or is malformed, or a working dir
    /// outside the roots.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The policy denied it.
    #[error(transparent)]
    Denied(#[from] Denial),
    /// No Unix user may run it.
    #[error(transparent)]
    RunAs(#[from] RunAsRefusal),
    /// The concurrency limits are reached.
    #[error(transparent)]
    Busy(#[from] SlotError),
    /// No job id could be made.
    #[error(transparent)]
    Job(#[from] JobError),
    /// Its start could not be audited; commands never run unaudited.
    #[error(
        "refused: {reason}; commands never run unaudited, so the server's operator must fix \
         the audit log"
    )]
    Unaudited { reason: &'static str },
    /// It needed a person's approval and did not get it (denied, timed out, withdrawn).
    #[error(transparent)]
    NotApproved(#[from] crate::approval::gate::NotApproved),
}

impl Refusal {
    /// What refused: a policy rule (`deny[0]`, `default`, ...), `resolve`, `working_dirs`,
    /// `run_as`, `limits`, `job` or `audit`.
    pub fn rule(&self) -> String {
        match self {
            Self::Resolve(error) => error.rule().to_owned(),
            Self::Denied(denial) => denial.rule().to_string(),
            Self::RunAs(_) => "run_as".to_owned(),
            Self::Busy(_) => "limits".to_owned(),
            Self::Job(_) => "job".to_owned(),
            Self::Unaudited { .. } => "audit".to_owned(),
            Self::NotApproved(_) => "approval".to_owned(),
        }
    }
}
