//! Request bodies of the MCP routes, read whole before a handler sees them. A body that
//! cannot be read (malformed chunked framing, a connection cut mid-body) is the client's
//! fault and gets 400; one over [`MAX_REQUEST_BODY_BYTES`] gets 413; both as a JSON-RPC
//! error. rmcp answers 500 to a body it cannot read, so it only ever gets a read body.

use axum::{
    Json,
    body::{Body, Bytes},
    extract::Request,
    http::{Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::http::MAX_REQUEST_BODY_BYTES;
use crate::tools::authorize::log_excerpt;

/// JSON-RPC "Parse error": the server received something that is not a message.
const PARSE_ERROR: i64 = -32700;

/// Why a request body was refused.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is larger than the {limit}-byte limit")]
    TooLarge { limit: usize },
    #[error("the request body cannot be read: {reason}")]
    Unreadable { reason: String },
}

impl IntoResponse for BodyError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unreadable { .. } => StatusCode::BAD_REQUEST,
        };
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": { "code": PARSE_ERROR, "message": self.to_string() },
        });
        (status, Json(body)).into_response()
    }
}

/// Read `body` whole, up to `limit` bytes.
pub async fn read_whole(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    match Limited::new(body, limit).collect().await {
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

/// Middleware: a POST goes on with its body read whole, or is answered 400 or 413.
pub async fn read_whole_body(request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    match read_whole(body, MAX_REQUEST_BODY_BYTES).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
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

#[cfg(test)]
mod tests {
    use axum::{Router, routing::post};
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
}
