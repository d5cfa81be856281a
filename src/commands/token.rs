//! `hostmcp token create`: print a new token and the config lines for its digest.

use super::CommandError;
use crate::{
    auth::{Role, TokenDigest, generate_token, is_valid_token_name},
    cli::TokenCommand,
};

pub fn run(command: TokenCommand) -> Result<(), CommandError> {
    match command {
        TokenCommand::Create { name, role } => create(&name, &role),
    }
}

fn create(name: &str, role: &str) -> Result<(), CommandError> {
    if !is_valid_token_name(name) {
        return Err(
            CommandError::new(format!("token name {name:?} is not valid"))
                .with_hint("use 1-64 characters from letters, digits, '-', '_' and '.'"),
        );
    }
    let role: Role = role.parse().map_err(|error| {
        CommandError::new(error).with_hint("role is one of: read, operator, admin")
    })?;
    let token = generate_token().map_err(CommandError::new)?;
    let digest = TokenDigest::of_token(token.expose()).to_hex();
    println!("{}", token.expose());
    eprintln!(
        "\nGive the token above to the client (header `Authorization: Bearer <token>`).\n\
         Add these lines to the server's config file; it keeps only the digest:\n"
    );
    println!("[[tokens]]\nname = \"{name}\"\nrole = \"{role}\"\nsha256 = \"{digest}\"");
    Ok(())
}
