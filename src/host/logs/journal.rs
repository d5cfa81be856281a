//! The systemd journal, read by running `journalctl` with a fixed argument vector (no
//! shell; every value travels as one `--option=value` word, so none can become an option)
//! and `--output=json --reverse`: newest first, stopped as soon as enough entries matched,
//! or when the scan cap or the time limit is reached.
//!
//! Why `journalctl` and not a crate: it is the reference reader, installed wherever the
//! journal is and always of the same version as the journald that wrote the files, so it
//! reads every file format (compact mode, zstd/xz/lz4, sealed files) and knows where the
//! journal lives and who may read which file. The pure-Rust readers (`sdjournal`,
//! `systemd-journal-sdk`) are young 0.x crates, and the `systemd`/`sd-journal` crates link
//! libsystemd. The cost is one process per query (a few milliseconds).
//!
//! The process is registered with the reaper ([`crate::exec::reaper`]) like a command, so
//! the orphan sweeper leaves it alone, and it is killed when the query ends early.

use std::{path::Path, process::Stdio, time::Duration};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use super::{
    LogEntry,
    select::{Collector, More, Order, Selected, Selection},
};
use crate::exec::reaper::{COMMAND_ID_VAR, CommandRegistration, Owner};

/// Where journalctl is looked for (a fixed path: PATH is not consulted).
const JOURNALCTL: [&str; 2] = ["/usr/bin/journalctl", "/bin/journalctl"];
/// The fields asked for (journalctl adds its own `__` fields).
const FIELDS: &str = "MESSAGE,PRIORITY,_SYSTEMD_UNIT,_SYSTEMD_USER_UNIT,SYSLOG_IDENTIFIER,_PID";
/// What is kept of journalctl's stderr for an error message.
const STDERR_KEPT: u64 = 2048;

/// What to ask the journal for.
#[derive(Debug, Clone, Default)]
pub struct JournalQuery {
    /// `--unit`: a unit name or glob (already checked by the caller).
    pub unit: Option<String>,
    /// This priority and more urgent (0 emerg .. 7 debug).
    pub priority: Option<u8>,
    /// Journal files in this directory instead of the system's journal.
    pub directory: Option<std::path::PathBuf>,
}

/// How much one query may read and for how long.
#[derive(Debug, Clone, Copy)]
pub struct JournalLimits {
    pub max_scan_entries: u64,
    pub timeout: Duration,
}

/// The journal could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("the journal cannot be read here: journalctl is not installed")]
    NoJournalctl,
    #[error("cannot run journalctl: {0}")]
    Spawn(std::io::Error),
    #[error("journalctl failed ({status}): {stderr}")]
    Failed { status: String, stderr: String },
}

/// The entries of the journal that `query` and `selection` keep.
pub async fn select(
    query: &JournalQuery,
    selection: Selection,
    limits: JournalLimits,
    owner: Owner,
) -> Result<Selected, JournalError> {
    let program = JOURNALCTL
        .iter()
        .map(Path::new)
        .find(|path| path.is_file())
        .ok_or(JournalError::NoJournalctl)?;
    let argv = arguments(query, &selection);
    let mut command = tokio::process::Command::new(program);
    command
        .args(&argv)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .env("SYSTEMD_COLORS", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let uid = nix::unistd::Uid::effective().as_raw();
    let mut registration = CommandRegistration::new(uid, owner);
    command.env(COMMAND_ID_VAR, registration.id());
    let mut child = {
        let _no_sweep_while_spawning = registration.spawn_lock();
        let child = command.spawn().map_err(JournalError::Spawn)?;
        if let Some(pid) = child.id() {
            registration.set_leader(pid);
        }
        child
    };
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let stderr = tokio::spawn(async move {
        let mut kept = String::new();
        let _ = stderr.take(STDERR_KEPT).read_to_string(&mut kept).await;
        kept
    });
    let mut collector = Collector::new(selection, Order::NewestFirst);
    let read = read_entries(stdout, &mut collector, limits.max_scan_entries);
    let ended = match tokio::time::timeout(limits.timeout, read).await {
        Ok(ended) => ended,
        Err(_) => {
            collector.stopped_early(format!(
                "time limit of {} s reached",
                limits.timeout.as_secs_f32()
            ));
            Ended::Stopped
        }
    };
    if ended == Ended::ScanCap {
        collector.stopped_early(format!(
            "scan cap of {} entries reached",
            limits.max_scan_entries
        ));
    }
    if ended != Ended::Exhausted {
        let _ = child.start_kill();
    }
    let status = child.wait().await.map_err(JournalError::Spawn)?;
    registration.end();
    let stderr = stderr.await.unwrap_or_default();
    let selected = collector.finish();
    if ended == Ended::Exhausted && !status.success() && selected.scanned == 0 {
        return Err(JournalError::Failed {
            status: status.to_string(),
            stderr: stderr.trim().to_owned(),
        });
    }
    Ok(selected)
}

/// journalctl's arguments: fixed options, then each value as one `--name=value` word.
fn arguments(query: &JournalQuery, selection: &Selection) -> Vec<String> {
    let mut argv: Vec<String> = [
        "--no-pager",
        "--quiet",
        "--reverse",
        "--output=json",
        "--all",
    ]
    .map(str::to_owned)
    .to_vec();
    argv.push(format!("--output-fields={FIELDS}"));
    if let Some(unit) = &query.unit {
        argv.push(format!("--unit={unit}"));
    }
    if let Some(priority) = query.priority {
        argv.push(format!("--priority={priority}"));
    }
    // Whole seconds, widened; the collector applies the exact bounds.
    if let Some(since) = selection.since_us {
        argv.push(format!("--since=@{}", since.div_euclid(1_000_000)));
    }
    if let Some(until) = selection.until_us {
        argv.push(format!("--until=@{}", until.div_euclid(1_000_000) + 1));
    }
    if let Some(directory) = &query.directory {
        argv.push(format!("--directory={}", directory.display()));
    }
    argv
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// journalctl had nothing more.
    Exhausted,
    /// Enough entries matched, or the time limit came.
    Stopped,
    ScanCap,
}

async fn read_entries(
    stdout: tokio::process::ChildStdout,
    collector: &mut Collector,
    max_scan: u64,
) -> Ended {
    let mut lines = BufReader::new(stdout).lines();
    let mut scanned = 0u64;
    while let Ok(Some(line)) = lines.next_line().await {
        if scanned >= max_scan {
            return Ended::ScanCap;
        }
        scanned += 1;
        let Some(entry) = parse_entry(&line) else {
            continue;
        };
        if collector.push(entry) == More::Enough {
            return Ended::Stopped;
        }
    }
    Ended::Exhausted
}

/// One line of `journalctl --output=json`.
pub fn parse_entry(line: &str) -> Option<LogEntry> {
    let Value::Object(fields) = serde_json::from_str::<Value>(line).ok()? else {
        return None;
    };
    let text = |name: &str| fields.get(name).and_then(field_text);
    Some(LogEntry {
        time_us: text("__REALTIME_TIMESTAMP").and_then(|us| us.parse().ok()),
        priority: text("PRIORITY").and_then(|p| p.parse().ok()),
        unit: text("_SYSTEMD_UNIT").or_else(|| text("_SYSTEMD_USER_UNIT")),
        identifier: text("SYSLOG_IDENTIFIER"),
        pid: text("_PID").and_then(|pid| pid.parse().ok()),
        message: text("MESSAGE").unwrap_or_default(),
    })
}

/// A field's value: a string, or (binary or not UTF-8) an array of bytes; a field that
/// occurs several times is an array of those, of which the first is taken.
fn field_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Array(items) if items.iter().all(Value::is_u64) => {
            let bytes: Vec<u8> = items
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        Value::Array(items) => items.first().and_then(field_text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_from_journalctl_json() {
        let line = r#"{"__REALTIME_TIMESTAMP":"1764412800000123","PRIORITY":"3","_SYSTEMD_UNIT":"nginx.service","SYSLOG_IDENTIFIER":"nginx","_PID":"42","MESSAGE":"boom"}"#;
        assert_eq!(
            parse_entry(line),
            Some(LogEntry {
                time_us: Some(1_764_412_800_000_123),
                priority: Some(3),
                unit: Some("nginx.service".into()),
                identifier: Some("nginx".into()),
                pid: Some(42),
                message: "boom".into(),
            })
        );
        // Binary message, a repeated field, a message journald dropped as too large (null).
        let odd = r#"{"MESSAGE":[104,105,255],"SYSLOG_IDENTIFIER":["a","b"],"_PID":null}"#;
        let entry = parse_entry(odd).unwrap();
        assert_eq!(entry.message, "hi\u{fffd}");
        assert_eq!(entry.identifier.as_deref(), Some("a"));
        assert_eq!(entry.pid, None);
        assert_eq!(parse_entry("-- No entries --"), None);
    }

    #[test]
    fn every_value_is_one_option_word() {
        let query = JournalQuery {
            unit: Some("--output=cat x".into()),
            priority: Some(3),
            directory: Some("/tmp/j".into()),
        };
        let selection = Selection {
            since_us: Some(1_500_000),
            until_us: Some(2_500_000),
            grep: None,
            lines: 1,
            max_line_bytes: 10,
            max_bytes: 10,
        };
        let argv = arguments(&query, &selection);
        assert!(argv.contains(&"--unit=--output=cat x".to_owned()));
        assert!(argv.contains(&"--since=@1".to_owned()));
        assert!(argv.contains(&"--until=@3".to_owned()));
        assert!(argv.contains(&"--priority=3".to_owned()));
        assert!(argv.contains(&"--directory=/tmp/j".to_owned()));
        assert!(argv.iter().all(|word| word.starts_with("--")));
    }
}
