//! A short MCP session for the one-shot commands (`hostmcp call`, `hostmcp tools`):
//! initialize as hostmcp, send requests one at a time, hand notifications (progress) to the
//! caller while an answer is awaited, answer the server's pings.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{
    ClientError, Endpoint, Inbound, Link, Message,
    message::{CANCELLED, INITIALIZED, error_answer, id_key, notification},
};

/// The protocol version the one-shot commands ask for.
pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// An initialized session.
#[derive(Debug)]
pub struct Session {
    link: Link,
    inbound: mpsc::Receiver<Inbound>,
    next_id: u64,
}

impl Session {
    pub async fn open(endpoint: &Arc<Endpoint>) -> Result<Self, ClientError> {
        let initialize = Message::from_value(&json!({
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "hostmcp", "version": env!("CARGO_PKG_VERSION")},
            },
        }));
        let opened = Link::open(endpoint, &initialize, None).await?;
        let answer = opened
            .answer
            .ok_or_else(|| ClientError::Protocol("no answer to initialize".to_owned()))?;
        result_of("initialize", &answer)?;
        opened.link.deliver(notification(INITIALIZED)).await;
        let mut session = Self {
            link: opened.link,
            inbound: opened.inbound,
            next_id: 1,
        };
        for message in opened.early {
            session.on_server_message(message, &mut |_| {}).await;
        }
        Ok(session)
    }

    /// Send `method` and wait for its result; notifications meanwhile go to `on_notification`.
    pub async fn request(
        &mut self,
        method: &str,
        params: Value,
        on_notification: &mut (dyn FnMut(&Value) + Send),
    ) -> Result<Value, ClientError> {
        let id = Value::from(self.next_id);
        self.next_id += 1;
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.link.send(Message::from_value(&request));
        let wanted = id_key(&id);
        loop {
            match self.inbound.recv().await {
                Some(Inbound::Message(message))
                    if message.is_answer()
                        && message.id().map(id_key).as_deref() == Some(&wanted) =>
                {
                    return result_of(method, &message);
                }
                Some(Inbound::Message(message)) => {
                    self.on_server_message(message, on_notification).await;
                }
                Some(Inbound::Unanswered { cause, .. } | Inbound::Lost(cause)) => {
                    return Err(cause);
                }
                Some(Inbound::NotDelivered(_)) => return Err(ClientError::SessionGone),
                None => return Err(ClientError::Lost("the link closed".to_owned())),
            }
        }
    }

    /// Cancel the last request sent (`notifications/cancelled`), e.g. on Ctrl-C.
    pub async fn cancel_last(&self, reason: &str) {
        let Some(id) = self.next_id.checked_sub(1).filter(|id| *id > 0) else {
            return;
        };
        let cancel = json!({
            "jsonrpc": "2.0",
            "method": CANCELLED,
            "params": {"requestId": id, "reason": reason},
        });
        self.link.deliver(Message::from_value(&cancel)).await;
    }

    /// A message that is not the awaited answer: a notification for the caller, or a request
    /// from the server (a ping is answered; this client offers nothing else).
    async fn on_server_message(
        &mut self,
        message: Message,
        on_notification: &mut (dyn FnMut(&Value) + Send),
    ) {
        let Ok(value) = message.value() else { return };
        match (message.is_request(), message.id()) {
            (true, Some(id)) if message.method() == Some("ping") => {
                let pong = json!({"jsonrpc": "2.0", "id": id, "result": {}});
                self.link.deliver(Message::from_value(&pong)).await;
            }
            (true, Some(id)) => {
                let refusal = error_answer(id, -32601, "hostmcp call offers no client features");
                self.link.deliver(refusal).await;
            }
            _ if message.method().is_some() => on_notification(&value),
            _ => {}
        }
    }

    /// End the session.
    pub async fn close(self) {
        self.link.close().await;
    }
}

/// The `result` of an answer, or its `error` as [`ClientError::Rpc`].
fn result_of(method: &str, answer: &Message) -> Result<Value, ClientError> {
    let mut value = answer.value()?;
    if let Some(error) = value.get("error") {
        return Err(ClientError::Rpc {
            method: method.to_owned(),
            code: error["code"].as_i64().unwrap_or(0),
            message: error["message"].as_str().unwrap_or("").to_owned(),
        });
    }
    match value.get_mut("result") {
        Some(result) => Ok(result.take()),
        None => Err(ClientError::Protocol(format!(
            "the answer to {method} has neither result nor error"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_its_result_or_its_error() {
        let ok = Message::parse(r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#).unwrap();
        assert_eq!(result_of("tools/list", &ok).unwrap(), json!({"tools": []}));
        let error = Message::parse(
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"unknown tool"}}"#,
        )
        .unwrap();
        match result_of("tools/call", &error) {
            Err(ClientError::Rpc { code, message, .. }) => {
                assert_eq!((code, message.as_str()), (-32602, "unknown tool"));
            }
            other => panic!("{other:?}"),
        }
        let neither = Message::parse(r#"{"jsonrpc":"2.0","id":1}"#).unwrap();
        assert!(matches!(
            result_of("x", &neither),
            Err(ClientError::Protocol(_))
        ));
    }
}
