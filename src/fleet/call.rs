//! One fleet request on a host, from its bytes to its replies, without NATS: check it
//! ([`protocol::open`], then trust, replay and the principal's mapping), run the tool
//! through the same [`HostTools`] handler every local transport uses (role gate, rate
//! limit, policy, run-as, limits, audit, result budget) with a [`Caller::fleet`], forward
//! its progress, and end it on a signed cancel or at its deadline. [`super::host`] carries
//! the replies to NATS.

use std::{collections::HashMap, sync::Arc};

use futures::StreamExt;
use parking_lot::Mutex;
use rmcp::{
    RoleServer,
    model::{
        CallToolRequest, CallToolRequestParams, ClientRequest, GetExtensions, GetMeta,
        NumberOrString, ProgressToken, RequestId, ServerJsonRpcMessage, ServerNotification,
    },
    service::Peer,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    protocol::{
        self, CallRequest, CancelRequest, ErrorKind, FinalReply, HostName, Outcome, Progress,
        PublicKey, Refusal, Signature,
    },
    trust::{FleetTrust, ReplayCache},
};
use crate::{
    audit::{AuditContext, AuditEvent, AuditLog},
    auth::fleet::fleet_principal,
    caller::Caller,
    tools::HostTools,
    transport::direct_call::{self, DirectRequest},
};

/// What one reply stream carries, before it is framed for NATS.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Progress(Progress),
    Final(FinalReply),
}

/// Everything the calls of one host share.
pub struct Calls {
    pub name: HostName,
    pub trust: FleetTrust,
    pub replay: ReplayCache,
    pub handler: HostTools,
    /// A peer carrying no client info: tools send nothing through it.
    pub peer: Peer<RoleServer>,
    pub audit: AuditLog,
    running: Mutex<HashMap<String, Running>>,
}

/// A call in flight: who may cancel it, and how.
struct Running {
    gateway: PublicKey,
    cancel: CancellationToken,
    ended_by: Arc<Mutex<Option<ErrorKind>>>,
}

impl Calls {
    pub fn new(name: HostName, trust: FleetTrust, handler: HostTools, audit: AuditLog) -> Self {
        let peer = direct_call::detached_peer(handler.clone(), None);
        Self {
            name,
            trust,
            replay: ReplayCache::default(),
            handler,
            peer,
            audit,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// How many calls are running.
    pub fn running(&self) -> usize {
        self.running.lock().len()
    }

    /// Check a signed request of either kind: signature, trust, window, nonce.
    fn admit<T: protocol::Envelope + serde::de::DeserializeOwned>(
        &self,
        payload: &[u8],
        signature: Option<&Signature>,
        now_ms: u64,
    ) -> Result<(T, PublicKey), Refusal> {
        let (request, signer) = protocol::open::<T>(payload, signature, &self.name, now_ms)?;
        self.trust.check_gateway(&signer)?;
        self.replay
            .first_use(&signer, request.nonce(), request.expires_at_ms(), now_ms)?;
        Ok((request, signer))
    }

    /// Answer one call request: every reply goes to `replies`, the last one final.
    pub async fn serve(
        self: Arc<Self>,
        payload: bytes::Bytes,
        signature: Option<Signature>,
        replies: mpsc::UnboundedSender<Reply>,
    ) {
        let now = protocol::now_ms();
        let final_reply = match self.admit::<CallRequest>(&payload, signature.as_ref(), now) {
            Err(refusal) => {
                let id = request_id_of(&payload);
                self.refused(&id, None, &refusal).await;
                FinalReply::refused(&id, &self.name, &refusal)
            }
            Ok((request, signer)) => self.clone().run(request, signer, &replies).await,
        };
        let _ = replies.send(Reply::Final(final_reply));
    }

    /// Log a refusal; audit it too when a trusted gateway's request was refused (a
    /// replay, an unmapped principal, a full cache): the rest is noise anyone can send.
    async fn refused(&self, id: &str, request: Option<&CallRequest>, refusal: &Refusal) {
        tracing::warn!(request = id, kind = %refusal.kind, reason = %refusal.message, "fleet request refused");
        let Some(request) = request else { return };
        let context = AuditContext::new()
            .with_principal(format!("fleet:{}", request.principal))
            .with_tool(&request.tool);
        let event = AuditEvent::ToolDenied {
            tool: request.tool.clone(),
            rule: format!("fleet_{}", refusal.kind),
            reason: refusal.message.clone(),
        };
        self.audit.record_or_log(context, event).await;
    }

    async fn run(
        self: Arc<Self>,
        request: CallRequest,
        signer: PublicKey,
        replies: &mpsc::UnboundedSender<Reply>,
    ) -> FinalReply {
        let role = match self.trust.role_for(&request.principal, &request.role) {
            Ok(role) => role,
            Err(refusal) => {
                self.refused(&request.id, Some(&request), &refusal).await;
                return FinalReply::refused(&request.id, &self.name, &refusal);
            }
        };
        let cancel = CancellationToken::new();
        let ended_by = Arc::new(Mutex::new(None));
        {
            let mut running = self.running.lock();
            if running.contains_key(&request.id) {
                let refusal = Refusal::new(
                    ErrorKind::Malformed,
                    "a call with this request id is running",
                );
                return FinalReply::refused(&request.id, &self.name, &refusal);
            }
            running.insert(
                request.id.clone(),
                Running {
                    gateway: signer,
                    cancel: cancel.clone(),
                    ended_by: ended_by.clone(),
                },
            );
        }
        let _deadline = request.deadline_ms.map(|deadline| {
            let (cancel, ended_by) = (cancel.clone(), ended_by.clone());
            let wait = deadline.saturating_sub(protocol::now_ms());
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                ended_by.lock().get_or_insert(ErrorKind::Timeout);
                cancel.cancel();
            })
            .abort_handle()
        });
        let _deadline = AbortOnDrop(_deadline);
        let outcome = self.call_tool(&request, role, cancel, replies).await;
        self.running.lock().remove(&request.id);
        let outcome = match *ended_by.lock() {
            Some(kind) => Outcome::Error {
                error: kind,
                message: match kind {
                    ErrorKind::Timeout => "the call's deadline passed; its command was ended",
                    _ => "the gateway cancelled the call; its command was ended",
                }
                .to_owned(),
            },
            None => outcome,
        };
        FinalReply {
            id: request.id,
            host: self.name.clone(),
            outcome,
        }
    }

    /// Run the tool as the local handler would for a local caller of `role`.
    async fn call_tool(
        &self,
        request: &CallRequest,
        role: crate::auth::Role,
        cancel: CancellationToken,
        replies: &mpsc::UnboundedSender<Reply>,
    ) -> Outcome {
        let caller = Caller::fleet(fleet_principal(&request.principal, role));
        let mut params = CallToolRequestParams::new(request.tool.clone());
        if let Some(arguments) = &request.arguments {
            params = params.with_arguments(arguments.clone());
        }
        let mut call = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        if request.progress {
            call.get_meta_mut()
                .set_progress_token(ProgressToken(NumberOrString::Number(0)));
        }
        call.extensions_mut().insert(caller);
        let direct = DirectRequest {
            id: RequestId::String(Arc::from(request.id.as_str())),
            request: call,
            peer: self.peer.clone(),
            cancel,
        };
        let mut stream = direct_call::call(self.handler.clone(), direct, || {});
        let mut outcome = Outcome::Error {
            error: ErrorKind::ToolError,
            message: "the tool gave no answer".to_owned(),
        };
        while let Some(message) = stream.next().await {
            match message {
                ServerJsonRpcMessage::Notification(notification) => {
                    if let ServerNotification::ProgressNotification(progress) =
                        notification.notification
                    {
                        let _ = replies.send(Reply::Progress(Progress {
                            progress: progress.params.progress,
                            total: progress.params.total,
                            message: progress.params.message,
                        }));
                    }
                }
                ServerJsonRpcMessage::Response(response) => {
                    outcome = match serde_json::to_value(&response.result) {
                        Ok(result) => Outcome::Ok { result },
                        Err(error) => Outcome::Error {
                            error: ErrorKind::ToolError,
                            message: error.to_string(),
                        },
                    };
                }
                ServerJsonRpcMessage::Error(error) => {
                    outcome = Outcome::Error {
                        error: ErrorKind::ToolError,
                        message: error.error.message.into_owned(),
                    };
                }
                ServerJsonRpcMessage::Request(_) => {}
            }
        }
        outcome
    }

    /// Act on a cancel request: end the call it names, if the same gateway started it.
    /// Whether a call was ended.
    pub async fn cancel(&self, payload: &[u8], signature: Option<Signature>) -> FinalReply {
        let now = protocol::now_ms();
        let (request, signer) = match self.admit::<CancelRequest>(payload, signature.as_ref(), now)
        {
            Ok(admitted) => admitted,
            Err(refusal) => {
                let id = request_id_of(payload);
                tracing::warn!(request = id, kind = %refusal.kind, reason = %refusal.message, "fleet cancel refused");
                return FinalReply::refused(&id, &self.name, &refusal);
            }
        };
        let cancelled = {
            let running = self.running.lock();
            match running.get(&request.id) {
                Some(call) if call.gateway == signer => {
                    call.ended_by.lock().get_or_insert(ErrorKind::Cancelled);
                    call.cancel.cancel();
                    true
                }
                _ => false,
            }
        };
        tracing::info!(request = request.id, cancelled, "fleet cancel");
        FinalReply {
            id: request.id,
            host: self.name.clone(),
            outcome: Outcome::Ok {
                result: serde_json::json!({ "cancelled": cancelled }),
            },
        }
    }
}

/// The `id` of a request that could not be admitted, when its payload has one (for the
/// gateway to match the refusal); empty otherwise.
fn request_id_of(payload: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Id {
        id: String,
    }
    serde_json::from_slice::<Id>(payload)
        .map(|id| id.id.chars().take(128).collect())
        .unwrap_or_default()
}

struct AbortOnDrop(Option<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.abort();
        }
    }
}

#[cfg(test)]
mod tests;
