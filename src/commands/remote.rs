//! What `connect`, `call` and `tools` share: the endpoint made from their flags and the
//! environment, and how a client error leaves (exit status 2, as `hostmcp call` promises
//! for a server that cannot be reached or refuses).

use std::sync::Arc;

use super::CommandError;
use crate::{
    cli::RemoteArgs,
    client::{ClientError, Endpoint, EndpointSettings, endpoint::resolve_token},
    env_vars,
};

/// The exit status of a connection or protocol failure.
pub const EXIT_UNREACHABLE: u8 = 2;

/// The endpoint the flags name, with the token from `--token-file` or `HOSTMCP_TOKEN`.
pub fn endpoint(args: &RemoteArgs) -> Result<Arc<Endpoint>, CommandError> {
    if args.token.is_some() {
        return Err(CommandError::new(
            "--token is refused: a token on the command line is readable by every user of this host",
        )
        .with_hint(format!(
            "put the token in the {} environment variable or in a file named by --token-file",
            env_vars::TOKEN
        ))
        .with_exit_code(EXIT_UNREACHABLE));
    }
    let token = resolve_token(
        args.token_file.as_deref(),
        std::env::var(env_vars::TOKEN).ok(),
    )
    .map_err(client_error)?;
    let endpoint = Endpoint::new(EndpointSettings {
        url: args.url.clone(),
        token,
        ca_file: args.ca_file.clone(),
    })
    .map_err(client_error)?;
    if endpoint.sends_token_in_clear() {
        tracing::warn!(
            url = %endpoint.url(),
            "the token crosses the network in clear over http://; use https:// (hostmcp serve --tls-cert)"
        );
    }
    Ok(endpoint)
}

/// A client failure as the command's error: its hint, exit status 2.
pub fn client_error(error: ClientError) -> CommandError {
    let hint = error.hint();
    let command_error = CommandError::new(error).with_exit_code(EXIT_UNREACHABLE);
    match hint {
        Some(hint) => command_error.with_hint(hint),
        None => command_error,
    }
}
