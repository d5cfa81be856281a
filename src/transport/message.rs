//! Reading a client's JSON-RPC message from a body, the same message rmcp would read, at a
//! fraction of the cost for the one request that dominates a busy server: `tools/call`.
//!
//! rmcp's `ClientJsonRpcMessage` deserializer buffers the body into serde's `Content` tree
//! several times (an untagged message, a shape check, a flattened request) and then tries
//! each variant of the untagged `ClientRequest` in turn: a `tools/call` is the fourteenth,
//! so thirteen variants fail first, each building and dropping a `serde_json::Error`
//! (measured with callgrind: about 30,000 instructions of a stateless echo call's 152,000).
//! [`parse_client_message`] looks at the message's shape first, exactly as rmcp's shape
//! check does (which of `method`, `id`, `result`, `error` are present), and reads a
//! well-formed `tools/call` request straight into its variant. Anything else, and any
//! `tools/call` that does not read cleanly that way, is read by rmcp's own deserializer,
//! so every other message and every error is rmcp's, byte for byte.

use std::borrow::Cow;

use rmcp::model::{CallToolRequest, ClientJsonRpcMessage, ClientRequest, JsonRpcRequest};
use serde::{
    Deserialize, Deserializer,
    de::{IgnoredAny, MapAccess, Visitor},
};

/// The method this module reads without rmcp's variant search.
const CALL_TOOL: &str = "tools/call";

/// Read `body` as a client's JSON-RPC message, as `serde_json::from_slice` into rmcp's
/// `ClientJsonRpcMessage` does (same message, same errors), faster for `tools/call`.
pub fn parse_client_message(body: &[u8]) -> serde_json::Result<ClientJsonRpcMessage> {
    if let Ok(shape) = serde_json::from_slice::<Shape<'_>>(body)
        && shape.is_request()
        && shape.method.as_deref() == Some(CALL_TOOL)
        && let Ok(request) = serde_json::from_slice::<JsonRpcRequest<CallToolRequest>>(body)
    {
        return Ok(ClientJsonRpcMessage::Request(JsonRpcRequest {
            jsonrpc: request.jsonrpc,
            id: request.id,
            request: ClientRequest::CallToolRequest(request.request),
        }));
    }
    serde_json::from_slice(body)
}

/// The keys rmcp's shape check looks at, and the method when it is a string.
#[derive(Default)]
struct Shape<'a> {
    method: Option<Cow<'a, str>>,
    has_method: bool,
    has_id: bool,
    has_result: bool,
    has_error: bool,
}

impl Shape<'_> {
    /// A request to rmcp: `method` and `id`, neither `result` nor `error`.
    fn is_request(&self) -> bool {
        self.has_method && self.has_id && !self.has_result && !self.has_error
    }
}

impl<'de> Deserialize<'de> for Shape<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ShapeVisitor;

        impl<'de> Visitor<'de> for ShapeVisitor {
            type Value = Shape<'de>;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a JSON-RPC 2.0 message")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut shape = Shape::default();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        "method" => {
                            shape.has_method = true;
                            shape.method = map.next_value::<Option<Cow<'de, str>>>().ok().flatten();
                            continue;
                        }
                        "id" => shape.has_id = true,
                        "result" => shape.has_result = true,
                        "error" => shape.has_error = true,
                        _ => {}
                    }
                    map.next_value::<IgnoredAny>()?;
                }
                Ok(shape)
            }
        }

        deserializer.deserialize_map(ShapeVisitor)
    }
}

#[cfg(test)]
mod tests;
