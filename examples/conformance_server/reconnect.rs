//! `test_reconnection` (SEP-1699, 2025 wire): the server closes a tool call's SSE
//! stream after the priming event, before the result; the client reconnects with
//! `GET` + `Last-Event-ID` and must get the result there.
//!
//! rmcp keeps each stream's events for resumption but gives a handler no way to close
//! its own stream, so this layer does it from outside: for a `tools/call` of
//! `test_reconnection` it passes on the first SSE event (the priming event, with its
//! `id:` and `retry:`) and ends the response. The tool itself waits long enough for
//! the client to reconnect, so rmcp delivers the result on the resumed stream.

use std::time::Duration;

use axum::{
    body::{Body, Bytes, to_bytes},
    extract::Request,
    http::{Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures::StreamExt;
use hostmcp::transport::http::MAX_REQUEST_BODY_BYTES;
use serde_json::Value;

/// The tool whose stream is cut.
pub const TOOL: &str = "test_reconnection";
/// How long `test_reconnection` runs: ample time for the client to reconnect.
pub const TOOL_DURATION: Duration = Duration::from_millis(500);
/// The priming event is sent at once; do not wait for it forever.
const PRIMING_TIMEOUT: Duration = Duration::from_secs(5);

/// Middleware: cut the SSE stream of a `test_reconnection` call after its first event.
pub async fn cut_reconnection_stream(request: Request, next: Next) -> Response {
    if request.method() != Method::POST || request.uri().path() != "/mcp" {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_REQUEST_BODY_BYTES).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    let cut = calls_reconnection_tool(&bytes);
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if cut && is_event_stream(&response) {
        first_event_only(response).await
    } else {
        response
    }
}

fn calls_reconnection_tool(body: &[u8]) -> bool {
    let Ok(message) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    message["method"] == "tools/call" && message["params"]["name"] == TOOL
}

fn is_event_stream(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"))
}

/// The response with its body ended after the first SSE event. Dropping the rest of
/// the body closes rmcp's side of the stream; its events stay cached for resumption.
async fn first_event_only(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let mut frames = body.into_data_stream();
    let mut first = Vec::new();
    let read = tokio::time::timeout(PRIMING_TIMEOUT, async {
        while let Some(Ok(frame)) = frames.next().await {
            first.extend_from_slice(&frame);
            if let Some(end) = find_event_end(&first) {
                first.truncate(end);
                return;
            }
        }
    })
    .await;
    if read.is_err() {
        tracing::warn!("no priming event on the {TOOL} stream");
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(Bytes::from(first)))
}

/// The length of the first complete SSE event (through its blank line), if any.
fn find_event_end(buffer: &[u8]) -> Option<usize> {
    [&b"\n\n"[..], b"\r\n\r\n", b"\r\r"]
        .iter()
        .filter_map(|separator| {
            buffer
                .windows(separator.len())
                .position(|window| window == *separator)
                .map(|at| at + separator.len())
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_event_ends_at_its_blank_line() {
        assert_eq!(
            find_event_end(b"id: 0/0\nretry: 3000\ndata:\n\nid: 1"),
            Some(27)
        );
        assert_eq!(find_event_end(b"id: 0\r\n\r\n"), Some(9));
        assert_eq!(find_event_end(b"id: 0\ndata:"), None);
    }

    #[test]
    fn only_a_call_of_the_reconnection_tool_is_cut() {
        let call = |name: &str| {
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}"}}}}"#
            )
        };
        assert!(calls_reconnection_tool(call(TOOL).as_bytes()));
        assert!(!calls_reconnection_tool(
            call("test_simple_text").as_bytes()
        ));
        assert!(!calls_reconnection_tool(b"not json"));
    }
}
