//! `hostmcp connect URL`: stdin/stdout bridged to a remote MCP server, for stdio-only clients
//! (client/bridge.rs does the relaying). Logs go to stderr.

use std::time::Duration;

use tokio::io::BufReader;

use super::{
    CommandError,
    remote::{client_error, endpoint},
    runtime,
};
use crate::{
    cli::ConnectArgs,
    client::bridge::{self, BridgeSettings},
};

pub fn run(args: ConnectArgs) -> Result<(), CommandError> {
    let endpoint = endpoint(&args.remote)?;
    let settings = BridgeSettings {
        reconnect_for: Duration::from_secs(args.reconnect_for),
    };
    runtime()?
        .block_on(bridge::run(
            endpoint,
            settings,
            BufReader::new(tokio::io::stdin()),
            tokio::io::stdout(),
        ))
        .map_err(|error| client_error(error).with_exit_code(1))
}
