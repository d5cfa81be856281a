//! Progress for a call the gateway forwards: when the client sent a progress token, each
//! progress update (a host's own progress, or a fan-out's "n of m hosts done") goes out as
//! a `notifications/progress` on the request's stream (or the session's peer), through a
//! channel so the bus side never waits on the client.

use rmcp::{
    RoleServer,
    model::{ProgressNotification, ProgressNotificationParam, ServerNotification},
    service::RequestContext,
};
use tokio::sync::mpsc;

use crate::handler_link::RequestNotifier;

/// One update: how far, of how much, and what happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub progress: f64,
    pub total: Option<f64>,
    pub message: Option<String>,
}

/// Sends updates for one request; a no-op when the client asked for none.
#[derive(Debug, Clone)]
pub struct Progress {
    sender: Option<mpsc::UnboundedSender<Update>>,
}

impl Progress {
    /// The progress channel of the request in `context`, forwarding until it is dropped.
    pub fn of(context: &RequestContext<RoleServer>) -> Self {
        let Some(token) = context.meta.get_progress_token() else {
            return Self { sender: None };
        };
        let (sender, mut updates) = mpsc::unbounded_channel::<Update>();
        let notifier = context.extensions.get::<RequestNotifier>().cloned();
        let peer = context.peer.clone();
        tokio::spawn(async move {
            while let Some(update) = updates.recv().await {
                let mut param = ProgressNotificationParam::new(token.clone(), update.progress);
                if let Some(total) = update.total {
                    param = param.with_total(total);
                }
                if let Some(message) = update.message {
                    param = param.with_message(message);
                }
                let sent = match &notifier {
                    Some(notifier) => notifier
                        .notify(ServerNotification::ProgressNotification(
                            ProgressNotification::new(param),
                        ))
                        .is_ok(),
                    None => peer.notify_progress(param).await.is_ok(),
                };
                if !sent {
                    return;
                }
            }
        });
        Self {
            sender: Some(sender),
        }
    }

    pub fn send(&self, update: Update) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(update);
        }
    }
}
