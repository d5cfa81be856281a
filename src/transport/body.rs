//! Request bodies of the MCP routes, read whole before a handler sees them. A body that
//! cannot be read (malformed chunked framing, a connection cut mid-body) is the client's
//! fault and gets 400; one over [`MAX_REQUEST_BODY_BYTES`] gets 413; both as a JSON-RPC
//! error. rmcp answers 500 to a body it cannot read, so it only ever gets a read body.
//! A body not read whole within [`BODY_READ_TIMEOUT`] gets 408: a client trickling a
//! byte a second cannot hold a connection and a stream slot forever. A JSON body rmcp
//! cannot take as a message (its 415) gets 400 with -32700 when it is not JSON at all
//! and -32600 when it is JSON but not a JSON-RPC message: checked only on that refusal,
//! so a served request pays nothing.

use axum::{
    Json,
    body::{Body, Bytes},
    extract::Request,
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use std::time::Duration;

use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::log_excerpt::log_excerpt;

/// Largest JSON-RPC message accepted in a POST body (`/mcp` and `/messages`).
pub const MAX_REQUEST_BODY_BYTES: usize = 4 * 1024 * 1024;

/// JSON-RPC "Parse error": the server received something that is not a message.
const PARSE_ERROR: i64 = -32700;
/// JSON-RPC "Invalid Request": JSON, but not a JSON-RPC message.
const INVALID_REQUEST: i64 = -32600;

/// Longest a request body may take to arrive whole.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request body was refused.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is larger than the {limit}-byte limit")]
    TooLarge { limit: usize },
    #[error("the request body cannot be read: {reason}")]
    Unreadable { reason: String },
    #[error("the request body did not arrive within {} s", .limit.as_secs())]
    TimedOut { limit: Duration },
    #[error("the request body is not JSON: {reason}")]
    NotJson { reason: String },
    #[error("the request body is JSON but not a JSON-RPC message")]
    NotJsonRpc,
}

impl IntoResponse for BodyError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TimedOut { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::Unreadable { .. } | Self::NotJson { .. } | Self::NotJsonRpc => {
                StatusCode::BAD_REQUEST
            }
        };
        let code = match self {
            Self::NotJsonRpc => INVALID_REQUEST,
            _ => PARSE_ERROR,
        };
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": { "code": code, "message": self.to_string() },
        });
        (status, Json(body)).into_response()
    }
}

/// Read `body` whole, up to `limit` bytes, within `timeout`.
pub async fn read_whole(body: Body, limit: usize, timeout: Duration) -> Result<Bytes, BodyError> {
    let Ok(read) = tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await else {
        return Err(BodyError::TimedOut { limit: timeout });
    };
    match read {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(BodyError::TooLarge { limit }),
        Err(error) => Err(BodyError::Unreadable {
            reason: source_chain(error.as_ref()),
        }),
    }
}

/// "error reading a body from connection: invalid chunk size line": what hyper says.
fn source_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        // Wrappers (axum's error) repeat what they wrap: say each thing once.
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Middleware: a POST goes on with its body read whole, or is answered 400, 408 or 413.
pub async fn read_whole_body(request: Request, next: Next) -> Response {
    read_whole_body_within(request, next, BODY_READ_TIMEOUT).await
}

/// [`read_whole_body`] with its time limit given.
pub async fn read_whole_body_within(request: Request, next: Next, timeout: Duration) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let json = is_json(&parts.headers);
    match read_whole(body, MAX_REQUEST_BODY_BYTES, timeout).await {
        Ok(bytes) => {
            // A cheap clone (a reference count): kept to explain rmcp's 415.
            let kept = bytes.clone();
            let response = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            if json && response.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
                return not_a_message(&kept).into_response();
            }
            response
        }
        Err(error) => {
            tracing::info!(
                %error,
                path = %log_excerpt(parts.uri.path()),
                "request body refused"
            );
            error.into_response()
        }
    }
}

/// Does the request say its body is `application/json` (the only type rmcp takes)?
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            let essence = value.split_once(';').map_or(value, |(essence, _)| essence);
            essence.trim().eq_ignore_ascii_case("application/json")
        })
}

/// Why rmcp refused a JSON-typed body it read: not JSON, or not a JSON-RPC message.
fn not_a_message(body: &[u8]) -> BodyError {
    match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        Err(error) => BodyError::NotJson {
            reason: error.to_string(),
        },
        Ok(_) => BodyError::NotJsonRpc,
    }
}

#[cfg(test)]
mod tests {
    use axum::{Router, routing::post};
    use futures::StreamExt as _;
    use tower::ServiceExt;

    use super::*;

    fn app() -> Router {
        Router::new()
            .route("/mcp", post(|body: Bytes| async move { body }))
            // The echo handler's own 2 MB default must not answer for the middleware.
            .layer(axum::extract::DefaultBodyLimit::disable())
            .layer(axum::middleware::from_fn(read_whole_body))
    }

    async fn send(body: Body) -> (StatusCode, serde_json::Value) {
        let request = Request::post("/mcp").body(body).unwrap();
        let response = app().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    /// A body whose second chunk is a read error, as hyper yields for bad chunk framing.
    fn broken_stream() -> Body {
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(b"{\"jsonrpc\":")),
            Err(std::io::Error::other("invalid chunk size line")),
        ];
        Body::from_stream(futures::stream::iter(chunks))
    }

    #[tokio::test]
    async fn an_unreadable_body_is_a_400_parse_error_and_a_streamed_good_one_passes() {
        let (status, error) = send(broken_stream()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error["error"]["code"], PARSE_ERROR);
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("invalid chunk size line"), "{message}");

        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from_static(b"[1,")),
            Ok(Bytes::from_static(b"2]")),
        ];
        let (status, echoed) = send(Body::from_stream(futures::stream::iter(chunks))).await;
        assert_eq!(
            (status, echoed),
            (StatusCode::OK, serde_json::json!([1, 2]))
        );
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_413_and_one_at_the_limit_is_read() {
        let at_limit = vec![b' '; MAX_REQUEST_BODY_BYTES];
        let (status, _) = send(Body::from(at_limit)).await;
        assert_eq!(status, StatusCode::OK);
        let over = vec![b' '; MAX_REQUEST_BODY_BYTES + 1];
        let (status, error) = send(Body::from(over)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(error["error"]["code"], PARSE_ERROR);
    }

    /// The middleware, with `timeout`, in front of a handler that answers like rmcp: 415
    /// for a body it cannot take as a message, else the body.
    fn rmcp_like(timeout: Duration) -> Router {
        let handler = |body: Bytes| async move {
            if serde_json::from_slice::<serde_json::Value>(&body)
                .is_ok_and(|value| value.get("jsonrpc").is_some())
            {
                (StatusCode::OK, body).into_response()
            } else {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "fail to deserialize").into_response()
            }
        };
        Router::new()
            .route("/mcp", post(handler))
            .layer(axum::extract::DefaultBodyLimit::disable())
            .layer(axum::middleware::from_fn(move |request, next| {
                read_whole_body_within(request, next, timeout)
            }))
    }

    async fn post_to(
        app: Router,
        content_type: &str,
        body: Body,
    ) -> (StatusCode, serde_json::Value) {
        let request = Request::post("/mcp")
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    #[tokio::test]
    async fn a_body_that_stalls_is_a_408_and_a_slow_one_that_arrives_in_time_is_served() {
        let timeout = Duration::from_millis(300);
        let stalled = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"{"))])
            .chain(futures::stream::pending());
        let started = std::time::Instant::now();
        let (status, error) = post_to(
            rmcp_like(timeout),
            "application/json",
            Body::from_stream(stalled),
        )
        .await;
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(error["error"]["code"], PARSE_ERROR);
        assert!(started.elapsed() < Duration::from_secs(10));

        let slow =
            futures::stream::iter([&b"{\"jsonrpc\":"[..], b"\"2.0\"}"]).then(|chunk| async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok::<_, std::io::Error>(Bytes::from_static(chunk))
            });
        let (status, echoed) = post_to(
            rmcp_like(timeout),
            "application/json",
            Body::from_stream(slow),
        )
        .await;
        assert_eq!(
            (status, echoed),
            (StatusCode::OK, serde_json::json!({"jsonrpc": "2.0"}))
        );
    }

    #[tokio::test]
    async fn rmcps_415_for_a_json_typed_body_becomes_a_400_with_the_json_rpc_code() {
        let app = || rmcp_like(BODY_READ_TIMEOUT);
        let (status, error) = post_to(app(), "application/json", Body::from("{not json")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error["error"]["code"], PARSE_ERROR);
        let (status, error) = post_to(
            app(),
            "application/json; charset=utf-8",
            Body::from("[1, 2]"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error["error"]["code"], INVALID_REQUEST);
        // Near misses: a body of another type keeps its 415, a message is served.
        let (status, _) = post_to(app(), "text/plain", Body::from("{not json")).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let (status, _) = post_to(
            app(),
            "application/json",
            Body::from(r#"{"jsonrpc":"2.0"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
}
