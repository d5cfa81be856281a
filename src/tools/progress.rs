//! Live progress for a running command: when the caller sent a progress token, forward
//! elapsed time and the latest output lines as `notifications/progress`, at most
//! [`MAX_RATE_PER_SEC`] a second.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use rmcp::{
    RoleServer,
    model::{ProgressNotification, ProgressNotificationParam, ProgressToken, ServerNotification},
    service::{Peer, RequestContext},
};
use tokio::{sync::mpsc, task::JoinHandle};

use crate::{
    exec::{OutputEvent, OutputObserver},
    handler_link::RequestNotifier,
};

/// Notifications per second, at most.
pub const MAX_RATE_PER_SEC: u32 = 2;
/// Bytes of recent output carried in each notification's message.
const TAIL_BYTES: usize = 512;
/// Chunks buffered between the reader and the forwarder; more are dropped, not waited for.
const CHANNEL_CAPACITY: usize = 64;

/// Owns the forwarding task; dropping it stops the notifications.
pub struct ProgressForwarder {
    sender: mpsc::Sender<OutputEvent>,
    task: JoinHandle<()>,
}

impl ProgressForwarder {
    /// Start forwarding if the request carries a progress token.
    pub fn start(context: &RequestContext<RoleServer>) -> Option<Self> {
        let token = context.meta.get_progress_token()?;
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let sink = match context.extensions.get::<RequestNotifier>() {
            Some(notifier) => Sink::Request(notifier.clone()),
            None => Sink::Peer(context.peer.clone()),
        };
        let task = tokio::spawn(forward(sink, token, receiver));
        Some(Self { sender, task })
    }

    /// The observer the exec engine reports output chunks to (lossy: never blocks).
    pub fn observer(&self) -> Arc<dyn OutputObserver> {
        Arc::new(self.sender.clone())
    }
}

impl Drop for ProgressForwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where notifications go: the request's own stream on transports that run calls
/// directly, else the session's peer.
enum Sink {
    Request(RequestNotifier),
    Peer(Peer<RoleServer>),
}

impl Sink {
    async fn progress(&self, progress: ProgressNotificationParam) -> Result<(), ()> {
        match self {
            Self::Request(notifier) => notifier
                .notify(ServerNotification::ProgressNotification(
                    ProgressNotification::new(progress),
                ))
                .map_err(drop),
            Self::Peer(peer) => peer.notify_progress(progress).await.map_err(drop),
        }
    }
}

async fn forward(sink: Sink, token: ProgressToken, mut chunks: mpsc::Receiver<OutputEvent>) {
    let started = Instant::now();
    let mut tail: Vec<u8> = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / MAX_RATE_PER_SEC);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    ticker.tick().await;
    loop {
        tokio::select! {
            chunk = chunks.recv() => match chunk {
                Some(OutputEvent::Stdout(bytes) | OutputEvent::Stderr(bytes)) => keep_tail(&mut tail, &bytes),
                None => return,
            },
            _ = ticker.tick() => {
                let elapsed = started.elapsed().as_secs_f64();
                let message = format!("running for {elapsed:.1} s{}", latest_lines(&tail));
                let notification = ProgressNotificationParam::new(token.clone(), elapsed)
                    .with_message(message);
                if sink.progress(notification).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn keep_tail(tail: &mut Vec<u8>, bytes: &[u8]) {
    tail.extend_from_slice(bytes);
    if tail.len() > TAIL_BYTES {
        tail.drain(..tail.len() - TAIL_BYTES);
    }
}

fn latest_lines(tail: &[u8]) -> String {
    let text = String::from_utf8_lossy(tail);
    let text = text.trim_end();
    if text.is_empty() {
        return String::new();
    }
    // Drop a partial first line left by the byte cut.
    let whole = if tail.len() >= TAIL_BYTES {
        text.split_once('\n').map_or(text, |(_, rest)| rest)
    } else {
        text
    };
    format!("; latest output:\n{whole}")
}
