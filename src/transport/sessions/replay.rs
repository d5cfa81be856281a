//! Answers kept for clients that come back (SEP-1699): every request stream opens with a
//! priming event whose id names the stream (`c<number>`); when a stream breaks mid-call
//! the call finishes anyway and its answer is parked in the session's entry, and a GET
//! with that `Last-Event-ID` takes it, once. At most [`PARKED_PER_SESSION`] answers are
//! kept per session, the oldest dropped first.

use std::time::Duration;

use rmcp::{model::ServerJsonRpcMessage, transport::streamable_http_server::session::SessionId};
use tokio::sync::watch;

use super::table::SessionTable;
use crate::transport::direct_call;

/// The event id rmcp gives the priming event of standalone streams.
pub(super) const STANDALONE_EVENT_ID: &str = "0";
/// How long a client waits before it reconnects a request stream that broke (SSE
/// `retry`, sent with the priming event that names the stream).
pub(super) const RECONNECT_AFTER: Duration = Duration::from_secs(3);
/// How long a reconnect waits for the answer of a call whose old stream the server has
/// not yet seen close.
const RESUME_WAIT: Duration = Duration::from_secs(5);
/// Answers kept per session for clients that reconnect to a broken request stream.
const PARKED_PER_SESSION: usize = 64;

/// The id of the priming event of request stream `stream_number`.
pub(super) fn call_event_id(stream_number: u64) -> String {
    format!("c{stream_number}")
}

/// The stream number a `Last-Event-ID` names, if it names a request stream.
pub(super) fn parse_call_event_id(event_id: &str) -> Option<u64> {
    event_id.strip_prefix('c')?.parse().ok()
}

impl SessionTable {
    /// Finish an abandoned call and keep its answer for a reconnecting client.
    pub(super) fn park(
        &self,
        id: &SessionId,
        stream_number: u64,
        call: direct_call::AbandonedCall,
    ) {
        let (answer_tx, answer_rx) = watch::channel(None);
        if let Some(session) = self.lock().get_mut(id) {
            if session.parked.len() >= PARKED_PER_SESSION {
                session.parked.pop_first();
            }
            session.parked.insert(stream_number, answer_rx);
            session.parked_changed.notify_waiters();
        }
        tokio::spawn(async move {
            let _ = answer_tx.send(Some(call.await));
        });
    }

    /// The parked answer of stream `stream_number`, handed out once. A client may come
    /// back before the server has seen its old connection close: while the stream's
    /// call still runs, wait (up to [`RESUME_WAIT`]) for the answer to be parked.
    pub(super) async fn unpark(
        &self,
        id: &SessionId,
        stream_number: u64,
    ) -> Option<watch::Receiver<Option<ServerJsonRpcMessage>>> {
        let deadline = tokio::time::Instant::now() + RESUME_WAIT;
        loop {
            let changed = self.lock().get(id)?.parked_changed.clone();
            let notified = changed.notified();
            tokio::pin!(notified);
            // Registered before looking, so a change after the look is not missed.
            notified.as_mut().enable();
            {
                let mut sessions = self.lock();
                let session = sessions.get_mut(id)?;
                if let Some(answer) = session.parked.remove(&stream_number) {
                    return Some(answer);
                }
                if !session
                    .calls
                    .values()
                    .any(|call| call.stream == stream_number)
                {
                    return None;
                }
            }
            tokio::time::timeout_at(deadline, notified).await.ok()?;
        }
    }
}
