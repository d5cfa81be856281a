//! `hostmcp audit verify`: check an audit log's hash chain, and opening the audit log
//! for the serving subcommands.

use std::os::unix::fs::DirBuilderExt;

use super::CommandError;
use crate::{
    audit::{self, AuditLog, AuditOptions},
    cli::AuditCommand,
    config::AuditFile,
};

pub fn run(command: AuditCommand) -> Result<(), CommandError> {
    match command {
        AuditCommand::Verify { file, anchor } => {
            let anchor = anchor
                .map(|text| text.parse::<audit::Anchor>())
                .transpose()
                .map_err(|error| {
                    CommandError::new(error)
                        .with_hint("give the anchor as SEQ:HASH, as verify printed it")
                })?;
            let report = audit::verify_with_anchor(&file, anchor.as_ref())
                .map_err(|error| CommandError::new(&error).with_hint(error.hint()))?;
            println!("{report}");
            if report.is_intact() {
                Ok(())
            } else {
                Err(CommandError::new(format!(
                    "{} is not intact",
                    file.display()
                )))
            }
        }
    }
}

/// Open the configured audit log (creating its directory, mode 0700), or the log-only one.
pub fn open(file: Option<&AuditFile>) -> Result<AuditLog, CommandError> {
    let Some(file) = file else {
        tracing::warn!("no audit file: audit records go to the log only");
        return Ok(AuditLog::disabled());
    };
    if let Some(dir) = file.path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|error| {
                CommandError::new(format!("cannot create {}: {error}", dir.display()))
            })?;
    }
    let options = AuditOptions {
        redact_env_values: file.redact_env_values,
    };
    AuditLog::open(&file.path, options).map_err(|error| {
        CommandError::new(&error).with_hint(format!(
            "{}; or choose another file with --audit-log",
            error.hint()
        ))
    })
}
