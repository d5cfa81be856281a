//! Deciding in the MCP Apps confirmation view (`ui://hostmcp/approval`, `crate::apps::approval`):
//! who may see a waiting request there and who may decide it. Pure rules over the broker;
//! the tools `approval_pending` and `approval_decide` call these and shape the results.
//!
//! How the request reaches the view: a call that waits for approval blocks until decided, so
//! its own tool result comes too late, and a host forwards no progress to a view. The view
//! (shown by the host beside the waiting `run_command`) polls `approval_pending`, which lists
//! the caller's own waiting requests, each with its one-time view secret; a click calls
//! `approval_decide` with the id, the decision and that secret.
//!
//! Why the model cannot approve its own command through these tools, although the host calls
//! them with the very token the model's calls use:
//! - both tools are `visibility: ["app"]`: a host that renders apps keeps them out of the
//!   model's tool list and refuses a model's call of them (SEP-1865);
//! - the server refuses both unless the request's client declared the
//!   `io.modelcontextprotocol/ui` extension with the HTML view MIME type: a client that
//!   renders no apps (Claude Code, the SDKs, an agent's own script) makes no view, so any
//!   call of these tools from it is the model's ([`AppViewError::NotAnAppsClient`]);
//! - `approval_decide` needs the view secret, which only `approval_pending`'s result
//!   carries (in `_meta`, which the spec keeps out of the model's context, and a view's own
//!   call results go to the view alone). The approval id is in the text the model reads
//!   (progress, the error of an expired call); the id alone decides nothing
//!   ([`AppViewError::NotPending`], one answer for unknown, decided and wrong secret);
//! - a token decides only its own requests, and only when `[approval] app_view_tokens`
//!   names it ([`AppViewError::NotEnabled`], default: none). This is opt-in because a model
//!   that holds the raw token itself could write its own apps client; a token held only by
//!   the chat host (claude.ai's OAuth grant) is the case the view is for.
//!
//! A decision here is recorded by the waiting call like every other: `approval_decided`
//! with `via = "mcp-app"` and `decider = "mcp-app:<token>"`.

use std::{sync::Arc, time::SystemTime};

use super::{
    Approvals,
    broker::{ApprovalRequest, BrokerError, Decided, Decider, Verdict, Via},
};

/// Why the view may not list or decide.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppViewError {
    #[error(
        "refused: approval_pending and approval_decide are for the MCP Apps confirmation view \
         (ui://hostmcp/approval) only, and this client did not declare that it renders MCP \
         Apps (io.modelcontextprotocol/ui); a person approves through the page URL, \
         `hostmcp approvals` on the host, or elicitation"
    )]
    NotAnAppsClient,
    #[error(
        "refused: the token {principal:?} may not decide its own commands in the MCP Apps view \
         (the server's [approval] app_view_tokens does not name it); a person approves through \
         the page URL or `hostmcp approvals` on the host"
    )]
    NotEnabled { principal: String },
    /// Unknown, decided, timed out, another principal's, or the secret does not match.
    #[error(
        "refused: no pending approval {0:?} for this view (it may have been decided already \
         or timed out, or the view's secret is missing or wrong)"
    )]
    NotPending(String),
}

/// A waiting request as the view shows it, with its one-time view secret.
#[derive(Debug, Clone)]
pub struct ViewRequest {
    pub request: Arc<ApprovalRequest>,
    /// Only for the view: never in text a model reads.
    pub secret: String,
    /// Whole seconds until the timeout denies it.
    pub expires_in_secs: u64,
}

/// The caller's rights in the view: its token name, and whether the request came from a
/// client that declared it renders MCP Apps.
#[derive(Debug, Clone, Copy)]
pub struct ViewCaller<'a> {
    pub principal: &'a str,
    pub renders_apps: bool,
}

fn admitted(approvals: &Approvals, caller: ViewCaller<'_>) -> Result<(), AppViewError> {
    if !caller.renders_apps {
        return Err(AppViewError::NotAnAppsClient);
    }
    let enabled = approvals
        .settings()
        .app_view_tokens
        .iter()
        .any(|name| name == caller.principal);
    if !enabled {
        return Err(AppViewError::NotEnabled {
            principal: caller.principal.to_owned(),
        });
    }
    Ok(())
}

/// The caller's own waiting requests, oldest first.
pub fn pending(
    approvals: &Approvals,
    caller: ViewCaller<'_>,
) -> Result<Vec<ViewRequest>, AppViewError> {
    admitted(approvals, caller)?;
    let now = SystemTime::now();
    Ok(approvals
        .broker
        .pending_of(caller.principal)
        .into_iter()
        .map(|(request, secret)| ViewRequest {
            expires_in_secs: request
                .deadline
                .duration_since(now)
                .map_or(0, |left| left.as_secs()),
            request,
            secret,
        })
        .collect())
}

/// Decide the caller's own request `id` with the view's `secret`: the first decision wins.
pub fn decide(
    approvals: &Approvals,
    caller: ViewCaller<'_>,
    id: &str,
    approve: bool,
    secret: &str,
) -> Result<Arc<ApprovalRequest>, AppViewError> {
    admitted(approvals, caller)?;
    let not_pending = |_: BrokerError| AppViewError::NotPending(id.to_owned());
    let request = approvals
        .broker
        .visit_view(id, secret)
        .map_err(not_pending)?;
    if request.principal != caller.principal {
        return Err(AppViewError::NotPending(id.to_owned()));
    }
    let verdict = if approve {
        Verdict::Approved
    } else {
        Verdict::Denied
    };
    let decided = Decided {
        verdict,
        decider: Decider {
            via: Via::App,
            who: decider(caller.principal),
        },
    };
    approvals.broker.decide(id, decided).map_err(not_pending)
}

/// The audit log's decider of a view decision.
pub fn decider(principal: &str) -> String {
    format!("mcp-app:{principal}")
}

#[cfg(test)]
mod tests;
