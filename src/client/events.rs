//! JSON-RPC messages read out of an SSE response body, for both HTTP transports.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use sse_stream::{Sse, SseStream};

use super::{ClientError, Message};

type SseEvents = Pin<Box<dyn Stream<Item = Result<Sse, sse_stream::Error>> + Send>>;

/// One event of interest on a stream.
#[derive(Debug)]
pub(crate) enum Event {
    /// A `message` event (or one without a name): a JSON-RPC message.
    Message(Message),
    /// The legacy transport's `endpoint` event: where to POST.
    Endpoint(String),
}

/// The events of one SSE response, and the id of the last one (for `Last-Event-ID`).
pub(crate) struct Events {
    stream: SseEvents,
    last_event_id: Option<String>,
}

impl Events {
    pub(crate) fn new(response: reqwest::Response) -> Self {
        Self {
            stream: Box::pin(SseStream::from_bytes_stream(response.bytes_stream())),
            last_event_id: None,
        }
    }

    pub(crate) fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// The next event that carries something; `None` when the stream ended cleanly. Events
    /// without data (a priming event, keep-alive comments) and of other names are skipped.
    pub(crate) async fn next(&mut self) -> Option<Result<Event, ClientError>> {
        loop {
            let sse = match self.stream.next().await? {
                Ok(sse) => sse,
                Err(error) => return Some(Err(ClientError::Lost(error.to_string()))),
            };
            if let Some(id) = sse.id.filter(|id| !id.is_empty()) {
                self.last_event_id = Some(id);
            }
            let Some(data) = sse.data.filter(|data| !data.trim().is_empty()) else {
                continue;
            };
            match sse.event.as_deref() {
                None | Some("message") => return Some(Message::parse(data).map(Event::Message)),
                Some("endpoint") => return Some(Ok(Event::Endpoint(data))),
                Some(other) => tracing::debug!(event = other, "SSE event ignored"),
            }
        }
    }
}
