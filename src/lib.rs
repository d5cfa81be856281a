//! hostmcp: a remote Model Context Protocol server for operating a Linux host.
//!
//! Data flows one way: request -> host guard -> auth layer (Principal) -> rmcp ->
//! tool -> exec -> result. `main.rs` only parses the command line and calls [`run`].

pub mod approval;
pub mod apps;
pub mod audit;
pub mod auth;
pub mod caller;
pub mod cli;
pub mod client;
pub mod command;
pub mod commands;
pub mod config;
pub mod env_vars;
pub mod exec;
pub mod files;
pub mod fleet;
pub mod gateway;
pub mod handler_link;
pub mod hardening;
pub mod host;
pub mod jobs;
pub mod limits;
pub mod log_excerpt;
pub mod metrics;
pub mod oauth;
pub mod outbound_tls;
pub mod policy;
pub mod private_file;
pub mod prompts;
pub mod ratelimit;
pub mod reach;
pub mod resources;
pub mod session_ends;
pub mod terminals;
pub mod tools;
pub mod transport;

use std::{io::Write, process::ExitCode};

/// Run one command line to completion and map its outcome to an exit code.
pub fn run(cli: cli::Cli) -> ExitCode {
    commands::init_logging();
    let result = match cli.command {
        cli::Command::Serve(args) => commands::serve::run(args),
        cli::Command::Stdio(args) => commands::stdio::run(args),
        cli::Command::Token(command) => commands::token::run(command),
        cli::Command::Audit(command) => commands::audit::run(command),
        cli::Command::Policy(command) => commands::policy::run(command),
        cli::Command::Check(args) => commands::check::run(args.config.as_deref(), args.fetch_jwks),
        cli::Command::Generate(command) => commands::generate::run(command),
        cli::Command::Connect(args) => commands::connect::run(args),
        cli::Command::Call(args) => commands::call::run(args),
        cli::Command::Tools(args) => commands::tools::run(args),
        cli::Command::Oauth(args) => commands::oauth::run(args),
        cli::Command::Approvals(args) => commands::approvals::run(args),
        cli::Command::Gateway(args) => commands::gateway::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Not eprintln!, which panics when stderr's reader has gone.
            let _ = writeln!(std::io::stderr(), "{error}");
            ExitCode::from(error.exit_code())
        }
    }
}
