//! The `hostmcp` binary: parse the command line and hand it to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    hostmcp::run(hostmcp::cli::Cli::parse())
}
