//! What every file tool does around its operation on `crate::files`: the identity gate
//! (file tools act with the server's rights, so a token whose commands run as another Unix
//! user is refused them), the blocking I/O moved off the async workers, and the
//! `file_access` audit record of each call with its resolved path — written before a result
//! is returned (or a write renamed into place), and if it cannot be written, the call is
//! refused rather than done unaudited.

use rmcp::model::{CallToolResult, ContentBlock};

use super::ToolsState;
use crate::{
    audit::{AuditEvent, AuditText, FileOperation},
    caller::Caller,
    exec::identities::RunAsRefusal,
    files::{FileError, Located},
};

/// Why a file tool did not do what it was asked. Its `Display` is what the model reads.
#[derive(Debug, thiserror::Error)]
pub enum FileRefusal {
    #[error(transparent)]
    File(#[from] FileError),
    #[error(
        "refused: token {principal:?} runs commands as {user:?}, and the file tools act with \
         the server's own rights; they are refused to tokens whose commands run as another \
         user (read the file with run_command instead, which runs as {user:?})"
    )]
    OtherUser { principal: String, user: String },
    #[error(transparent)]
    RunAs(#[from] RunAsRefusal),
    #[error(
        "refused: {reason}; file calls are never made unaudited, so the server's operator must \
         fix the audit log"
    )]
    Unaudited { reason: &'static str },
    #[error("internal error: the file operation did not complete")]
    Lost,
}

impl FileRefusal {
    /// The rule that refused, as the audit record names it.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::File(error) => error.rule(),
            Self::OtherUser { .. } | Self::RunAs(_) => "run_as",
            Self::Unaudited { .. } => "audit",
            Self::Lost => "internal",
        }
    }

    /// The refusal as the tool's error result.
    pub fn into_result(self) -> CallToolResult {
        CallToolResult::error(vec![ContentBlock::text(self.to_string())])
    }
}

/// The file tools act as the server's user: allowed when the caller's commands would run
/// as that same user (or the server is not root and no `run_as` applies).
pub fn check_identity(state: &ToolsState, caller: &Caller) -> Result<(), FileRefusal> {
    match state.identities.user_for(&caller.principal)? {
        None => Ok(()),
        Some(user) if user.uid() == nix::unistd::Uid::effective() => Ok(()),
        Some(user) => Err(FileRefusal::OtherUser {
            principal: caller.principal.name().to_owned(),
            user: user.name().to_owned(),
        }),
    }
}

/// Run `work` (blocking file I/O) on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, FileRefusal> + Send + 'static,
) -> Result<T, FileRefusal> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or(Err(FileRefusal::Lost))
}

/// One `file_access` record.
pub struct Access<'a> {
    pub tool: &'a str,
    pub operation: FileOperation,
    pub requested: &'a str,
    pub resolved: Option<&'a str>,
    pub sha256: Option<String>,
}

impl Access<'_> {
    /// Record a call that was done (or is about to be): `Err` when the record could not be
    /// written, and the call must not go on.
    pub async fn done(self, state: &ToolsState, caller: &Caller) -> Result<(), FileRefusal> {
        let trail = caller.audit_context(self.tool);
        state
            .audit
            .record(trail, self.event(None))
            .await
            .map_err(|error| {
                tracing::error!(%error, "audit log unavailable: refusing the file call");
                FileRefusal::Unaudited {
                    reason: error.refusal_reason(),
                }
            })
    }

    /// Record a refused call (a failure to record it is logged).
    pub async fn refused(self, state: &ToolsState, caller: &Caller, refusal: &FileRefusal) {
        self.failed(state, caller, refusal.rule()).await;
    }

    /// Record a call that failed by `rule` (a failure to record it is logged).
    pub async fn failed(self, state: &ToolsState, caller: &Caller, rule: &str) {
        let trail = caller.audit_context(self.tool);
        let event = self.event(Some(rule.to_owned()));
        state.audit.record_or_log(trail, event).await;
    }

    fn event(self, refused: Option<String>) -> AuditEvent {
        AuditEvent::FileAccess {
            operation: self.operation,
            requested: AuditText::from(self.requested),
            resolved: self.resolved.map(AuditText::from),
            refused,
            sha256: self.sha256,
        }
    }
}

/// The whole of a read-only file call: gate, locate and `work` off the async workers,
/// record. `resolved` names the path the outcome reached.
pub async fn read_only<T: Send + 'static>(
    state: &ToolsState,
    caller: &Caller,
    tool: &'static str,
    operation: FileOperation,
    path: String,
    work: impl FnOnce(&Located) -> Result<T, FileError> + Send + 'static,
    resolved: fn(&T) -> &str,
) -> Result<T, FileRefusal> {
    let access = |resolved| Access {
        tool,
        operation,
        requested: &path,
        resolved,
        sha256: None,
    };
    let outcome = match check_identity(state, caller) {
        Ok(()) => {
            let roots = state.files.load_full();
            let requested = path.clone();
            blocking(move || Ok(work(&roots.locate(&requested)?)?)).await
        }
        Err(refusal) => Err(refusal),
    };
    match outcome {
        Ok(outcome) => {
            access(Some(resolved(&outcome))).done(state, caller).await?;
            Ok(outcome)
        }
        Err(refusal) => {
            access(None).refused(state, caller, &refusal).await;
            Err(refusal)
        }
    }
}

#[cfg(test)]
mod tests;
