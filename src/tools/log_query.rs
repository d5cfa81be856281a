//! `log_query`: recent lines of the journal or of a configured log file, filtered by unit,
//! priority, time and a regular expression, always bounded (line cap, byte cap, scan cap,
//! time limit). A file is read only when `[logs]` lists it; anything else is refused with
//! the list of what may be read. Role `read`.

use regex::RegexBuilder;
use rmcp::{
    ErrorData as McpError, RoleServer,
    handler::server::common::{schema_for_output, schema_for_type},
    model::{CallToolResult, ContentBlock, JsonObject, Tool},
    service::RequestContext,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ToolsState, file_gate, parse_arguments};
use crate::{
    caller::Caller,
    config::services::{JOURNAL, LogSettings},
    exec::reaper::Owner,
    host::logs::{
        LogEntry, Selected, Selection, file,
        journal::{self, JournalLimits, JournalQuery},
        time::{self, LineClock},
    },
};

pub const NAME: &str = "log_query";
/// Lines returned when the call names no number.
const DEFAULT_LINES: u32 = 100;
/// The most a regular expression may compile to.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The arguments of `log_query`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogQueryInput {
    /// "journal" (the default), or a configured log file by its name or path.
    pub source: Option<String>,
    /// Journal only: the lines of this unit ("nginx" means nginx.service), or a glob.
    pub unit: Option<String>,
    /// Journal only: this priority and more urgent: emerg, alert, crit, err, warning,
    /// notice, info, debug, or 0-7.
    pub priority: Option<String>,
    /// Lines at or after this time: RFC 3339 (2026-11-29T10:00:00Z) or an amount ago
    /// (90s, 15m, 2h, 3d).
    pub since: Option<String>,
    /// Lines at or before this time, written like `since`.
    pub until: Option<String>,
    /// Only lines whose message matches this regular expression ((?i) ignores case).
    pub grep: Option<String>,
    /// At most this many lines, the newest (default 100).
    pub lines: Option<u32>,
}

/// One log line as the model gets it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LogLine {
    /// RFC 3339, UTC, when the source tells.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// syslog priority, 0 (emerg) to 7 (debug).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    pub message: String,
}

/// What `log_query` returns.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LogQueryOutput {
    /// "journal" or the file source's name.
    pub source: String,
    /// The file read, for a file source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The matching lines, oldest first.
    pub lines: Vec<LogLine>,
    /// Matching lines older than those returned, left out by the line or byte cap.
    pub older_matches_left_out: u64,
    /// Entries read.
    pub scanned: u64,
    /// Lines cut at the per-line byte cap.
    pub lines_cut: u64,
    /// Why reading stopped before the source's start, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_early: Option<String>,
}

pub fn definition() -> Tool {
    Tool::new(
        NAME,
        "Read recent log lines: the systemd journal (source \"journal\", the default; filter by \
         unit and priority) or a log file the server is configured to expose (source = its name \
         or path). Filter by time (since/until) and a regular expression (grep); the newest \
         `lines` matches are returned, oldest first, within a byte cap. Runs no shell.",
        schema_for_type::<LogQueryInput>(),
    )
    .with_raw_output_schema(schema_for_output::<LogQueryOutput>())
    .with_annotations(super::read_only_annotations("Log query"))
}

pub async fn call(
    state: &ToolsState,
    caller: &Caller,
    arguments: Option<JsonObject>,
    _context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let input: LogQueryInput = parse_arguments(arguments, NAME)?;
    let owner = Owner {
        principal: Some(caller.principal.name().to_owned()),
        command_id: None,
    };
    // A configured log file is a file read: audited like file_read, with the path the
    // kernel resolved (the record is written before the lines are shown).
    let file_source = input
        .source
        .as_deref()
        .and_then(|source| state.services.logs.file(source))
        .map(|source| source.path.display().to_string());
    let answer = query(&state.services.logs, input, owner).await;
    if let Some(requested) = &file_source {
        let access = |resolved| file_gate::Access {
            tool: NAME,
            operation: crate::audit::FileOperation::Read,
            requested,
            resolved,
            sha256: None,
        };
        match &answer {
            Ok(output) => {
                if let Err(refusal) = access(output.path.as_deref()).done(state, caller).await {
                    return Ok(refusal.into_result());
                }
            }
            Err(_) => access(None).failed(state, caller, "log_read_failed").await,
        }
    }
    Ok(match answer {
        Ok(output) => {
            let text = render(&output);
            let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
            result.structured_content = serde_json::to_value(&output).ok();
            result
        }
        Err(refusal) => CallToolResult::error(vec![ContentBlock::text(refusal)]),
    })
}

/// Run one query; `Err` is the text the model sees.
pub async fn query(
    settings: &LogSettings,
    input: LogQueryInput,
    owner: Owner,
) -> Result<LogQueryOutput, String> {
    let now = jiff::Timestamp::now();
    let bound = |text: &Option<String>| {
        text.as_deref()
            .map(|text| time::parse_bound(text, now))
            .transpose()
            .map_err(|error| error.to_string())
    };
    let grep = input
        .grep
        .as_deref()
        .map(|pattern| {
            RegexBuilder::new(pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|error| format!("grep: {error}"))
        })
        .transpose()?;
    let lines = input.lines.unwrap_or(DEFAULT_LINES);
    if lines == 0 {
        return Err("lines must be at least 1".to_owned());
    }
    let selection = Selection {
        since_us: bound(&input.since)?,
        until_us: bound(&input.until)?,
        grep,
        lines: usize::try_from(lines)
            .unwrap_or(usize::MAX)
            .min(settings.max_lines),
        max_line_bytes: settings.max_line_bytes,
        max_bytes: settings.max_bytes,
    };
    let source = input.source.as_deref().unwrap_or(JOURNAL);
    if source == JOURNAL {
        if !settings.journal {
            return Err(format!(
                "the journal is not offered on this server ([logs] journal = false); {}",
                sources(settings)
            ));
        }
        let query = JournalQuery {
            unit: input.unit.as_deref().map(unit_argument).transpose()?,
            priority: input.priority.as_deref().map(priority).transpose()?,
            directory: settings.journal_directory.clone(),
        };
        let limits = JournalLimits {
            max_scan_entries: settings.max_scan_entries,
            timeout: settings.timeout,
        };
        let selected = journal::select(&query, selection, limits, owner)
            .await
            .map_err(|error| error.to_string())?;
        return Ok(output(JOURNAL.to_owned(), None, selected));
    }
    let Some(file_source) = settings.file(source) else {
        return Err(format!(
            "refused: {source:?} is not a log source of this server; {}",
            sources(settings)
        ));
    };
    if input.unit.is_some() || input.priority.is_some() {
        return Err("unit and priority filter the journal only; a file has neither".to_owned());
    }
    let path = file_source.path.clone();
    let max_scan = settings.max_scan_bytes;
    // The path reported and audited is the one read: the read refuses a path reached
    // through a symlink, so what it opened is the configured path, resolved.
    let read = tokio::task::spawn_blocking(move || {
        file::select(&path, max_scan, selection, &LineClock::system(now))
    });
    let (selected, _) = tokio::time::timeout(settings.timeout, read)
        .await
        .map_err(|_| format!("reading {source} took longer than the time limit"))?
        .map_err(|error| format!("reading {source} failed: {error}"))?
        .map_err(|error| error.to_string())?;
    Ok(output(
        file_source.name.clone(),
        Some(file_source.path.display().to_string()),
        selected,
    ))
}

fn output(source: String, path: Option<String>, selected: Selected) -> LogQueryOutput {
    LogQueryOutput {
        source,
        path,
        lines: selected.entries.into_iter().map(LogLine::from).collect(),
        older_matches_left_out: selected.older_matches_left_out,
        scanned: selected.scanned,
        lines_cut: selected.lines_cut,
        stopped_early: selected.stopped_early,
    }
}

impl From<LogEntry> for LogLine {
    fn from(entry: LogEntry) -> Self {
        Self {
            time: entry.time_us.map(time::rfc3339),
            priority: entry.priority,
            unit: entry.unit,
            identifier: entry.identifier,
            pid: entry.pid,
            message: entry.message,
        }
    }
}

/// What the server lets `log_query` read, for a refusal.
fn sources(settings: &LogSettings) -> String {
    let mut names: Vec<&str> = Vec::new();
    if settings.journal {
        names.push(JOURNAL);
    }
    names.extend(settings.files.iter().map(|source| source.name.as_str()));
    if names.is_empty() {
        "no log source is configured".to_owned()
    } else {
        format!("the sources are: {}", names.join(", "))
    }
}

/// A unit name or glob as journalctl's `--unit` takes it; "nginx" is nginx.service.
pub fn unit_argument(unit: &str) -> Result<String, String> {
    let valid = !unit.is_empty()
        && unit.len() <= 256
        && unit
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":_.\\@-*?[]".contains(c));
    if !valid {
        return Err(format!(
            "{unit:?} is not a unit name (letters, digits and :_.\\@- , or a glob with *?[])"
        ));
    }
    Ok(if unit.contains('.') || unit.contains(['*', '?', '[']) {
        unit.to_owned()
    } else {
        format!("{unit}.service")
    })
}

const PRIORITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// A syslog priority by name or number.
fn priority(text: &str) -> Result<u8, String> {
    let text = text.trim().to_ascii_lowercase();
    let alias = match text.as_str() {
        "error" => "err",
        "warn" => "warning",
        "critical" => "crit",
        "emergency" | "panic" => "emerg",
        other => other,
    };
    PRIORITIES
        .iter()
        .position(|name| *name == alias)
        .and_then(|level| u8::try_from(level).ok())
        .or_else(|| text.parse::<u8>().ok().filter(|level| *level <= 7))
        .ok_or_else(|| {
            format!(
                "priority {text:?}: give one of {} or 0-7",
                PRIORITIES.join(", ")
            )
        })
}

/// The answer as a model reads it: a header line, then one line per log line.
fn render(output: &LogQueryOutput) -> String {
    let from = output.path.as_deref().map_or_else(
        || output.source.clone(),
        |path| format!("{} ({path})", output.source),
    );
    let mut text = format!(
        "{} line{} from {from}, oldest first ({} read",
        output.lines.len(),
        if output.lines.len() == 1 { "" } else { "s" },
        output.scanned
    );
    if output.older_matches_left_out > 0 {
        text.push_str(&format!(
            "; {} older matching line{} left out: ask for more lines or a later since",
            output.older_matches_left_out,
            if output.older_matches_left_out == 1 {
                ""
            } else {
                "s"
            }
        ));
    }
    if output.lines_cut > 0 {
        text.push_str(&format!("; {} long lines cut", output.lines_cut));
    }
    if let Some(why) = &output.stopped_early {
        text.push_str(&format!("; stopped early: {why}"));
    }
    text.push_str("):");
    for line in &output.lines {
        text.push('\n');
        text.push_str(&render_line(line));
    }
    text
}

/// `2026-11-29T11:21:01Z nginx.service nginx[42] err: message`, with what is known.
pub fn render_line(line: &LogLine) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(time) = &line.time {
        parts.push(time.clone());
    }
    if let Some(unit) = &line.unit {
        parts.push(unit.clone());
    }
    match (&line.identifier, line.pid) {
        (Some(identifier), Some(pid)) => parts.push(format!("{identifier}[{pid}]")),
        (Some(identifier), None) => parts.push(identifier.clone()),
        _ => {}
    }
    if let Some(priority) = line.priority.and_then(|p| PRIORITIES.get(usize::from(p))) {
        parts.push(format!("{priority}:"));
    }
    // A file line carries its own time and program: show it as it is.
    if line.unit.is_none() && line.identifier.is_none() {
        return line.message.clone();
    }
    parts.push(line.message.clone());
    parts.join(" ")
}

#[cfg(test)]
mod tests;
