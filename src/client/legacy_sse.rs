//! The legacy HTTP+SSE transport (2024-11-05) as a client: a GET opens the event stream,
//! whose first event (`endpoint`) names the URL to POST messages to; every answer and
//! notification of the session comes back on that one stream, and the session ends with it.

use std::{sync::Arc, time::Duration};

use reqwest::{Method, StatusCode, Url, header};
use tokio::{sync::mpsc, task::AbortHandle};

use super::{
    ClientError, Endpoint, Inbound, Message,
    events::{Event, Events},
};

/// How long the server may take to name its POST endpoint.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(15);

/// One session with a legacy HTTP+SSE server.
#[derive(Debug)]
pub struct LegacySse {
    endpoint: Arc<Endpoint>,
    post_url: Url,
    inbound: mpsc::Sender<Inbound>,
    reader: AbortHandle,
}

impl LegacySse {
    /// GET the stream at `sse_url`, wait for the `endpoint` event, and relay the stream's
    /// messages to `inbound` from then on (its end is the link lost).
    pub(crate) async fn open(
        endpoint: Arc<Endpoint>,
        sse_url: Url,
        inbound: mpsc::Sender<Inbound>,
    ) -> Result<Arc<Self>, ClientError> {
        let response = endpoint
            .request(Method::GET, sse_url.clone())
            .header(header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|error| ClientError::from_http(&sse_url, &error))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(ClientError::Unauthorized {
                status: status.as_u16(),
            });
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(ClientError::Status {
                what: "the GET of the SSE stream",
                status: status.as_u16(),
                body,
            });
        }
        let mut events = Events::new(response);
        let post_url = tokio::time::timeout(ENDPOINT_TIMEOUT, endpoint_event(&mut events))
            .await
            .map_err(|_| ClientError::Timeout {
                seconds: ENDPOINT_TIMEOUT.as_secs(),
                what: "waiting for the SSE endpoint event",
            })??;
        let post_url = post_url_of(&sse_url, &post_url)?;
        let reader_inbound = inbound.clone();
        let reader = tokio::spawn(async move { read(events, reader_inbound).await });
        Ok(Arc::new(Self {
            endpoint,
            post_url,
            inbound,
            reader: reader.abort_handle(),
        }))
    }

    /// POST `message` in a task of its own; its answer comes on the stream.
    pub(crate) fn send(self: &Arc<Self>, message: Message) {
        let link = Arc::clone(self);
        tokio::spawn(async move { link.post(message).await });
    }

    pub(crate) async fn post(&self, message: Message) {
        let response = self
            .endpoint
            .request(Method::POST, self.post_url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .body(message.text().to_owned())
            .send()
            .await;
        let failure = match response {
            Err(error) => ClientError::from_http(&self.post_url, &error),
            Ok(response) if response.status().is_success() => return,
            Ok(response) => match response.status() {
                StatusCode::NOT_FOUND => ClientError::SessionGone,
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ClientError::Unauthorized {
                    status: response.status().as_u16(),
                },
                status => ClientError::Status {
                    what: "a POST",
                    status: status.as_u16(),
                    body: response.text().await.unwrap_or_default(),
                },
            },
        };
        if matches!(failure, ClientError::SessionGone) && message.is_request() {
            let _ = self
                .inbound
                .send(Inbound::NotDelivered(message.clone()))
                .await;
        }
        let inbound = match failure {
            ClientError::SessionGone | ClientError::Unreachable { .. } => Inbound::Lost(failure),
            cause => match message.id().filter(|_| message.is_request()) {
                Some(id) => Inbound::Unanswered {
                    id: id.clone(),
                    cause,
                },
                None => {
                    tracing::warn!(error = %cause, "a message to the server was not taken");
                    return;
                }
            },
        };
        let _ = self.inbound.send(inbound).await;
    }

    /// End the session: the server ends it when its stream closes.
    pub(crate) fn close(&self) {
        self.reader.abort();
    }
}

impl Drop for LegacySse {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

async fn endpoint_event(events: &mut Events) -> Result<String, ClientError> {
    match events.next().await {
        Some(Ok(Event::Endpoint(url))) => Ok(url),
        Some(Ok(Event::Message(_))) => Err(ClientError::Protocol(
            "the SSE stream sent a message before its endpoint event".to_owned(),
        )),
        Some(Err(error)) => Err(error),
        None => Err(ClientError::Lost(
            "the SSE stream ended before its endpoint event".to_owned(),
        )),
    }
}

/// The POST URL an `endpoint` event names, resolved against the stream's URL. It must be on
/// the stream's origin: the token goes with every POST, and a server must not be able to
/// send it elsewhere.
fn post_url_of(sse_url: &Url, named: &str) -> Result<Url, ClientError> {
    let url = sse_url
        .join(named.trim())
        .map_err(|error| ClientError::Protocol(format!("endpoint event {named:?}: {error}")))?;
    if url.origin() != sse_url.origin() {
        return Err(ClientError::Protocol(format!(
            "the endpoint event names another origin ({}) than the SSE stream's",
            url.origin().ascii_serialization()
        )));
    }
    Ok(url)
}

async fn read(mut events: Events, inbound: mpsc::Sender<Inbound>) {
    let cause = loop {
        match events.next().await {
            Some(Ok(Event::Message(message))) => {
                if inbound.send(Inbound::Message(message)).await.is_err() {
                    return;
                }
            }
            Some(Ok(Event::Endpoint(_))) => {}
            Some(Err(error)) => break error,
            None => break ClientError::Lost("the server ended the SSE stream".to_owned()),
        }
    };
    let _ = inbound.send(Inbound::Lost(cause)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_post_url_is_resolved_on_the_streams_origin_only() {
        let sse = Url::parse("http://127.0.0.1:8000/sse").unwrap();
        let url = post_url_of(&sse, "/messages?sessionId=abc").unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:8000/messages?sessionId=abc");
        let same = post_url_of(&sse, "http://127.0.0.1:8000/messages?sessionId=abc").unwrap();
        assert_eq!(same, url);
        // Near misses: another host, port or scheme would carry the token elsewhere.
        for other in [
            "http://evil.example/messages",
            "http://127.0.0.1:9000/messages",
            "https://127.0.0.1:8000/messages",
            "//evil.example/messages",
        ] {
            assert!(
                matches!(post_url_of(&sse, other), Err(ClientError::Protocol(_))),
                "{other}"
            );
        }
    }
}
