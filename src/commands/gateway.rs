//! `hostmcp gateway` (serve the fleet's MCP endpoint: `serve`'s whole setup with the
//! gateway's handler, after connecting to NATS; or, with `--stdio`, `hostmcp stdio`'s setup
//! with that handler) and `hostmcp gateway key` (print the gateway's public key, creating
//! the key if needed).

use std::{io::Write, sync::Arc};

use tokio_util::sync::CancellationToken;

use super::CommandError;
use crate::{
    cli::{GatewayArgs, GatewayCommand, ServeArgs},
    config::{self, Config, EnvSnapshot},
    exec::BaseEnv,
    gateway::{
        bus::{Bus, BusSettings},
        handler::{Gateway, GatewayTools},
        key,
    },
    hardening,
    tools::ToolsState,
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
    let settings = BusSettings {
        urls: args.nats,
        nkey_file: args.nats_nkey,
        creds_file: args.nats_creds,
        ca_file: args.nats_ca,
    };
    let fan_out = args.fan_out;
    if args.stdio {
        return serve_stdio(args.serve, settings, fan_out);
    }
    let key = load_key()?;
    super::serve::run_serving(args.serve, async move |tools, _audit, shutdown| {
        gateway_tools(&settings, key, tools, fan_out, shutdown).await
    })
}

/// The gateway's handler, once it is on the bus.
async fn gateway_tools(
    settings: &BusSettings,
    key: key::GatewayKey,
    tools: Arc<ToolsState>,
    fan_out: usize,
    shutdown: CancellationToken,
) -> Result<GatewayTools, CommandError> {
    tracing::info!(gateway = %key.pair.public_key(), "gateway key (hosts list it in [fleet] trusted_gateways)");
    let bus = Bus::connect(settings, key.pair, shutdown)
        .await
        .map_err(|error| {
            CommandError::new(error).with_hint("check --nats and the NATS credentials")
        })?;
    Ok(GatewayTools::new(Gateway {
        bus,
        tools,
        fan_out,
    }))
}

/// `hostmcp gateway --stdio`: the gateway's tools on stdin/stdout for the user who started
/// it (the `hostmcp stdio` seam: its audit file and caller), with `serve`'s limits and
/// audit configuration. No tokens: the principal is `stdio`, whom each host maps in
/// `[fleet.principals]` like any other.
fn serve_stdio(args: ServeArgs, settings: BusSettings, fan_out: usize) -> Result<(), CommandError> {
    hardening::make_non_dumpable().map_err(CommandError::new)?;
    let env = EnvSnapshot::capture();
    let source = config::discover_here(args.config.as_deref(), &env);
    let args = ServeArgs {
        no_auth: true,
        ..args
    };
    let mut config = Config::resolve(&args, &env, source.load()?)?;
    super::logging::set_format(config.log_format);
    tracing::info!("{}", source.describe());
    let audit_log = super::stdio::open_audit(&mut config, &env)?;
    let policy = super::resolve_policy(config.policy.clone())?;
    let key = load_key()?;
    super::runtime()?.block_on(async {
        let shutdown = CancellationToken::new();
        let tools = ToolsState::new(
            super::tool_settings(&config, policy, None, config.files.clone()),
            BaseEnv::from_server_env(),
            audit_log,
            &shutdown,
        );
        let handler = gateway_tools(&settings, key, tools, fan_out, shutdown.clone()).await?;
        super::stdio::serve_owner(handler, &shutdown).await
    })
}
