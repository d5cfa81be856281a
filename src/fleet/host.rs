//! The fleet agent of `hostmcp serve --fleet`: connects out to NATS (nkey seed, user
//! credentials, TLS with a CA), reconnects by itself with backoff (async-nats does; each
//! state change is logged), listens on its own subjects only, answers discovery, beats its
//! presence every [`BEAT_INTERVAL`] (and at once on connect), and hands each call and
//! cancel to [`Calls`], carrying its replies back on the request's inbox in frames that fit
//! the server's `max_payload`. On shutdown it says it is offline, lets running calls end
//! with the server's other transports, and drains the connection.

use std::{sync::Arc, time::Duration};

use async_nats::{Client, ConnectOptions, Event, Subscriber};
use futures::StreamExt;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::{
    call::{Calls, Reply},
    protocol::{
        self, DISCOVER_SUBJECT, HostName, Presence, ReplyFrame, Signature, Status, call_subject,
        cancel_subject, presence_subject, split_final,
    },
    settings::{FleetSettings, NatsAuth},
};
use crate::{audit::AuditLog, tools::HostTools};

/// How often a host says it is online.
pub const BEAT_INTERVAL: Duration = Duration::from_secs(2);
/// The payload limit assumed before the server has said its own (NATS's default is 1 MiB).
const FALLBACK_MAX_PAYLOAD: usize = 64 * 1024;

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("fleet: cannot read {path}: {source}")]
    Credentials {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("fleet: cannot connect to {servers}: {message}")]
    Connect { servers: String, message: String },
    #[error("fleet: cannot subscribe to {subject}: {message}")]
    Subscribe { subject: String, message: String },
}

/// A running fleet agent.
pub struct FleetAgent {
    task: tokio::task::JoinHandle<()>,
}

impl FleetAgent {
    /// Connect and serve until `shutdown`.
    pub async fn start(
        settings: FleetSettings,
        handler: HostTools,
        audit: AuditLog,
        shutdown: CancellationToken,
    ) -> Result<Self, FleetError> {
        let connected = Arc::new(Notify::new());
        let client = connect(&settings, connected.clone()).await?;
        let name = settings.name.clone();
        let subscribe = |subject: String| {
            let client = client.clone();
            async move {
                client
                    .subscribe(subject.clone())
                    .await
                    .map_err(|error| FleetError::Subscribe {
                        subject,
                        message: error.to_string(),
                    })
            }
        };
        let calls_in = subscribe(call_subject(&name)).await?;
        let cancels_in = subscribe(cancel_subject(&name)).await?;
        let discover_in = subscribe(DISCOVER_SUBJECT.to_owned()).await?;
        let calls = Arc::new(Calls::new(
            name.clone(),
            settings.trust.clone(),
            handler,
            audit,
        ));
        let beats = Beats {
            name,
            labels: settings.labels.clone(),
            started_at_ms: protocol::now_ms(),
        };
        tracing::info!(
            host = %settings.name,
            servers = settings.servers.join(","),
            gateways = settings.trust.gateway_count(),
            "fleet agent started"
        );
        let task = tokio::spawn(serve(
            client,
            Subscriptions {
                calls: calls_in,
                cancels: cancels_in,
                discover: discover_in,
            },
            calls,
            beats,
            connected,
            shutdown,
        ));
        Ok(Self { task })
    }

    /// Wait until the agent has said goodbye after shutdown.
    pub async fn finished(self) {
        let _ = self.task.await;
    }
}

/// The NATS connection, logging each state change.
async fn connect(settings: &FleetSettings, connected: Arc<Notify>) -> Result<Client, FleetError> {
    let mut options = match &settings.auth {
        NatsAuth::None => ConnectOptions::new(),
        NatsAuth::Nkey(path) => {
            let seed = std::fs::read_to_string(path).map_err(|source| FleetError::Credentials {
                path: path.clone(),
                source,
            })?;
            ConnectOptions::with_nkey(seed.trim().to_owned())
        }
        NatsAuth::Creds(path) => {
            ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|source| FleetError::Credentials {
                    path: path.clone(),
                    source,
                })?
        }
    };
    if let Some(ca) = &settings.ca_file {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    let host = settings.name.to_string();
    options = options
        .name(format!("hostmcp host {host}"))
        .retry_on_initial_connect()
        .max_reconnects(None)
        .event_callback(move |event| {
            let (host, connected) = (host.clone(), connected.clone());
            async move {
                match event {
                    Event::Connected => {
                        tracing::info!(host, "fleet: connected to NATS");
                        connected.notify_one();
                    }
                    Event::Disconnected => {
                        tracing::warn!(host, "fleet: disconnected from NATS; reconnecting")
                    }
                    other => tracing::warn!(host, event = %other, "fleet: NATS event"),
                }
            }
        });
    let servers: Vec<async_nats::ServerAddr> = settings
        .servers
        .iter()
        .map(|server| server.parse())
        .collect::<Result<_, _>>()
        .map_err(|error: std::io::Error| FleetError::Connect {
            servers: settings.servers.join(","),
            message: error.to_string(),
        })?;
    options
        .connect(servers)
        .await
        .map_err(|error| FleetError::Connect {
            servers: settings.servers.join(","),
            message: error.to_string(),
        })
}

struct Subscriptions {
    calls: Subscriber,
    cancels: Subscriber,
    discover: Subscriber,
}

/// What a presence beat says besides the time.
struct Beats {
    name: HostName,
    labels: std::collections::BTreeMap<String, String>,
    started_at_ms: u64,
}

impl Beats {
    fn beat(&self, status: Status) -> Presence {
        Presence {
            host: self.name.clone(),
            status,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            labels: self.labels.clone(),
            seen_at_ms: protocol::now_ms(),
            started_at_ms: self.started_at_ms,
            interval_ms: u64::try_from(BEAT_INTERVAL.as_millis()).unwrap_or(u64::MAX),
            facts: Some(super::facts::read()),
        }
    }

    fn payload(&self, status: Status) -> bytes::Bytes {
        bytes::Bytes::from(serde_json::to_vec(&self.beat(status)).unwrap_or_default())
    }
}

async fn serve(
    client: Client,
    mut subscriptions: Subscriptions,
    calls: Arc<Calls>,
    beats: Beats,
    connected: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let presence = presence_subject(&beats.name);
    let mut ticker = tokio::time::interval(BEAT_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticker.tick() => {
                calls.replay.sweep(protocol::now_ms());
                publish(&client, &presence, beats.payload(Status::Online)).await;
            }
            () = connected.notified() => {
                publish(&client, &presence, beats.payload(Status::Online)).await;
            }
            Some(message) = subscriptions.discover.next() => {
                if let Some(reply) = message.reply {
                    publish(&client, &reply, beats.payload(Status::Online)).await;
                }
            }
            Some(message) = subscriptions.calls.next() => {
                let Some(reply) = message.reply else {
                    tracing::warn!("fleet: a call without a reply inbox is ignored");
                    continue;
                };
                let signature = Signature::from_headers(message.headers.as_ref());
                tokio::spawn(answer_call(client.clone(), calls.clone(), reply, message.payload, signature));
            }
            Some(message) = subscriptions.cancels.next() => {
                let signature = Signature::from_headers(message.headers.as_ref());
                let answer = calls.cancel(&message.payload, signature).await;
                if let Some(reply) = message.reply {
                    send_frames(&client, &reply, split_final(&answer, max_payload(&client)), 0).await;
                }
            }
        }
    }
    // Goodbye: no more requests; say offline; let the connection drain what is queued.
    publish(&client, &presence, beats.payload(Status::Offline)).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
    drop(subscriptions);
    tracing::info!(host = %beats.name, "fleet agent stopped");
}

/// Serve one call and carry its replies to `reply`, in order.
async fn answer_call(
    client: Client,
    calls: Arc<Calls>,
    reply: async_nats::Subject,
    payload: bytes::Bytes,
    signature: Option<Signature>,
) {
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let serving = tokio::spawn(calls.serve(payload, signature, sender));
    let mut seq = 0;
    while let Some(message) = receiver.recv().await {
        let frames = match message {
            Reply::Progress(progress) => vec![ReplyFrame::Progress(progress)],
            Reply::Final(last) => split_final(&last, max_payload(&client)),
        };
        seq = send_frames(&client, &reply, frames, seq).await;
    }
    let _ = serving.await;
}

/// Publish `frames` numbered from `seq`; the next number.
async fn send_frames(client: &Client, reply: &str, frames: Vec<ReplyFrame>, mut seq: u64) -> u64 {
    for frame in frames {
        let (headers, payload) = frame.to_message(seq);
        if let Err(error) = client
            .publish_with_headers(reply.to_owned(), headers, payload)
            .await
        {
            tracing::warn!(%error, "fleet: cannot send a reply");
        }
        seq += 1;
    }
    let _ = client.flush().await;
    seq
}

async fn publish(client: &Client, subject: &str, payload: bytes::Bytes) {
    if let Err(error) = client.publish(subject.to_owned(), payload).await {
        tracing::debug!(%error, subject, "fleet: cannot publish");
    }
}

/// The largest message the connected server accepts.
fn max_payload(client: &Client) -> usize {
    match client.server_info().max_payload {
        0 => FALLBACK_MAX_PAYLOAD,
        size => size,
    }
}
