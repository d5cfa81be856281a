//! The MCP conformance test server: hostmcp's own HTTP stack (host guard, auth layer,
//! rmcp's Streamable HTTP service at `/mcp`, legacy SSE at `/sse`) serving the fixture
//! tools, resources and prompts that the official conformance suite
//! (`@modelcontextprotocol/conformance` 0.1.16 and 0.2.0-alpha.12) calls, plus the
//! benchmark's `echo` and hostmcp's real `run_command`. It is a cargo example, so none
//! of this reaches the product binary.
//!
//! ```text
//! cargo build --examples
//! target/debug/examples/conformance_server --listen 127.0.0.1:0
//! ```
//!
//! Authentication is off (the suite sends none), so it listens on loopback only. It logs
//! `address=127.0.0.1:PORT` on stderr like `hostmcp serve`, and stops on SIGTERM or SIGINT.
//! `tests/e2e/test_conformance.py` runs the suites against it.

/// The fixture server itself, one file per concern in `examples/conformance_server/`.
mod conformance_server {
    pub mod fixtures;
    pub mod handler;
    pub mod input_required;
    pub mod interactive;
    pub mod reconnect;
    pub mod request_state;
    pub mod subscriptions;
}

use std::{net::SocketAddr, process::ExitCode, sync::Arc};

use anyhow::{Context, bail};
use axum::middleware::from_fn;
use clap::Parser;
use hostmcp::{
    audit::AuditLog,
    auth::{Role, TokenDigest, TokenEntry, TokenSet, authenticator::Authenticator},
    config::ConnectionSettings,
    exec::BaseEnv,
    tools::{HostTools, ToolSettings, ToolsState},
    transport::{
        host_guard::HostGuard,
        http::{self, HttpServerParts},
    },
};
use tokio_util::sync::CancellationToken;

use conformance_server::{handler::FixtureServer, reconnect};

/// Serve the conformance fixtures over hostmcp's HTTP stack, without authentication
/// unless `--token-from-env` is given.
#[derive(Debug, Parser)]
#[command(name = "conformance_server")]
struct Args {
    /// Loopback address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Require the bearer token in `HOSTMCP_TOKEN` (the benchmark's setting: the same
    /// token check as `hostmcp serve`). The conformance suites send no token.
    #[arg(long)]
    token_from_env: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    hostmcp::commands::init_logging();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    if !args.listen.ip().is_loopback() {
        bail!(
            "{} is not a loopback address: this server has no authentication and runs commands",
            args.listen
        );
    }
    let listeners = http::bind(&[args.listen]).await?;
    let bound = listeners
        .iter()
        .map(|listener| listener.local_addr())
        .collect::<Result<Vec<_>, _>>()
        .context("cannot read the bound address")?;
    for address in &bound {
        tracing::info!(%address, "conformance fixture server listening: Streamable HTTP at /mcp");
    }
    let shutdown = CancellationToken::new();
    let parts = HttpServerParts {
        handler: FixtureServer::new(host_tools()),
        authenticator: Arc::new(authenticator(args.token_from_env)?),
        audit: AuditLog::disabled(),
        auth_failures_per_minute: 1000,
        trusted_proxies: Default::default(),
        host_guard: Arc::new(HostGuard::new(&bound, &[], &same_origins(&bound))),
        max_streams_per_principal: ConnectionSettings::default().max_streams_per_principal,
        max_sessions_per_principal: ConnectionSettings::default().max_sessions_per_principal,
        shutdown: shutdown.clone(),
        metrics: None,
    };
    let app = http::router(parts).layer(from_fn(reconnect::cut_reconnection_stream));
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    http::serve(
        listeners,
        app,
        shutdown,
        None,
        hostmcp::commands::serve::connection_limits(&ConnectionSettings::default()),
    )
    .await;
    Ok(())
}

/// No authentication, or the one token of `HOSTMCP_TOKEN` (an admin, like a token
/// configured for `hostmcp serve`).
fn authenticator(token_from_env: bool) -> anyhow::Result<Authenticator> {
    if !token_from_env {
        return Ok(Authenticator::Disabled);
    }
    let token = std::env::var("HOSTMCP_TOKEN").context("--token-from-env needs HOSTMCP_TOKEN")?;
    let entry = TokenEntry::new("bench", TokenDigest::of_token(&token), Role::Admin);
    Ok(Authenticator::tokens(TokenSet::new(vec![entry])))
}

/// hostmcp's real tools, with the product defaults; commands run as the user who
/// started this test server (as root too: it is a test fixture on loopback).
fn host_tools() -> HostTools {
    let me = hostmcp::exec::run_as::current_user_name();
    HostTools::new(ToolsState::new(
        ToolSettings {
            run_as: me,
            ..ToolSettings::default()
        },
        BaseEnv::from_server_env(),
        AuditLog::disabled(),
        &CancellationToken::new(),
    ))
}

/// The browser origins of pages served by this server itself, allowed as an operator
/// would with `--allowed-origin`: the DNS-rebinding scenario sends
/// `Origin: http://127.0.0.1:PORT` and expects it accepted.
fn same_origins(bound: &[SocketAddr]) -> Vec<String> {
    bound
        .iter()
        .flat_map(|address| {
            let port = address.port();
            [
                format!("http://127.0.0.1:{port}"),
                format!("http://localhost:{port}"),
                format!("http://[::1]:{port}"),
            ]
        })
        .collect()
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
}
