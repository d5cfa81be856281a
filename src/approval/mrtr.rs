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
    sync::{Arc, OnceLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use parking_lot::Mutex;
use rmcp::{
    RoleServer,
    model::{
        CallToolRequestParams, ElicitRequest, ElicitResult, ElicitationAction, InputRequest,
        InputRequests, InputRequiredResult, InputResponses, ProtocolVersion, RequestStateCodec,
        RequestStateError, SealOptions,
    },
    service::RequestContext,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::{
    Approvals,
    broker::{ApprovalRequest, Decided, Decider, Draft, Verdict, Via},
    gate::{self, NotApproved},
};
use crate::audit::{AuditContext, AuditEvent, AuditLog, AuditText};

/// The key of the one input request; the form's answer comes back under it.
pub const INPUT_KEY: &str = "approval";

/// How long after its approval's deadline a state still opens, and a decision stays parked
/// for the retry that uses it.
pub const GRACE: Duration = Duration::from_secs(60);

/// How long a retry that answered waits for the decision to be on record.
const SETTLE_WAIT: Duration = Duration::from_secs(30);

/// One `tools/call` of a client that can answer approval in band: on 2026-07-28 or later,
/// with form elicitation declared. Made by the tool dispatcher and put in the request's
/// extensions; [`super::gate::obtain`] finds it there and, when it answers
/// `input_required`, leaves the answer in [`Round::reply`] for the dispatcher.
#[derive(Debug, Clone)]
pub struct Round {
    /// SHA-256 of the tool's name and its arguments (keys sorted), hex.
    call: String,
    request_state: Option<String>,
    input_responses: Option<InputResponses>,
    reply: Arc<OnceLock<InputRequiredResult>>,
}

impl Round {
    /// The round of `params`, when its client is on 2026-07-28 or later and declared form
    /// elicitation (an elicitation capability naming neither mode means form).
    pub fn of(
        params: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Option<Self> {
        let version = context.protocol_version()?;
        if version.as_str() < ProtocolVersion::V_2026_07_28.as_str() {
            return None;
        }
        let capabilities = context.client_capabilities()?;
        let elicitation = capabilities.elicitation.as_ref()?;
        let form = elicitation.form.is_some() || elicitation.url.is_none();
        form.then(|| Self {
            call: call_digest(&params.name, params.arguments.as_ref()),
            request_state: params.request_state.clone(),
            input_responses: params.input_responses.clone(),
            reply: Arc::default(),
        })
    }

    /// The `input_required` answer the approval gate chose for this call, if it did.
    pub fn reply(&self) -> Option<InputRequiredResult> {
        self.reply.get().cloned()
    }
}

/// SHA-256 of `tool` and `arguments` as canonical JSON (object keys sorted), hex.
pub fn call_digest(tool: &str, arguments: Option<&rmcp::model::JsonObject>) -> String {
    fn canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
        match value {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<_> = map.keys().collect();
                keys.sort();
                out.push(b'{');
                for (index, key) in keys.into_iter().enumerate() {
                    if index > 0 {
                        out.push(b',');
                    }
                    canonical(&serde_json::Value::String(key.clone()), out);
                    out.push(b':');
                    canonical(&map[key.as_str()], out);
                }
                out.push(b'}');
            }
            serde_json::Value::Array(items) => {
                out.push(b'[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(b',');
                    }
                    canonical(item, out);
                }
                out.push(b']');
            }
            scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
        }
    }
    let mut bytes = Vec::new();
    canonical(&serde_json::Value::String(tool.to_owned()), &mut bytes);
    bytes.push(b'\n');
    let arguments = serde_json::Value::Object(arguments.cloned().unwrap_or_default());
    canonical(&arguments, &mut bytes);
    hex::encode(Sha256::digest(&bytes))
}

/// Why a retried call's `requestState` does not let it go on. Its text is what the model
/// reads (after `refused: `) and what `approval_refused` records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateRefused {
    #[error(
        "the requestState is not one this server issued (altered, from another server, or \
         from before a restart)"
    )]
    Unreadable,
    #[error("the requestState has expired (its approval's deadline has passed)")]
    Expired,
    #[error("the requestState of approval {id} was issued to another token")]
    OtherToken { id: String },
    #[error(
        "the requestState of approval {id} was issued for another call (a different tool or \
         different arguments)"
    )]
    OtherCall { id: String },
    #[error("approval {id} was asked for another command than this call now resolves to")]
    OtherCommand { id: String },
    #[error(
        "no pending approval {id} for this requestState (its decision was used already, or it expired)"
    )]
    Spent { id: String },
}

impl StateRefused {
    /// The approval the state names, when it could be read.
    fn approval_id(&self) -> &str {
        match self {
            Self::Unreadable | Self::Expired => "(unreadable requestState)",
            Self::OtherToken { id }
            | Self::OtherCall { id }
            | Self::OtherCommand { id }
            | Self::Spent { id } => id,
        }
    }
}

/// What a `requestState` says, signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub approval_id: String,
    /// The token name of the caller.
    pub principal: String,
    /// [`call_digest`] of the call.
    pub call: String,
    /// The approval's deadline, Unix milliseconds.
    pub deadline_ms: u64,
    /// When this state was issued, Unix milliseconds (each round's state is its own).
    pub issued_ms: u64,
}

/// Seals and opens `requestState` with a key made for this process.
pub struct StateSealer {
    codec: RequestStateCodec,
}

impl std::fmt::Debug for StateSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateSealer([key redacted])")
    }
}

impl StateSealer {
    /// A sealer with 32 fresh random bytes as its key; `None` when the random source fails
    /// (the in-band path is then off and such clients get the page, as before).
    pub fn random() -> Option<Self> {
        let mut key = vec![0u8; RequestStateCodec::MIN_KEY_LENGTH];
        getrandom::fill(&mut key).ok()?;
        Self::with_key(key)
    }

    /// A sealer with `key` (at least 32 bytes; the codec keeps it, zeroized when dropped).
    pub fn with_key(key: Vec<u8>) -> Option<Self> {
        RequestStateCodec::try_new(key)
            .ok()
            .map(|codec| Self { codec })
    }

    /// Seal `sealed`; it opens until its deadline plus [`GRACE`].
    pub fn seal(&self, sealed: &Sealed) -> Option<String> {
        let now = unix_ms(SystemTime::now());
        let ttl = Duration::from_millis(sealed.deadline_ms.saturating_sub(now)) + GRACE;
        self.codec
            .seal_json_with(sealed, &SealOptions::new().ttl(ttl))
            .ok()
    }

    /// Open `state` for a call of `principal` whose digest is `call`.
    pub fn open(&self, state: &str, principal: &str, call: &str) -> Result<Sealed, StateRefused> {
        let sealed: Sealed = self.codec.open_json(state).map_err(|error| match error {
            RequestStateError::Expired => StateRefused::Expired,
            _ => StateRefused::Unreadable,
        })?;
        let id = sealed.approval_id.clone();
        if !constant_time_eq(&sealed.principal, principal) {
            return Err(StateRefused::OtherToken { id });
        }
        if !constant_time_eq(&sealed.call, call) {
            return Err(StateRefused::OtherCall { id });
        }
        if unix_ms(SystemTime::now()) > sealed.deadline_ms.saturating_add(GRACE.as_millis() as u64)
        {
            return Err(StateRefused::Expired);
        }
        Ok(sealed)
    }
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

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
