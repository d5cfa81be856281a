//! `hostmcp stdio`: serve the tools on stdin/stdout for a local client.

use std::sync::Arc;

use super::{CommandError, runtime};
use crate::{
    auth::Principal,
    cli::StdioArgs,
    config::{self, Config, EnvSnapshot},
    exec::BaseEnv,
    tools::ToolsState,
};

pub fn run(args: StdioArgs) -> Result<(), CommandError> {
    let file = config::load_file(args.config.as_deref())?;
    let serve_args = crate::cli::ServeArgs {
        no_auth: true,
        ..Default::default()
    };
    // Tokens and listen addresses do not apply to stdio: only the limits are used.
    let config = Config::resolve(&serve_args, &EnvSnapshot::default(), file)?;
    let state = Arc::new(ToolsState {
        limits: config.limits,
        base_env: BaseEnv::from_server_env(),
        local_principal: Some(Principal::stdio_owner()),
    });
    runtime()?
        .block_on(crate::transport::stdio::serve(state))
        .map_err(CommandError::new)
}
