//! Request bodies on `/mcp`: over `MAX_REQUEST_BODY_BYTES` is 413, a body that is not JSON
//! is 400 with -32700, JSON that is not a JSON-RPC message 400 with -32600, a body cut
//! short (what hyper reports for bad chunked framing) 400; all as JSON-RPC errors. A body
//! is only read once its sender is authenticated. Each next to a body that is served.

use axum::{
    body::{Body, Bytes},
    http::{StatusCode, header},
};
use hostmcp::transport::http::MAX_REQUEST_BODY_BYTES;
use serde_json::{Value, json};

use crate::bench::{ALICE, Bench, STATELESS_ERA, Who, list_2026};

/// The stateless `tools/list` of [`list_2026`] with `body` instead of its own.
fn listing_with_body(who: Option<Who>, body: Body) -> axum::http::Request<Body> {
    let (parts, _) = list_2026(who).into_parts();
    axum::http::Request::from_parts(parts, body)
}

/// A stateless `tools/list` whose `_meta` carries `padding` bytes of filler.
fn padded_listing(padding: usize) -> String {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/list",
        "params": {"_meta": {
            "io.modelcontextprotocol/protocolVersion": STATELESS_ERA,
            "io.modelcontextprotocol/clientInfo": {"name": "http-surface", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {},
            "padding": "x".repeat(padding),
        }},
    })
    .to_string()
}

fn error_code(reply: &crate::bench::Reply) -> Value {
    reply.json()["error"]["code"].clone()
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_one_under_it_is_served() {
    let bench = Bench::new();
    let too_large = padded_listing(MAX_REQUEST_BODY_BYTES);
    assert!(too_large.len() > MAX_REQUEST_BODY_BYTES);
    let refused = bench
        .send(listing_with_body(Some(ALICE), too_large.into()))
        .await;
    assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&refused), -32700);

    // Near miss: the same message with filler up to just under the limit.
    let fits = padded_listing(MAX_REQUEST_BODY_BYTES - 1024);
    assert!(fits.len() <= MAX_REQUEST_BODY_BYTES);
    let served = bench
        .send(listing_with_body(Some(ALICE), fits.into()))
        .await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.text());
    assert!(served.result()["tools"].is_array());
}

#[tokio::test]
async fn an_unauthenticated_body_is_not_read() {
    let bench = Bench::new();
    let too_large = padded_listing(MAX_REQUEST_BODY_BYTES);
    let length = too_large.len();
    let mut request = listing_with_body(None, too_large.into());
    // What hyper's client writes on the wire for this body; the refusal looks at it.
    request
        .headers_mut()
        .insert(header::CONTENT_LENGTH, length.into());
    let refused = bench.send(request).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "not 413");
    assert_eq!(refused.header("connection"), Some("close"));
    // Near miss: with a token the body is read, and found too large.
    let read = bench
        .send(listing_with_body(
            Some(ALICE),
            padded_listing(MAX_REQUEST_BODY_BYTES).into(),
        ))
        .await;
    assert_eq!(read.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_400_parse_error() {
    let bench = Bench::new();
    let refused = bench
        .send(listing_with_body(Some(ALICE), "this is not json".into()))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&refused), -32700);
    assert_eq!(refused.json()["jsonrpc"], "2.0");

    // Near miss: the same request with its JSON body.
    let served = bench.send(list_2026(Some(ALICE))).await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.text());
}

#[tokio::test]
async fn json_that_is_not_a_json_rpc_message_is_400_invalid_request() {
    let bench = Bench::new();
    for body in [json!({"hello": "world"}), json!([1, 2]), json!("ping")] {
        let refused = bench
            .send(listing_with_body(Some(ALICE), body.to_string().into()))
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(&refused), -32600, "{body}");
    }
    // Near miss: a JSON-RPC message.
    let served = bench.send(list_2026(Some(ALICE))).await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.text());
}

#[tokio::test]
async fn a_body_cut_short_is_400_and_the_whole_body_is_served() {
    let bench = Bench::new();
    let message = padded_listing(16);
    let (head, _) = message.split_at(message.len() / 2);
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::copy_from_slice(head.as_bytes())),
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "invalid chunk size line",
        )),
    ];
    let cut = Body::from_stream(futures::stream::iter(chunks));
    let refused = bench.send(listing_with_body(Some(ALICE), cut)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&refused), -32700);
    let message_text = refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message_text.contains("invalid chunk size line"),
        "{message_text}"
    );

    // Near miss: the same body in two chunks, both delivered.
    let (head, tail) = message.split_at(message.len() / 2);
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::copy_from_slice(head.as_bytes())),
        Ok(Bytes::copy_from_slice(tail.as_bytes())),
    ];
    let whole = Body::from_stream(futures::stream::iter(chunks));
    let mut request = listing_with_body(Some(ALICE), whole);
    request.headers_mut().remove(header::CONTENT_LENGTH);
    let served = bench.send(request).await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.text());
}
