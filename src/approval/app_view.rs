//! Deciding in the MCP Apps confirmation view (`ui://hostmcp/approval`, `crate::apps::approval`):
//! who may see a waiting request there and who may decide it. Pure rules over the broker;
//! the tools `approval_pending` and `approval_decide` call these and shape the results.
//!
//! How the request reaches the view: a call that waits for approval blocks until decided, so
//! its own tool result comes too late, and a host forwards no progress to a view. The view
//! (shown by the host beside the waiting `run_command`, `job_start` or `terminal_open`) polls
//! `approval_pending`, which lists the requests the caller may decide there, each with its
//! one-time view secret; a click calls `approval_decide` with the id, the decision and that
//! secret.
//!
//! Which requests those are:
//! - the caller's own, as always;
//! - other tokens' too when the caller is an approver by the page's rule
//!   (`super::approvers`: named in `[approval] approvers`, or an admin when that is unset),
//!   checked with the settings in effect at each call; never its own by that rule (its own
//!   are decided here only as its own, above).
//!
//! A non-approver's view lists only its own requests, and another token's id with any secret
//! answers as an unknown one ([`AppViewError::NotPending`]).
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
//!   ([`AppViewError::NotPending`], one answer for unknown, decided, another token's and
//!   wrong secret);
//! - a token uses the view at all only when `[approval] app_view_tokens` names it
//!   ([`AppViewError::NotEnabled`], default: none), approvers included. This is opt-in
//!   because a model that holds the raw token itself could write its own apps client; a
//!   token held only by the chat host (claude.ai's OAuth grant) is the case the view is for.
//!
//! A decision here is recorded by the waiting call like every other: `approval_decided`
//! with `via = "mcp-app"` and `decider = "mcp-app:<token>"`, the token that decided.

use std::{sync::Arc, time::SystemTime};

use super::{
    Approvals, approvers,
    broker::{ApprovalRequest, BrokerError, Decided, Decider, Verdict, Via},
};
use crate::auth::Role;

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
        "refused: the token {principal:?} may not decide commands in the MCP Apps view (the \
         server's [approval] app_view_tokens does not name it); a person approves through the \
         page URL or `hostmcp approvals` on the host"
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
    /// Whether it is the caller's own request (else another token's, shown to an approver).
    pub own: bool,
}

/// The caller's rights in the view: its token name and role, and whether the request came
/// from a client that declared it renders MCP Apps.
#[derive(Debug, Clone, Copy)]
pub struct ViewCaller<'a> {
    pub principal: &'a str,
    pub role: Role,
    pub renders_apps: bool,
}

impl ViewCaller<'_> {
    /// Whether this caller may see and decide `request` in the view: its own, or another
    /// token's when it is an approver by the page's rule (settings in effect now).
    fn may_decide(&self, approvals: &Approvals, request: &ApprovalRequest) -> bool {
        request.principal == self.principal
            || approvers::check(
                &approvals.settings(),
                self.principal,
                self.role,
                &request.principal,
            )
            .is_ok()
    }

    /// Whether this caller is an approver (sees other tokens' requests in the view).
    pub fn is_approver(&self, approvals: &Approvals) -> bool {
        approvers::is_approver(&approvals.settings(), self.principal, self.role)
    }
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

/// The waiting requests the caller may decide in the view (its own, and others' for an
/// approver), oldest first.
pub fn pending(
    approvals: &Approvals,
    caller: ViewCaller<'_>,
) -> Result<Vec<ViewRequest>, AppViewError> {
    admitted(approvals, caller)?;
    let now = SystemTime::now();
    Ok(approvals
        .broker
        .pending_views()
        .into_iter()
        .filter(|(request, _)| caller.may_decide(approvals, request))
        .map(|(request, secret)| ViewRequest {
            expires_in_secs: request
                .deadline
                .duration_since(now)
                .map_or(0, |left| left.as_secs()),
            own: request.principal == caller.principal,
            request,
            secret,
        })
        .collect())
}

/// Decide request `id` (the caller's own, or another token's for an approver) with the
/// view's `secret`: the first decision wins.
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
    if !caller.may_decide(approvals, &request) {
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
