//! `hostmcp oauth clients|grants list|revoke`: the authorization server's store, opened
//! beside a running server (redb's multi-process mode). A revocation written here is read
//! by the server within `oauth::verify::GRANT_RELOAD_INTERVAL`; its access tokens get 401
//! from then on, and its sessions, streams and terminals end (`on_revoke = "kill"`). The
//! command cannot write the server's audit log: it leaves a note in the store naming the
//! Unix user who ran it, and the server puts the revocation on record when it reads the
//! note (at once if running, else when it next starts).

use std::path::PathBuf;

use super::CommandError;
use crate::{
    cli::{OAuthArgs, OAuthCommand, OAuthItemCommand},
    config::{self, EnvSnapshot},
    oauth::store::{RevocationNote, RevokedKind, Store, now_secs},
};

pub fn run(args: OAuthArgs) -> Result<(), CommandError> {
    let path = store_path(&args)?;
    if !path.exists() {
        return Err(
            CommandError::new(format!("no OAuth store at {}", path.display()))
                .with_hint("start `hostmcp serve --oauth` once, or name the file with --store"),
        );
    }
    let store = Store::open(&path).map_err(CommandError::new)?;
    match args.command {
        OAuthCommand::Clients(OAuthItemCommand::List { json }) => {
            let clients = store.clients().map_err(CommandError::new)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&clients).map_err(CommandError::new)?
                );
            }
            for client in clients.iter().filter(|_| !json) {
                println!(
                    "{}\t{}\t{}\t{}",
                    client.client_id,
                    if client.revoked { "revoked" } else { "active" },
                    client.client_name,
                    client.redirect_uris.join(" ")
                );
            }
        }
        OAuthCommand::Clients(OAuthItemCommand::Revoke { id }) => {
            if !store.revoke_client(&id).map_err(CommandError::new)? {
                return Err(CommandError::new(format!("no client {id:?}"))
                    .with_hint("`hostmcp oauth clients list` shows the ids"));
            }
            let note = RevocationNote {
                kind: RevokedKind::Client,
                client_id: id.clone(),
                id: id.clone(),
                principal: None,
                by: invoking_user(),
                at: now_secs(),
            };
            store.note_revocation(&note).map_err(CommandError::new)?;
            println!("client {id} revoked, with its grants");
        }
        OAuthCommand::Grants(OAuthItemCommand::List { json }) => {
            let grants = store.grants().map_err(CommandError::new)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&grants).map_err(CommandError::new)?
                );
            }
            for grant in grants.iter().filter(|_| !json) {
                println!(
                    "{}\t{}\tclient={}\tprincipal={}\trole={}\tscope={}",
                    grant.grant_id,
                    grant
                        .revoked
                        .as_deref()
                        .map_or("active".to_owned(), |why| format!("revoked:{why}")),
                    grant.client_id,
                    grant.principal,
                    grant.role,
                    grant.scope
                );
            }
        }
        OAuthCommand::Grants(OAuthItemCommand::Revoke { id }) => {
            match store
                .revoke_grant(&id, "revoked_by_operator")
                .map_err(CommandError::new)?
            {
                Some(revoked_now) => {
                    let grant = store.grant(&id).map_err(CommandError::new)?;
                    if let (true, Some(grant)) = (revoked_now, grant) {
                        let note = RevocationNote {
                            kind: RevokedKind::Grant,
                            id: id.clone(),
                            client_id: grant.client_id,
                            principal: Some(grant.principal),
                            by: invoking_user(),
                            at: now_secs(),
                        };
                        store.note_revocation(&note).map_err(CommandError::new)?;
                    }
                    println!("grant {id} revoked");
                }
                None => {
                    return Err(CommandError::new(format!("no grant {id:?}"))
                        .with_hint("`hostmcp oauth grants list` shows the ids"));
                }
            }
        }
    }
    Ok(())
}

/// Who runs this command, as the audit record of a revocation names them.
fn invoking_user() -> String {
    let uid = nix::unistd::getuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => format!("{} (uid {uid})", user.name),
        _ => format!("uid {uid}"),
    }
}

/// `--store`, else the config's `[oauth] store`, else the state directory's oauth.redb.
fn store_path(args: &OAuthArgs) -> Result<PathBuf, CommandError> {
    if let Some(path) = &args.store {
        return Ok(path.clone());
    }
    let env = EnvSnapshot::capture();
    let source = config::discover_here(args.config.as_deref(), &env);
    let file = source.load()?;
    if let Some(path) = file.oauth.and_then(|table| table.store) {
        return Ok(path);
    }
    Ok(env.state_dir()?.join("oauth.redb"))
}
