//! The `initialize` handshake of a session whose later calls run directly
//! ([`super::direct_call`]), and the peers those calls carry.
//!
//! rmcp keeps the handshake (version negotiation, the handler's `initialize`) inside its
//! service; [`handshake`] gives it a [`HandshakeTransport`] that carries exactly one
//! `initialize` request and its answer, then ends, so the service that ran it ends too.
//! When the answer is an `InitializeResult`, the transport reports the client info the
//! session negotiated before the answer leaves, so the session is ready by the time the
//! client can use it. [`PeerCache`] turns that info into the [`Peer`] the session's calls
//! carry.

use std::{collections::HashMap, sync::Arc};

use parking_lot::Mutex;

use rmcp::{
    RoleServer, Service,
    model::{
        ClientJsonRpcMessage, ClientRequest, InitializeRequestParams, ServerJsonRpcMessage,
        ServerResult,
    },
    service::{Peer, RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};
use tokio::sync::oneshot;

use super::direct_call;

/// Distinct client infos whose peers are kept; clients of one kind share one.
const PEER_CACHE_SIZE: usize = 256;

/// The handshake ended without an answer (the service failed or was cancelled).
#[derive(Debug, thiserror::Error)]
#[error("the initialize handshake ended without an answer")]
pub struct HandshakeFailed;

/// Called with the negotiated client info (initialize params, with the version the
/// server chose) just before a successful answer leaves.
pub type OnReady = Box<dyn FnOnce(InitializeRequestParams) + Send + Sync>;

/// A handshake: the transport for rmcp's service, and the link to feed it.
pub fn handshake(on_ready: OnReady) -> (HandshakeLink, HandshakeTransport) {
    let (request_tx, request_rx) = oneshot::channel();
    let (answer_tx, answer_rx) = oneshot::channel();
    (
        HandshakeLink {
            request_tx,
            answer_rx,
        },
        HandshakeTransport {
            request_rx: Some(request_rx),
            answer_tx: Some(answer_tx),
            client_info: None,
            on_ready: Some(on_ready),
        },
    )
}

/// The session's end of a handshake.
pub struct HandshakeLink {
    request_tx: oneshot::Sender<ClientJsonRpcMessage>,
    answer_rx: oneshot::Receiver<ServerJsonRpcMessage>,
}

impl HandshakeLink {
    /// Hand `initialize` to the service and wait for its answer (a result or an error).
    pub async fn run(
        self,
        initialize: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, HandshakeFailed> {
        self.request_tx
            .send(initialize)
            .map_err(|_| HandshakeFailed)?;
        self.answer_rx.await.map_err(|_| HandshakeFailed)
    }
}

/// The transport rmcp serves the handshake over: one request in, one answer out, then
/// the end.
pub struct HandshakeTransport {
    request_rx: Option<oneshot::Receiver<ClientJsonRpcMessage>>,
    answer_tx: Option<oneshot::Sender<ServerJsonRpcMessage>>,
    client_info: Option<InitializeRequestParams>,
    on_ready: Option<OnReady>,
}

impl Transport<RoleServer> for HandshakeTransport {
    type Error = HandshakeFailed;

    fn name() -> std::borrow::Cow<'static, str> {
        "hostmcp-handshake".into()
    }

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        if let ServerJsonRpcMessage::Response(response) = &item
            && let ServerResult::InitializeResult(result) = &response.result
            && let Some(mut info) = self.client_info.take()
            && let Some(on_ready) = self.on_ready.take()
        {
            info.protocol_version = result.protocol_version.clone();
            on_ready(info);
        }
        let sent = match self.answer_tx.take() {
            Some(answer_tx) => answer_tx.send(item).map_err(|_| HandshakeFailed),
            None => Ok(()),
        };
        std::future::ready(sent)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        let message = self.request_rx.take()?.await.ok()?;
        if let ClientJsonRpcMessage::Request(request) = &message
            && let ClientRequest::InitializeRequest(initialize) = &request.request
        {
            self.client_info = Some(initialize.params.clone());
        }
        Some(message)
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.request_rx = None;
        Ok(())
    }
}

/// Peers by negotiated client info. Nothing is sent through these peers, so every
/// session whose client sent the same info shares one (one allocation per kind of
/// client, not per session).
pub struct PeerCache<H> {
    handler: H,
    peers: Mutex<HashMap<String, Peer<RoleServer>>>,
}

impl<H> PeerCache<H>
where
    H: Service<RoleServer> + Clone + Send + Sync + 'static,
{
    pub fn new(handler: H) -> Arc<Self> {
        Arc::new(Self {
            handler,
            peers: Mutex::default(),
        })
    }

    /// The peer for a session that negotiated `info`.
    pub fn peer_for(&self, info: InitializeRequestParams) -> Peer<RoleServer> {
        let key = serde_json::to_string(&info).unwrap_or_default();
        let mut peers = self.peers.lock();
        if let Some(peer) = peers.get(&key) {
            return peer.clone();
        }
        if peers.len() >= PEER_CACHE_SIZE {
            peers.clear();
        }
        let peer = direct_call::detached_peer(self.handler.clone(), Some(info));
        peers.insert(key, peer.clone());
        peer
    }
}
