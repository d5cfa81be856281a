//! Runs one JSON-RPC request against an rmcp [`ServerHandler`] without a service loop.
//!
//! rmcp's service loop moves every call through a chain of tasks and channels (loop task,
//! handler task, response-send task), which costs more CPU than hostmcp's whole call and
//! keeps a task and several channel blocks alive per idle session. Here the handler's
//! future is polled by whoever reads the answer (the HTTP response body):
//! - notifications the handler sends *for this request* (progress) travel through the
//!   [`RequestNotifier`] found in the request's extensions and come out of the same
//!   stream, before the answer;
//! - a reader that goes away before the answer hands the unfinished call to a task of
//!   its own, so the call still finishes, releases what it holds and is audited, exactly
//!   as it would in rmcp's loop;
//! - the context's [`Peer`] carries the negotiated client info only: a handler that
//!   sends through it says so in [`PeerUse`] and is not called here.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use futures::{Stream, future::BoxFuture};
use rmcp::{
    RoleServer, Service,
    model::{
        ClientRequest, GetExtensions, GetMeta, InitializeRequestParams, RequestId,
        ServerJsonRpcMessage, ServerNotification,
    },
    service::{Peer, RequestContext, RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};
use sync_wrapper::SyncWrapper;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use crate::handler_link::{PeerUse, ReaderGone, RequestNotifier};

/// One request to run: what the handler's [`RequestContext`] is made of.
pub struct DirectRequest {
    pub id: RequestId,
    pub request: ClientRequest,
    /// Carries the negotiated peer info the handler reads; nothing is sent through it.
    pub peer: Peer<RoleServer>,
    /// Cancelled by `notifications/cancelled`, session close or shutdown.
    pub cancel: CancellationToken,
}

/// Start `request` on `handler`. `on_end` runs when the handler has finished (or the call
/// was dropped without a runtime to finish it on).
pub fn call<H>(
    handler: H,
    request: DirectRequest,
    on_end: impl FnOnce() + Send + 'static,
) -> CallStream
where
    H: Service<RoleServer> + Send + Sync + 'static,
{
    let DirectRequest {
        id,
        mut request,
        peer,
        cancel,
    } = request;
    let mut context = RequestContext::new(id.clone(), peer);
    context.ct = cancel;
    context.meta = std::mem::take(request.get_meta_mut());
    context.extensions = std::mem::take(request.extensions_mut());
    // Only a request with a progress token gets a notifier (and its channel).
    let notifications = context.meta.get_progress_token().map(|_| {
        let (notifier, receiver) = RequestNotifier::channel();
        context.extensions.insert(notifier);
        receiver
    });
    let on_end = OnEnd(Some(Box::new(on_end)));
    let future = async move {
        let _on_end = on_end;
        match handler.handle_request(request, context).await {
            Ok(result) => ServerJsonRpcMessage::response(result, id),
            Err(error) => ServerJsonRpcMessage::error(error, Some(id)),
        }
    };
    CallStream {
        call: Some(SyncWrapper::new(Box::pin(future))),
        notifications: notifications.map(SyncWrapper::new),
        answer: None,
        on_abandon: None,
    }
}

/// A peer that carries `peer_info` (the negotiated client info handlers read) and reaches
/// nobody: rmcp only makes peers for running services, so this runs one over a transport
/// that is already closed, which ends at once.
pub fn detached_peer<H>(handler: H, peer_info: Option<InitializeRequestParams>) -> Peer<RoleServer>
where
    H: Service<RoleServer> + Send + Sync + 'static,
{
    rmcp::service::serve_directly(handler, ClosedTransport, peer_info)
        .peer()
        .clone()
}

struct ClosedTransport;

impl Transport<RoleServer> for ClosedTransport {
    type Error = ReaderGone;

    fn send(
        &mut self,
        _item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        std::future::ready(Err(ReaderGone))
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        None
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

struct OnEnd(Option<Box<dyn FnOnce() + Send>>);

impl Drop for OnEnd {
    fn drop(&mut self) {
        if let Some(on_end) = self.0.take() {
            on_end();
        }
    }
}

/// The messages of one call: its notifications, then its answer, then the end.
pub struct CallStream {
    call: Option<SyncWrapper<AbandonedCall>>,
    notifications: Option<SyncWrapper<mpsc::UnboundedReceiver<ServerNotification>>>,
    answer: Option<ServerJsonRpcMessage>,
    on_abandon: Option<AbandonHook>,
}

/// The rest of a call whose reader went away: resolves to its answer.
pub type AbandonedCall = BoxFuture<'static, ServerJsonRpcMessage>;
type AbandonHook = Box<dyn FnOnce(AbandonedCall) + Send + Sync>;

impl Stream for CallStream {
    type Item = ServerJsonRpcMessage;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(call) = this.call.as_mut() {
            match call.get_mut().as_mut().poll(cx) {
                Poll::Ready(answer) => {
                    this.call = None;
                    this.answer = Some(answer);
                }
                Poll::Pending => {
                    return match this.poll_notification(cx) {
                        Poll::Ready(Some(message)) => Poll::Ready(Some(message)),
                        _ => Poll::Pending,
                    };
                }
            }
        }
        // The call is over: what it queued before answering goes first.
        if let Some(receiver) = this.notifications.as_mut()
            && let Ok(notification) = receiver.get_mut().try_recv()
        {
            return Poll::Ready(Some(ServerJsonRpcMessage::notification(notification)));
        }
        Poll::Ready(this.answer.take())
    }
}

impl CallStream {
    /// Who finishes the call if the reader goes away before its answer (to keep the
    /// answer for a reader that comes back). Without one, the call finishes on a task
    /// of its own and its answer is dropped.
    pub fn on_abandon(mut self, hook: impl FnOnce(AbandonedCall) + Send + Sync + 'static) -> Self {
        self.on_abandon = Some(Box::new(hook));
        self
    }

    fn poll_notification(&mut self, cx: &mut Context<'_>) -> Poll<Option<ServerJsonRpcMessage>> {
        let Some(receiver) = self.notifications.as_mut() else {
            return Poll::Pending;
        };
        receiver
            .get_mut()
            .poll_recv(cx)
            .map(|notification| notification.map(ServerJsonRpcMessage::notification))
    }
}

impl Drop for CallStream {
    fn drop(&mut self) {
        let Some(call) = self.call.take() else {
            return;
        };
        // The reader left mid-call: finish the call anyway (it may hold a process, and
        // its end is audited).
        let call = call.into_inner();
        match self.on_abandon.take() {
            Some(hook) => hook(call),
            None => {
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(call);
                }
            }
        }
    }
}

/// A stream of the one message a future resolves to (none if it resolves to `None`).
pub struct OnceStream(Option<SyncWrapper<BoxFuture<'static, Option<ServerJsonRpcMessage>>>>);

impl OnceStream {
    pub fn new(
        future: impl Future<Output = Option<ServerJsonRpcMessage>> + Send + 'static,
    ) -> Self {
        Self(Some(SyncWrapper::new(Box::pin(future))))
    }
}

impl Stream for OnceStream {
    type Item = ServerJsonRpcMessage;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(future) = this.0.as_mut() else {
            return Poll::Ready(None);
        };
        let message = std::task::ready!(future.get_mut().as_mut().poll(cx));
        this.0 = None;
        Poll::Ready(message)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };

    use futures::StreamExt;
    use rmcp::{
        ErrorData, ServerHandler,
        model::{
            CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
            NumberOrString, PaginatedRequestParams, ProgressNotificationParam, ServerResult,
        },
    };

    use super::*;

    /// `slow` waits for cancellation, `progress` sends one notification then answers.
    #[derive(Clone, Default)]
    struct Fixture {
        finished: Arc<AtomicBool>,
    }

    impl ServerHandler for Fixture {
        async fn call_tool(
            &self,
            request: CallToolRequestParams,
            context: RequestContext<RoleServer>,
        ) -> Result<CallToolResponse, ErrorData> {
            match request.name.as_ref() {
                "progress" => {
                    let notifier = context.extensions.get::<RequestNotifier>().unwrap();
                    let token = context.meta.get_progress_token().unwrap();
                    notifier
                        .notify(ServerNotification::ProgressNotification(
                            rmcp::model::ProgressNotification::new(ProgressNotificationParam::new(
                                token, 1.0,
                            )),
                        ))
                        .unwrap();
                }
                "slow" => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    self.finished.store(true, Ordering::SeqCst);
                }
                _ => {
                    let notified = context.extensions.get::<RequestNotifier>().is_some();
                    let text = if notified { "notifier" } else { "no notifier" };
                    return Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into());
                }
            }
            Ok(CallToolResult::success(vec![ContentBlock::text("done")]).into())
        }

        async fn list_tools(
            &self,
            _request: Option<PaginatedRequestParams>,
            _context: RequestContext<RoleServer>,
        ) -> Result<ListToolsResult, ErrorData> {
            Ok(ListToolsResult::default())
        }
    }

    fn peer() -> Peer<RoleServer> {
        detached_peer(Fixture::default(), None)
    }

    fn tool_call(name: &str, progress: bool) -> ClientRequest {
        let mut request = ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(
            CallToolRequestParams::new(name.to_owned()),
        ));
        if progress {
            request
                .get_meta_mut()
                .set_progress_token(rmcp::model::ProgressToken(NumberOrString::Number(7)));
        }
        request
    }

    fn direct(name: &str, progress: bool) -> DirectRequest {
        DirectRequest {
            id: RequestId::Number(1),
            request: tool_call(name, progress),
            peer: peer(),
            cancel: CancellationToken::new(),
        }
    }

    #[tokio::test]
    async fn answers_after_the_notifications_of_the_call() {
        let ended = Arc::new(AtomicBool::new(false));
        let flag = ended.clone();
        let messages: Vec<_> = call(Fixture::default(), direct("progress", true), move || {
            flag.store(true, Ordering::SeqCst);
        })
        .collect()
        .await;
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(matches!(
            &messages[0],
            ServerJsonRpcMessage::Notification(n)
                if matches!(n.notification, ServerNotification::ProgressNotification(_))
        ));
        assert!(matches!(
            &messages[1],
            ServerJsonRpcMessage::Response(r)
                if matches!(r.result, ServerResult::CallToolResult(_)) && r.id == RequestId::Number(1)
        ));
        assert!(ended.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_call_without_progress_token_gets_no_notifier() {
        let messages: Vec<_> = call(Fixture::default(), direct("none", false), || {})
            .collect()
            .await;
        assert_eq!(messages.len(), 1);
        let answer = serde_json::to_string(&messages[0]).unwrap();
        assert!(answer.contains(r#""no notifier""#), "{answer}");
    }

    #[tokio::test]
    async fn a_dropped_reader_does_not_stop_the_call() {
        let fixture = Fixture::default();
        let finished = fixture.finished.clone();
        let (ended_tx, ended_rx) = tokio::sync::oneshot::channel();
        let mut stream = call(fixture, direct("slow", false), move || {
            let _ = ended_tx.send(());
        });
        // Start the call, then walk away from it.
        assert!(futures::poll!(stream.next()).is_pending());
        drop(stream);
        tokio::time::timeout(std::time::Duration::from_secs(5), ended_rx)
            .await
            .expect("the call finishes on its own")
            .unwrap();
        assert!(finished.load(Ordering::SeqCst));
    }
}
