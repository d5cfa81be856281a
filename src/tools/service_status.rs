//! `service_status`: systemd's units through its D-Bus API (`crate::host::systemd`): the
//! list, filtered by state, type and name glob, or one unit's status with its recent
//! restarts and last journal lines. Where systemd is not running, a plain answer saying
//! so. Role `read`.

use rmcp::{
    ErrorData as McpError, RoleServer,
    handler::server::common::{schema_for_output, schema_for_type},
    model::{CallToolResult, ContentBlock, JsonObject, Tool},
    service::RequestContext,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    ToolsState,
    log_query::{self, LogLine, LogQueryInput},
    parse_arguments,
};
use crate::{
    caller::Caller,
    config::services::{LogSettings, SystemdSettings},
    exec::reaper::Owner,
    host::{
        logs::time::rfc3339,
        systemd::{Manager, SystemdError, Target, UnitRow, UnitStatus},
        units,
    },
};

pub const NAME: &str = "service_status";
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;
const DEFAULT_LOG_LINES: u32 = 10;
const MAX_LOG_LINES: u32 = 100;

/// The arguments of `service_status`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceStatusInput {
    /// One unit's status ("nginx" means nginx.service; or e.g. "ssh.socket"). Without it,
    /// the units are listed.
    pub unit: Option<String>,
    /// List only units in one of these states: active, failed, inactive, activating,
    /// deactivating, or a sub state such as running, exited, dead, or a load state such as
    /// not-found.
    #[serde(default)]
    pub state: Vec<String>,
    /// List only units of this type: service, socket, timer, mount, target, path, slice,
    /// scope, swap, device, automount.
    #[serde(rename = "type")]
    pub unit_type: Option<String>,
    /// List only units whose name matches this glob, e.g. "ssh*".
    pub pattern: Option<String>,
    /// List at most this many units (default 100, at most 1000).
    pub limit: Option<u32>,
    /// With `unit`: its last this many journal lines (default 10, 0 for none, at most 100).
    pub log_lines: Option<u32>,
}

/// One unit of the list.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UnitLine {
    pub name: String,
    /// loaded, not-found, masked, ...
    pub load: String,
    /// active, inactive, failed, activating, deactivating, reloading.
    pub active: String,
    /// The type's own state: running, exited, dead, listening, ...
    pub sub: String,
    pub description: String,
}

/// One unit's status.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UnitDetail {
    pub name: String,
    pub description: String,
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    /// enabled, disabled, static, masked, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_file_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fragment_path: Option<String>,
    /// When the unit entered its current state (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// The same, in microseconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_us: Option<u64>,
    /// When the unit last became active (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_usage_nsec: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks: Option<u64>,
    /// Automatic restarts since the unit was loaded (NRestarts; services only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u32>,
    /// How the last run ended: success, exit-code, signal, timeout, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

/// What `service_status` returns: a list, or one unit.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ServiceStatusOutput {
    /// Where systemd was asked (a D-Bus address).
    pub manager: String,
    /// The units (a listing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub units: Option<Vec<UnitLine>>,
    /// How many units matched; `units` has at most `limit` of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// The unit asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<UnitDetail>,
    /// The unit's last journal lines, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<Vec<LogLine>>,
    /// Why there are no journal lines, when they could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs_note: Option<String>,
}

pub fn definition() -> Tool {
    Tool::new(
        NAME,
        "systemd units through systemd's D-Bus API. Without `unit`: list the units (filter by \
         state such as failed or running, by type such as service, by a name glob). With \
         `unit`: its load/active/sub state, since when, main PID, memory, CPU, tasks, restarts \
         and its last journal lines. Says so plainly where systemd is not running.",
        schema_for_type::<ServiceStatusInput>(),
    )
    .with_raw_output_schema(schema_for_output::<ServiceStatusOutput>())
    .with_annotations(super::read_only_annotations("Service status"))
}

pub async fn call(
    state: &ToolsState,
    caller: &Caller,
    arguments: Option<JsonObject>,
    _context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let input: ServiceStatusInput = parse_arguments(arguments, NAME)?;
    let owner = Owner {
        principal: Some(caller.principal.name().to_owned()),
        command_id: None,
    };
    let services = &state.services;
    Ok(
        match answer(&services.systemd, &services.logs, input, owner).await {
            Ok((output, text)) => {
                let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                result.structured_content = serde_json::to_value(&output).ok();
                result
            }
            Err(refusal) => CallToolResult::error(vec![ContentBlock::text(refusal)]),
        },
    )
}

/// The structured answer and its text; `Err` is the text of a failed call.
pub async fn answer(
    systemd: &SystemdSettings,
    logs: &LogSettings,
    input: ServiceStatusInput,
    owner: Owner,
) -> Result<(ServiceStatusOutput, String), String> {
    let unit = input
        .unit
        .as_deref()
        .map(log_query::unit_argument)
        .transpose()?;
    if unit
        .as_deref()
        .is_some_and(|name| name.contains(['*', '?', '[']))
    {
        return Err("unit names one unit; to list units by a glob, give pattern".to_owned());
    }
    let patterns = list_patterns(&input)?;
    let states = input
        .state
        .iter()
        .map(|state| word(state, "state"))
        .collect::<Result<Vec<_>, _>>()?;
    let manager = Manager::connect(&systemd.target, systemd.timeout)
        .await
        .map_err(|error| refusal(&error))?;
    let at = where_(&systemd.target);
    match unit {
        Some(name) => {
            let status = manager
                .unit_status(&name)
                .await
                .map_err(|error| refusal(&error))?;
            let lines = input
                .log_lines
                .unwrap_or(DEFAULT_LOG_LINES)
                .min(MAX_LOG_LINES);
            let (logs, logs_note) = unit_logs(logs, &status, lines, owner).await;
            let text = render_unit(&status, logs.as_deref(), logs_note.as_deref());
            let output = ServiceStatusOutput {
                manager: at,
                units: None,
                total: None,
                unit: Some(detail(status)),
                logs,
                logs_note,
            };
            Ok((output, text))
        }
        None => {
            let mut rows = manager
                .list_units(&states, &patterns)
                .await
                .map_err(|error| refusal(&error))?;
            if let Some(suffix) = input.unit_type.as_deref().map(|t| format!(".{t}")) {
                rows.retain(|row| row.name.ends_with(&suffix));
            }
            let total = rows.len();
            let limit = input.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
            rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            let text = render_list(&rows, total, &input, &at);
            let output = ServiceStatusOutput {
                manager: at,
                units: Some(rows.into_iter().map(UnitLine::from).collect()),
                total: Some(total as u64),
                unit: None,
                logs: None,
                logs_note: None,
            };
            Ok((output, text))
        }
    }
}

/// The name globs for the listing: the pattern, narrowed to the type when both are given
/// (the type is also checked by suffix afterwards).
fn list_patterns(input: &ServiceStatusInput) -> Result<Vec<String>, String> {
    let unit_type = input
        .unit_type
        .as_deref()
        .map(|t| word(t, "type"))
        .transpose()?;
    let pattern = input
        .pattern
        .as_deref()
        .map(log_query::unit_argument)
        .transpose()?
        // A bare word is a name glob here, not a service name.
        .map(|_| input.pattern.clone().unwrap_or_default());
    Ok(match (pattern, unit_type) {
        (Some(pattern), _) => vec![pattern],
        (None, Some(unit_type)) => vec![format!("*.{unit_type}")],
        (None, None) => Vec::new(),
    })
}

/// A state or type word: lower-case letters and '-'.
fn word(text: &str, what: &str) -> Result<String, String> {
    if text.is_empty()
        || text.len() > 32
        || !text.chars().all(|c| c.is_ascii_lowercase() || c == '-')
    {
        return Err(format!("{what} {text:?}: lower-case letters and '-' only"));
    }
    Ok(text.to_owned())
}

/// The text of a failure, with what to do when systemd is absent.
fn refusal(error: &SystemdError) -> String {
    match error {
        SystemdError::NotRunning { .. } => format!(
            "{error}. There are no systemd units to report on this host; look at processes \
             instead (run_command with ps, or a process tool)."
        ),
        other => other.to_string(),
    }
}

fn where_(target: &Target) -> String {
    match target {
        Target::System => "the system manager".to_owned(),
        Target::Bus(address) => address.clone(),
    }
}

async fn unit_logs(
    settings: &LogSettings,
    status: &UnitStatus,
    lines: u32,
    owner: Owner,
) -> (Option<Vec<LogLine>>, Option<String>) {
    if lines == 0 {
        return (None, None);
    }
    if !settings.journal {
        return (
            None,
            Some("the journal is not offered on this server ([logs] journal = false)".into()),
        );
    }
    let input = LogQueryInput {
        unit: Some(status.name.clone()),
        lines: Some(lines),
        ..LogQueryInput::default()
    };
    match log_query::query(settings, input, owner).await {
        Ok(output) => (Some(output.lines), None),
        Err(error) => (None, Some(error)),
    }
}

impl From<UnitRow> for UnitLine {
    fn from(row: UnitRow) -> Self {
        Self {
            name: row.name,
            load: row.load_state,
            active: row.active_state,
            sub: row.sub_state,
            description: row.description,
        }
    }
}

fn detail(status: UnitStatus) -> UnitDetail {
    let time = |us: Option<u64>| us.and_then(|us| i64::try_from(us).ok()).map(rfc3339);
    UnitDetail {
        since: time(status.state_change_us),
        since_us: status.state_change_us,
        active_since: time(status.active_enter_us),
        name: status.name,
        description: status.description,
        load_state: status.load_state,
        active_state: status.active_state,
        sub_state: status.sub_state,
        unit_file_state: status.unit_file_state,
        fragment_path: status.fragment_path,
        main_pid: status.main_pid,
        memory_bytes: status.memory_bytes,
        cpu_usage_nsec: status.cpu_nsec,
        tasks: status.tasks,
        restarts: status.restarts,
        result: status.result,
    }
}

fn render_list(rows: &[UnitRow], total: usize, input: &ServiceStatusInput, at: &str) -> String {
    let mut filters: Vec<String> = Vec::new();
    if !input.state.is_empty() {
        filters.push(format!("state {}", input.state.join("|")));
    }
    if let Some(unit_type) = &input.unit_type {
        filters.push(format!("type {unit_type}"));
    }
    if let Some(pattern) = &input.pattern {
        filters.push(format!("name {pattern}"));
    }
    let filtered = if filters.is_empty() {
        String::new()
    } else {
        format!(" ({})", filters.join(", "))
    };
    let mut text = if rows.len() < total {
        format!(
            "{} of {total} units{filtered} from {at}; {} more: narrow with state, type or pattern, or raise limit:",
            rows.len(),
            total - rows.len()
        )
    } else {
        format!("{total} units{filtered} from {at}:")
    };
    let width = rows.iter().map(|row| row.name.len()).max().unwrap_or(0);
    for row in rows {
        text.push_str(&format!(
            "\n{:width$}  {} {} {}  {}",
            row.name, row.load_state, row.active_state, row.sub_state, row.description
        ));
    }
    text
}

fn render_unit(status: &UnitStatus, logs: Option<&[LogLine]>, logs_note: Option<&str>) -> String {
    let mut text = format!("{} — {}", status.name, status.description);
    if status.load_state == "not-found" {
        text.push_str("\n  not found: no such unit is loaded or on disk");
        return text;
    }
    let file = [
        status.unit_file_state.as_deref(),
        status.fragment_path.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    text.push_str(&format!("\n  {}", status.load_state));
    if !file.is_empty() {
        text.push_str(&format!(" ({file})"));
    }
    text.push_str(&format!("; {} ({})", status.active_state, status.sub_state));
    if let Some(since) = status.state_change_us {
        text.push_str(&format!(" since {}", since_text(since)));
    }
    let mut facts: Vec<String> = Vec::new();
    if let Some(pid) = status.main_pid {
        facts.push(format!("main PID {pid}"));
    }
    if let Some(bytes) = status.memory_bytes {
        facts.push(format!("memory {}", units::bytes(bytes)));
    }
    if let Some(nsec) = status.cpu_nsec {
        facts.push(format!("CPU {:.2} s", nsec as f64 / 1e9));
    }
    if let Some(tasks) = status.tasks {
        facts.push(format!("{tasks} task{}", if tasks == 1 { "" } else { "s" }));
    }
    if let Some(restarts) = status.restarts {
        facts.push(format!(
            "{restarts} restart{}",
            if restarts == 1 { "" } else { "s" }
        ));
    }
    if let Some(result) = &status.result {
        facts.push(format!("last result {result}"));
    }
    if !facts.is_empty() {
        text.push_str(&format!("\n  {}", facts.join(", ")));
    }
    match (logs, logs_note) {
        (_, Some(note)) => text.push_str(&format!("\n  journal: {note}")),
        (Some([]), None) => text.push_str("\n  no journal lines for this unit"),
        (Some(lines), None) => {
            text.push_str(&format!("\n  last {} journal lines:", lines.len()));
            for line in lines {
                text.push_str(&format!("\n    {}", log_query::render_line(line)));
            }
        }
        (None, None) => {}
    }
    text
}

/// `2026-11-29T11:21:01Z (3 min ago)`.
fn since_text(us: u64) -> String {
    let Ok(signed) = i64::try_from(us) else {
        return us.to_string();
    };
    let now = jiff::Timestamp::now().as_microsecond();
    let ago = u64::try_from((now - signed) / 1_000_000).unwrap_or(0);
    format!("{} ({} ago)", rfc3339(signed), units::duration(ago))
}

#[cfg(test)]
mod tests;
