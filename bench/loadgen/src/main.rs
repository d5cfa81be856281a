//! `loadgen`: the load generator and machine-limit baselines of hostmcp's benchmark.
//!
//! - `run`: N concurrent MCP sessions call one tool over /mcp (session era or the
//!   stateless 2026-07-28 era) or legacy /sse for a fixed time or request count; only
//!   responses with the right JSON-RPC id and result content count; errors are reported
//!   apart; prints throughput and latency percentiles as JSON.
//! - `idle`: open N idle sessions and report the server's RSS before and after.
//! - `cold-start`: spawn a server and time it to its first correct tools/call answer.
//! - `spawn`: bare spawn-and-wait of a program (`true`), the machine's process limit.
//! - `baseline-server`: a minimal axum endpoint answering the same MCP-shaped JSON.

mod baseline;
mod cold;
mod cpu;
mod http;
mod idle;
mod mcp;
mod run;
mod spawn;
mod stats;

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "loadgen", about = "MCP load generator for hostmcp's benchmark")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Drive tools/call load and print a JSON report.
    Run(run::RunArgs),
    /// Open idle sessions and report the server's memory.
    Idle(idle::IdleArgs),
    /// Start a server command and time it to its first correct tools/call response.
    ColdStart(cold::ColdArgs),
    /// Spawn-and-wait a program in a loop (the machine's process limit).
    Spawn(spawn::SpawnArgs),
    /// Serve a minimal MCP-shaped JSON endpoint on axum (the machine's HTTP limit).
    BaselineServer(baseline::BaselineArgs),
}

/// Which MCP transport a session speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// Streamable HTTP with initialize + Mcp-Session-Id (2025-03-26 .. 2025-11-25).
    McpSession,
    /// Streamable HTTP, stateless 2026-07-28 era (no initialize, no session).
    McpStateless,
    /// Legacy HTTP+SSE (2024-11-05): GET /sse, POST /messages, answers on the stream.
    Sse,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Self::McpSession => "mcp-session",
            Self::McpStateless => "mcp-stateless",
            Self::Sse => "sse",
        }
    }
}

/// What a tools/call asks for, and so what a correct result is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// `echo {"text": unique}`: content[0].text must equal the text sent.
    Echo,
    /// The command tool with `{"argv": ["true"]}`: structuredContent.exit_code must be 0.
    Command,
}

/// Where and how to reach the server under test.
#[derive(Args, Clone, Debug)]
pub struct TargetArgs {
    /// Base URL of the server, e.g. http://127.0.0.1:8000 (loopback only).
    #[arg(long)]
    pub url: String,
    /// Bearer token (or env BENCH_TOKEN); none sends no Authorization header.
    #[arg(long, env = "BENCH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[arg(long, value_enum, default_value = "mcp-session")]
    pub transport: Transport,
    #[arg(long, value_enum, default_value = "echo")]
    pub workload: Workload,
    /// Tool name (default: echo, or run_command for the command workload).
    #[arg(long)]
    pub tool: Option<String>,
    /// Program the command workload runs, as argv (repeatable; default `true`).
    #[arg(long = "argv")]
    pub argv: Vec<String>,
    #[arg(long, default_value = "/mcp")]
    pub mcp_path: String,
    #[arg(long, default_value = "/sse")]
    pub sse_path: String,
    /// MCP-Protocol-Version sent in stateless mode (a server without the 2026-07-28
    /// era can be driven sessionless at an older version, e.g. 2025-11-25).
    #[arg(long, default_value = "2026-07-28")]
    pub stateless_version: String,
    /// Protocol version asked for in `initialize`.
    #[arg(long, default_value = "2025-11-25")]
    pub init_version: String,
    /// Seconds before one request counts as a timeout error.
    #[arg(long, default_value = "30", value_parser = parse_secs)]
    pub request_timeout: Duration,
}

pub fn parse_secs(s: &str) -> Result<Duration, String> {
    let s = s.trim_end_matches('s');
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("not a number of seconds: {s}"))
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::main(args),
        Command::Idle(args) => idle::main(args),
        Command::ColdStart(args) => cold::main(args),
        Command::Spawn(args) => spawn::main(args),
        Command::BaselineServer(args) => baseline::main(args),
    };
    if let Err(error) = result {
        eprintln!("loadgen: error: {error}");
        std::process::exit(1);
    }
}

/// A tokio runtime: current-thread for one thread (no cross-thread wakeups), else multi.
pub fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}
