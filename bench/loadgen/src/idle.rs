//! `loadgen idle`: open N idle sessions and report the server's resident memory before
//! and after. An idle session keeps what a real client keeps between calls:
//! - mcp-session: initialize + initialized, then the standalone GET stream held open
//!   (as the SDK clients do); the POST connection is closed.
//! - sse: the GET /sse stream held open, after initialize; the POST connection closed.
//! - mcp-stateless: the era has no sessions; one keep-alive connection that made one call.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Args;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::{
    TargetArgs, Transport,
    mcp::{CallFactory, Session, SessionConfig},
    parse_secs,
    stats::Errors,
};

#[derive(Args, Debug)]
pub struct IdleArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Idle sessions to open.
    #[arg(long)]
    pub sessions: usize,
    /// PID of the server whose RSS is measured.
    #[arg(long)]
    pub pid: u32,
    /// Seconds to wait before each RSS reading.
    #[arg(long, default_value = "2", value_parser = parse_secs)]
    pub settle: Duration,
    /// Sessions being opened at once.
    #[arg(long, default_value = "32")]
    pub open_concurrency: usize,
    #[arg(long)]
    pub label: Option<String>,
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Resident set size of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("pid {pid}: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("pid {pid}: no VmRSS"))
}

pub fn main(args: IdleArgs) -> Result<(), String> {
    let config = Arc::new(SessionConfig::new(&args.target)?);
    let factory = Arc::new(CallFactory::new(&args.target));
    let rt = crate::runtime(1).map_err(|e| e.to_string())?;
    let report = rt.block_on(async move {
        // Warm the server with one session and one call, so lazy set-up is in "before".
        let mut warm = Session::open(&config, &factory.tool)
            .await
            .map_err(|e| format!("warm-up session: {e}"))?;
        warm.call(&config.target, &config, &factory.make(usize::MAX, 1))
            .await
            .map_err(|e| format!("warm-up call: {e}"))?;
        tokio::time::sleep(args.settle).await;
        let before = rss_kib(args.pid)?;
        let t0 = Instant::now();
        let permits = Arc::new(Semaphore::new(args.open_concurrency.max(1)));
        let mut handles = Vec::with_capacity(args.sessions);
        for index in 0..args.sessions {
            let (config, factory, permits) = (config.clone(), factory.clone(), permits.clone());
            handles.push(tokio::spawn(async move {
                let _permit = permits.acquire_owned().await.expect("semaphore open");
                open_idle(&config, &factory, index).await
            }));
        }
        let mut held = Vec::with_capacity(args.sessions);
        let mut errors = Errors::default();
        for h in handles {
            match h.await {
                Ok(Ok(s)) => held.push(s),
                Ok(Err(e)) => errors.add(e.kind(), || e.to_string()),
                Err(e) => errors.add("panic".into(), || e.to_string()),
            }
        }
        let open_seconds = t0.elapsed().as_secs_f64();
        tokio::time::sleep(args.settle).await;
        let after = rss_kib(args.pid)?;
        let opened = held.len();
        let per_session = if opened > 0 {
            (after as f64 - before as f64) / opened as f64
        } else {
            0.0
        };
        drop(held);
        drop(warm);
        let (error_counts, error_examples) = errors.json();
        Ok::<_, String>(json!({
            "kind": "idle",
            "label": args.label,
            "url": args.target.url,
            "transport": args.target.transport.name(),
            "sessions": args.sessions,
            "opened": opened,
            "errors": errors.total(),
            "error_counts": error_counts,
            "error_examples": error_examples,
            "open_seconds": open_seconds,
            "rss_before_kib": before,
            "rss_after_kib": after,
            "per_session_kib": per_session,
        }))
    })?;
    let text = report.to_string();
    println!("{text}");
    if let Some(path) = &args.out {
        std::fs::write(path, format!("{text}\n"))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

async fn open_idle(
    config: &SessionConfig,
    factory: &CallFactory,
    index: usize,
) -> Result<Session, crate::mcp::Error> {
    let mut session = Session::open(config, &factory.tool).await?;
    match config.transport {
        Transport::McpSession => {
            session.hold_get_stream(config).await?;
            if let Session::Mcp { conn, .. } = &mut session {
                // Only the stream stays open: replace the POST connection by a closed one.
                drop(std::mem::replace(conn, crate::http::Conn::closed()));
            }
        }
        Transport::McpStateless => {
            session
                .call(&config.target, config, &factory.make(index, 1))
                .await?;
        }
        Transport::Sse => {
            if let Session::Sse { post, .. } = &mut session {
                drop(std::mem::replace(post, crate::http::Conn::closed()));
            }
        }
    }
    Ok(session)
}
