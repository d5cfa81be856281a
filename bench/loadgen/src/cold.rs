//! `loadgen cold-start`: start a server command, then poll it (every 200 µs) until a
//! fresh session gets a correct tools/call answer; the time from spawn to that answer
//! is the cold start. Repeated `--runs` times; the server is killed after each run.

use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use clap::Args;
use serde_json::json;

use crate::{
    TargetArgs,
    mcp::{CallFactory, Session, SessionConfig},
    parse_secs,
};

#[derive(Args, Debug)]
pub struct ColdArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[arg(long, default_value = "5")]
    pub runs: usize,
    /// Give up on one start after this many seconds.
    #[arg(long, default_value = "30", value_parser = parse_secs)]
    pub max_wait: Duration,
    #[arg(long)]
    pub label: Option<String>,
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The server command (after `--`); it must listen on the address of --url.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

pub fn main(args: ColdArgs) -> Result<(), String> {
    let config = SessionConfig::new(&args.target)?;
    let factory = CallFactory::new(&args.target);
    let rt = crate::runtime(1).map_err(|e| e.to_string())?;
    let mut samples = Vec::new();
    let mut last_error = None;
    rt.block_on(async {
        for run in 0..args.runs {
            let t0 = Instant::now();
            let mut child = tokio::process::Command::new(&args.command[0])
                .args(&args.command[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("{}: {e}", args.command[0]))?;
            let mut answered = None;
            while t0.elapsed() < args.max_wait {
                let attempt = async {
                    let mut s = Session::open(&config, &factory.tool).await?;
                    s.call(&config.target, &config, &factory.make(run, 1)).await
                };
                match tokio::time::timeout(Duration::from_secs(5), attempt).await {
                    Ok(Ok(())) => {
                        answered = Some(t0.elapsed());
                        break;
                    }
                    Ok(Err(e)) => last_error = Some(e.to_string()),
                    Err(_) => last_error = Some("attempt timed out".into()),
                }
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("server exited early: {status}"));
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            let _ = child.start_kill();
            let _ = child.wait().await;
            match answered {
                Some(d) => samples.push(d.as_secs_f64() * 1000.0),
                None => {
                    return Err(format!(
                        "no correct answer within {:?}: {last_error:?}",
                        args.max_wait
                    ));
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Ok(())
    })?;
    let mut sorted = samples.clone();
    sorted.sort_by(f64::total_cmp);
    let report = json!({
        "kind": "cold_start",
        "label": args.label,
        "transport": args.target.transport.name(),
        "runs_ms": samples,
        "median_ms": sorted.get(sorted.len() / 2),
        "min_ms": sorted.first(),
        "max_ms": sorted.last(),
    });
    let text = report.to_string();
    println!("{text}");
    if let Some(path) = &args.out {
        std::fs::write(path, format!("{text}\n"))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
