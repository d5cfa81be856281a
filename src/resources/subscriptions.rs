//! `resources/subscribe` for `host://load`: one task per (subscriber, URI) that sends
//! `notifications/resources/updated` every [`UPDATE_INTERVAL`] while subscribed. A task
//! ends on `resources/unsubscribe`, or at the first notice that cannot be delivered
//! because the session (or stdio peer) is gone: no task outlives its client by more than
//! one interval.

use std::{
    collections::HashMap,
    sync::{Arc, Weak},
    time::Duration,
};

use parking_lot::Mutex;
use rmcp::{
    RoleServer,
    model::{ResourceUpdatedNotification, ResourceUpdatedNotificationParam, ServerNotification},
    service::Peer,
};
use tokio_util::sync::CancellationToken;

use crate::handler_link::SessionNotifier;

/// How often a subscribed resource's update is announced.
pub const UPDATE_INTERVAL: Duration = Duration::from_secs(2);

/// Where a subscription's notices go.
#[derive(Debug, Clone)]
pub enum Sink {
    /// A session's standalone stream (`/mcp` with a session, `/sse`).
    Session(SessionNotifier),
    /// The peer of a live rmcp service (stdio).
    Peer(Peer<RoleServer>),
}

impl Sink {
    /// Announce that `uri` changed; `Err` once nobody can receive it.
    async fn updated(&self, uri: &str) -> Result<(), ()> {
        let notice = ServerNotification::ResourceUpdatedNotification(
            ResourceUpdatedNotification::new(ResourceUpdatedNotificationParam::new(uri)),
        );
        match self {
            Self::Session(notifier) => notifier.notify(notice).map_err(drop),
            Self::Peer(peer) => peer.send_notification(notice).await.map_err(drop),
        }
    }
}

/// The live subscriptions, by (subscriber, URI).
#[derive(Debug, Default)]
pub struct Subscriptions {
    tasks: Mutex<HashMap<(String, String), CancellationToken>>,
}

impl Subscriptions {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Start announcing `uri` to `sink` every `interval` (once per subscriber and URI: a
    /// second subscribe keeps the first).
    pub fn subscribe(
        self: &Arc<Self>,
        subscriber: &str,
        uri: &str,
        sink: Sink,
        interval: Duration,
    ) {
        let key = (subscriber.to_owned(), uri.to_owned());
        let token = CancellationToken::new();
        {
            let mut tasks = self.tasks.lock();
            if tasks.contains_key(&key) {
                return;
            }
            tasks.insert(key.clone(), token.clone());
        }
        tracing::info!(subscriber, uri, "resource subscription started");
        let registry = Arc::downgrade(self);
        tokio::spawn(announce(registry, key, token, sink, interval));
    }

    /// Stop announcing `uri` to `subscriber`; whether it was subscribed.
    pub fn unsubscribe(&self, subscriber: &str, uri: &str) -> bool {
        let key = (subscriber.to_owned(), uri.to_owned());
        match self.tasks.lock().remove(&key) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// Subscriptions whose task still runs.
    pub fn active(&self) -> usize {
        self.tasks.lock().len()
    }
}

async fn announce(
    registry: Weak<Subscriptions>,
    key: (String, String),
    token: CancellationToken,
    sink: Sink,
    interval: Duration,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    let why = loop {
        tokio::select! {
            () = token.cancelled() => break "unsubscribed",
            _ = ticks.tick() => {
                if sink.updated(&key.1).await.is_err() {
                    break "client gone";
                }
            }
        }
    };
    if let Some(registry) = registry.upgrade() {
        let mut tasks = registry.tasks.lock();
        if tasks.get(&key).is_some_and(|current| current == &token) {
            tasks.remove(&key);
        }
    }
    tracing::info!(subscriber = %key.0, uri = %key.1, why, "resource subscription ended");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler_link::ReaderGone;

    /// A notifier that delivers while `open` holds, and counts what it delivered.
    fn notifier(
        open: Arc<std::sync::atomic::AtomicBool>,
        sent: Arc<std::sync::atomic::AtomicUsize>,
    ) -> Sink {
        use std::sync::atomic::Ordering;
        Sink::Session(SessionNotifier::new(move |_| {
            if open.load(Ordering::SeqCst) {
                sent.fetch_add(1, Ordering::SeqCst);
                Ok(())
            } else {
                Err(ReaderGone)
            }
        }))
    }

    async fn until(mut done: impl FnMut() -> bool) -> bool {
        for _ in 0..200 {
            if done() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test]
    async fn updates_flow_while_subscribed_and_the_task_ends_when_the_client_goes() {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let subscriptions = Subscriptions::new();
        let open = Arc::new(AtomicBool::new(true));
        let sent = Arc::new(AtomicUsize::new(0));
        let sink = notifier(open.clone(), sent.clone());
        let interval = Duration::from_millis(20);
        subscriptions.subscribe("s1", "host://load", sink.clone(), interval);
        subscriptions.subscribe("s1", "host://load", sink, interval);
        assert_eq!(subscriptions.active(), 1, "one task per subscriber and URI");
        assert!(
            until(|| sent.load(Ordering::SeqCst) >= 3).await,
            "updates are sent"
        );
        // The client goes away: the next notice fails and the task ends.
        open.store(false, Ordering::SeqCst);
        assert!(
            until(|| subscriptions.active() == 0).await,
            "the task ended"
        );
    }

    #[tokio::test]
    async fn unsubscribe_ends_the_task_and_another_subscriber_keeps_its_own() {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let subscriptions = Subscriptions::new();
        let open = Arc::new(AtomicBool::new(true));
        let (first, second) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let interval = Duration::from_millis(20);
        subscriptions.subscribe(
            "a",
            "host://load",
            notifier(open.clone(), first.clone()),
            interval,
        );
        subscriptions.subscribe("b", "host://load", notifier(open, second.clone()), interval);
        assert!(subscriptions.unsubscribe("a", "host://load"));
        assert!(!subscriptions.unsubscribe("a", "host://load"));
        assert!(until(|| subscriptions.active() == 1).await);
        let before = first.load(Ordering::SeqCst);
        assert!(
            until(|| second.load(Ordering::SeqCst) >= 3).await,
            "b still gets updates"
        );
        assert!(
            first.load(Ordering::SeqCst) <= before + 1,
            "a gets none after unsubscribing"
        );
    }
}
