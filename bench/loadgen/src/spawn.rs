//! `loadgen spawn`: the machine's process limit. N threads each spawn a program (`true`)
//! with its output on /dev/null and wait for it, in a loop, for a fixed time. Run it
//! pinned (`taskset -c 0`) to get the one-core figure the servers are held to.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Args;
use serde_json::json;

use crate::{parse_secs, stats::latency_json};

#[derive(Args, Debug)]
pub struct SpawnArgs {
    /// Threads spawning at once.
    #[arg(long, default_value = "16")]
    pub concurrency: usize,
    #[arg(long, default_value = "10", value_parser = parse_secs)]
    pub duration: Duration,
    #[arg(long, default_value = "1", value_parser = parse_secs)]
    pub warmup: Duration,
    /// Program (and arguments) to run.
    #[arg(long, default_value = "true", num_args = 1..)]
    pub program: Vec<String>,
    #[arg(long)]
    pub label: Option<String>,
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn main(args: SpawnArgs) -> Result<(), String> {
    let start = Instant::now();
    let cpu_before = std::sync::Arc::new(std::sync::Mutex::new(None));
    {
        let cpu_before = cpu_before.clone();
        let at = start + args.warmup;
        std::thread::spawn(move || {
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            *cpu_before.lock().unwrap() = Some(crate::cpu::Reading::take(&["self".into()]));
        });
    }
    let window_start = start + args.warmup;
    let end = window_start + args.duration;
    let program = Arc::new(args.program.clone());
    let threads: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| {
            let program = program.clone();
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                let mut failures = 0u64;
                loop {
                    let t0 = Instant::now();
                    if t0 >= end {
                        break;
                    }
                    let status = Command::new(&program[0])
                        .args(&program[1..])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                    let t1 = Instant::now();
                    if t0 >= window_start && t1 <= end {
                        match status {
                            Ok(s) if s.success() => latencies.push((t1 - t0).as_nanos() as u64),
                            _ => failures += 1,
                        }
                    }
                }
                (latencies, failures)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failures = 0;
    for t in threads {
        let (l, f) = t.join().map_err(|_| "spawn thread panicked".to_string())?;
        latencies.extend(l);
        failures += f;
    }
    let ok = latencies.len();
    let cpu_after = crate::cpu::Reading::take(&["self".into()]);
    let cpu = cpu_before
        .lock()
        .unwrap()
        .as_ref()
        .map(|b| b.delta(&cpu_after, &["spawner"]))
        .unwrap_or_default();
    let per_cpu = crate::cpu::cpu_s(&cpu, "spawner")
        .filter(|s| *s > 0.0)
        .map(|s| ok as f64 / s);
    let report = json!({
        "kind": "spawn",
        "label": args.label,
        "program": args.program,
        "concurrency": args.concurrency,
        "elapsed_s": args.duration.as_secs_f64(),
        "ok": ok,
        "errors": failures,
        "throughput_rps": ok as f64 / args.duration.as_secs_f64(),
        "calls_per_server_cpu_s": per_cpu,
        "cpu": cpu,
        "latency_ms": latency_json(&mut latencies),
    });
    let text = report.to_string();
    println!("{text}");
    if let Some(path) = &args.out {
        std::fs::write(path, format!("{text}\n"))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
