//! The wire format of legacy HTTP+SSE (2024-11-05): the `endpoint` event that opens a
//! stream and names where to POST, the `message` events that carry server messages,
//! keep-alive comments, the `POST /messages` query and body, and the plain JSON errors
//! this transport answers with. No session state.

use std::time::Duration;

use axum::{
    Json,
    body::{Body, Bytes},
    http::StatusCode,
    response::{IntoResponse, Response, sse::Event},
};
use futures::SinkExt;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use serde::Deserialize;

/// Messages queued per direction and session before the sender waits.
pub const CHANNEL_CAPACITY: usize = 64;
/// Comment lines on an idle stream keep proxies from cutting it.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Largest JSON-RPC message accepted by `POST /messages`.
pub const MAX_MESSAGE_BYTES: usize = crate::transport::body::MAX_REQUEST_BODY_BYTES;

/// Serialized server messages on their way to a session's stream. A `futures` channel
/// allocates per queued message; a tokio channel would allocate a 32-slot block and
/// cache-padded state up front for every idle session.
pub type Outbound = futures::channel::mpsc::Sender<String>;

/// The first event of a session's stream: where to POST its messages.
pub fn endpoint_event(session_id: &str) -> Event {
    Event::default()
        .event("endpoint")
        .data(format!("/messages?sessionId={session_id}"))
}

/// One serialized server message, as an event.
pub fn message_event(json: String) -> Event {
    Event::default().event("message").data(json)
}

/// The query of `POST /messages`: `sessionId`, or `session_id` as the Python SDK spells it.
#[derive(Debug, Deserialize)]
pub struct MessageQuery {
    #[serde(rename = "sessionId")]
    session_id_camel: Option<String>,
    session_id: Option<String>,
}

impl MessageQuery {
    /// The session named, either spelling.
    pub fn session_id(self) -> Option<String> {
        self.session_id_camel.or(self.session_id)
    }
}

/// The JSON-RPC message of a `POST /messages` body, or the answer refusing it.
pub async fn read_message(body: Body) -> Result<ClientJsonRpcMessage, Response> {
    let body: Bytes = match axum::body::to_bytes(body, MAX_MESSAGE_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            return Err(client_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "message larger than the 4 MiB limit",
            ));
        }
    };
    crate::transport::message::parse_client_message(&body).map_err(|error| {
        client_error(
            StatusCode::BAD_REQUEST,
            &format!("body is not a JSON-RPC message: {error}"),
        )
    })
}

/// Serialize `message` onto the stream; false once the stream is gone.
pub async fn send_message(outbound: &Outbound, message: &ServerJsonRpcMessage) -> bool {
    match serde_json::to_string(message) {
        Ok(line) => outbound.clone().send(line).await.is_ok(),
        Err(error) => {
            tracing::error!(%error, "cannot serialize a server message");
            true
        }
    }
}

/// 404 for a session that is not open, or not the caller's: the same answer for both.
pub fn session_not_found() -> Response {
    client_error(StatusCode::NOT_FOUND, "session not found")
}

pub fn client_error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_id_is_read_in_either_spelling_camel_case_first() {
        let query = |text: &str| -> MessageQuery {
            let uri: axum::http::Uri = format!("/messages?{text}").parse().unwrap();
            axum::extract::Query::try_from_uri(&uri).unwrap().0
        };
        assert_eq!(query("sessionId=a").session_id().as_deref(), Some("a"));
        assert_eq!(query("session_id=b").session_id().as_deref(), Some("b"));
        assert_eq!(
            query("sessionId=a&session_id=b").session_id().as_deref(),
            Some("a")
        );
        assert_eq!(query("other=c").session_id(), None);
    }
}
