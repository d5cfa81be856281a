//! The call state of in-band approval ([`super::mrtr`]) that travels with the client
//! between the rounds: which calls may be asked in band (a [`Round`]: 2026-07-28 or later,
//! form elicitation declared), the digest that binds a state to one tool call, and the
//! seal ([`StateSealer`]: HMAC-SHA256 by rmcp's `RequestStateCodec`, a per-process random
//! key) with the reasons a retried state is refused ([`StateRefused`]). Nothing here waits
//! or decides: the approval gate and `mrtr` do.

use std::{
    sync::{Arc, OnceLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rmcp::{
    RoleServer,
    model::{
        CallToolRequestParams, InputRequiredResult, InputResponses, ProtocolVersion,
        RequestStateCodec, RequestStateError, SealOptions,
    },
    service::RequestContext,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The key of the one input request; the form's answer comes back under it.
pub const INPUT_KEY: &str = "approval";

/// How long after its approval's deadline a state still opens, and a decision stays parked
/// for the retry that uses it.
pub const GRACE: Duration = Duration::from_secs(60);

/// One `tools/call` of a client that can answer approval in band: on 2026-07-28 or later,
/// with form elicitation declared. Made by the tool dispatcher and put in the request's
/// extensions; [`super::obtain`] finds it there and, when it answers
/// `input_required`, leaves the answer in [`Round::reply`] for the dispatcher.
#[derive(Debug, Clone)]
pub struct Round {
    /// SHA-256 of the tool's name and its arguments (keys sorted), hex.
    pub(super) call: String,
    pub(super) request_state: Option<String>,
    pub(super) input_responses: Option<InputResponses>,
    pub(super) reply: Arc<OnceLock<InputRequiredResult>>,
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
    pub(super) fn approval_id(&self) -> &str {
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

pub(super) fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}
