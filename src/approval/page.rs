//! The one-time approval page: `GET /approvals/<id>?t=<secret>` shows the request with
//! approve and deny buttons; `POST /approvals/<id>` decides it. Server-rendered, no
//! JavaScript, every value escaped, with the consent page's headers (`crate::oauth::page`:
//! strict CSP with `frame-ancestors 'none'`, no caching, and `Referrer-Policy: same-origin`,
//! without which a browser sends `Origin: null` on the form's POST and the host guard refuses
//! it); the page loads nothing and links nowhere, so the URL (and its secret) can only be
//! sent back to this server.
//!
//! Three things must match for a decision: the URL's one-time secret (compared in constant
//! time; the page's or the webhook's), the form's single-use nonce (CSRF: issued when the
//! page is shown, spent by the POST) and an approver's hostmcp token typed into the form.
//! An approver is a token named in `[approval] approvers` (default: any `admin` token),
//! and never the token whose command waits: the model that holds the requesting token and
//! reads the URL cannot approve itself. Once decided, the URL answers 404 like any wrong
//! one. The secret is never logged (the page's log lines name the id only).
//!
//! A submission with a token that cannot decide counts against the client's address and
//! the approval id (`super::budget`); over budget, every submission from that address or
//! for that approval gets 429 with `Retry-After` (the first of each window audited as
//! `approval_refused`) before its token is looked at.

use std::sync::Arc;

use axum::{
    Form, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
    routing::get,
};
use serde::Deserialize;

use super::{
    Approvals,
    approvers::{self, NotAnApprover},
    broker::{ApprovalRequest, Decided, Decider, SecretKind, Verdict, Via},
};
use crate::{
    audit::{AuditContext, AuditEvent, AuditLog, AuditText},
    auth::{authenticator::Authenticator, client_address::TrustedProxies},
    oauth::{
        Peer,
        page::{escape, secured_page},
    },
};

/// Where the pages live: `/approvals/<id>`.
pub const PATH_PREFIX: &str = "/approvals/";

/// What the page routes read.
#[derive(Clone)]
pub struct PageState {
    pub approvals: Arc<Approvals>,
    pub authenticator: Arc<Authenticator>,
    pub audit: AuditLog,
    /// Which forwarded client address to believe, for the failed-submission budget.
    pub trusted_proxies: TrustedProxies,
}

/// `GET` and `POST /approvals/{id}`.
pub fn routes(state: PageState) -> Router {
    Router::new()
        .route("/approvals/{id}", get(show).post(answer))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
pub struct Visit {
    t: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Answer {
    t: Option<String>,
    nonce: Option<String>,
    token: Option<String>,
    decision: Option<String>,
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222}\
code,pre{background:#eee;padding:.1rem .3rem;white-space:pre-wrap;word-break:break-all}.error{color:#a00}\
input[type=password]{width:100%;padding:.4rem}button{margin:1rem .5rem 0 0;padding:.5rem 1.2rem}dt{font-weight:bold}";

fn gone() -> Response {
    message_page(
        StatusCode::NOT_FOUND,
        "No such approval",
        "This approval link is not valid: it may have been decided already, timed out, or \
         the link is wrong.",
    )
}

fn message_page(status: StatusCode, title: &str, text: &str) -> Response {
    let body = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>{title} - hostmcp</title><style>{STYLE}</style></head><body><h1 id="title">{title}</h1><p id="message">{text}</p></body></html>"#,
        title = escape(title),
        text = escape(text),
    );
    secured_page(status, body)
}

fn form_page(
    request: &ApprovalRequest,
    secret: &str,
    nonce: &str,
    error: Option<&str>,
) -> Response {
    let error = error.map_or_else(String::new, |error| {
        format!(
            r#"<p class="error" id="error" role="alert">{}</p>"#,
            escape(error)
        )
    });
    let reason = request
        .reason
        .as_deref()
        .map_or_else(String::new, |reason| {
            format!(r#"<dt>Reason</dt><dd id="reason">{}</dd>"#, escape(reason))
        });
    let stdin = request.stdin.as_ref().map_or_else(
        || "none".to_owned(),
        |stdin| {
            format!(
                "{} bytes, sha256 {}\n{}",
                stdin.bytes, stdin.sha256, stdin.preview
            )
        },
    );
    let body = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>Approve a command - hostmcp</title><style>{STYLE}</style></head><body>
<h1>Approve a command?</h1>
<p>The token <strong id="principal">{principal}</strong> asks to run this command on the host. It runs only if you approve.</p>
<dl><dt>Asked by</dt><dd><code id="tool">{tool}</code></dd>
<dt>Command</dt><dd><pre id="command">{command}</pre></dd>
<dt>Standard input</dt><dd><pre id="stdin">{stdin}</pre></dd>
<dt>Program</dt><dd><code id="program">{program}</code></dd>
<dt>Working directory</dt><dd><code id="working-dir">{working_dir}</code></dd>
<dt>Runs as</dt><dd><code id="run-as">{run_as}</code></dd>
<dt>Rule</dt><dd><code id="rule">{rule}</code></dd>{reason}
<dt>Approval id</dt><dd><code id="approval-id">{id}</code></dd></dl>
{error}<form method="post" action="{prefix}{id}">
<input type="hidden" name="t" value="{secret}">
<input type="hidden" name="nonce" value="{nonce}">
<label for="token">Your hostmcp approver token</label>
<input type="password" id="token" name="token" autocomplete="off" autofocus>
<button type="submit" id="approve" name="decision" value="approve">Approve</button>
<button type="submit" id="deny" name="decision" value="deny">Deny</button>
</form></body></html>"#,
        principal = escape(&request.principal),
        tool = escape(request.tool.as_deref().unwrap_or("a tool call")),
        command = escape(&request.command.describe()),
        stdin = escape(&stdin),
        program = escape(&request.program),
        working_dir = escape(request.working_dir.as_deref().unwrap_or("(the server's)")),
        run_as = escape(request.run_as.as_deref().unwrap_or("(the server's user)")),
        rule = escape(&request.rule),
        id = escape(&request.id),
        prefix = PATH_PREFIX,
        secret = escape(secret),
        nonce = escape(nonce),
    );
    secured_page(StatusCode::OK, body)
}

/// GET: the request and its form, when the secret is right.
async fn show(
    State(state): State<PageState>,
    Path(id): Path<String>,
    Query(visit): Query<Visit>,
) -> Response {
    let secret = visit.t.unwrap_or_default();
    let broker = &state.approvals.broker;
    let Ok((request, _)) = broker.visit(&id, &secret) else {
        tracing::info!(approval_id = %id, "approval page: no pending approval for this link");
        return gone();
    };
    match broker.new_form_nonce(&id, &secret) {
        Ok(nonce) => form_page(&request, &secret, &nonce, None),
        Err(_) => gone(),
    }
}

/// POST: an approver decides.
async fn answer(
    State(state): State<PageState>,
    Path(id): Path<String>,
    peer: Peer,
    headers: HeaderMap,
    Form(form): Form<Answer>,
) -> Response {
    let broker = &state.approvals.broker;
    let secret = form.t.unwrap_or_default();
    let Ok((request, _)) = broker.visit(&id, &secret) else {
        return gone();
    };
    let address = peer
        .0
        .map(|peer| state.trusted_proxies.resolve(peer, &headers).budget_key());
    let budget = state.approvals.page_budget();
    if let Err(over) = budget.check(address, &id) {
        return over_budget(&state, &request, over).await;
    }
    let nonce = form.nonce.unwrap_or_default();
    let Ok(kind) = broker.spend_form_nonce(&id, &secret, &nonce) else {
        tracing::info!(approval_id = %id, "approval page: a form without this page's nonce was refused");
        return message_page(
            StatusCode::BAD_REQUEST,
            "Form refused",
            "This form was not the one this server last showed (missing or used nonce). \
             Open the approval link again.",
        );
    };
    let verdict = match form.decision.as_deref() {
        Some("approve") => Verdict::Approved,
        Some("deny") => Verdict::Denied,
        _ => return retry(&state, &request, &secret, "Choose Approve or Deny."),
    };
    let entered = form.token.as_deref().map(str::trim).unwrap_or_default();
    let approver = if entered.is_empty() || entered.contains('.') {
        None
    } else {
        HeaderValue::from_str(&format!("Bearer {entered}"))
            .ok()
            .and_then(|header| state.authenticator.authenticate(Some(&header)).ok())
    };
    let failed = || budget.failed(address, &id);
    let Some(approver) = approver else {
        failed();
        refused(&state, &request, "not a token this server accepts").await;
        return retry(
            &state,
            &request,
            &secret,
            "That is not a token this server accepts.",
        );
    };
    let settings = state.approvals.settings();
    if let Err(not) = approvers::check(
        &settings,
        approver.name(),
        approver.role(),
        &request.principal,
    ) {
        failed();
        refused(&state, &request, &not.to_string()).await;
        let error = match not {
            NotAnApprover::OwnRequest => {
                "The token that asked for this command cannot decide on it: use an approver's token."
            }
            NotAnApprover::NotNamed => {
                "This token may not approve commands (see [approval] approvers)."
            }
        };
        return retry(&state, &request, &secret, error);
    }
    let via = match kind {
        SecretKind::Page => Via::Page,
        SecretKind::Webhook => Via::Webhook,
    };
    let decided = Decided {
        verdict,
        decider: Decider {
            via,
            who: approver.name().to_owned(),
        },
    };
    if broker.decide(&id, decided).is_err() {
        return gone();
    }
    let (title, text) = match verdict {
        Verdict::Approved => ("Approved", "The command was approved and runs now."),
        _ => ("Denied", "The command was denied and does not run."),
    };
    message_page(StatusCode::OK, title, text)
}

/// The form again, with a fresh nonce and `error`.
fn retry(state: &PageState, request: &ApprovalRequest, secret: &str, error: &str) -> Response {
    match state.approvals.broker.new_form_nonce(&request.id, secret) {
        Ok(nonce) => {
            let mut response = form_page(request, secret, &nonce, Some(error));
            *response.status_mut() = StatusCode::FORBIDDEN;
            response
        }
        Err(_) => gone(),
    }
}

/// 429 with `Retry-After` for a submission over `over`'s budget; the first of its window
/// on record, the others only counted (a flood does not flood the audit log).
async fn over_budget(
    state: &PageState,
    request: &ApprovalRequest,
    over: super::budget::OverBudget,
) -> Response {
    let wait = over.limited.retry_after;
    let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    if over.limited.first_in_window {
        let why = format!(
            "too many failed submissions for {}; refused for {seconds} s ({} refused in the window before)",
            over.key.as_str(),
            over.limited.refused_in_previous_window
        );
        refused(state, request, &why).await;
    }
    let mut response = message_page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        &format!(
            "Too many tokens that cannot decide were tried for {}. Wait {seconds} seconds, then \
             open the approval link again.",
            over.key.as_str()
        ),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// A refused approver token, on record (the token itself never is).
async fn refused(state: &PageState, request: &ApprovalRequest, why: &str) {
    tracing::info!(approval_id = %request.id, reason = why, "approval page: approver refused");
    let event = AuditEvent::ApprovalRefused {
        approval_id: request.id.clone(),
        reason: AuditText::from(why.to_owned()),
    };
    state
        .audit
        .record_or_log(AuditContext::default(), event)
        .await;
}
