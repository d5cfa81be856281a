//! In-band approval for clients on the 2026-07-28 wire, which cannot be sent
//! `elicitation/create`: multi round-trip requests (MRTR, SEP-2322).
//!
//! A `tools/call` whose command needs approval, from a client on 2026-07-28 or later that
//! declared form elicitation (a [`Round`]), is answered in two calls:
//!
//! 1. **First round** (no `requestState`): the approval is opened in the broker exactly as
//!    for any other call ([`super::gate::open`]: `approval_requested` on record, the timeout
//!    running, the page, the CLI and the webhook offered), its ticket is handed to a task
//!    that waits for the decision (and records it, `approval_decided`, whoever makes it),
//!    and the call answers `input_required` with one form elicitation (the same message and
//!    boolean schema as `elicitation/create`) and a sealed `requestState`.
//! 2. **Retry** (the same tool and arguments, `requestState` echoed, the form's answer in
//!    `inputResponses`): the state is opened ([`StateSealer::open`]: HMAC-SHA256 by rmcp's
//!    `RequestStateCodec`, with a per-process random key), must name the caller's token and
//!    the digest of this very tool call, and its approval must still be parked here for the
//!    same command. The answer decides the approval through the broker (`via: elicitation`,
//!    `decider: client-elicitation:<token>`), so the first decision wins: a page, CLI or
//!    timeout decision made between the rounds stands. A retry without answers while the
//!    approval is pending is asked again (same approval, fresh state). A decision is used
//!    once: the retry that takes it is the only one that runs the command.
//!
//! The server keeps only the parked approval between the rounds (what the broker keeps for
//! any waiting call), until its deadline plus [`GRACE`]. Everything about the call is in the
//! state, which is signed, not encrypted (it holds the approval id, the token name, the
//! call's digest and the deadline: nothing secret). A restart makes a new key, so it
//! invalidates every state in flight, together with the approvals they name (which die
//! with the process anyway).

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, SystemTime},
};

use parking_lot::Mutex;
use rmcp::model::{
    ElicitRequest, ElicitResult, ElicitationAction, InputRequest, InputRequests,
    InputRequiredResult, InputResponses,
};
use tokio::sync::watch;

use super::{
    Approvals,
    broker::{ApprovalRequest, Decided, Decider, Draft, Verdict, Via},
    gate::{self, NotApproved},
};
use crate::audit::{AuditContext, AuditEvent, AuditLog, AuditText};

use super::request_state::unix_ms;
pub use super::request_state::{
    GRACE, INPUT_KEY, Round, Sealed, StateRefused, StateSealer, call_digest,
};

/// How long a retry that answered waits for the decision to be on record.
const SETTLE_WAIT: Duration = Duration::from_secs(30);

/// An approval opened by a first round, waiting for its retry.
struct Parked {
    request: Arc<ApprovalRequest>,
    url: Option<String>,
    timeout: Duration,
    /// `Some` once the decision is made and on record.
    settled: watch::Receiver<Option<Decided>>,
}

/// The approvals opened by first rounds, and the sealer of their states.
pub struct Rounds {
    sealer: Option<StateSealer>,
    parked: Mutex<HashMap<String, Parked>>,
}

impl Default for Rounds {
    fn default() -> Self {
        Self {
            sealer: StateSealer::random(),
            parked: Mutex::default(),
        }
    }
}

impl std::fmt::Debug for Rounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rounds")
            .field("sealer", &self.sealer)
            .field("parked", &self.parked.lock().len())
            .finish()
    }
}

impl Rounds {
    /// Whether the in-band path works (its key could be made).
    pub fn available(&self) -> bool {
        self.sealer.is_some()
    }

    /// The approvals parked for a retry (pending or decided, not yet used).
    pub fn parked(&self) -> usize {
        self.parked.lock().len()
    }
}

/// Approval for `draft` through `round`: a first round opens the approval and answers
/// `input_required` ([`NotApproved::InputRequired`], the answer in [`Round::reply`]); a
/// retry decides or reads it. `Ok` only when approved, once.
pub async fn obtain(
    approvals: &Approvals,
    audit: &AuditLog,
    trail: &AuditContext,
    draft: Draft,
    round: &Round,
) -> Result<Decided, NotApproved> {
    let Some(state) = round.request_state.as_deref() else {
        return first_round(approvals, audit, trail, draft, round).await;
    };
    match retry(approvals, state, &draft, round).await {
        Err(NotApproved::State(refused)) => {
            tracing::warn!(principal = %draft.principal, %refused, "approval requestState refused");
            let event = AuditEvent::ApprovalRefused {
                approval_id: refused.approval_id().to_owned(),
                reason: AuditText::from(format!("mrtr: {refused}")),
            };
            audit.record_or_log(trail.clone(), event).await;
            Err(NotApproved::State(refused))
        }
        other => other,
    }
}

async fn first_round(
    approvals: &Approvals,
    audit: &AuditLog,
    trail: &AuditContext,
    draft: Draft,
    round: &Round,
) -> Result<Decided, NotApproved> {
    let gate::Opened {
        mut ticket,
        url,
        timeout,
    } = gate::open(approvals, audit, trail, draft).await?;
    let request = ticket.request.clone();
    let (settle, settled) = watch::channel(None);
    let keep_until = tokio::time::Instant::now()
        + request
            .deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default()
        + GRACE;
    approvals.rounds.parked.lock().insert(
        request.id.clone(),
        Parked {
            request: request.clone(),
            url,
            timeout,
            settled,
        },
    );
    let (rounds, audit, trail) = (approvals.rounds.clone(), audit.clone(), trail.clone());
    tokio::spawn(async move {
        let decided = ticket.decision().await;
        gate::record_decision(&audit, &trail, &ticket.request, &decided).await;
        let _ = settle.send(Some(decided));
        tokio::time::sleep_until(keep_until).await;
        rounds.parked.lock().remove(&ticket.request.id);
    });
    ask(approvals, &request, round)
}

/// Answer `input_required` for `request`: the form, and a fresh state.
fn ask(
    approvals: &Approvals,
    request: &ApprovalRequest,
    round: &Round,
) -> Result<Decided, NotApproved> {
    let sealed = Sealed {
        approval_id: request.id.clone(),
        principal: request.principal.clone(),
        call: round.call.clone(),
        deadline_ms: unix_ms(request.deadline),
        issued_ms: unix_ms(SystemTime::now()),
    };
    let state = (approvals.rounds.sealer.as_ref())
        .and_then(|sealer| sealer.seal(&sealed))
        .ok_or(NotApproved::NoForm)?;
    let params = gate::form(request).ok_or(NotApproved::NoForm)?;
    let requests: InputRequests = [(
        INPUT_KEY.to_owned(),
        InputRequest::Elicitation(ElicitRequest::new(params)),
    )]
    .into();
    let _ = round
        .reply
        .set(InputRequiredResult::new(Some(requests), Some(state)));
    tracing::info!(principal = %request.principal, approval_id = %request.id, "approval asked in band (input_required)");
    Err(NotApproved::InputRequired {
        id: request.id.clone(),
    })
}

async fn retry(
    approvals: &Approvals,
    state: &str,
    draft: &Draft,
    round: &Round,
) -> Result<Decided, NotApproved> {
    let rounds = &approvals.rounds;
    let sealer = rounds.sealer.as_ref().ok_or(StateRefused::Unreadable)?;
    let sealed = sealer.open(state, &draft.principal, &round.call)?;
    let id = sealed.approval_id;
    let parked = (rounds.parked.lock().get(&id))
        .map(|parked| {
            let Parked {
                request,
                url,
                timeout,
                settled,
            } = parked;
            (request.clone(), url.clone(), *timeout, settled.clone())
        })
        .ok_or_else(|| StateRefused::Spent { id: id.clone() })?;
    let (request, url, timeout, mut settled) = parked;
    if !asks_for(&request, draft) {
        return Err(StateRefused::OtherCommand { id }.into());
    }
    let current = settled.borrow().clone();
    let decided = match current {
        Some(decided) => decided,
        None => {
            match &round.input_responses {
                None if approvals.broker.is_pending(&id) => return ask(approvals, &request, round),
                // Decided a moment ago, not yet on record: wait for it below.
                None => {}
                Some(responses) => {
                    let answer = Decided {
                        verdict: verdict_of(responses),
                        decider: Decider {
                            via: Via::Elicitation,
                            who: format!("client-elicitation:{}", request.principal),
                        },
                    };
                    // Another path may have won meanwhile: whichever decision took the
                    // approval is the one the waiting task records and settles.
                    let _ = approvals.broker.decide(&id, answer);
                }
            }
            match tokio::time::timeout(SETTLE_WAIT, settled.wait_for(Option::is_some)).await {
                Ok(Ok(decided)) => decided
                    .clone()
                    .ok_or(StateRefused::Spent { id: id.clone() })?,
                _ => return Err(StateRefused::Spent { id }.into()),
            }
        }
    };
    // Used once: the retry that takes the decision is the only one it counts for.
    if rounds.parked.lock().remove(&id).is_none() {
        return Err(StateRefused::Spent { id }.into());
    }
    gate::outcome(&request, decided, timeout, url)
}

/// Whether `request` asked for exactly what `draft` would run, for the same token.
fn asks_for(request: &ApprovalRequest, draft: &Draft) -> bool {
    request.principal == draft.principal
        && request.command == draft.command
        && request.program == draft.program
        && request.working_dir == draft.working_dir
        && request.run_as == draft.run_as
        && request.rule == draft.rule
        && request.reason == draft.reason
        && request.stdin == draft.stdin
}

/// The verdict of the form's answer: approved only on accept with `approve: true`.
fn verdict_of(responses: &InputResponses) -> Verdict {
    let answer = responses
        .get(INPUT_KEY)
        .and_then(|value| serde_json::from_value::<ElicitResult>(value.clone()).ok());
    let approved = answer.is_some_and(|answer| {
        answer.action == ElicitationAction::Accept
            && answer
                .content
                .as_ref()
                .and_then(|content| content.get("approve"))
                .and_then(serde_json::Value::as_bool)
                == Some(true)
    });
    if approved {
        Verdict::Approved
    } else {
        Verdict::Denied
    }
}

#[cfg(test)]
mod tests;
