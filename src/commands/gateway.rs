//! `hostmcp gateway` (serve the fleet's MCP endpoint: `serve`'s whole setup with the
//! gateway's handler, after connecting to NATS) and `hostmcp gateway key` (print the
//! gateway's public key, creating the key if needed).

use std::io::Write;

use super::CommandError;
use crate::{
    cli::{GatewayArgs, GatewayCommand},
    config::EnvSnapshot,
    gateway::{
        bus::{Bus, BusSettings},
        handler::{Gateway, GatewayTools},
        key,
    },
};

pub fn run(args: GatewayArgs) -> Result<(), CommandError> {
    match args.command {
        Some(GatewayCommand::Key) => print_key(),
        None => serve(args),
    }
}

fn load_key() -> Result<key::GatewayKey, CommandError> {
    let state_dir = EnvSnapshot::capture()
        .state_dir()
        .map_err(CommandError::from)?;
    key::load_or_create(&state_dir).map_err(|error| {
        CommandError::new(error).with_hint("the key lives in the state directory ($XDG_STATE_HOME/hostmcp or ~/.local/state/hostmcp)")
    })
}

fn print_key() -> Result<(), CommandError> {
    let key = load_key()?;
    if key.created {
        tracing::info!(path = %key.path.display(), "created the gateway key (mode 0600)");
    }
    let _ = writeln!(std::io::stdout(), "{}", key.pair.public_key());
    Ok(())
}

fn serve(args: GatewayArgs) -> Result<(), CommandError> {
    if args.nats.is_empty() {
        return Err(
            CommandError::new("hostmcp gateway needs --nats URL").with_hint(
                "e.g. hostmcp gateway --nats nats://127.0.0.1:4222 --listen 127.0.0.1:8100",
            ),
        );
    }
    if !args.serve.fleet.fleet.is_empty() {
        return Err(
            CommandError::new("hostmcp gateway does not join a fleet itself (--fleet)")
                .with_hint("run the host agent as its own `hostmcp serve --fleet` process"),
        );
    }
    if args.fan_out == 0 {
        return Err(CommandError::new("--fan-out must be at least 1"));
    }
    let key = load_key()?;
    tracing::info!(gateway = %key.pair.public_key(), "gateway key (hosts list it in [fleet] trusted_gateways)");
    let settings = BusSettings {
        urls: args.nats,
        nkey_file: args.nats_nkey,
        creds_file: args.nats_creds,
        ca_file: args.nats_ca,
    };
    let fan_out = args.fan_out;
    super::serve::run_serving(args.serve, async move |tools, _audit, shutdown| {
        let bus = Bus::connect(&settings, key.pair, shutdown)
            .await
            .map_err(|error| {
                CommandError::new(error).with_hint("check --nats and the NATS credentials")
            })?;
        Ok(GatewayTools::new(Gateway {
            bus,
            tools,
            fan_out,
        }))
    })
}
