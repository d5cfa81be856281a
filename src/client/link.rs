//! One connection to a remote MCP server, on whichever transport it speaks. The rule is the
//! MCP specification's (backwards compatibility, 2025-03-26): POST the first message to the
//! URL; if that fails with a 4xx, GET the URL and expect the legacy SSE stream whose first
//! event is `endpoint`. 401 and 403 are not a transport mismatch and are reported as they are.

use std::{sync::Arc, time::Duration};

use tokio::sync::mpsc;

use super::{
    ClientError, Endpoint, Message, legacy_sse::LegacySse, message::id_key, streamable::Streamable,
};
use serde_json::Value;

/// Messages and failures waiting for the relay before a sender waits.
const INBOUND_CAPACITY: usize = 256;
/// How long opening a link (connect, first answer) may take.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// What comes from the server side of a link.
#[derive(Debug)]
pub enum Inbound {
    /// A message from the server.
    Message(Message),
    /// A request whose answer cannot come (its POST failed or its stream ended first).
    Unanswered { id: Value, cause: ClientError },
    /// A request the server refused because it no longer knows the session (404): it did not
    /// run, and may be sent again on a new session. A [`Inbound::Lost`] follows.
    NotDelivered(Message),
    /// The session is gone (the server restarted, expired it, or cannot be reached).
    Lost(ClientError),
}

/// The transport a server was found to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    StreamableHttp,
    LegacySse,
}

/// An open session with the server.
#[derive(Debug, Clone)]
pub enum Link {
    StreamableHttp(Arc<Streamable>),
    LegacySse(Arc<LegacySse>),
}

/// A link just opened, with what the server said so far.
#[derive(Debug)]
pub struct Opened {
    pub link: Link,
    pub inbound: mpsc::Receiver<Inbound>,
    /// The answer to the first message, when it was a request.
    pub answer: Option<Message>,
    /// Messages the server sent before that answer (in order).
    pub early: Vec<Message>,
}

impl Link {
    /// Open a session by sending `first` (the client's initialize), on `kind` if known, else
    /// on the transport the fallback rule finds.
    pub async fn open(
        endpoint: &Arc<Endpoint>,
        first: &Message,
        kind: Option<TransportKind>,
    ) -> Result<Opened, ClientError> {
        tokio::time::timeout(OPEN_TIMEOUT, Self::open_unbounded(endpoint, first, kind))
            .await
            .map_err(|_| ClientError::Timeout {
                seconds: OPEN_TIMEOUT.as_secs(),
                what: "opening a session",
            })?
    }

    async fn open_unbounded(
        endpoint: &Arc<Endpoint>,
        first: &Message,
        kind: Option<TransportKind>,
    ) -> Result<Opened, ClientError> {
        let (sender, mut inbound) = mpsc::channel(INBOUND_CAPACITY);
        if kind != Some(TransportKind::LegacySse) {
            match Streamable::start(Arc::clone(endpoint), first, sender.clone()).await {
                Ok((link, answer)) => {
                    // What came before the answer waits on the channel, in order.
                    return Ok(Opened {
                        link: Link::StreamableHttp(link),
                        inbound,
                        answer,
                        early: Vec::new(),
                    });
                }
                Err(error) if kind.is_none() && error.calls_for_legacy_sse() => {
                    tracing::info!(%error, "no Streamable HTTP there; trying legacy HTTP+SSE");
                }
                Err(error) => return Err(error),
            }
        }
        let link = LegacySse::open(Arc::clone(endpoint), endpoint.url().clone(), sender).await?;
        link.send(first.clone());
        let Some(id) = first.id().filter(|_| first.is_request()) else {
            return Ok(Opened {
                link: Link::LegacySse(link),
                inbound,
                answer: None,
                early: Vec::new(),
            });
        };
        let wanted = id_key(id);
        let mut early = Vec::new();
        loop {
            match inbound.recv().await {
                Some(Inbound::Message(message))
                    if message.is_answer() && message.id().map(id_key) == Some(wanted.clone()) =>
                {
                    return Ok(Opened {
                        link: Link::LegacySse(link),
                        inbound,
                        answer: Some(message),
                        early,
                    });
                }
                Some(Inbound::Message(message)) => early.push(message),
                Some(Inbound::Unanswered { cause, .. } | Inbound::Lost(cause)) => {
                    return Err(cause);
                }
                Some(Inbound::NotDelivered(_)) => return Err(ClientError::SessionGone),
                None => {
                    return Err(ClientError::Lost("the SSE stream ended".to_owned()));
                }
            }
        }
    }

    pub fn kind(&self) -> TransportKind {
        match self {
            Self::StreamableHttp(_) => TransportKind::StreamableHttp,
            Self::LegacySse(_) => TransportKind::LegacySse,
        }
    }

    /// Send a message; what it brings back arrives on the link's inbound channel.
    pub fn send(&self, message: Message) {
        match self {
            Self::StreamableHttp(link) => link.send(message),
            Self::LegacySse(link) => link.send(message),
        }
    }

    /// Send a message and wait until the server took it (its POST answered): for
    /// notifications and answers, which must reach the server in the client's order.
    pub async fn deliver(&self, message: Message) {
        match self {
            Self::StreamableHttp(link) => link.post_and_forward(message).await,
            Self::LegacySse(link) => link.post(message).await,
        }
    }

    /// Start receiving what the server sends outside any request (Streamable HTTP's GET
    /// stream; the legacy stream is open already). Call once the session is initialized.
    pub fn listen(&self) {
        if let Self::StreamableHttp(link) = self {
            link.listen();
        }
    }

    /// End the session.
    pub async fn close(&self) {
        match self {
            Self::StreamableHttp(link) => link.close().await,
            Self::LegacySse(link) => link.close(),
        }
    }
}
