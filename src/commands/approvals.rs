//! `hostmcp approvals list|approve ID|deny ID`: talks to the running server over its
//! approvals socket (`crate::approval::socket`), which only the server's own user or root
//! can open; the server records the deciding Unix user it reads from the socket (and
//! `$SUDO_USER` for root).

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::PathBuf,
    time::Duration,
};

use super::CommandError;
use crate::{
    approval::socket::{self, SocketAnswer, SocketRequest},
    cli::{ApprovalsArgs, ApprovalsCommand},
    config::EnvSnapshot,
};

/// How long to wait for the server's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);

pub fn run(args: ApprovalsArgs) -> Result<(), CommandError> {
    let path = socket_path(args.socket)?;
    let (request, json) = match &args.command {
        ApprovalsCommand::List { json } => (op("list", None), *json),
        ApprovalsCommand::Approve { id } => (op("approve", Some(id)), false),
        ApprovalsCommand::Deny { id } => (op("deny", Some(id)), false),
    };
    let answer = ask(&path, &request)?;
    if !answer.ok {
        return Err(CommandError::new(
            answer.error.unwrap_or_else(|| "refused".to_owned()),
        ));
    }
    match args.command {
        ApprovalsCommand::List { .. } if json => {
            let text = serde_json::to_string_pretty(&answer.pending).map_err(CommandError::new)?;
            println!("{text}");
        }
        ApprovalsCommand::List { .. } => {
            if answer.pending.is_empty() {
                println!("no commands wait for approval");
            }
            for pending in &answer.pending {
                println!(
                    "{}\t{}\t{}\t{}\t{}\tin {}\tas {}\t{}{}",
                    pending.id,
                    pending.principal,
                    pending.tool.as_deref().unwrap_or("-"),
                    pending.command,
                    pending.stdin.as_ref().map_or_else(
                        || "no stdin".to_owned(),
                        |stdin| format!("stdin {} bytes", stdin.bytes)
                    ),
                    pending.working_dir.as_deref().unwrap_or("-"),
                    pending.run_as.as_deref().unwrap_or("-"),
                    pending.rule,
                    pending
                        .reason
                        .as_ref()
                        .map_or_else(String::new, |reason| format!("\t{reason}")),
                );
            }
        }
        ApprovalsCommand::Approve { id } => println!(
            "approved {id} (recorded as {})",
            answer.decider.unwrap_or_default()
        ),
        ApprovalsCommand::Deny { id } => println!(
            "denied {id} (recorded as {})",
            answer.decider.unwrap_or_default()
        ),
    }
    Ok(())
}

fn op(name: &str, id: Option<&String>) -> SocketRequest {
    SocketRequest {
        op: name.to_owned(),
        id: id.cloned(),
        sudo_user: std::env::var("SUDO_USER").ok(),
    }
}

fn socket_path(given: Option<PathBuf>) -> Result<PathBuf, CommandError> {
    if let Some(path) = given {
        return Ok(path);
    }
    let dir = EnvSnapshot::capture().state_dir()?;
    Ok(socket::path_in(&dir))
}

fn ask(path: &std::path::Path, request: &SocketRequest) -> Result<SocketAnswer, CommandError> {
    let mut stream = UnixStream::connect(path).map_err(|error| {
        CommandError::new(format!("cannot reach the server at {}: {error}", path.display()))
            .with_hint("run this as the server's user (or root) with the server running, or name the socket with --socket")
    })?;
    stream
        .set_read_timeout(Some(ANSWER_TIMEOUT))
        .map_err(CommandError::new)?;
    let mut line = serde_json::to_string(request).map_err(CommandError::new)?;
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .map_err(CommandError::new)?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(CommandError::new)?;
    serde_json::from_str(&answer).map_err(|error| {
        CommandError::new(format!("the server's answer is not understood: {error}"))
    })
}
