//! One JSON-RPC message as the text its sender wrote, and the few fields the client reads.

use serde::Deserialize;
use serde_json::Value;

use super::ClientError;

/// The method whose params a bridge keeps, to open a new session after a server restart.
pub const INITIALIZE: &str = "initialize";
/// The notification a client sends once it has the server's initialize answer.
pub const INITIALIZED: &str = "notifications/initialized";
/// The notification that cancels a request (`params.requestId`).
pub const CANCELLED: &str = "notifications/cancelled";

/// A JSON-RPC message: its text, relayed as is, and the fields routing needs.
#[derive(Debug, Clone)]
pub struct Message {
    text: String,
    id: Option<Value>,
    method: Option<String>,
}

/// The fields read from every message; the rest of the text is not looked at.
#[derive(Deserialize)]
struct Fields {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    method: Option<String>,
}

impl Message {
    /// `text` if it is one JSON object (a JSON-RPC request, notification or answer).
    pub fn parse(text: impl Into<String>) -> Result<Self, ClientError> {
        let text = text.into();
        if !text.trim_start().starts_with('{') {
            return Err(ClientError::Protocol(format!(
                "not a JSON object: {}",
                crate::log_excerpt::log_excerpt(&text)
            )));
        }
        let fields: Fields = serde_json::from_str(&text).map_err(|error| {
            ClientError::Protocol(format!(
                "{error} in {}",
                crate::log_excerpt::log_excerpt(&text)
            ))
        })?;
        Ok(Self {
            text,
            id: fields.id,
            method: fields.method,
        })
    }

    /// A message made here (a request of `hostmcp call`, an error answer of the bridge).
    pub fn from_value(value: &Value) -> Self {
        Self {
            text: value.to_string(),
            id: value.get("id").cloned().filter(|id| !id.is_null()),
            method: value
                .get("method")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }

    /// The text as the sender wrote it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text on one line, for newline-delimited stdio. Raw line breaks cannot occur inside
    /// a JSON string, so outside one they are whitespace and a space keeps the meaning.
    pub fn one_line(&self) -> String {
        if self.text.contains(['\n', '\r']) {
            self.text.replace(['\n', '\r'], " ")
        } else {
            self.text.clone()
        }
    }

    pub fn id(&self) -> Option<&Value> {
        self.id.as_ref()
    }

    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// A request: a method and an id (an answer is expected).
    pub fn is_request(&self) -> bool {
        self.method.is_some() && self.id.is_some()
    }

    /// An answer (result or error) to a request.
    pub fn is_answer(&self) -> bool {
        self.method.is_none() && self.id.is_some()
    }

    pub fn is_initialize(&self) -> bool {
        self.is_request() && self.method() == Some(INITIALIZE)
    }

    /// The whole message as a JSON value (for the few messages the client edits or reads).
    pub fn value(&self) -> Result<Value, ClientError> {
        serde_json::from_str(&self.text).map_err(|error| ClientError::Protocol(error.to_string()))
    }

    /// The id of the request a `notifications/cancelled` cancels.
    pub fn cancelled_request(&self) -> Option<Value> {
        if self.method() != Some(CANCELLED) {
            return None;
        }
        self.value().ok()?.get("params")?.get("requestId").cloned()
    }

    /// This request with another id (the bridge's re-initialize under its own id).
    pub fn with_id(&self, id: Value) -> Result<Self, ClientError> {
        let mut value = self.value()?;
        value["id"] = id;
        Ok(Self::from_value(&value))
    }
}

/// The key a request is tracked by: its id as JSON text (`7` and `"7"` stay apart).
pub fn id_key(id: &Value) -> String {
    id.to_string()
}

/// A JSON-RPC error answer to the request `id`.
pub fn error_answer(id: &Value, code: i64, message: &str) -> Message {
    Message::from_value(&serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": code, "message": message},
    }))
}

/// A JSON-RPC notification.
pub fn notification(method: &str) -> Message {
    Message::from_value(&serde_json::json!({"jsonrpc": "2.0", "method": method}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_keeps_its_text_and_reads_only_routing_fields() {
        let text = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"b":1,"a":2}}"#;
        let message = Message::parse(text).unwrap();
        assert_eq!(message.text(), text, "key order and spacing as sent");
        assert!(message.is_request() && !message.is_answer());
        assert_eq!(message.method(), Some("tools/call"));
        assert_eq!(id_key(message.id().unwrap()), "7");

        let answer = Message::parse(r#"{"jsonrpc":"2.0","id":"7","result":{}}"#).unwrap();
        assert!(answer.is_answer() && !answer.is_request());
        assert_eq!(
            id_key(answer.id().unwrap()),
            "\"7\"",
            "string 7 is not number 7"
        );

        let notification = Message::parse(r#"{"jsonrpc":"2.0","method":"notifications/progress"}"#);
        let notification = notification.unwrap();
        assert!(!notification.is_request() && !notification.is_answer());
    }

    #[test]
    fn only_a_json_object_is_a_message() {
        assert!(Message::parse("not json").is_err());
        assert!(Message::parse("[1,2]").is_err());
        assert!(Message::parse("{}").is_ok());
    }

    #[test]
    fn line_breaks_between_tokens_become_spaces() {
        let message = Message::parse("{\"id\": 1,\r\n \"result\": {\"text\": \"a\\nb\"}}").unwrap();
        let line = message.one_line();
        assert!(!line.contains(['\n', '\r']));
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            value["result"]["text"], "a\nb",
            "escaped newlines in strings stay"
        );
        // Near miss: a single-line message is relayed byte for byte.
        assert_eq!(
            Message::parse("{\"id\":1}").unwrap().one_line(),
            "{\"id\":1}"
        );
    }

    #[test]
    fn the_cancelled_request_is_read_from_a_cancel_notification_only() {
        let cancel = Message::parse(
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}}"#,
        )
        .unwrap();
        assert_eq!(cancel.cancelled_request(), Some(Value::from(3)));
        let progress = Message::parse(
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"requestId":3}}"#,
        )
        .unwrap();
        assert_eq!(progress.cancelled_request(), None);
    }

    #[test]
    fn a_request_takes_a_new_id_and_keeps_its_params() {
        let init = Message::parse(
            r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}"#,
        )
        .unwrap();
        assert!(init.is_initialize());
        let again = init.with_id(Value::from("re-1")).unwrap();
        assert_eq!(again.id(), Some(&Value::from("re-1")));
        assert_eq!(
            again.value().unwrap()["params"]["protocolVersion"],
            "2025-06-18"
        );
    }
}
