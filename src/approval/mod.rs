//! Human approval of commands: a command whose allow rule says `approve = true` waits for
//! a person before it runs, and fails closed.
//!
//! The policy stays pure: it permits with an [`ApprovalNeed`](crate::policy::ApprovalNeed).
//! The command pipeline then asks [`obtain`], which (through [`gate::obtain`]) opens a request in the
//! [`broker::Broker`] (id, principal, exact command, program, working dir, run-as user,
//! rule, reason, deadline), records `approval_requested`, offers it on every path at once
//! and waits; the first decision wins, and it is recorded as `approval_decided` with its
//! path and decider. The paths:
//!
//! - form-mode elicitation to a client that declared it (`gate`): one boolean, the
//!   command, working dir, run-as user, rule and reason in the message;
//! - a one-time page served by hostmcp (`page`): `/approvals/<id>?t=<secret>`, offered as
//!   URL-mode elicitation where the client supports it, else in a progress notification
//!   and in the text the model reads when the call ends undecided. Deciding on the page
//!   takes an approver's hostmcp token (never the requester's own); failed submissions are
//!   budgeted per client address and per approval (`budget`);
//! - `hostmcp approvals list|approve|deny` on the host, over a unix socket in the state
//!   directory that only the server's user can open (`socket`);
//! - an optional webhook POST with approve/deny links (`webhook`);
//! - the MCP Apps confirmation view `ui://hostmcp/approval` in a client that renders apps
//!   (claude.ai), for tokens named in `[approval] app_view_tokens` (`app_view`);
//! - the timeout (`[approval] timeout_secs`, default 300), which denies.
//!
//! A client on the 2026-07-28 wire cannot be sent `elicitation/create`; one that declared
//! form elicitation is asked in band instead, by multi round-trip requests (`mrtr`): the
//! call answers `input_required` with the form and a sealed `requestState`, and its retry
//! decides the same broker entry.

pub mod app_view;
pub mod approvers;
pub mod broker;
pub mod budget;
pub mod gate;
pub mod mrtr;
pub mod page;
pub mod request_state;
pub mod settings;
pub mod socket;
pub mod webhook;

use std::sync::Arc;

use arc_swap::ArcSwap;

pub use broker::{ApprovalRequest, Broker, Decided, Decider, Verdict, Via};
pub use settings::{ApprovalSettings, FileApproval};

/// The approval state the tools, the page, the socket and the webhook share.
#[derive(Debug)]
pub struct Approvals {
    pub broker: Arc<Broker>,
    settings: ArcSwap<ApprovalSettings>,
    /// Where the page is reached when `[approval] page_url` is not set: the server's
    /// public URL or first listen address, set when the server knows it.
    default_page_base: ArcSwap<Option<String>>,
    /// The page's failed-submission budget, replaced when a reload changes its numbers.
    page_budget: ArcSwap<budget::PageBudget>,
    /// Approvals asked in band of 2026-07-28 clients, parked between their rounds.
    pub rounds: Arc<mrtr::Rounds>,
}

/// Wait for a person to approve `draft`; `Ok` only when approved. A client on the
/// 2026-07-28 wire that declared form elicitation is asked in band ([`mrtr`]: its first
/// call ends with [`gate::NotApproved::InputRequired`]); any other call waits on every
/// path at once ([`gate`]).
pub async fn obtain(
    approvals: &Approvals,
    audit: &crate::audit::AuditLog,
    trail: &crate::audit::AuditContext,
    draft: broker::Draft,
    link: Option<gate::ClientLink>,
) -> Result<Decided, gate::NotApproved> {
    if let Some(round) = link.as_ref().and_then(gate::ClientLink::round)
        && approvals.rounds.available()
        && approvals.settings().client_may_approve(&draft.principal)
    {
        return mrtr::obtain(approvals, audit, trail, draft, round).await;
    }
    gate::obtain(approvals, audit, trail, draft, link).await
}

impl Default for Approvals {
    fn default() -> Self {
        Self {
            broker: Broker::new(),
            settings: ArcSwap::from_pointee(ApprovalSettings::default()),
            default_page_base: ArcSwap::from_pointee(None),
            page_budget: ArcSwap::from_pointee(budget::PageBudget::default()),
            rounds: Arc::default(),
        }
    }
}

impl Approvals {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Apply the `[approval]` settings (at start and on reload; waiting calls keep theirs).
    pub fn configure(&self, settings: ApprovalSettings) {
        let (failures, window) = (settings.page_failures, settings.page_failure_window);
        if !self.page_budget.load().counts(failures, window) {
            self.page_budget
                .store(Arc::new(budget::PageBudget::new(failures, window)));
        }
        self.settings.store(Arc::new(settings));
    }

    /// The page's failed-submission budget in effect.
    pub fn page_budget(&self) -> Arc<budget::PageBudget> {
        self.page_budget.load_full()
    }

    pub fn settings(&self) -> Arc<ApprovalSettings> {
        self.settings.load_full()
    }

    /// Where the page is reached unless `[approval] page_url` says otherwise.
    pub fn set_default_page_base(&self, base: String) {
        self.default_page_base
            .store(Arc::new(Some(base.trim_end_matches('/').to_owned())));
    }

    /// The one-time URL of request `id` with `secret`, when the server has an address.
    pub fn page_url(&self, id: &str, secret: &str) -> Option<String> {
        let settings = self.settings();
        let fallback = self.default_page_base.load();
        let base = settings.page_url.as_deref().or((**fallback).as_deref())?;
        Some(format!("{base}{}{id}?t={secret}", page::PATH_PREFIX))
    }
}
