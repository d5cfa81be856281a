//! What passes between a transport and the MCP handler it runs, besides the
//! [`Caller`](crate::caller::Caller): the notifier of the request being answered, and the
//! handler's word on whether a request needs a peer that reaches the client. Both sides
//! import this module; neither imports the other.

use rmcp::model::{ClientRequest, ServerNotification};
use std::sync::Arc;

use tokio::sync::mpsc;

/// Which requests of a handler can run directly. A request that sends through its
/// context's peer (logging notifications, sampling or elicitation requests) needs a peer
/// that reaches the client, which only an rmcp service loop gives; the session manager
/// runs such requests on a service of their own.
pub trait PeerUse {
    /// Whether handling `request` sends anything through `context.peer`.
    fn needs_live_peer(&self, request: &ClientRequest) -> bool;
}

/// How a handler sends notifications that belong to the request it is answering, on
/// transports that run calls directly. Absent from the extensions elsewhere, where the
/// context's peer reaches the client.
#[derive(Clone, Debug)]
pub struct RequestNotifier(mpsc::UnboundedSender<ServerNotification>);

/// The reader of the request's answer has gone away.
#[derive(Debug, thiserror::Error)]
#[error("the client no longer reads this request's stream")]
pub struct ReaderGone;

impl RequestNotifier {
    /// A notifier whose notifications come out of `receiver`'s end, before the answer.
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<ServerNotification>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Self(sender), receiver)
    }

    pub fn notify(&self, notification: ServerNotification) -> Result<(), ReaderGone> {
        self.0.send(notification).map_err(|_| ReaderGone)
    }
}

/// How a handler sends notifications to a session's client outside any request (on the
/// session's standalone stream: resource updates), for as long as the session lives.
/// The transports that have sessions put one in the extensions of the requests that need
/// it (`resources/subscribe`); `notify` fails once the session is gone, which is how what
/// sends through it learns to stop.
#[derive(Clone)]
pub struct SessionNotifier(Arc<SendNotice>);

type SendNotice = dyn Fn(ServerNotification) -> Result<(), ReaderGone> + Send + Sync;

impl SessionNotifier {
    pub fn new(
        send: impl Fn(ServerNotification) -> Result<(), ReaderGone> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(send))
    }

    pub fn notify(&self, notification: ServerNotification) -> Result<(), ReaderGone> {
        (self.0)(notification)
    }
}

impl std::fmt::Debug for SessionNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionNotifier")
    }
}
