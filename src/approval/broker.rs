//! The approval broker: the table of pending approval requests and the one place a
//! request is decided. A request is opened by a call that waits ([`Broker::open`] gives
//! it a [`Ticket`]), and decided exactly once: the first of approve, deny (any path:
//! elicitation, page, CLI, webhook link) or the timeout removes it from the table under
//! one lock and hands the [`Decided`] to the ticket; every later attempt finds nothing
//! pending. A ticket dropped before its decision (the call cancelled, the server
//! stopping) takes its request out of the table with it: nothing outlives the call that
//! waits, so nothing can be approved that would not run. Fail closed throughout: no
//! answer is a denial.

use std::{
    collections::HashMap,
    sync::{Arc, Weak},
    time::{Duration, SystemTime},
};

use parking_lot::Mutex;
use subtle::ConstantTimeEq;
use tokio::{sync::oneshot, time::Instant};

use crate::command::CommandLine;

mod stdin;
pub use stdin::StdinShown;

/// What a person is asked to approve: exactly what would run, for whom, by which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    /// `ap-` and 16 hex digits; not a secret (the CLI lists it).
    pub id: String,
    /// The token name of the caller whose command waits.
    pub principal: String,
    /// The command as the caller gave it.
    pub command: CommandLine,
    /// The canonical program that runs.
    pub program: String,
    /// The canonical working directory; `None`: the server's.
    pub working_dir: Option<String>,
    /// The Unix user it would run as.
    pub run_as: Option<String>,
    /// The allow rule that asks for approval, e.g. `allow[2]`.
    pub rule: String,
    /// The rule's `approve_reason`.
    pub reason: Option<String>,
    /// The tool whose call waits (`run_command`, `job_start`, `terminal_open`), when known.
    pub tool: Option<String>,
    /// What the command is given on stdin; `None`: nothing (it is closed).
    pub stdin: Option<StdinShown>,
    pub created: SystemTime,
    /// When the timeout denies it.
    pub deadline: SystemTime,
}

/// What was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approved,
    Denied,
    /// Nobody decided before the deadline: denied.
    TimedOut,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::TimedOut => "timed_out",
        }
    }
}

/// The path a decision came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Form-mode elicitation answered by the caller's client.
    Elicitation,
    /// The one-time page.
    Page,
    /// The webhook's link (the same page, reached with the webhook's secret).
    Webhook,
    /// `hostmcp approvals` on the host.
    Cli,
    /// The MCP Apps confirmation view (`crate::approval::app_view`).
    App,
    Timeout,
    /// The waiting call ended (cancelled, or its client gone) before a decision.
    Cancelled,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Elicitation => "elicitation",
            Self::Page => "page",
            Self::Webhook => "webhook",
            Self::Cli => "cli",
            Self::App => "mcp-app",
            Self::Timeout => "timeout",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Who decided, through which path: a token name (page, webhook link), a Unix user (CLI),
/// `client-elicitation:<principal>` (the form), `timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decider {
    pub via: Via,
    pub who: String,
}

/// A decision, once made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub verdict: Verdict,
    pub decider: Decider,
}

/// Which one-time secret of a request a page visit carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// The URL given to the caller's client (URL elicitation, progress, result text).
    Page,
    /// The URL in the webhook's POST.
    Webhook,
}

/// The one-time secrets of a request, shown only to the ticket's holder.
#[derive(Clone)]
pub struct Secrets {
    pub page: String,
    pub webhook: String,
    /// The MCP Apps view's, checked only by [`Broker::visit_view`] (never by the page).
    pub view: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets([redacted])")
    }
}

/// Why a request could not be opened or decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    #[error(
        "{principal} already has {limit} commands waiting for approval, the most allowed; \
         wait for a decision on one of them"
    )]
    TooManyPending { principal: String, limit: usize },
    /// Unknown, decided already, timed out, or the secret does not match: one answer for
    /// all, so a guess learns nothing.
    #[error("no pending approval {0:?} (it may have been decided already or timed out)")]
    NotPending(String),
    #[error("the server's random source failed: {0}")]
    NoRandomness(String),
}

struct Entry {
    request: Arc<ApprovalRequest>,
    page_secret: String,
    webhook_secret: String,
    view_secret: String,
    /// The page form's current single-use nonce (CSRF), set when the page is shown.
    form_nonce: Option<String>,
    decide: oneshot::Sender<Decided>,
}

#[derive(Default)]
struct Table {
    pending: HashMap<String, Entry>,
}

/// The pending approval requests. Cheap to share (`Arc`).
#[derive(Default)]
pub struct Broker {
    table: Mutex<Table>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("pending", &self.table.lock().pending.len())
            .finish()
    }
}

/// What [`Broker::open`] needs besides the clock.
#[derive(Debug, Clone)]
pub struct Draft {
    pub principal: String,
    pub command: CommandLine,
    pub program: String,
    pub working_dir: Option<String>,
    pub run_as: Option<String>,
    pub rule: String,
    pub reason: Option<String>,
    pub tool: Option<String>,
    /// What the command is given on stdin ([`StdinShown::of`]).
    pub stdin: Option<StdinShown>,
}

impl Broker {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Open a request for `draft`, denied by the timeout after `timeout`; refused when its
    /// principal has `limit` requests pending already.
    pub fn open(
        self: &Arc<Self>,
        draft: Draft,
        timeout: Duration,
        limit: usize,
    ) -> Result<Ticket, BrokerError> {
        let id = format!("ap-{}", random_hex(8)?);
        let secrets = Secrets {
            page: random_hex(32)?,
            webhook: random_hex(32)?,
            view: random_hex(32)?,
        };
        let created = SystemTime::now();
        let request = Arc::new(ApprovalRequest {
            id: id.clone(),
            principal: draft.principal,
            command: draft.command,
            program: draft.program,
            working_dir: draft.working_dir,
            run_as: draft.run_as,
            rule: draft.rule,
            reason: draft.reason,
            tool: draft.tool,
            stdin: draft.stdin,
            created,
            deadline: created + timeout,
        });
        let (sender, receiver) = oneshot::channel();
        {
            let mut table = self.table.lock();
            let mine = (table.pending.values())
                .filter(|entry| entry.request.principal == request.principal)
                .count();
            if mine >= limit {
                return Err(BrokerError::TooManyPending {
                    principal: request.principal.clone(),
                    limit,
                });
            }
            table.pending.insert(
                id,
                Entry {
                    request: request.clone(),
                    page_secret: secrets.page.clone(),
                    webhook_secret: secrets.webhook.clone(),
                    view_secret: secrets.view.clone(),
                    form_nonce: None,
                    decide: sender,
                },
            );
        }
        Ok(Ticket {
            request,
            secrets,
            receiver: Some(receiver),
            deadline: Instant::now() + timeout,
            broker: Arc::downgrade(self),
        })
    }

    /// Decide `id`: the first decision wins, later ones get [`BrokerError::NotPending`].
    pub fn decide(&self, id: &str, decided: Decided) -> Result<Arc<ApprovalRequest>, BrokerError> {
        let entry = self.table.lock().pending.remove(id);
        let Some(entry) = entry else {
            return Err(BrokerError::NotPending(id.to_owned()));
        };
        // The ticket may be gone (its call ended in the same instant): nothing then runs.
        let _ = entry.decide.send(decided);
        Ok(entry.request)
    }

    /// Whether `id` waits for a decision.
    pub fn is_pending(&self, id: &str) -> bool {
        self.table.lock().pending.contains_key(id)
    }

    /// The pending requests, oldest first.
    pub fn list(&self) -> Vec<Arc<ApprovalRequest>> {
        let mut all: Vec<_> = (self.table.lock().pending.values())
            .map(|entry| entry.request.clone())
            .collect();
        all.sort_by_key(|request| request.created);
        all
    }

    /// The request `id` when `secret` is one of its one-time secrets (compared in constant
    /// time), with which one.
    pub fn visit(
        &self,
        id: &str,
        secret: &str,
    ) -> Result<(Arc<ApprovalRequest>, SecretKind), BrokerError> {
        let table = self.table.lock();
        let entry = table
            .pending
            .get(id)
            .ok_or_else(|| BrokerError::NotPending(id.to_owned()))?;
        secret_kind(entry, secret)
            .map(|kind| (entry.request.clone(), kind))
            .ok_or_else(|| BrokerError::NotPending(id.to_owned()))
    }

    /// The pending requests of `principal`, oldest first, each with its view secret: what
    /// the MCP Apps view of that principal's own calls is given.
    pub fn pending_of(&self, principal: &str) -> Vec<(Arc<ApprovalRequest>, String)> {
        let mut mine: Vec<_> = (self.table.lock().pending.values())
            .filter(|entry| entry.request.principal == principal)
            .map(|entry| (entry.request.clone(), entry.view_secret.clone()))
            .collect();
        mine.sort_by_key(|(request, _)| request.created);
        mine
    }

    /// The request `id` when `secret` is its view secret (compared in constant time). The
    /// page's and the webhook's secrets do not open it, nor does the view's open the page.
    pub fn visit_view(&self, id: &str, secret: &str) -> Result<Arc<ApprovalRequest>, BrokerError> {
        let table = self.table.lock();
        table
            .pending
            .get(id)
            .filter(|entry| bool::from(entry.view_secret.as_bytes().ct_eq(secret.as_bytes())))
            .map(|entry| entry.request.clone())
            .ok_or_else(|| BrokerError::NotPending(id.to_owned()))
    }

    /// A fresh single-use form nonce for the page of `id` (replacing any earlier one), when
    /// `secret` is one of its secrets.
    pub fn new_form_nonce(&self, id: &str, secret: &str) -> Result<String, BrokerError> {
        let nonce = random_hex(16)?;
        let mut table = self.table.lock();
        let entry = table
            .pending
            .get_mut(id)
            .filter(|entry| secret_kind(entry, secret).is_some())
            .ok_or_else(|| BrokerError::NotPending(id.to_owned()))?;
        entry.form_nonce = Some(nonce.clone());
        Ok(nonce)
    }

    /// Check the page form's `secret` and `nonce` for `id`, spending the nonce: which
    /// secret it was. A wrong or missing nonce spends nothing.
    pub fn spend_form_nonce(
        &self,
        id: &str,
        secret: &str,
        nonce: &str,
    ) -> Result<SecretKind, BrokerError> {
        let mut table = self.table.lock();
        let not_pending = || BrokerError::NotPending(id.to_owned());
        let entry = table.pending.get_mut(id).ok_or_else(not_pending)?;
        let kind = secret_kind(entry, secret).ok_or_else(not_pending)?;
        let matches = entry
            .form_nonce
            .as_deref()
            .is_some_and(|expected| bool::from(expected.as_bytes().ct_eq(nonce.as_bytes())));
        if !matches || nonce.is_empty() {
            return Err(not_pending());
        }
        entry.form_nonce = None;
        Ok(kind)
    }

    /// Every pending request with its view secret, oldest first: what the MCP Apps view
    /// of an approver may be given (`super::app_view` filters it).
    pub fn pending_views(&self) -> Vec<(Arc<ApprovalRequest>, String)> {
        let mut all: Vec<_> = (self.table.lock().pending.values())
            .map(|entry| (entry.request.clone(), entry.view_secret.clone()))
            .collect();
        all.sort_by_key(|(request, _)| request.created);
        all
    }
}

fn secret_kind(entry: &Entry, secret: &str) -> Option<SecretKind> {
    let page = entry.page_secret.as_bytes().ct_eq(secret.as_bytes());
    let webhook = entry.webhook_secret.as_bytes().ct_eq(secret.as_bytes());
    if bool::from(page) {
        Some(SecretKind::Page)
    } else if bool::from(webhook) {
        Some(SecretKind::Webhook)
    } else {
        None
    }
}

/// `bytes` random bytes as hex.
fn random_hex(bytes: usize) -> Result<String, BrokerError> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|error| BrokerError::NoRandomness(error.to_string()))?;
    Ok(hex::encode(buffer))
}

/// The waiting side of one request: its decision arrives here. Dropping it before a
/// decision withdraws the request.
pub struct Ticket {
    pub request: Arc<ApprovalRequest>,
    pub secrets: Secrets,
    receiver: Option<oneshot::Receiver<Decided>>,
    deadline: Instant,
    broker: Weak<Broker>,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl Ticket {
    /// Wait for the decision; at the deadline the timeout decides (denied), unless a
    /// decision won the race to the table first, which then stands.
    pub async fn decision(&mut self) -> Decided {
        let Some(receiver) = self.receiver.as_mut() else {
            return timed_out();
        };
        let decided = tokio::select! {
            decided = &mut *receiver => decided.ok(),
            () = tokio::time::sleep_until(self.deadline) => None,
        };
        let decided = match decided {
            Some(decided) => decided,
            None => {
                let closed = match self.broker.upgrade() {
                    Some(broker) => broker.decide(&self.request.id, timed_out()).is_ok(),
                    None => true,
                };
                // Lost the race: the decision that took the entry is in the channel.
                let raced = if closed {
                    None
                } else {
                    receiver.try_recv().ok()
                };
                raced.unwrap_or_else(timed_out)
            }
        };
        self.receiver = None;
        decided
    }

    /// Withdraw the request (the call ends): decided as denied by `cancelled`, unless a
    /// decision came first, which is returned instead.
    pub fn withdraw(&mut self) -> Decided {
        let cancelled = Decided {
            verdict: Verdict::Denied,
            decider: Decider {
                via: Via::Cancelled,
                who: "the call ended".to_owned(),
            },
        };
        let Some(mut receiver) = self.receiver.take() else {
            return cancelled;
        };
        if let Some(broker) = self.broker.upgrade()
            && broker.decide(&self.request.id, cancelled.clone()).is_ok()
        {
            return cancelled;
        }
        receiver.try_recv().unwrap_or(cancelled)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.receiver.is_some()
            && let Some(broker) = self.broker.upgrade()
        {
            broker.table.lock().pending.remove(&self.request.id);
        }
    }
}

fn timed_out() -> Decided {
    Decided {
        verdict: Verdict::TimedOut,
        decider: Decider {
            via: Via::Timeout,
            who: "timeout".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests;
