//! Simulated fleet hosts for the fan-out benchmark (bench/fleet/): one process that answers on
//! NATS as N hosts, with hostmcp's own protocol code (`hostmcp::fleet::protocol`), so a
//! gateway and NATS are what is measured, not N agents' process start-up.
//!
//! ```text
//! cargo build --examples
//! target/debug/examples/fleet_simhosts --nats tls://127.0.0.1:4222 --nkey simhosts.nk \
//!     --ca ca.pem --hosts 1000 [--prefix sim] [--beat-ms 5000] [--trust GATEWAY_PUBKEY ...]
//! ```
//!
//! Hosts are named `<prefix>0000`, `<prefix>0001`, … Each beats its presence (spread evenly
//! over the beat interval) and answers `hostmcp.discover`. A call is opened exactly as a
//! real host opens it (signature, signer named inside, host, validity window, nonce
//! length), the signer checked against `--trust` when given and the (signer, nonce) against
//! the ones already accepted; an accepted `run_command` (or any tool) is answered with an `uptime`-shaped
//! CallToolResult, a refused one with the refusal, both as the real reply stream
//! ([`split_final`]) on the request's inbox. It needs a NATS user that may subscribe to
//! `hostmcp.host.*.call` and `hostmcp.discover`, publish `hostmcp.presence.>`, and answer
//! requests (tests/e2e/nats/natsconf.py `simhosts_permissions`). On SIGINT/SIGTERM it
//! publishes an offline beat for every host and prints `calls=<n> refused=<n>`.

use std::{
    collections::{BTreeMap, HashSet},
    path::PathBuf,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use clap::Parser;
use futures::StreamExt;
use hostmcp::fleet::protocol::{
    self, CallRequest, DISCOVER_SUBJECT, ErrorKind, FinalReply, HostName, Outcome, Presence,
    PublicKey, Refusal, Signature, Status, split_final,
};

#[derive(Parser, Debug)]
#[command(about = "Answer on NATS as N simulated hostmcp fleet hosts")]
struct Args {
    /// NATS server URL(s), comma-separated.
    #[arg(long)]
    nats: String,
    /// NATS nkey seed file.
    #[arg(long)]
    nkey: Option<PathBuf>,
    /// CA certificate (PEM) the NATS server's certificate chains to; requires TLS.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// How many hosts to simulate.
    #[arg(long, default_value_t = 1000)]
    hosts: usize,
    /// Host name prefix (names are <prefix><index, 4 digits>).
    #[arg(long, default_value = "sim")]
    prefix: String,
    /// Presence interval in milliseconds.
    #[arg(long, default_value_t = 5000)]
    beat_ms: u64,
    /// Gateway public keys to trust (nkey text); none = accept any valid signature.
    #[arg(long)]
    trust: Vec<String>,
    /// Varied outcomes for fleet_run's result tests: host i fails (exit 2) when i % 10 == 3,
    /// is denied by its policy when i % 25 == 11, prints 100 KB when i % 20 == 7; the rest
    /// print one identical line. Without it every host prints its own `uptime` line.
    #[arg(long)]
    vary: bool,
}

#[derive(Debug, thiserror::Error)]
enum SimError {
    #[error("bad argument: {0}")]
    Argument(String),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("NATS: {0}")]
    Nats(String),
    #[error("cannot catch SIGTERM: {0}")]
    Signal(std::io::Error),
}

struct Sim {
    client: async_nats::Client,
    hosts: Vec<HostName>,
    prefix: String,
    trusted: Vec<PublicKey>,
    /// (signer, nonce) of every accepted call: a replay is refused, as a real host refuses it.
    /// Unbounded, which a benchmark's few thousand calls allow; the agent bounds its cache.
    seen: std::sync::Mutex<HashSet<(PublicKey, String)>>,
    started_at_ms: u64,
    beat_ms: u64,
    calls: AtomicU64,
    refused: AtomicU64,
    vary: bool,
}

impl Sim {
    fn presence(&self, host: &HostName, status: Status) -> bytes::Bytes {
        let beat = Presence {
            host: host.clone(),
            status,
            version: format!("{}-simhost", env!("CARGO_PKG_VERSION")),
            labels: BTreeMap::from([("sim".to_owned(), "true".to_owned())]),
            seen_at_ms: protocol::now_ms(),
            started_at_ms: self.started_at_ms,
            interval_ms: self.beat_ms,
            facts: None,
        };
        bytes::Bytes::from(serde_json::to_vec(&beat).unwrap_or_default())
    }

    /// The host a call subject `hostmcp.host.<name>.call` is for, if it is one of ours.
    fn host_of(&self, subject: &str) -> Option<&HostName> {
        let name = subject
            .strip_prefix("hostmcp.host.")?
            .strip_suffix(".call")?;
        let index: usize = name.strip_prefix(&self.prefix)?.parse().ok()?;
        self.hosts.get(index).filter(|host| host.as_str() == name)
    }

    fn answer(&self, host: &HostName, message: &async_nats::Message) -> FinalReply {
        let signature = Signature::from_headers(message.headers.as_ref());
        let now = protocol::now_ms();
        let opened = protocol::open::<CallRequest>(&message.payload, signature.as_ref(), host, now)
            .and_then(|(request, signer)| {
                if !self.trusted.is_empty() && !self.trusted.contains(&signer) {
                    return Err(Refusal::new(
                        ErrorKind::NotTrusted,
                        "this simulated host does not trust the signer",
                    ));
                }
                let fresh = self
                    .seen
                    .lock()
                    .map_err(|_| Refusal::new(ErrorKind::Busy, "replay cache poisoned"))?
                    .insert((signer, request.nonce.clone()));
                if !fresh {
                    return Err(Refusal::new(
                        ErrorKind::Replayed,
                        "this request (gateway and nonce) was received before",
                    ));
                }
                Ok(request)
            });
        match opened {
            Ok(request) => {
                self.calls.fetch_add(1, Ordering::Relaxed);
                FinalReply {
                    id: request.id,
                    host: host.clone(),
                    outcome: Outcome::Ok {
                        result: self.result(host),
                    },
                }
            }
            Err(refusal) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                let id = serde_json::from_slice::<serde_json::Value>(&message.payload)
                    .ok()
                    .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_owned))
                    .unwrap_or_default();
                FinalReply::refused(&id, host, &refusal)
            }
        }
    }

    /// `run_command`'s result on `host` (see `--vary`).
    fn result(&self, host: &HostName) -> serde_json::Value {
        let index: usize = host
            .as_str()
            .strip_prefix(&self.prefix)
            .and_then(|digits| digits.parse().ok())
            .unwrap_or_default();
        let ran = |code: i64, stdout: String, stderr: &str| {
            serde_json::json!({
                "content": [{"type": "text", "text": format!("exit {code}\n{stdout}")}],
                "structuredContent": {"exit_code": code, "stdout": stdout, "stderr": stderr},
                "isError": code != 0,
            })
        };
        if !self.vary {
            let text = format!(" {host} up 1 day,  0 users,  load average: 0.00, 0.00, 0.00\n");
            return ran(0, text, "");
        }
        if index % 25 == 11 {
            serde_json::json!({
                "content": [{"type": "text", "text": "denied by rule \"no-sim\": simulated"}],
                "isError": true,
            })
        } else if index % 10 == 3 {
            ran(2, String::new(), "simulated failure: disk full\n")
        } else if index % 20 == 7 {
            ran(0, "x".repeat(100_000), "")
        } else {
            ran(0, " up 1 day,  load average: 0.00\n".to_owned(), "")
        }
    }

    async fn reply(&self, reply_to: async_nats::Subject, reply: &FinalReply) {
        let max = self.client.server_info().max_payload;
        for (seq, frame) in split_final(reply, max).iter().enumerate() {
            let (headers, payload) = frame.to_message(seq as u64);
            if let Err(error) = self
                .client
                .publish_with_headers(reply_to.clone(), headers, payload)
                .await
            {
                eprintln!("fleet_simhosts: reply: {error}");
                return;
            }
        }
    }
}

async fn connect(args: &Args) -> Result<async_nats::Client, SimError> {
    let mut options = match &args.nkey {
        Some(path) => {
            let seed = std::fs::read_to_string(path).map_err(|source| SimError::Read {
                path: path.clone(),
                source,
            })?;
            async_nats::ConnectOptions::with_nkey(seed.trim().to_owned())
        }
        None => async_nats::ConnectOptions::new(),
    };
    if let Some(ca) = &args.ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    let servers = args
        .nats
        .split(',')
        .map(|url| url.trim().parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SimError::Argument(format!("--nats: {e}")))?;
    options
        .name("hostmcp fleet_simhosts")
        .retry_on_initial_connect()
        .connect(servers)
        .await
        .map_err(|e| SimError::Nats(e.to_string()))
}

async fn run(args: Args) -> Result<(), SimError> {
    let hosts = (0..args.hosts)
        .map(|i| format!("{}{i:04}", args.prefix).parse::<HostName>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SimError::Argument(e.to_string()))?;
    let trusted = args
        .trust
        .iter()
        .map(|key| key.parse::<PublicKey>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SimError::Argument(format!("--trust: {e}")))?;
    let client = connect(&args).await?;
    let sim = Arc::new(Sim {
        client: client.clone(),
        hosts,
        prefix: args.prefix,
        trusted,
        seen: std::sync::Mutex::new(HashSet::new()),
        started_at_ms: protocol::now_ms(),
        beat_ms: args.beat_ms.max(100),
        calls: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        vary: args.vary,
    });
    let nats = |e: async_nats::SubscribeError| SimError::Nats(e.to_string());
    let mut calls = client
        .subscribe("hostmcp.host.*.call")
        .await
        .map_err(nats)?;
    let mut discover = client.subscribe(DISCOVER_SUBJECT).await.map_err(nats)?;
    client
        .flush()
        .await
        .map_err(|e| SimError::Nats(e.to_string()))?;
    println!("ready hosts={}", sim.hosts.len());

    let beats = {
        let sim = sim.clone();
        tokio::spawn(async move {
            let gap = Duration::from_micros(sim.beat_ms * 1000 / sim.hosts.len().max(1) as u64);
            loop {
                for host in &sim.hosts {
                    let subject = protocol::presence_subject(host);
                    let _ = sim
                        .client
                        .publish(subject, sim.presence(host, Status::Online))
                        .await;
                    tokio::time::sleep(gap).await;
                }
            }
        })
    };
    let discovery = {
        let sim = sim.clone();
        tokio::spawn(async move {
            while let Some(message) = discover.next().await {
                let Some(inbox) = message.reply else { continue };
                for host in &sim.hosts {
                    let _ = sim
                        .client
                        .publish(inbox.clone(), sim.presence(host, Status::Online))
                        .await;
                }
            }
        })
    };
    let serving = {
        let sim = sim.clone();
        tokio::spawn(async move {
            while let Some(message) = calls.next().await {
                let sim = sim.clone();
                tokio::spawn(async move {
                    let (Some(host), Some(inbox)) = (
                        sim.host_of(&message.subject).cloned(),
                        message.reply.clone(),
                    ) else {
                        return;
                    };
                    let reply = sim.answer(&host, &message);
                    sim.reply(inbox, &reply).await;
                });
            }
        })
    };

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(SimError::Signal)?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    beats.abort();
    discovery.abort();
    serving.abort();
    for host in &sim.hosts {
        let _ = client
            .publish(
                protocol::presence_subject(host),
                sim.presence(host, Status::Offline),
            )
            .await;
    }
    let _ = client.flush().await;
    println!(
        "calls={} refused={}",
        sim.calls.load(Ordering::Relaxed),
        sim.refused.load(Ordering::Relaxed)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fleet_simhosts: {error}");
            ExitCode::FAILURE
        }
    }
}
