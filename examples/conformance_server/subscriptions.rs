//! `subscriptions/listen` (2026-07-28): every open listen stream hears about list
//! changes that the `test_trigger_*_change` tools announce. rmcp sends the
//! acknowledgement, tags each notification with the subscription id, and drops the
//! notification kinds a stream did not ask for.

use std::time::Duration;

use rmcp::{ErrorData as McpError, service::SubscriptionContext};
use tokio::sync::broadcast;

/// A list whose contents changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListChange {
    Tools,
    Prompts,
}

impl ListChange {
    pub fn of_trigger_tool(name: &str) -> Option<Self> {
        match name {
            "test_trigger_tool_change" => Some(Self::Tools),
            "test_trigger_prompt_change" => Some(Self::Prompts),
            _ => None,
        }
    }
}

/// Announces changes to every listener in this process.
#[derive(Debug, Clone)]
pub struct ChangeHub {
    sender: broadcast::Sender<ListChange>,
}

/// Announce a change a moment after the triggering call returns, as a real server would.
const ANNOUNCE_DELAY: Duration = Duration::from_millis(10);

impl ChangeHub {
    pub fn new() -> Self {
        Self {
            sender: broadcast::channel(64).0,
        }
    }

    pub fn announce(&self, change: ListChange) {
        let sender = self.sender.clone();
        tokio::spawn(async move {
            tokio::time::sleep(ANNOUNCE_DELAY).await;
            // No listener is not an error.
            let _ = sender.send(change);
        });
    }

    /// Forward announced changes to one listen stream until the client closes it.
    pub async fn listen(&self, subscription: SubscriptionContext) -> Result<(), McpError> {
        let mut changes = self.sender.subscribe();
        loop {
            let change = tokio::select! {
                () = subscription.cancelled() => return Ok(()),
                change = changes.recv() => change,
            };
            let sink = subscription.sink();
            let sent = match change {
                Ok(ListChange::Tools) => sink.notify_tool_list_changed().await,
                Ok(ListChange::Prompts) => sink.notify_prompt_list_changed().await,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            };
            // A stream that did not ask for this kind of change refuses it: that is the filter.
            if let Err(error) = sent {
                tracing::debug!(%error, "list change not sent on a listen stream");
            }
        }
    }
}
