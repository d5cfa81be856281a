//! Progress for a call the gateway forwards: when the client sent a progress token, each
//! progress update (a host's own progress, or a fan-out's "n of m hosts done") goes out as
//! a `notifications/progress` on the request's stream (or the session's peer), through a
//! channel so the bus side never waits on the client. [`Progress::flush`] waits until every
//! update sent so far has gone out, so the last "n of m" reaches the client before the
//! result does (a notification sent after the response may be dropped with its stream).

use rmcp::{
    RoleServer,
    model::{ProgressNotification, ProgressNotificationParam, ServerNotification},
    service::RequestContext,
};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::handler_link::RequestNotifier;

/// One update: how far, of how much, and what happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub progress: f64,
    pub total: Option<f64>,
    pub message: Option<String>,
}

/// What the forwarding task is asked to do, in order.
#[derive(Debug)]
enum Message {
    Send(Update),
    /// Answer once every earlier update has gone out.
    Flush(oneshot::Sender<()>),
}

/// How long [`Progress::flush`] waits for a slow client before the result goes anyway.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

/// Sends updates for one request; a no-op when the client asked for none.
#[derive(Debug, Clone)]
pub struct Progress {
    sender: Option<mpsc::UnboundedSender<Message>>,
}

impl Progress {
    /// The progress channel of the request in `context`, forwarding until it is dropped.
    pub fn of(context: &RequestContext<RoleServer>) -> Self {
        let Some(token) = context.meta.get_progress_token() else {
            return Self { sender: None };
        };
        let (sender, mut messages) = mpsc::unbounded_channel::<Message>();
        let notifier = context.extensions.get::<RequestNotifier>().cloned();
        let peer = context.peer.clone();
        tokio::spawn(async move {
            while let Some(message) = messages.recv().await {
                let update = match message {
                    Message::Send(update) => update,
                    Message::Flush(done) => {
                        let _ = done.send(());
                        continue;
                    }
                };
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
            let _ = sender.send(Message::Send(update));
        }
    }

    /// Wait (at most [`FLUSH_WAIT`]) until every update sent so far has been handed to the
    /// client's stream; call it before returning the result.
    pub async fn flush(&self) {
        let Some(sender) = &self.sender else {
            return;
        };
        let (done, flushed) = oneshot::channel();
        if sender.send(Message::Flush(done)).is_ok() {
            let _ = tokio::time::timeout(FLUSH_WAIT, flushed).await;
        }
    }
}
