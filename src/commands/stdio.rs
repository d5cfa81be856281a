//! `hostmcp stdio`: serve the tools on stdin/stdout for a local client.

use super::{CommandError, runtime};
use crate::{
    auth::Principal,
    cli::StdioArgs,
    config::{self, Config, EnvSnapshot},
    exec::BaseEnv,
    tools::{ToolSettings, ToolsState},
};

fn current_user_name() -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::effective())
        .ok()
        .flatten()
        .map(|user| user.name)
}

pub fn run(args: StdioArgs) -> Result<(), CommandError> {
    let file = config::load_file(args.config.as_deref())?;
    let serve_args = crate::cli::ServeArgs {
        no_auth: true,
        ..Default::default()
    };
    // Tokens and listen addresses do not apply to stdio: only the limits are used.
    let config = Config::resolve(&serve_args, &EnvSnapshot::capture(), file)?;
    let audit_log = super::audit::open(config.audit.as_ref())?;
    let policy = super::resolve_policy(config.policy.clone())?;
    runtime()?.block_on(async {
        crate::exec::reaper::start();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let state = ToolsState::new(
            ToolSettings {
                limits: config.limits,
                jobs: config.jobs,
                tool_calls_per_minute: config.abuse.tool_calls_per_minute,
                policy,
                // The stdio principal is whoever started the process: run as that user.
                run_as: config.run_as.clone().or_else(current_user_name),
            },
            BaseEnv::from_server_env(),
            Some(Principal::stdio_owner()),
            audit_log,
            &shutdown,
        );
        let served = crate::transport::stdio::serve(state).await;
        // The client is gone: its background jobs go with it.
        shutdown.cancel();
        served.map_err(CommandError::new)
    })
}
