//! `loadgen run`: closed-loop load. Each of N sessions keeps one tools/call in flight;
//! after a warm-up, calls that start and finish inside the measured window count when
//! their answer is correct; every other outcome is an error, counted by kind.

use std::{
    path::PathBuf,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use clap::Args;
use serde_json::json;
use tokio::sync::Barrier;

use crate::{
    TargetArgs,
    mcp::{CallFactory, Error, Session, SessionConfig},
    parse_secs,
    stats::{Errors, latency_json},
};

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Concurrent sessions, each with one request in flight.
    #[arg(long, default_value = "1")]
    pub sessions: usize,
    /// Measured time in seconds (default 10 unless --requests is given).
    #[arg(long, value_parser = parse_secs)]
    pub duration: Option<Duration>,
    /// Measure this many requests instead of a fixed time.
    #[arg(long, conflicts_with = "duration")]
    pub requests: Option<u64>,
    /// Unmeasured warm-up before the window, in seconds.
    #[arg(long, default_value = "1", value_parser = parse_secs)]
    pub warmup: Duration,
    /// Runtime threads of the load generator (1 = current-thread runtime).
    #[arg(long, default_value = "1")]
    pub threads: usize,
    /// Free-form label copied into the report.
    #[arg(long)]
    pub label: Option<String>,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// PID of the server: its CPU time over the window is reported, and throughput per
    /// server CPU-second (robust when the machine is shared).
    #[arg(long)]
    pub server_pid: Option<u32>,
}

struct Shared {
    config: SessionConfig,
    factory: CallFactory,
    request_timeout: Duration,
    warmup: Duration,
    duration: Option<Duration>,
    budget: Option<u64>,
    issued: AtomicU64,
    start: OnceLock<Instant>,
}

struct WorkerResult {
    latencies: Vec<u64>,
    errors: Errors,
    open_failed: bool,
    last_done: Option<Instant>,
}

pub fn main(args: RunArgs) -> Result<(), String> {
    let config = SessionConfig::new(&args.target)?;
    let shared = Arc::new(Shared {
        factory: CallFactory::new(&args.target),
        config,
        request_timeout: args.target.request_timeout,
        warmup: args.warmup,
        duration: if args.requests.is_some() {
            None
        } else {
            Some(args.duration.unwrap_or(Duration::from_secs(10)))
        },
        budget: args.requests,
        issued: AtomicU64::new(0),
        start: OnceLock::new(),
    });
    let sessions = args.sessions.max(1);
    let mut pids = vec!["self".to_string()];
    let mut names = vec!["loadgen"];
    if let Some(pid) = args.server_pid {
        pids.push(pid.to_string());
        names.push("server");
    }
    let rt = crate::runtime(args.threads).map_err(|e| e.to_string())?;
    let results = rt.block_on(async {
        let opened = Arc::new(Barrier::new(sessions + 1));
        let go = Arc::new(Barrier::new(sessions + 1));
        let mut handles = Vec::with_capacity(sessions);
        for index in 0..sessions {
            handles.push(tokio::spawn(worker(
                index,
                shared.clone(),
                opened.clone(),
                go.clone(),
            )));
        }
        opened.wait().await;
        let start = Instant::now();
        let _ = shared.start.set(start);
        go.wait().await;
        tokio::time::sleep_until((start + shared.warmup).into()).await;
        let before = crate::cpu::Reading::take(&pids);
        let mut after = None;
        if let Some(d) = shared.duration {
            tokio::time::sleep_until((start + shared.warmup + d).into()).await;
            after = Some(crate::cpu::Reading::take(&pids));
        }
        let mut results = Vec::with_capacity(sessions);
        for h in handles {
            results.push(h.await.map_err(|e| e.to_string())?);
        }
        let after = after.unwrap_or_else(|| crate::cpu::Reading::take(&pids));
        Ok::<_, String>((results, before.delta(&after, &names)))
    })?;
    let (results, cpu) = results;
    drop(rt);

    let start = *shared.start.get().expect("start set");
    let window_start = start + shared.warmup;
    let mut latencies = Vec::new();
    let mut errors = Errors::default();
    let mut open_failures = 0;
    let mut last_done = window_start;
    for r in results {
        latencies.extend_from_slice(&r.latencies);
        errors.merge(r.errors);
        open_failures += r.open_failed as u64;
        if let Some(t) = r.last_done {
            last_done = last_done.max(t);
        }
    }
    let ok = latencies.len() as u64;
    let elapsed = match shared.duration {
        Some(d) => d.as_secs_f64(),
        None => (last_done - window_start).as_secs_f64(),
    };
    let throughput = if elapsed > 0.0 {
        ok as f64 / elapsed
    } else {
        0.0
    };
    let per_cpu = crate::cpu::cpu_s(&cpu, "server")
        .filter(|s| *s > 0.0)
        .map(|s| ok as f64 / s);
    let (error_counts, error_examples) = errors.json();
    let report = json!({
        "kind": "run",
        "label": args.label,
        "url": args.target.url,
        "transport": args.target.transport.name(),
        "workload": format!("{:?}", args.target.workload).to_lowercase(),
        "tool": shared.factory.tool,
        "sessions": sessions,
        "warmup_s": shared.warmup.as_secs_f64(),
        "elapsed_s": elapsed,
        "ok": ok,
        "errors": errors.total(),
        "error_counts": error_counts,
        "error_examples": error_examples,
        "sessions_failed_to_open": open_failures,
        "throughput_rps": throughput,
        "calls_per_server_cpu_s": per_cpu,
        "latency_ms": latency_json(&mut latencies),
        "cpu": cpu,
    });
    let text = report.to_string();
    println!("{text}");
    if let Some(path) = &args.out {
        std::fs::write(path, format!("{text}\n"))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    eprintln!(
        "loadgen: {} {} x{}: {:.0} ok/s, p50 {:?} ms, p99 {:?} ms, {} errors",
        args.target.transport.name(),
        shared.factory.tool,
        sessions,
        throughput,
        report["latency_ms"]["p50"],
        report["latency_ms"]["p99"],
        errors.total()
    );
    Ok(())
}

async fn open(shared: &Shared) -> Result<Session, Error> {
    match tokio::time::timeout(
        shared.request_timeout,
        Session::open(&shared.config, &shared.factory.tool),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout),
    }
}

async fn worker(
    index: usize,
    shared: Arc<Shared>,
    opened: Arc<Barrier>,
    go: Arc<Barrier>,
) -> WorkerResult {
    let mut result = WorkerResult {
        latencies: Vec::new(),
        errors: Errors::default(),
        open_failed: false,
        last_done: None,
    };
    let mut session = match open(&shared).await {
        Ok(s) => Some(s),
        Err(e) => {
            result.open_failed = true;
            result
                .errors
                .add(format!("open_{}", e.kind()), || e.to_string());
            None
        }
    };
    opened.wait().await;
    go.wait().await;
    let start = *shared.start.get().expect("start set");
    let window_start = start + shared.warmup;
    let end = shared.duration.map(|d| window_start + d);
    let expected = shared
        .duration
        .map(|d| (d.as_secs_f64() * 2000.0) as usize)
        .unwrap_or(1024)
        .min(1 << 22);
    result.latencies.reserve(expected);
    let mut seq: u64 = 0;
    loop {
        let now = Instant::now();
        if end.is_some_and(|end| now >= end) {
            break;
        }
        if let Some(budget) = shared.budget {
            if now >= window_start && shared.issued.fetch_add(1, Ordering::Relaxed) >= budget {
                break;
            }
        }
        let Some(s) = session.as_mut() else {
            // Reopen after a fatal error, at most every 10 ms.
            match open(&shared).await {
                Ok(s) => session = Some(s),
                Err(e) => {
                    if Instant::now() >= window_start {
                        result
                            .errors
                            .add(format!("open_{}", e.kind()), || e.to_string());
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            continue;
        };
        seq += 1;
        let call = shared.factory.make(index, seq);
        let t0 = Instant::now();
        let outcome = match tokio::time::timeout(
            shared.request_timeout,
            s.call(&shared.config.target, &shared.config, &call),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout),
        };
        let t1 = Instant::now();
        let in_window = t0 >= window_start && end.is_none_or(|end| t1 <= end);
        match outcome {
            Ok(()) => {
                if in_window {
                    result.latencies.push((t1 - t0).as_nanos() as u64);
                    result.last_done = Some(t1);
                }
            }
            Err(e) => {
                if t0 >= window_start {
                    result.errors.add(e.kind(), || e.to_string());
                }
                if e.is_fatal() {
                    session = None;
                }
            }
        }
    }
    if let Some(s) = session {
        let _ = tokio::time::timeout(Duration::from_secs(2), s.close(&shared.config)).await;
    }
    result
}
