//! The fast reading gives rmcp's message for every body, and rmcp's error for every body
//! rmcp refuses: each body is read both ways and the two compared (Debug, which shows the
//! variant, the params and the `_meta` extensions).

use rmcp::model::{ClientJsonRpcMessage, ClientRequest, JsonRpcMessage};

use super::parse_client_message;

/// rmcp's own reading.
fn rmcp_reads(body: &str) -> Result<String, String> {
    serde_json::from_slice::<ClientJsonRpcMessage>(body.as_bytes())
        .map(|message| format!("{message:?}"))
        .map_err(|error| error.to_string())
}

fn fast_reads(body: &str) -> Result<String, String> {
    parse_client_message(body.as_bytes())
        .map(|message| format!("{message:?}"))
        .map_err(|error| error.to_string())
}

fn is_call_tool(body: &str) -> bool {
    matches!(
        parse_client_message(body.as_bytes()),
        Ok(JsonRpcMessage::Request(request))
            if matches!(request.request, ClientRequest::CallToolRequest(_))
    )
}

const CALL: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi","n":1.5,"big":18446744073709551615,"neg":-3}}}"#;

#[test]
fn a_tools_call_reads_as_rmcp_reads_it_with_its_meta() {
    let with_meta = r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"echo","arguments":{},"_meta":{"progressToken":3,"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
    let escaped = r#"{"method":"tools\/call","jsonrpc":"2.0","params":{"name":"e\u0063ho"},"id":1,"extra":[1,{"x":null}]}"#;
    for body in [CALL, with_meta, escaped] {
        assert!(is_call_tool(body), "{body}");
        assert_eq!(fast_reads(body), rmcp_reads(body), "{body}");
    }
}

#[test]
fn every_other_message_and_every_refusal_is_rmcps() {
    let bodies = [
        // Near misses of a tools/call: rmcp decides each of them.
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"arguments":{}}}"#,
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/call"}"#,
        r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"echo"}}"#,
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo"},"result":{}}"#,
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo"},"error":{}}"#,
        r#"{"jsonrpc":"1.0","id":7,"method":"tools/call","params":{"name":"echo"}}"#,
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","method":"ping","params":{"name":"echo"}}"#,
        r#"{"jsonrpc":"2.0","id":[1],"method":"tools/call","params":{"name":"echo"}}"#,
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":7}}"#,
        r#"{"jsonrpc":"2.0","id":7,"method":7,"params":{"name":"echo"}}"#,
        // Other requests, notifications, answers.
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"vendor/thing","params":{"a":1}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
        r#"{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"no"}}"#,
        // Not messages at all.
        "",
        "[]",
        "null",
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}"#,
        r#"{"jsonrpc":"2.0","id":1}"#,
    ];
    for body in bodies {
        assert!(!is_call_tool(body) || rmcp_reads(body).is_ok(), "{body}");
        assert_eq!(fast_reads(body), rmcp_reads(body), "{body}");
    }
}

#[test]
fn the_shape_is_rmcps_shape_check() {
    use super::{CALL_TOOL, Shape};
    fn shape(body: &str) -> Shape<'_> {
        serde_json::from_slice(body.as_bytes()).unwrap()
    }
    let call = shape(CALL);
    assert!(call.is_request());
    assert_eq!(call.method.as_deref(), Some(CALL_TOOL));
    // Near misses: a notification, an answer, a request carrying a result.
    assert!(!shape(r#"{"jsonrpc":"2.0","method":"tools/call"}"#).is_request());
    assert!(!shape(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#).is_request());
    assert!(!shape(r#"{"id":1,"method":"tools/call","result":1}"#).is_request());
}
