//! `hostmcp audit verify` and `hostmcp audit keygen`: check an audit log's chain (with the
//! key and its anchor file when given), make a key; and opening the audit log for the serving
//! subcommands.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::CommandError;
use crate::{
    audit::{self, AuditKey, AuditLog, AuditOptions, Start, VerifyOptions},
    cli::AuditCommand,
    config::AuditFile,
};

pub fn run(command: AuditCommand) -> Result<(), CommandError> {
    match command {
        AuditCommand::Verify {
            files,
            anchor,
            key,
            anchor_file,
            no_anchor_file,
            mid_chain,
        } => {
            let mut anchors = Vec::new();
            if let Some(text) = anchor {
                anchors.push(text.parse::<audit::Anchor>().map_err(|error| {
                    CommandError::new(error)
                        .with_hint("give the anchor as SEQ:HASH, as verify printed it")
                })?);
            }
            let key = key.as_deref().map(load_key).transpose()?;
            if let Some(key) = &key
                && !no_anchor_file
            {
                let path = match anchor_file {
                    Some(path) => path,
                    None => audit::anchor_path(files.last().expect("clap requires a file")),
                };
                // Read before the log: a server writing meanwhile only moves the log past it.
                let anchor = audit::read_anchor_file(&path, key).map_err(|error| {
                    CommandError::new(&error).with_hint(
                        "the anchor file is missing or not sealed with this key: lines may have \
                         been cut off the end; --no-anchor-file checks the rest",
                    )
                })?;
                // Printed to compare with a copy kept off the host: an anchor file rolled
                // back with the log is consistent with it, and only that copy shows it.
                println!("anchor file {}: {anchor}", path.display());
                anchors.push(anchor);
            }
            let options = VerifyOptions {
                start: if mid_chain {
                    Start::MidChain
                } else {
                    Start::Genesis
                },
                key,
                anchors,
            };
            let report = audit::verify_files(&files, &options)
                .map_err(|error| CommandError::new(&error).with_hint(error.hint()))?;
            println!("{report}");
            if report.is_intact() {
                Ok(())
            } else {
                Err(CommandError::new(format!(
                    "{} is not intact",
                    display(&files)
                )))
            }
        }
        AuditCommand::Keygen { file } => {
            AuditKey::generate(&file)
                .map_err(|error| CommandError::new(&error).with_hint(error.hint()))?;
            println!(
                "wrote a new audit key to {} (mode 0600); set [audit] key_file to it, keep a \
                 copy where the host cannot change it, and never let commands read it",
                file.display()
            );
            Ok(())
        }
    }
}

fn load_key(path: &Path) -> Result<AuditKey, CommandError> {
    AuditKey::load(path).map_err(|error| CommandError::new(&error).with_hint(error.hint()))
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
    let key = file.key_file.as_deref().map(load_key).transpose()?;
    let options = AuditOptions {
        redact_env_values: file.redact_env_values,
        key,
    };
    AuditLog::open(&file.path, options).map_err(|error| {
        CommandError::new(&error).with_hint(format!(
            "{}; or choose another file with --audit-log",
            error.hint()
        ))
    })
}

/// The files of a log after rotation, for messages.
fn display(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|file| file.display().to_string())
        .collect::<Vec<_>>()
        .join(" + ")
}
