//! One reply inbox per gateway instead of one subscription per call: the gateway subscribes
//! once to `<prefix>.*` ([`Replies::wildcard`]), each call gets its own reply subject
//! `<prefix>.<token>` ([`Replies::open`]), and every message on the inbox (progress, the
//! parts of a final reply, a no-responders status) is routed by its token to the call
//! waiting for it ([`Replies::route`]). A call's entry is removed when its [`Waiting`] is
//! dropped: on completion, timeout, cancel or error alike. This file owns that routing
//! table and nothing about NATS, so it is generic over the message type.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::sync::mpsc;

/// The calls waiting for replies on one inbox.
#[derive(Debug)]
pub struct Replies<M> {
    prefix: String,
    waiting: Mutex<HashMap<u64, mpsc::UnboundedSender<M>>>,
    next: AtomicU64,
}

impl<M> Replies<M> {
    /// Routing for the inbox `prefix` (a unique `_INBOX.<id>` per gateway connection).
    pub fn new(prefix: String) -> Arc<Self> {
        Arc::new(Self {
            prefix,
            waiting: Mutex::default(),
            next: AtomicU64::new(1),
        })
    }

    /// The one subject the gateway subscribes to.
    pub fn wildcard(&self) -> String {
        format!("{}.*", self.prefix)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, mpsc::UnboundedSender<M>>> {
        // A panic while holding the lock leaves the map whole: take it anyway.
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new reply subject and the receiving end of its messages.
    pub fn open(self: &Arc<Self>) -> Waiting<M> {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = mpsc::unbounded_channel();
        self.lock().insert(token, sender);
        Waiting {
            replies: self.clone(),
            token,
            subject: format!("{}.{token}", self.prefix),
            receiver,
        }
    }

    /// Hand `message`, received on `subject`, to the call it answers; false when no call
    /// waits for it (late, after a timeout or cancel, or not one of ours).
    pub fn route(&self, subject: &str, message: M) -> bool {
        let Some(token) = subject
            .strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|token| token.parse::<u64>().ok())
        else {
            return false;
        };
        self.lock()
            .get(&token)
            .is_some_and(|sender| sender.send(message).is_ok())
    }

    /// Calls waiting now.
    pub fn waiting(&self) -> usize {
        self.lock().len()
    }

    /// End every wait (the inbox subscription ended): each waiting call sees its replies end.
    pub fn close(&self) {
        self.lock().clear();
    }
}

/// One call's reply subject and its messages; dropping it stops the routing to it.
#[derive(Debug)]
pub struct Waiting<M> {
    replies: Arc<Replies<M>>,
    token: u64,
    /// The reply subject to send with the request.
    pub subject: String,
    receiver: mpsc::UnboundedReceiver<M>,
}

impl<M> Waiting<M> {
    /// The next message for this call; `None` once the inbox is closed.
    pub async fn next(&mut self) -> Option<M> {
        self.receiver.recv().await
    }
}

impl<M> Drop for Waiting<M> {
    fn drop(&mut self) {
        self.replies.lock().remove(&self.token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_reply_reaches_the_call_whose_token_it_carries() {
        let replies = Replies::new("_INBOX.gw".to_owned());
        assert_eq!(replies.wildcard(), "_INBOX.gw.*");
        let mut first = replies.open();
        let mut second = replies.open();
        assert_ne!(first.subject, second.subject);
        assert!(replies.route(&second.subject, "progress 1"));
        assert!(replies.route(&first.subject, "final a"));
        assert!(replies.route(&second.subject, "final b"));
        assert_eq!(first.next().await, Some("final a"));
        assert_eq!(second.next().await, Some("progress 1"));
        assert_eq!(second.next().await, Some("final b"));
        assert_eq!(replies.waiting(), 2);
    }

    #[tokio::test]
    async fn a_finished_timed_out_or_cancelled_call_stops_receiving() {
        let replies = Replies::new("_INBOX.gw".to_owned());
        let done = replies.open();
        let subject = done.subject.clone();
        let kept = replies.open();
        drop(done);
        assert_eq!(replies.waiting(), 1);
        assert!(!replies.route(&subject, "late"));
        // The near miss: the call still waiting gets its reply.
        assert!(replies.route(&kept.subject, "on time"));
    }

    #[test]
    fn messages_not_on_our_inbox_or_without_a_token_are_dropped() {
        let replies = Replies::new("_INBOX.gw".to_owned());
        let waiting = replies.open();
        let token = waiting.subject.rsplit('.').next().unwrap().to_owned();
        assert!(!replies.route(&format!("_INBOX.other.{token}"), 1));
        assert!(!replies.route(&format!("_INBOX.gw{token}"), 1));
        assert!(!replies.route("_INBOX.gw.x", 1));
        assert!(!replies.route("_INBOX.gw.999", 1));
        assert!(replies.route(&format!("_INBOX.gw.{token}"), 1));
    }

    #[tokio::test]
    async fn closing_the_inbox_ends_every_wait() {
        let replies = Replies::<u8>::new("_INBOX.gw".to_owned());
        let mut waiting = replies.open();
        replies.close();
        assert_eq!(waiting.next().await, None);
        drop(waiting);
        assert_eq!(replies.waiting(), 0);
    }
}
