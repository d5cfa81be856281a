//! Streamable HTTP (2025-03-26 and later) as a client: each message is a POST to the server
//! URL, answered by 202, one JSON message or an SSE stream of messages; the session id and
//! protocol version the first answer sets go on every later request; a GET stream carries
//! what the server sends on its own; DELETE ends the session.
//!
//! Every POST runs in its own task, so a long call does not hold up the next message (a
//! cancellation, another call). What comes back, and what went wrong, goes to the link's
//! [`Inbound`] channel.

use std::{sync::Arc, time::Duration};

use parking_lot::Mutex;
use reqwest::{Method, RequestBuilder, Response, StatusCode, header};
use serde_json::Value;
use tokio::{sync::mpsc, task::AbortHandle};

use super::{
    ClientError, Endpoint, Inbound, Message,
    events::{Event, Events},
    message::id_key,
};

const SESSION_ID: &str = "mcp-session-id";
const PROTOCOL_VERSION: &str = "mcp-protocol-version";
const LAST_EVENT_ID: &str = "last-event-id";
/// How long the DELETE that ends a session may take when the client leaves.
const DELETE_TIMEOUT: Duration = Duration::from_secs(3);
/// The pause before the GET stream is opened again after it ended.
const GET_RETRY: Duration = Duration::from_millis(500);
/// GET streams in a row that may fail (not 404, not unreachable) before the link stops
/// listening on GET.
const GET_FAILURES: u32 = 5;

/// One session with a Streamable HTTP server.
#[derive(Debug)]
pub struct Streamable {
    endpoint: Arc<Endpoint>,
    session: Option<String>,
    protocol_version: Option<String>,
    inbound: mpsc::Sender<Inbound>,
    listener: Mutex<Option<AbortHandle>>,
}

/// What a POST got back.
enum Reply {
    Accepted,
    Json(Message),
    Stream(Events),
}

impl Streamable {
    /// POST `first` (the client's initialize, usually) and, if it is a request, wait for its
    /// answer; the session id of the reply is this link's from then on.
    pub(crate) async fn start(
        endpoint: Arc<Endpoint>,
        first: &Message,
        inbound: mpsc::Sender<Inbound>,
    ) -> Result<(Arc<Self>, Option<Message>), ClientError> {
        let url = endpoint.url().clone();
        let response = post_request(&endpoint, None, None, first)
            .send()
            .await
            .map_err(|error| ClientError::from_http(&url, &error))?;
        let session = response
            .headers()
            .get(SESSION_ID)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let reply = classify(response, false).await?;
        let answer = match (reply, first.id()) {
            (Reply::Json(message), Some(_)) => Some(message),
            (Reply::Stream(mut events), Some(id)) => {
                let answer = answer_from_stream(&mut events, id, &inbound).await?;
                let rest = inbound.clone();
                tokio::spawn(async move { drain(events, &rest).await });
                Some(answer)
            }
            (Reply::Accepted, Some(_)) => {
                return Err(ClientError::Protocol(
                    "a request was answered 202 Accepted, with no answer".to_owned(),
                ));
            }
            (_, None) => None,
        };
        let protocol_version = answer.as_ref().and_then(|answer| {
            let value = answer.value().ok()?;
            value["result"]["protocolVersion"]
                .as_str()
                .map(str::to_owned)
        });
        let link = Arc::new(Self {
            endpoint,
            session,
            protocol_version,
            inbound,
            listener: Mutex::new(None),
        });
        Ok((link, answer))
    }

    /// POST `message` in a task of its own; its answer and anything else on its stream go to
    /// the inbound channel.
    pub(crate) fn send(self: &Arc<Self>, message: Message) {
        let link = Arc::clone(self);
        tokio::spawn(async move { link.post_and_forward(message).await });
    }

    pub(crate) async fn post_and_forward(&self, message: Message) {
        let url = self.endpoint.url().clone();
        let request = post_request(
            &self.endpoint,
            self.session.as_deref(),
            self.protocol_version.as_deref(),
            &message,
        );
        let reply = match request.send().await {
            Ok(response) => classify(response, self.session.is_some()).await,
            Err(error) => Err(ClientError::from_http(&url, &error)),
        };
        let request_id = message.id().filter(|_| message.is_request()).cloned();
        let outcome = match reply {
            Ok(Reply::Accepted) => Ok(()),
            Ok(Reply::Json(answer)) => {
                let _ = self.inbound.send(Inbound::Message(answer)).await;
                Ok(())
            }
            Ok(Reply::Stream(events)) => {
                self.forward(events, request_id.as_ref()).await;
                return;
            }
            Err(error) => Err(error),
        };
        match (outcome, request_id) {
            (Ok(()), _) => {}
            (Err(ClientError::SessionGone), request) => {
                if request.is_some() {
                    let _ = self.inbound.send(Inbound::NotDelivered(message)).await;
                }
                let _ = self
                    .inbound
                    .send(Inbound::Lost(ClientError::SessionGone))
                    .await;
            }
            (Err(error @ ClientError::Unreachable { .. }), _) => {
                let _ = self.inbound.send(Inbound::Lost(error)).await;
            }
            (Err(cause), Some(id)) => {
                let _ = self.inbound.send(Inbound::Unanswered { id, cause }).await;
            }
            (Err(error), None) => tracing::warn!(%error, "a message to the server was not taken"),
        }
    }

    /// Relay a POST's stream; a request whose answer did not come on it is unanswered.
    async fn forward(&self, mut events: Events, request_id: Option<&Value>) {
        let wanted = request_id.map(id_key);
        let mut answered = false;
        let mut cause = None;
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Message(message)) => {
                    answered |= message.is_answer()
                        && message.id().map(id_key) == wanted
                        && wanted.is_some();
                    let _ = self.inbound.send(Inbound::Message(message)).await;
                }
                Ok(Event::Endpoint(_)) => {}
                Err(error) => {
                    cause = Some(error);
                    break;
                }
            }
        }
        if let (Some(id), false) = (request_id, answered) {
            let cause = cause.unwrap_or_else(|| {
                ClientError::Lost("the server closed the stream before answering".to_owned())
            });
            let _ = self
                .inbound
                .send(Inbound::Unanswered {
                    id: id.clone(),
                    cause,
                })
                .await;
        }
    }

    /// Open the GET stream for what the server sends outside any request, and keep it open:
    /// a stream that ends is opened again (with `Last-Event-ID`); a 404 or a server that
    /// cannot be reached is the link lost; 405 means the server offers none.
    pub(crate) fn listen(self: &Arc<Self>) {
        if self.session.is_none() {
            return;
        }
        let link = Arc::clone(self);
        let task = tokio::spawn(async move { link.listen_loop().await });
        if let Some(previous) = self.listener.lock().replace(task.abort_handle()) {
            previous.abort();
        }
    }

    async fn listen_loop(&self) {
        let url = self.endpoint.url().clone();
        let mut last_event_id: Option<String> = None;
        let mut failures = 0;
        loop {
            let mut request = self
                .with_session(self.endpoint.request(Method::GET, url.clone()))
                .header(header::ACCEPT, "text/event-stream");
            if let Some(id) = &last_event_id {
                request = request.header(LAST_EVENT_ID, id);
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(error) => {
                    let lost = ClientError::from_http(&url, &error);
                    let _ = self.inbound.send(Inbound::Lost(lost)).await;
                    return;
                }
            };
            match response.status() {
                StatusCode::METHOD_NOT_ALLOWED => {
                    tracing::debug!("the server offers no GET stream");
                    return;
                }
                StatusCode::NOT_FOUND => {
                    let _ = self
                        .inbound
                        .send(Inbound::Lost(ClientError::SessionGone))
                        .await;
                    return;
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    let status = response.status().as_u16();
                    let lost = ClientError::Unauthorized { status };
                    let _ = self.inbound.send(Inbound::Lost(lost)).await;
                    return;
                }
                status if status.is_success() && is_event_stream(&response) => {
                    failures = 0;
                    let opened = tokio::time::Instant::now();
                    let mut events = Events::new(response);
                    while let Some(Ok(event)) = events.next().await {
                        if let Event::Message(message) = event {
                            let _ = self.inbound.send(Inbound::Message(message)).await;
                        }
                    }
                    if let Some(id) = events.last_event_id() {
                        last_event_id = Some(id.to_owned());
                    }
                    // Open it again at once: a server that went away is found out now,
                    // before the client's next request meets it (a stream that ends as soon
                    // as it opens is opened again after a pause).
                    if opened.elapsed() >= GET_RETRY {
                        continue;
                    }
                }
                status => {
                    failures += 1;
                    tracing::debug!(%status, "the GET stream was refused");
                    if failures >= GET_FAILURES {
                        tracing::warn!(%status, "stopped listening for server messages on GET");
                        return;
                    }
                }
            }
            tokio::time::sleep(GET_RETRY).await;
        }
    }

    /// Stop listening and end the session (DELETE; the server may not allow it).
    pub(crate) async fn close(&self) {
        if let Some(listener) = self.listener.lock().take() {
            listener.abort();
        }
        if self.session.is_none() {
            return;
        }
        let url = self.endpoint.url().clone();
        let request = self.with_session(self.endpoint.request(Method::DELETE, url));
        let _ = tokio::time::timeout(DELETE_TIMEOUT, request.send()).await;
    }

    fn with_session(&self, request: RequestBuilder) -> RequestBuilder {
        with_session(
            request,
            self.session.as_deref(),
            self.protocol_version.as_deref(),
        )
    }
}

impl Drop for Streamable {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.get_mut().take() {
            listener.abort();
        }
    }
}

fn with_session(
    mut request: RequestBuilder,
    session: Option<&str>,
    protocol_version: Option<&str>,
) -> RequestBuilder {
    if let Some(session) = session {
        request = request.header(SESSION_ID, session);
    }
    if let Some(version) = protocol_version {
        request = request.header(PROTOCOL_VERSION, version);
    }
    request
}

fn post_request(
    endpoint: &Endpoint,
    session: Option<&str>,
    protocol_version: Option<&str>,
    message: &Message,
) -> RequestBuilder {
    let request = endpoint
        .request(Method::POST, endpoint.url().clone())
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header(header::CONTENT_TYPE, "application/json")
        .body(message.text().to_owned());
    with_session(request, session, protocol_version)
}

fn is_event_stream(response: &Response) -> bool {
    content_type(response).starts_with("text/event-stream")
}

fn content_type(response: &Response) -> String {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// A POST's response as a reply, or why it is not one.
async fn classify(response: Response, has_session: bool) -> Result<Reply, ClientError> {
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(ClientError::Unauthorized {
            status: status.as_u16(),
        });
    }
    if status == StatusCode::NOT_FOUND && has_session {
        return Err(ClientError::SessionGone);
    }
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(ClientError::Status {
            what: "a POST",
            status: status.as_u16(),
            body,
        });
    }
    if status == StatusCode::ACCEPTED {
        return Ok(Reply::Accepted);
    }
    if is_event_stream(&response) {
        return Ok(Reply::Stream(Events::new(response)));
    }
    let content_type = content_type(&response);
    let body = response
        .text()
        .await
        .map_err(|error| ClientError::Lost(error.to_string()))?;
    if body.trim().is_empty() {
        return Ok(Reply::Accepted);
    }
    if !content_type.starts_with("application/json") {
        return Err(ClientError::Protocol(format!(
            "a POST was answered with content type {content_type:?}"
        )));
    }
    Message::parse(body).map(Reply::Json)
}

/// Read a stream up to the answer to `id`; what comes before it goes to `inbound`.
async fn answer_from_stream(
    events: &mut Events,
    id: &Value,
    inbound: &mpsc::Sender<Inbound>,
) -> Result<Message, ClientError> {
    let wanted = id_key(id);
    while let Some(event) = events.next().await {
        if let Event::Message(message) = event? {
            if message.is_answer() && message.id().map(id_key).as_deref() == Some(&wanted) {
                return Ok(message);
            }
            let _ = inbound.send(Inbound::Message(message)).await;
        }
    }
    Err(ClientError::Lost(
        "the server closed the stream before answering".to_owned(),
    ))
}

/// Relay what is left on a stream after the awaited answer.
async fn drain(mut events: Events, inbound: &mpsc::Sender<Inbound>) {
    while let Some(Ok(event)) = events.next().await {
        if let Event::Message(message) = event {
            let _ = inbound.send(Inbound::Message(message)).await;
        }
    }
}
