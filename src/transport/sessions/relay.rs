//! Calls that talk to the client through their peer (sampling, elicitation, logging:
//! what `PeerUse::needs_live_peer` names): each runs on an rmcp service of its own over
//! a [`RelayTransport`], whose server-to-client requests get ids unique in the session
//! (registered in the session's entry) and whose answers, POSTed by the client, come
//! back to it. Its answer is not parked for reconnects.

use std::sync::Arc;

use rmcp::{
    RoleServer, Service,
    model::{ClientJsonRpcMessage, ClientRequest, RequestId, ServerJsonRpcMessage},
    service::{Peer, RxJsonRpcMessage, TxJsonRpcMessage},
    transport::{Transport, streamable_http_server::session::SessionId},
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;

use super::table::SessionTable;
use crate::transport::direct_call;

/// One call to run on a service of its own.
pub(super) struct RelayedCall {
    pub(super) session: SessionId,
    pub(super) request_id: RequestId,
    pub(super) request: ClientRequest,
    pub(super) peer: Peer<RoleServer>,
    pub(super) cancel: CancellationToken,
}

/// Run `call` on an rmcp service of `handler`'s own, with the session's client info;
/// its messages come out of the returned stream. `end_call` runs once the service ends.
pub(super) fn relay_call<H>(
    handler: H,
    table: Arc<SessionTable>,
    call: RelayedCall,
    end_call: impl FnOnce() + Send + 'static,
) -> UnboundedReceiverStream<ServerJsonRpcMessage>
where
    H: Service<RoleServer> + Send + 'static,
{
    let RelayedCall {
        session,
        request_id,
        request,
        peer,
        cancel,
    } = call;
    let (outbox, messages) = mpsc::unbounded_channel();
    let (inbox_tx, inbox) = mpsc::unbounded_channel();
    let transport = RelayTransport {
        first: Some(ClientJsonRpcMessage::request(request, request_id.clone())),
        request_id,
        inbox,
        inbox_tx,
        outbox,
        answered: CancellationToken::new(),
        table,
        session,
    };
    let peer_info = peer.peer_info().map(|info| (*info).clone());
    let service = rmcp::service::serve_directly_with_ct(handler, transport, peer_info, cancel);
    tokio::spawn(async move {
        let _ = service.waiting().await;
        end_call();
    });
    UnboundedReceiverStream::new(messages)
}

/// The transport of one relayed call: hands rmcp the request, then the client's answers
/// to what the call asked; sends everything the call emits to the call's stream; ends
/// once the call is answered.
struct RelayTransport {
    first: Option<ClientJsonRpcMessage>,
    request_id: RequestId,
    inbox: mpsc::UnboundedReceiver<ClientJsonRpcMessage>,
    inbox_tx: mpsc::UnboundedSender<ClientJsonRpcMessage>,
    outbox: mpsc::UnboundedSender<ServerJsonRpcMessage>,
    answered: CancellationToken,
    table: Arc<SessionTable>,
    session: SessionId,
}

impl Transport<RoleServer> for RelayTransport {
    type Error = direct_call::ReaderGone;

    fn name() -> std::borrow::Cow<'static, str> {
        "hostmcp-relay".into()
    }

    fn send(
        &mut self,
        mut item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let is_answer = match &item {
            ServerJsonRpcMessage::Response(response) => response.id == self.request_id,
            ServerJsonRpcMessage::Error(error) => error.id.as_ref() == Some(&self.request_id),
            _ => false,
        };
        if let ServerJsonRpcMessage::Request(request) = &mut item {
            // Every relayed call numbers its requests from 0: give the client ids unique
            // in the session, and route its answer back by them.
            match self
                .table
                .relay(&self.session, request.id.clone(), self.inbox_tx.clone())
            {
                Some(relay_id) => request.id = relay_id,
                None => return std::future::ready(Err(direct_call::ReaderGone)),
            }
        }
        let sent = self.outbox.send(item).map_err(|_| direct_call::ReaderGone);
        if is_answer {
            self.answered.cancel();
        }
        std::future::ready(sent)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        tokio::select! {
            message = self.inbox.recv() => message,
            () = self.answered.cancelled() => None,
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.answered.cancel();
        Ok(())
    }
}
