//! The confirmation view, `ui://hostmcp/approval`: one self-contained HTML file
//! (`assets/approval.html`, compiled in) that a client which renders MCP Apps shows beside
//! a `run_command`, `job_start` or `terminal_open` call. While the call waits for a person,
//! the view lists the waiting request (what it asks for: a command, a background job or a
//! terminal; exact command, program, working directory, run-as user, rule and reason,
//! requester, time left) with Approve and Deny buttons, and for an approver other tokens'
//! waiting requests too; when the call ends it shows the result (exit code and output, the
//! job id or the terminal id and what to call next, or the refusal). This file owns its resource entry, its `resources/read` contents and its `_meta.ui`;
//! who may decide there is `crate::approval::app_view`.
//!
//! The page speaks the bridge by hand like the dashboard (same handshake, same CSP: hash-only
//! inline script and style, `connect-src 'none'`; `scripts/dashboard-csp.py` rewrites the
//! hashes). It calls two app-only tools through the host: `approval_pending` about once a
//! second (at most 1,800 times, the longest a call may wait), and `approval_decide` on a
//! click, with the view secret from `approval_pending`'s `_meta` (`hostmcp/viewSecrets`).
//! Every value is written with `textContent`, so a command line cannot become markup.

use rmcp::model::{ReadResourceResult, Resource};

use super::MIME_TYPE;

/// The view's URI.
pub const URI: &str = "ui://hostmcp/approval";
/// The page, as served.
pub const HTML: &str = include_str!("../../assets/approval.html");
/// The `_meta` key of `approval_pending`'s result holding each request's view secret.
pub const SECRETS_META_KEY: &str = "hostmcp/viewSecrets";

/// The view as `resources/list` shows it.
pub fn resource() -> Resource {
    Resource::new(URI, "approval")
        .with_title("Command approval")
        .with_description(
            "The confirmation of a command that waits for a person's approval (MCP Apps \
             view, io.modelcontextprotocol/ui), shown beside run_command, job_start and \
             terminal_open in clients that render apps. Other clients approve through the \
             page URL or the CLI.",
        )
        .with_mime_type(MIME_TYPE)
        .with_meta(super::sealed_view_meta())
}

/// `resources/read` of the view: the HTML with its `_meta.ui`.
pub fn read() -> ReadResourceResult {
    super::read_sealed_view(HTML, URI)
}

#[cfg(test)]
mod tests;
