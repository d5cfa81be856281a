//! The gateway on NATS: connecting (nkey seed, credentials file, TLS with a CA; async-nats
//! reconnects by itself), keeping the [presence table](super::presence) from the beats on
//! `hostmcp.presence.>` and the answers to `hostmcp.discover`, and making one call to one
//! host: the request signed with the gateway key, the reply stream read back (progress,
//! then the final reply in parts, reassembled and checked by [`wire::Reassembly`]), a
//! cancel sent when the caller gives up. Replies of every call arrive on one inbox
//! subscription per gateway, routed to their call by [`super::replies`]. An offline or
//! unknown host fails at once, not after a timeout.

use std::{path::PathBuf, sync::Arc, time::Duration};

use futures::StreamExt;
use nkeys::KeyPair;
use rmcp::model::JsonObject;
use tokio_util::sync::CancellationToken;

use super::{
    presence::{Beat, PresenceTable, Reachability},
    replies::Replies,
};
use crate::fleet::protocol as wire;

/// How to reach NATS (`--nats`, `--nats-nkey`, `--nats-creds`, `--nats-ca`).
#[derive(Debug, Clone, Default)]
pub struct BusSettings {
    pub urls: Vec<String>,
    pub nkey_file: Option<PathBuf>,
    pub creds_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
}

/// Why the gateway cannot get onto the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("--nats: {0}")]
    Url(String),
    #[error("cannot read the NATS nkey seed {path}: {source}")]
    Nkey {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the NATS credentials {path}: {source}")]
    Creds {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot connect to NATS: {0}")]
    Connect(String),
    #[error("cannot subscribe to {subject}: {reason}")]
    Subscribe { subject: String, reason: String },
}

/// How one forwarded call failed before the host gave a result.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CallError {
    #[error("{0}")]
    Offline(String),
    #[error("host {0:?} is not in the fleet (host_list shows the hosts this gateway knows)")]
    Unknown(String),
    #[error("no answer from host {host:?} within {secs} s")]
    Timeout { host: String, secs: u64 },
    #[error("the call was cancelled")]
    Cancelled,
    #[error("bus error: {0}")]
    Bus(String),
    #[error("bad reply from host {host:?}: {reason}")]
    Reply { host: String, reason: String },
}

impl CallError {
    /// The outcome word for audit records and fan-out results.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Offline(_) | Self::Unknown(_) => "offline",
            Self::Timeout { .. } => "timed_out",
            Self::Cancelled => "cancelled",
            Self::Bus(_) | Self::Reply { .. } => "failed",
        }
    }
}

/// Who asked, as the host is told (and checks the gateway signed).
#[derive(Debug, Clone)]
pub struct Principal {
    pub name: String,
    pub role: String,
}

/// The gateway's side of the bus.
pub struct Bus {
    client: async_nats::Client,
    key: Arc<KeyPair>,
    public: String,
    pub presence: Arc<PresenceTable>,
    /// The calls waiting for replies on the gateway's one inbox.
    replies: Arc<Replies<async_nats::Message>>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("gateway", &self.public)
            .finish_non_exhaustive()
    }
}

/// Extra time a call waits beyond the tool's own timeout, for the host to answer.
const REPLY_MARGIN: Duration = Duration::from_secs(15);
/// How long a call waits when its arguments name no timeout.
const DEFAULT_WAIT: Duration = Duration::from_secs(120);
/// How long the answers to one discovery are gathered.
const DISCOVERY_WINDOW: Duration = Duration::from_secs(3);

impl Bus {
    /// Connect (retrying in the background until NATS answers), subscribe to presence
    /// beats and ask every host for its presence once.
    pub async fn connect(
        settings: &BusSettings,
        key: KeyPair,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, BusError> {
        if settings.urls.is_empty() {
            return Err(BusError::Url("no NATS server URL".to_owned()));
        }
        let addresses: Vec<async_nats::ServerAddr> = settings
            .urls
            .iter()
            .map(|url| {
                url.parse()
                    .map_err(|error| BusError::Url(format!("{url:?}: {error}")))
            })
            .collect::<Result<_, _>>()?;
        let public = key.public_key();
        let mut options = async_nats::ConnectOptions::new()
            .name(format!(
                "hostmcp-gateway {}",
                &public[..12.min(public.len())]
            ))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .event_callback(|event| async move {
                tracing::info!(%event, "NATS connection event");
            });
        if let Some(path) = &settings.nkey_file {
            let seed = std::fs::read_to_string(path).map_err(|source| BusError::Nkey {
                path: path.clone(),
                source,
            })?;
            options = options.nkey(seed.trim().to_owned());
        }
        if let Some(path) = &settings.creds_file {
            options = options
                .credentials_file(path)
                .await
                .map_err(|source| BusError::Creds {
                    path: path.clone(),
                    source,
                })?;
        }
        if let Some(ca) = &settings.ca_file {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        let client = options
            .connect(addresses)
            .await
            .map_err(|error| BusError::Connect(error.to_string()))?;
        let replies = Replies::new(client.new_inbox());
        let inbox = client
            .subscribe(replies.wildcard())
            .await
            .map_err(|error| BusError::Subscribe {
                subject: replies.wildcard(),
                reason: error.to_string(),
            })?;
        tokio::spawn(route_replies(replies.clone(), inbox, shutdown.clone()));
        let bus = Arc::new(Self {
            client,
            key: Arc::new(key),
            public,
            presence: Arc::default(),
            replies,
        });
        let beats = bus
            .client
            .subscribe(wire::PRESENCE_WILDCARD)
            .await
            .map_err(|error| BusError::Subscribe {
                subject: wire::PRESENCE_WILDCARD.to_owned(),
                reason: error.to_string(),
            })?;
        tokio::spawn(keep_presence(bus.presence.clone(), beats, shutdown.clone()));
        bus.discover().await?;
        Ok(bus)
    }

    /// The gateway's public key.
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// Ask every host for its presence; the answers arrive for [`DISCOVERY_WINDOW`].
    pub async fn discover(&self) -> Result<(), BusError> {
        let inbox = self.client.new_inbox();
        let answers = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|error| BusError::Subscribe {
                subject: inbox.clone(),
                reason: error.to_string(),
            })?;
        let presence = self.presence.clone();
        tokio::spawn(async move {
            let mut answers = answers;
            let gather = async {
                while let Some(message) = answers.next().await {
                    observe(&presence, &message.payload);
                }
            };
            let _ = tokio::time::timeout(DISCOVERY_WINDOW, gather).await;
        });
        if let Err(error) = self
            .client
            .publish_with_reply(wire::DISCOVER_SUBJECT, inbox, bytes::Bytes::new())
            .await
        {
            tracing::warn!(%error, "cannot ask the fleet for presence (hostmcp.discover)");
        }
        Ok(())
    }

    /// Call `tool` on `host` for `principal` and wait for its outcome. `progress` gets each
    /// progress frame; `cancel` ends the wait and sends the host a cancel.
    pub async fn call(
        &self,
        host: &str,
        tool: &str,
        arguments: Option<JsonObject>,
        principal: &Principal,
        progress: &mut (dyn FnMut(wire::Progress) + Send),
        cancel: &CancellationToken,
    ) -> Result<wire::Outcome, CallError> {
        match self.presence.reachability(host) {
            Reachability::Online => {}
            Reachability::Offline(message) => return Err(CallError::Offline(message)),
            Reachability::Unknown => return Err(CallError::Unknown(host.to_owned())),
        }
        let name: wire::HostName = host
            .parse()
            .map_err(|_| CallError::Unknown(host.to_owned()))?;
        let wait = wait_for(arguments.as_ref());
        let issued = wire::now_ms();
        let request = wire::CallRequest {
            id: format!(
                "{}-{}",
                &self.public[..8.min(self.public.len())],
                wire::new_nonce()
            ),
            host: name.clone(),
            tool: tool.to_owned(),
            arguments,
            principal: principal.name.clone(),
            role: principal.role.clone(),
            gateway: self.public.clone(),
            issued_at_ms: issued,
            expires_at_ms: issued + wire::MAX_VALIDITY_MS,
            deadline_ms: None,
            nonce: wire::new_nonce(),
            progress: true,
        };
        let payload =
            serde_json::to_vec(&request).map_err(|error| CallError::Bus(error.to_string()))?;
        let signature = wire::sign(wire::SignedKind::Call, &payload, &self.key)
            .map_err(|error| CallError::Bus(error.to_string()))?;
        let mut headers = async_nats::HeaderMap::new();
        signature.to_headers(&mut headers);
        // Routed to this call until it is dropped, whichever way the call ends.
        let mut replies = self.replies.open();
        self.client
            .publish_with_reply_and_headers(
                wire::call_subject(&name),
                replies.subject.clone(),
                headers,
                payload.into(),
            )
            .await
            .map_err(|error| CallError::Bus(error.to_string()))?;
        let bad_reply = |reason: String| CallError::Reply {
            host: host.to_owned(),
            reason,
        };
        let mut reassembly = wire::Reassembly::new();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::select! {
                () = cancel.cancelled() => {
                    self.cancel(&name, &request.id).await;
                    return Err(CallError::Cancelled);
                }
                () = tokio::time::sleep_until(deadline) => {
                    self.cancel(&name, &request.id).await;
                    return Err(CallError::Timeout { host: host.to_owned(), secs: wait.as_secs() });
                }
                message = replies.next() => message,
            };
            let Some(message) = message else {
                return Err(CallError::Bus("the reply subscription ended".to_owned()));
            };
            if message.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
                return Err(CallError::Offline(format!(
                    "host {host:?} is offline (nobody listens on its subject)"
                )));
            }
            let (seq, frame) =
                wire::ReplyFrame::from_message(message.headers.as_ref(), message.payload)
                    .map_err(|error| bad_reply(error.to_string()))?;
            match reassembly
                .push(seq, frame)
                .map_err(|error| bad_reply(error.to_string()))?
            {
                wire::Assembled::Progress(update) => progress(update),
                wire::Assembled::Pending => {}
                wire::Assembled::Done(reply) => {
                    if reply.host != name {
                        return Err(bad_reply(format!("answered by host {}", reply.host)));
                    }
                    return Ok(reply.outcome);
                }
            }
        }
    }

    /// Tell `host` to end the call `id` (best effort).
    async fn cancel(&self, host: &wire::HostName, id: &str) {
        let issued = wire::now_ms();
        let request = wire::CancelRequest {
            id: id.to_owned(),
            host: host.clone(),
            gateway: self.public.clone(),
            issued_at_ms: issued,
            expires_at_ms: issued + wire::MAX_VALIDITY_MS,
            nonce: wire::new_nonce(),
        };
        let Ok(payload) = serde_json::to_vec(&request) else {
            return;
        };
        let Ok(signature) = wire::sign(wire::SignedKind::Cancel, &payload, &self.key) else {
            return;
        };
        let mut headers = async_nats::HeaderMap::new();
        signature.to_headers(&mut headers);
        if let Err(error) = self
            .client
            .publish_with_headers(wire::cancel_subject(host), headers, payload.into())
            .await
        {
            tracing::warn!(host = %host, %error, "cannot send a cancel to the host");
        }
        let _ = self.client.flush().await;
    }
}

/// How long to wait for a call with these arguments: its `timeout_secs` and `wait_secs`
/// (job_output's long poll), plus a margin; [`DEFAULT_WAIT`] when it names neither.
pub fn wait_for(arguments: Option<&JsonObject>) -> Duration {
    let seconds = |key: &str| {
        arguments
            .and_then(|arguments| arguments.get(key))
            .and_then(serde_json::Value::as_u64)
    };
    match (seconds("timeout_secs"), seconds("wait_secs")) {
        (None, None) => DEFAULT_WAIT,
        (timeout, wait) => {
            Duration::from_secs(timeout.unwrap_or(0).saturating_add(wait.unwrap_or(0)))
                + REPLY_MARGIN
        }
    }
}

/// Route every message on the gateway's inbox to its call until shutdown; when the
/// subscription ends, every waiting call is told.
async fn route_replies(
    replies: Arc<Replies<async_nats::Message>>,
    mut inbox: async_nats::Subscriber,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            message = inbox.next() => match message {
                Some(message) => {
                    let subject = message.subject.clone();
                    if !replies.route(&subject, message) {
                        tracing::debug!(%subject, "a reply no call waits for (late or not ours)");
                    }
                }
                None => break,
            },
        }
    }
    replies.close();
}

/// Keep `presence` from the beats until shutdown.
async fn keep_presence(
    presence: Arc<PresenceTable>,
    mut beats: async_nats::Subscriber,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            message = beats.next() => match message {
                Some(message) => observe(&presence, &message.payload),
                None => return,
            },
        }
    }
}

/// Record one presence beat (a malformed one is logged and dropped).
fn observe(presence: &PresenceTable, payload: &[u8]) {
    match serde_json::from_slice::<wire::Presence>(payload) {
        Ok(beat) => {
            let name = beat.host.clone();
            presence.observe(name.as_str(), beat_of(beat));
        }
        Err(error) => tracing::debug!(%error, "not a presence beat"),
    }
}

fn beat_of(presence: wire::Presence) -> Beat {
    Beat {
        online: presence.status == wire::Status::Online,
        version: presence.version,
        labels: presence.labels,
        facts: presence
            .facts
            .and_then(|facts| serde_json::to_value(facts).ok())
            .unwrap_or(serde_json::Value::Null),
        interval: Duration::from_millis(presence.interval_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_call_waits_for_its_own_timeout_and_a_margin() {
        let arguments = json!({"timeout_secs": 30}).as_object().cloned();
        assert_eq!(
            wait_for(arguments.as_ref()),
            Duration::from_secs(30) + REPLY_MARGIN
        );
        let poll = json!({"wait_secs": 10}).as_object().cloned();
        assert_eq!(
            wait_for(poll.as_ref()),
            Duration::from_secs(10) + REPLY_MARGIN
        );
        assert_eq!(wait_for(None), DEFAULT_WAIT);
    }
}
