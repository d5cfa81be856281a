//! Updates of `host://load`: `notifications/resources/updated` every [`UPDATE_INTERVAL`]
//! to each subscriber, on both protocol eras.
//!
//! - Session era (`resources/subscribe`): one task per (subscriber, URI). It ends on
//!   `resources/unsubscribe`, or at the first notice that cannot be delivered because the
//!   session (or stdio peer) is gone: no task outlives its client by more than one interval.
//! - 2026-07-28 (`subscriptions/listen`, SEP-2575): no task of its own; the updates run
//!   inside the listen request ([`Subscriptions::listen`]), whose response stream carries
//!   them tagged with the subscription id. The request ends when the client closes the
//!   stream (rmcp cancels it), and so do its updates, at once.
//!
//! Both kinds are counted in [`Subscriptions::active`] until they end, and log
//! "resource subscription started" / "ended" with the reason.

use std::{
    collections::HashMap,
    sync::{Arc, Weak},
    time::Duration,
};

use parking_lot::Mutex;
use rmcp::{
    RoleServer,
    model::{ResourceUpdatedNotification, ResourceUpdatedNotificationParam, ServerNotification},
    service::{Peer, SubscriptionSink},
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
    /// A `subscriptions/listen` stream (2026-07-28): rmcp's sink tags each notice with the
    /// subscription id and refuses what the accepted filter does not name.
    Listen(SubscriptionSink),
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
            Self::Listen(sink) => sink.send(notice).await.map_err(drop),
        }
    }
}

/// The live subscriptions, by (subscriber, URI).
#[derive(Debug, Default)]
pub struct Subscriptions {
    tasks: Mutex<HashMap<(String, String), CancellationToken>>,
    /// Numbers the listen streams, whose request ids two clients may share.
    listens: std::sync::atomic::AtomicU64,
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
        tokio::spawn(announce(false, registry, key, token, sink, interval));
    }

    /// Announce `uri` to a `subscriptions/listen` stream's `sink` ([`Sink::Listen`]) every
    /// `interval` until `cancelled` fires (the client closed the stream, or the server
    /// stops) or a notice cannot be delivered. Runs on the caller's task: dropping this
    /// future ends it too.
    pub async fn listen(
        self: &Arc<Self>,
        principal: &str,
        uri: &str,
        sink: Sink,
        interval: Duration,
        cancelled: CancellationToken,
    ) {
        let number = self
            .listens
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let key = (format!("{principal}:listen#{number}"), uri.to_owned());
        self.tasks.lock().insert(key.clone(), cancelled.clone());
        tracing::info!(subscriber = %key.0, uri, "resource subscription started");
        announce(true, Arc::downgrade(self), key, cancelled, sink, interval).await;
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
    listening: bool,
    registry: Weak<Subscriptions>,
    key: (String, String),
    token: CancellationToken,
    sink: Sink,
    interval: Duration,
) {
    let mut entry = Entry {
        registry,
        key,
        token,
        why: "dropped",
    };
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    entry.why = loop {
        tokio::select! {
            () = entry.token.cancelled() => break if listening { "stream closed" } else { "unsubscribed" },
            _ = ticks.tick() => {
                if sink.updated(&entry.key.1).await.is_err() {
                    break "client gone";
                }
            }
        }
    };
}

/// A subscription's place in the registry, given back when its announcer ends however it
/// ends (a listen request's future is dropped when rmcp cancels it).
struct Entry {
    registry: Weak<Subscriptions>,
    key: (String, String),
    token: CancellationToken,
    why: &'static str,
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(registry) = self.registry.upgrade() {
            let mut tasks = registry.tasks.lock();
            if tasks
                .get(&self.key)
                .is_some_and(|current| current == &self.token)
            {
                tasks.remove(&self.key);
            }
        }
        let (subscriber, uri) = &self.key;
        tracing::info!(%subscriber, %uri, why = self.why, "resource subscription ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{handler_link::ReaderGone, resources::LOAD};

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
    async fn a_listen_stream_is_counted_until_its_request_is_cancelled_or_dropped() {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let subscriptions = Subscriptions::new();
        let sent = Arc::new(AtomicUsize::new(0));
        let sink = notifier(Arc::new(AtomicBool::new(true)), sent.clone());
        let interval = Duration::from_millis(20);
        // Cancelled (the client closed the stream): the loop returns and is uncounted.
        let cancelled = CancellationToken::new();
        let listening = tokio::spawn({
            let (subscriptions, sink, cancelled) =
                (subscriptions.clone(), sink.clone(), cancelled.clone());
            async move {
                subscriptions
                    .listen("p", LOAD, sink, interval, cancelled)
                    .await;
            }
        });
        assert!(
            until(|| sent.load(Ordering::SeqCst) >= 2).await,
            "updates flow"
        );
        assert_eq!(subscriptions.active(), 1);
        cancelled.cancel();
        tokio::time::timeout(Duration::from_secs(5), listening)
            .await
            .expect("the listen loop returns once cancelled")
            .unwrap();
        assert_eq!(
            subscriptions.active(),
            0,
            "a cancelled stream leaves nothing"
        );
        // Dropped mid-stream (rmcp drops the request's future): uncounted too.
        let dropped = tokio::spawn({
            let subscriptions = subscriptions.clone();
            async move {
                subscriptions
                    .listen("p", LOAD, sink, interval, CancellationToken::new())
                    .await;
            }
        });
        assert!(until(|| subscriptions.active() == 1).await);
        dropped.abort();
        assert!(
            until(|| subscriptions.active() == 0).await,
            "a dropped stream leaves nothing"
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
