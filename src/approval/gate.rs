//! Waiting for a person: [`obtain`] opens a request in the broker, puts it on record,
//! offers it on every path at once (the caller's client by form or URL elicitation, a
//! progress notification carrying the page URL, the webhook) and waits for the first
//! decision, the timeout, or the end of the call. The decision is recorded with its path
//! and decider; anything but an approval is a [`NotApproved`]. The page and the CLI decide
//! through the broker from elsewhere.

use std::time::Duration;

use rmcp::{
    RoleServer,
    model::{
        ElicitRequestParams, ElicitationAction, ElicitationSchema, ProgressNotification,
        ProgressNotificationParam, ProgressToken, ServerNotification,
    },
    service::{ElicitationMode, Peer, RequestContext},
};
use tokio_util::sync::CancellationToken;

use super::{
    Approvals,
    broker::{ApprovalRequest, BrokerError, Decided, Decider, Draft, Ticket, Verdict, Via},
};
use crate::{
    audit::{
        AuditContext, AuditEvent, AuditLog, AuditStdin, AuditText, CommandLine as AuditedLine,
    },
    handler_link::RequestNotifier,
};

/// How a waiting call reaches its client: the peer (elicitation), the request's own
/// notification stream where the transport has one, the progress token, the call's end.
#[derive(Clone)]
pub struct ClientLink {
    peer: Peer<RoleServer>,
    notifier: Option<RequestNotifier>,
    progress: Option<ProgressToken>,
    cancel: CancellationToken,
    /// The call's MRTR round, when its client can be asked in band (2026-07-28 wire).
    round: Option<super::request_state::Round>,
}

impl ClientLink {
    pub fn of(context: &RequestContext<RoleServer>) -> Self {
        Self {
            peer: context.peer.clone(),
            notifier: context.extensions.get::<RequestNotifier>().cloned(),
            progress: context.meta.get_progress_token(),
            cancel: context.ct.clone(),
            round: context
                .extensions
                .get::<super::request_state::Round>()
                .cloned(),
        }
    }

    /// The call's MRTR round, when its client can be asked in band.
    pub fn round(&self) -> Option<&super::request_state::Round> {
        self.round.as_ref()
    }

    async fn progress(&self, message: String) {
        let Some(token) = self.progress.clone() else {
            return;
        };
        let param = ProgressNotificationParam::new(token, 0.0).with_message(message);
        let _ = match &self.notifier {
            Some(notifier) => notifier
                .notify(ServerNotification::ProgressNotification(
                    ProgressNotification::new(param),
                ))
                .map_err(drop),
            None => self.peer.notify_progress(param).await.map_err(drop),
        };
    }
}

/// Why a command that needed approval does not run. Its text is what the model reads.
#[derive(Debug, thiserror::Error)]
pub enum NotApproved {
    #[error("refused: approval {id} was denied by {decider} (via {via}); the command did not run")]
    Denied {
        id: String,
        decider: String,
        via: &'static str,
    },
    #[error(
        "refused: nobody approved {id} within {secs} s, so it was denied and did not run{}",
        url.as_ref().map_or_else(String::new, |url| format!(" (it was offered at {url}, now expired)"))
    )]
    TimedOut {
        id: String,
        secs: u64,
        url: Option<String>,
    },
    #[error("refused: the call ended before approval {id} was decided; the command did not run")]
    Cancelled { id: String },
    #[error("refused: {0}")]
    Broker(#[from] BrokerError),
    #[error(
        "refused: the approval request could not be recorded; commands never run unaudited, \
         so the server's operator must fix the audit log"
    )]
    Unaudited,
    /// The client is asked in band: the call answers `input_required` (never shown as text).
    #[error("approval {id} is asked of the client (input_required); the command has not run")]
    InputRequired { id: String },
    /// A retried call's `requestState` does not let it go on.
    #[error("refused: {0}; the command did not run")]
    State(#[from] super::request_state::StateRefused),
    #[error("refused: the approval form could not be built; the command did not run")]
    NoForm,
}

/// Wait for a person to approve `draft`, offered on every path; `Ok` only when approved.
/// (A call that can be asked in band is sent to `mrtr` instead, by [`super::obtain`].)
pub async fn obtain(
    approvals: &Approvals,
    audit: &AuditLog,
    trail: &AuditContext,
    draft: Draft,
    link: Option<ClientLink>,
) -> Result<Decided, NotApproved> {
    let Opened {
        mut ticket,
        url,
        timeout,
    } = open(approvals, audit, trail, draft).await?;
    let request = ticket.request.clone();
    // `[approval] elicitation_tokens`: may this token's own client approve by form?
    let form = approvals.settings().client_may_approve(&request.principal);
    let asking = link.clone().map(|link| {
        let (approvals, request, url) = (approvals.broker.clone(), request.clone(), url.clone());
        tokio::spawn(async move {
            ask_client(&link, &approvals, &request, url, timeout, form).await;
        })
    });
    let decided = wait(&mut ticket, link.as_ref()).await;
    if let Some(asking) = asking {
        asking.abort();
    }
    record_decision(audit, trail, &request, &decided).await;
    outcome(&request, decided, timeout, url)
}

/// A request opened, on record and offered to the webhook: its ticket, the page URL
/// given to the caller's client, and the timeout it was opened with.
pub(super) struct Opened {
    pub ticket: Ticket,
    pub url: Option<String>,
    pub timeout: Duration,
}

/// Open a request for `draft` in the broker, record `approval_requested`, send the webhook.
pub(super) async fn open(
    approvals: &Approvals,
    audit: &AuditLog,
    trail: &AuditContext,
    draft: Draft,
) -> Result<Opened, NotApproved> {
    let settings = approvals.settings();
    let timeout = settings.timeout;
    let ticket =
        approvals
            .broker
            .open(draft, settings.timeout, settings.max_pending_per_principal)?;
    let request = ticket.request.clone();
    let requested = AuditEvent::ApprovalRequested {
        approval_id: request.id.clone(),
        command: AuditedLine::of(&request.command),
        program: AuditText::from(request.program.clone()),
        working_dir: request.working_dir.clone().map(AuditText::from),
        run_as: request.run_as.clone(),
        rule: request.rule.clone(),
        reason: request.reason.clone().map(AuditText::from),
        timeout_secs: timeout.as_secs(),
        stdin: request.stdin.as_ref().map(|stdin| AuditStdin {
            bytes: stdin.bytes,
            sha256: stdin.sha256.clone(),
        }),
    };
    if audit.record(trail.clone(), requested).await.is_err() {
        return Err(NotApproved::Unaudited);
    }
    tracing::info!(principal = %request.principal, approval_id = %request.id, "command waits for approval");
    let url = approvals.page_url(&request.id, &ticket.secrets.page);
    if let Some(webhook) = super::webhook::Webhook::of(&settings) {
        let links = approvals.page_url(&request.id, &ticket.secrets.webhook);
        tokio::spawn(webhook.send(request.clone(), links));
    }
    Ok(Opened {
        ticket,
        url,
        timeout,
    })
}

/// Put `decided` on record as `approval_decided`.
pub(super) async fn record_decision(
    audit: &AuditLog,
    trail: &AuditContext,
    request: &ApprovalRequest,
    decided: &Decided,
) {
    let decided_event = AuditEvent::ApprovalDecided {
        approval_id: request.id.clone(),
        decision: decided.verdict.as_str().to_owned(),
        via: decided.decider.via.as_str().to_owned(),
        decider: AuditText::from(decided.decider.who.clone()),
    };
    audit.record_or_log(trail.clone(), decided_event).await;
    tracing::info!(approval_id = %request.id, decision = decided.verdict.as_str(), via = decided.decider.via.as_str(), decider = %decided.decider.who, "approval decided");
}

/// `Ok` for an approval, else the refusal the model reads.
pub(super) fn outcome(
    request: &ApprovalRequest,
    decided: Decided,
    timeout: Duration,
    url: Option<String>,
) -> Result<Decided, NotApproved> {
    match (decided.verdict, decided.decider.via) {
        (Verdict::Approved, _) => Ok(decided),
        (_, Via::Cancelled) => Err(NotApproved::Cancelled {
            id: request.id.clone(),
        }),
        (Verdict::TimedOut, _) => Err(NotApproved::TimedOut {
            id: request.id.clone(),
            secs: timeout.as_secs(),
            url,
        }),
        (Verdict::Denied, via) => Err(NotApproved::Denied {
            id: request.id.clone(),
            decider: decided.decider.who,
            via: via.as_str(),
        }),
    }
}

/// The decision, or the call's end (which withdraws the request).
async fn wait(ticket: &mut Ticket, link: Option<&ClientLink>) -> Decided {
    let ended = async {
        match link {
            Some(link) => link.cancel.cancelled().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        decided = ticket.decision() => decided,
        () = ended => ticket.withdraw(),
    }
}

/// What the form and the notifications say of `request`.
pub fn describe(request: &ApprovalRequest) -> String {
    let mut text = format!(
        "Approve this command on the host?\n\ncommand: {}\nprogram: {}\nworking dir: {}\nruns as: {}\nasked by token: {}\nrule: {}",
        request.command.describe(),
        request.program,
        request.working_dir.as_deref().unwrap_or("(the server's)"),
        request.run_as.as_deref().unwrap_or("(the server's user)"),
        request.principal,
        request.rule,
    );
    if let Some(reason) = &request.reason {
        text.push_str(&format!("\nreason: {reason}"));
    }
    match &request.stdin {
        Some(stdin) => text.push_str(&format!(
            "\nstdin: {} bytes, sha256 {}:\n{}",
            stdin.bytes, stdin.sha256, stdin.preview
        )),
        None => text.push_str("\nstdin: none"),
    }
    text.push_str(&format!("\napproval id: {}", request.id));
    text
}

/// The form elicitation for `request`: its description and one required boolean `approve`.
pub fn form(request: &ApprovalRequest) -> Option<ElicitRequestParams> {
    let schema = ElicitationSchema::builder()
        .required_bool_with("approve", |field| {
            field
                .title("Approve")
                .description("true runs the command; false refuses it")
        })
        .build()
        .ok()?;
    Some(ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: describe(request),
        requested_schema: schema,
    })
}

/// Offer `request` to the caller's client: form elicitation if it declared form mode, else
/// URL elicitation if it declared URL mode, else a progress notification with the URL.
/// Ask the caller's client: by form where it declared form elicitation and `form` allows,
/// else by URL (the page, where an approver's token decides) where it declared that.
async fn ask_client(
    link: &ClientLink,
    broker: &std::sync::Arc<super::Broker>,
    request: &ApprovalRequest,
    url: Option<String>,
    timeout: Duration,
    form_allowed: bool,
) {
    let modes = link.peer.supported_elicitation_modes();
    let decide = |verdict: Verdict, who: String, via: Via| {
        let _ = broker.decide(
            &request.id,
            Decided {
                verdict,
                decider: Decider { via, who },
            },
        );
    };
    if form_allowed && modes.contains(&ElicitationMode::Form) {
        let Some(params) = form(request) else {
            return;
        };
        let who = format!("client-elicitation:{}", request.principal);
        match link
            .peer
            .create_elicitation_with_timeout(params, Some(timeout))
            .await
        {
            Ok(result) => {
                let approved = result.action == ElicitationAction::Accept
                    && result
                        .content
                        .as_ref()
                        .and_then(|content| content.get("approve"))
                        .and_then(serde_json::Value::as_bool)
                        == Some(true);
                let verdict = if approved {
                    Verdict::Approved
                } else {
                    Verdict::Denied
                };
                decide(verdict, who, Via::Elicitation);
            }
            Err(error) => {
                tracing::info!(approval_id = %request.id, %error, "form elicitation failed; the other approval paths stay open");
            }
        }
        return;
    }
    let Some(url) = url else {
        return;
    };
    if modes.contains(&ElicitationMode::Url) {
        let params = ElicitRequestParams::UrlElicitationParams {
            meta: None,
            message: describe(request),
            url: url.clone(),
            elicitation_id: request.id.clone(),
        };
        if let Ok(result) = link
            .peer
            .create_elicitation_with_timeout(params, Some(timeout))
            .await
            && result.action != ElicitationAction::Accept
        {
            // Declined or dismissed: the person saw it and said no.
            decide(
                Verdict::Denied,
                format!("client-elicitation:{}", request.principal),
                Via::Elicitation,
            );
        }
        return;
    }
    link.progress(format!(
        "waiting for approval {}: a person must approve it at {url} (or `hostmcp approvals approve {}` on the host)",
        request.id, request.id
    ))
    .await;
}
