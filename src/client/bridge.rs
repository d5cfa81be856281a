//! `hostmcp connect`: newline-delimited JSON-RPC on stdin/stdout, relayed to a remote server
//! and back unchanged. The bridge owns only what a relay must:
//!
//! - **The first connection** is opened with the client's first message (its `initialize`),
//!   which picks the transport (`link.rs`); if it fails, the client gets a JSON-RPC error
//!   answer saying why and the bridge exits (status 1).
//! - **Requests that cannot be answered** get a JSON-RPC error (code -32000, text starting
//!   with `hostmcp connect:`): their POST failed, their stream ended, or the session was lost
//!   while they ran (the command may or may not have run). A request the client cancelled
//!   gets nothing, as the spec asks.
//! - **A lost session** (the server restarted, expired the session or went away) is replaced
//!   out of the client's sight: the bridge sends the client's original `initialize` again under
//!   an id of its own, swallows the answer, sends `notifications/initialized`, and then the
//!   messages that arrived meanwhile. It tries for `reconnect_for`; after that the queued
//!   requests fail and the next message tries again.

use std::{collections::HashMap, sync::Arc, time::Duration};

use serde_json::Value;
use tokio::{
    io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt},
    sync::mpsc,
    task::JoinHandle,
    time::Instant,
};

use super::{
    ClientError, Endpoint, Inbound, Link, Message, TransportKind,
    link::Opened,
    message::{INITIALIZED, error_answer, id_key, notification},
};

/// The JSON-RPC error code of the answers the bridge makes (implementation-defined range).
pub const BRIDGE_ERROR: i64 = -32000;
/// The first pause between attempts to reopen a session; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// How the bridge behaves when the server goes away.
#[derive(Debug, Clone, Copy)]
pub struct BridgeSettings {
    /// How long to keep trying to open a new session after one was lost.
    pub reconnect_for: Duration,
}

/// Relay `input` to the server at `endpoint` and its messages to `output` until `input`
/// ends. Fails only when the first connection cannot be made or stdout is gone.
pub async fn run<R, W>(
    endpoint: Arc<Endpoint>,
    settings: BridgeSettings,
    input: R,
    output: W,
) -> Result<(), ClientError>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut bridge = Bridge {
        endpoint,
        settings,
        output,
        state: State::Closed,
        initialize: None,
        kind: None,
        in_flight: InFlight::default(),
        queue: Vec::new(),
        reopenings: 0,
    };
    let mut lines = input.lines();
    loop {
        let event = match &mut bridge.state {
            State::Up { inbound, .. } => tokio::select! {
                line = lines.next_line() => Event::Line(line),
                inbound = inbound.recv() => Event::Inbound(inbound),
            },
            State::Reopening(task) => tokio::select! {
                line = lines.next_line() => Event::Line(line),
                reopened = task => Event::Reopened(reopened.unwrap_or_else(|error| {
                    Err(ClientError::Lost(format!("the reconnecting task failed: {error}")))
                })),
            },
            State::Closed | State::Down => Event::Line(lines.next_line().await),
        };
        match event {
            Event::Line(Ok(Some(line))) => bridge.on_client_line(&line).await?,
            Event::Line(Ok(None)) => break,
            Event::Line(Err(error)) => {
                tracing::warn!(%error, "cannot read stdin");
                break;
            }
            Event::Inbound(Some(inbound)) => bridge.on_server(inbound).await?,
            Event::Inbound(None) => {
                let lost = ClientError::Lost("the link closed".to_owned());
                bridge.on_server(Inbound::Lost(lost)).await?;
            }
            Event::Reopened(reopened) => bridge.reopened(reopened).await?,
        }
    }
    bridge.close().await;
    Ok(())
}

enum Event {
    Line(std::io::Result<Option<String>>),
    Inbound(Option<Inbound>),
    Reopened(Result<Opened, ClientError>),
}

enum State {
    /// No session yet: the client's first message opens one.
    Closed,
    Up {
        link: Link,
        inbound: mpsc::Receiver<Inbound>,
    },
    /// A session was lost; a task opens a new one while client messages queue.
    Reopening(JoinHandle<Result<Opened, ClientError>>),
    /// Reopening gave up; the next client message tries again.
    Down,
}

struct Bridge<W> {
    endpoint: Arc<Endpoint>,
    settings: BridgeSettings,
    output: W,
    state: State,
    /// The client's own initialize, sent again for each new session.
    initialize: Option<Message>,
    /// The transport the first session found; later sessions use it too.
    kind: Option<TransportKind>,
    in_flight: InFlight,
    /// Client messages that arrived while no session was up.
    queue: Vec<Message>,
    reopenings: u64,
}

impl<W: AsyncWrite + Unpin> Bridge<W> {
    async fn on_client_line(&mut self, line: &str) -> Result<(), ClientError> {
        if line.trim().is_empty() {
            return Ok(());
        }
        let message = match Message::parse(line) {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, "a line from the client is not a JSON-RPC message");
                let answer = error_answer(&Value::Null, -32700, &format!("Parse error: {error}"));
                return self.write(&answer).await;
            }
        };
        if let (true, Some(id)) = (message.is_request(), message.id()) {
            self.in_flight.start(id);
        }
        if let Some(id) = message.cancelled_request() {
            self.in_flight.cancel(&id);
        }
        match &self.state {
            State::Closed => self.open(message).await,
            State::Up { link, .. } => {
                let link = link.clone();
                send(&link, message).await;
                Ok(())
            }
            State::Reopening(_) => {
                self.enqueue(message);
                Ok(())
            }
            State::Down => {
                self.enqueue(message);
                self.start_reopening();
                Ok(())
            }
        }
    }

    /// The first session, opened with the client's first message.
    async fn open(&mut self, first: Message) -> Result<(), ClientError> {
        if first.is_initialize() {
            self.initialize = Some(first.clone());
        }
        match Link::open(&self.endpoint, &first, self.kind).await {
            Ok(opened) => {
                let kind = opened.link.kind();
                tracing::info!(url = %self.endpoint.url(), transport = ?kind, "connected");
                self.kind = Some(kind);
                self.up(opened).await
            }
            Err(error) => {
                if let Some(id) = first.id().filter(|_| first.is_request()) {
                    self.in_flight.finish(id);
                    let text = match error.hint() {
                        Some(hint) => format!("hostmcp connect: {error} ({hint})"),
                        None => format!("hostmcp connect: {error}"),
                    };
                    self.write(&error_answer(id, BRIDGE_ERROR, &text)).await?;
                }
                Err(error)
            }
        }
    }

    /// A session is open: relay what it said so far, then what queued meanwhile.
    async fn up(&mut self, opened: Opened) -> Result<(), ClientError> {
        let Opened {
            link,
            inbound,
            answer,
            early,
        } = opened;
        for message in early {
            self.relay_to_client(message).await?;
        }
        // The answer to the client's own first message (a reopened session's is swallowed
        // by `reopen`, which asked under its own id).
        if let Some(answer) = answer {
            self.relay_to_client(answer).await?;
        }
        for message in std::mem::take(&mut self.queue) {
            if let Some(id) = message.id().filter(|_| message.is_request()) {
                self.in_flight.set_queued(id, false);
            }
            send(&link, message).await;
        }
        self.state = State::Up { link, inbound };
        Ok(())
    }

    async fn on_server(&mut self, inbound: Inbound) -> Result<(), ClientError> {
        match inbound {
            Inbound::Message(message) => self.relay_to_client(message).await,
            Inbound::Unanswered { id, cause } => {
                if self
                    .in_flight
                    .finish(&id)
                    .is_some_and(|entry| !entry.cancelled)
                {
                    let text = format!(
                        "hostmcp connect: no answer from the server: {cause} \
                         (the request may or may not have run)"
                    );
                    self.write(&error_answer(&id, BRIDGE_ERROR, &text)).await?;
                }
                Ok(())
            }
            Inbound::NotDelivered(message) => {
                // It did not run: it goes again, first thing on the new session.
                self.enqueue(message);
                Ok(())
            }
            Inbound::Lost(cause) => {
                tracing::warn!(error = %cause, "the session with the server was lost");
                let text = format!(
                    "hostmcp connect: the session with the server was lost while this request \
                     ran: {cause} (it may or may not have run)"
                );
                self.fail_in_flight(&text, false).await?;
                if let State::Up { link, .. } = std::mem::replace(&mut self.state, State::Down) {
                    link.close().await;
                }
                match (&self.initialize, &cause) {
                    (_, ClientError::Unauthorized { .. }) => {
                        tracing::error!("the server no longer accepts the token");
                    }
                    // A session-less client (2026-07-28): the next message opens a link.
                    (None, _) => self.state = State::Closed,
                    (Some(_), _) => self.start_reopening(),
                }
                Ok(())
            }
        }
    }

    /// A message from the server to the client; the answer to a cancelled request is dropped.
    async fn relay_to_client(&mut self, message: Message) -> Result<(), ClientError> {
        if message.is_answer()
            && let Some(id) = message.id()
            && self
                .in_flight
                .finish(id)
                .is_some_and(|entry| entry.cancelled)
        {
            return Ok(());
        }
        self.write(&message).await
    }

    fn start_reopening(&mut self) {
        let Some(initialize) = self.initialize.clone() else {
            self.state = State::Closed;
            return;
        };
        self.reopenings += 1;
        let task = tokio::spawn(reopen(
            Arc::clone(&self.endpoint),
            initialize,
            self.kind,
            self.settings.reconnect_for,
            self.reopenings,
        ));
        self.state = State::Reopening(task);
    }

    async fn reopened(&mut self, reopened: Result<Opened, ClientError>) -> Result<(), ClientError> {
        match reopened {
            Ok(opened) => {
                tracing::info!(url = %self.endpoint.url(), "reconnected: a new session");
                self.up(opened).await
            }
            Err(error) => {
                tracing::error!(%error, "cannot reconnect; the next message tries again");
                self.state = State::Down;
                let text = format!("hostmcp connect: cannot reach the server again: {error}");
                self.queue.clear();
                self.fail_in_flight(&text, true).await
            }
        }
    }

    /// Hold a client message until a session is up (a request stays in flight, queued).
    fn enqueue(&mut self, message: Message) {
        if let Some(id) = message.id().filter(|_| message.is_request()) {
            self.in_flight.set_queued(id, true);
        }
        self.queue.push(message);
    }

    /// Answer the requests in flight with an error: those sent on the lost session, and with
    /// `queued` also those waiting for the next one.
    async fn fail_in_flight(&mut self, text: &str, queued: bool) -> Result<(), ClientError> {
        for entry in self.in_flight.drain(queued) {
            if !entry.cancelled {
                self.write(&error_answer(&entry.id, BRIDGE_ERROR, text))
                    .await?;
            }
        }
        Ok(())
    }

    async fn write(&mut self, message: &Message) -> Result<(), ClientError> {
        let mut line = message.one_line();
        line.push('\n');
        let written = async {
            self.output.write_all(line.as_bytes()).await?;
            self.output.flush().await
        };
        written
            .await
            .map_err(|error| ClientError::Lost(format!("cannot write to stdout: {error}")))
    }

    async fn close(&mut self) {
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Up { link, .. } => link.close().await,
            State::Reopening(task) => task.abort(),
            State::Closed | State::Down => {}
        }
    }
}

/// Relay one client message: requests in a task of their own (a long call does not hold up
/// the next message), notifications and answers in order.
async fn send(link: &Link, message: Message) {
    let initialized = message.method() == Some(INITIALIZED);
    if message.is_request() {
        link.send(message);
    } else {
        link.deliver(message).await;
    }
    if initialized {
        link.listen();
    }
}

/// Open a new session with the client's `initialize` under the bridge's own id, until
/// `reconnect_for` has passed (a refused token ends it at once).
async fn reopen(
    endpoint: Arc<Endpoint>,
    initialize: Message,
    kind: Option<TransportKind>,
    reconnect_for: Duration,
    attempt: u64,
) -> Result<Opened, ClientError> {
    let request = initialize.with_id(Value::from(format!("hostmcp-connect-reopen-{attempt}")))?;
    let deadline = Instant::now() + reconnect_for;
    let mut pause = FIRST_PAUSE;
    loop {
        match Link::open(&endpoint, &request, kind).await {
            Ok(mut opened) => {
                let answer = opened.answer.take();
                if let Some(error) = answer.as_ref().and_then(|answer| {
                    let value = answer.value().ok()?;
                    value.get("error").map(Value::to_string)
                }) {
                    return Err(ClientError::Rpc {
                        method: "initialize".to_owned(),
                        code: BRIDGE_ERROR,
                        message: error,
                    });
                }
                opened.link.deliver(notification(INITIALIZED)).await;
                opened.link.listen();
                return Ok(opened);
            }
            Err(error @ ClientError::Unauthorized { .. }) => return Err(error),
            Err(error) if Instant::now() + pause >= deadline => return Err(error),
            Err(error) => {
                tracing::debug!(%error, "the server is not back yet");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
    }
}

/// The client's requests waiting for an answer, by id.
#[derive(Debug, Default)]
struct InFlight(HashMap<String, Entry>);

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    id: Value,
    cancelled: bool,
    /// Waiting in the bridge's queue for a session (not sent on the current one).
    queued: bool,
}

impl InFlight {
    fn start(&mut self, id: &Value) {
        let entry = Entry {
            id: id.clone(),
            cancelled: false,
            queued: false,
        };
        self.0.insert(id_key(id), entry);
    }

    fn cancel(&mut self, id: &Value) {
        if let Some(entry) = self.0.get_mut(&id_key(id)) {
            entry.cancelled = true;
        }
    }

    /// The request is answered (or will never be): stop tracking it.
    fn finish(&mut self, id: &Value) -> Option<Entry> {
        self.0.remove(&id_key(id))
    }

    fn set_queued(&mut self, id: &Value, queued: bool) {
        if let Some(entry) = self.0.get_mut(&id_key(id)) {
            entry.queued = queued;
        }
    }

    /// Stop tracking the requests sent on a session (and with `queued`, the queued ones too).
    fn drain(&mut self, queued: bool) -> Vec<Entry> {
        let keys: Vec<String> = self
            .0
            .iter()
            .filter(|(_, entry)| queued || !entry.queued)
            .map(|(key, _)| key.clone())
            .collect();
        keys.into_iter()
            .filter_map(|key| self.0.remove(&key))
            .collect()
    }
}

#[cfg(test)]
mod tests;
