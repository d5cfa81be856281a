//! `process_list`: the host's processes (not threads) with owner, state, CPU share, memory,
//! I/O, start time and command line; sorted, filtered by name, user or state, and cut to a
//! small limit so that a model gets the answer, not the whole table. The CPU share is
//! measured by the server's [`CpuSampler`](crate::host::processes::CpuSampler): since an
//! earlier call when there was one in the last ten minutes (at least 100 ms ago), else
//! over a 150 ms sample this call waits for; the window is in the result.
//!
//! A call reads of every process only what its sort and filters need ([`scan_for`]): by
//! memory the resident size, by pid nothing, the owner only under a user filter; the
//! rows it shows are then completed ([`Completer`](processes::Completer)). See the module doc of
//! [`crate::host::processes`].

use std::cmp::Reverse;

use rmcp::{
    ErrorData as McpError, RoleServer,
    handler::server::common::{schema_for_output, schema_for_type},
    model::{CallToolResult, ContentBlock, JsonObject, Tool},
    service::RequestContext,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ToolsState;
use crate::{
    caller::Caller,
    host::{
        processes::{self, PerProcess, ProcessDetails, ProcessRow, Sampled, Scan, state_name},
        units,
    },
};

pub const NAME: &str = "process_list";
/// Rows when the caller gives no limit.
pub const DEFAULT_LIMIT: usize = 25;
/// The most rows one call returns.
pub const MAX_LIMIT: usize = 200;
/// Characters of a command line in the text.
const TEXT_COMMAND_CHARS: usize = 120;
/// Bytes of a command line in the structured part: compilers and JVMs have argv of tens
/// of KiB, and ten of them made a 38 KB answer to "top 10 by memory".
const MAX_COMMAND_BYTES: usize = 512;

/// How to order the processes.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SortBy {
    /// Highest CPU share first (the default).
    #[default]
    Cpu,
    /// Largest resident memory first.
    Memory,
    /// Lowest pid first.
    Pid,
    /// Most recently started first.
    Start,
}

/// Arguments of `process_list`; all optional.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessListInput {
    /// Order: cpu (default), memory, pid or start.
    #[serde(default)]
    pub sort: SortBy,
    /// Only processes whose name contains this text (case-insensitive).
    pub name: Option<String>,
    /// Only processes of this user (name or numeric uid).
    pub user: Option<String>,
    /// Only processes in this state: a letter (R, S, D, Z, T, I) or its name (running,
    /// sleeping, zombie, ...).
    pub state: Option<String>,
    /// How many to return (default 25, at most 200).
    #[schemars(range(min = 1, max = 200))]
    pub limit: Option<u32>,
}

/// One process as shown.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListedProcess {
    #[serde(flatten)]
    pub process: ProcessRow,
    #[serde(flatten)]
    pub details: ProcessDetails,
}

/// What `process_list` returns.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ProcessList {
    /// Processes on the host.
    pub total: u32,
    /// Processes that pass the filters.
    pub matched: u32,
    pub sort: SortBy,
    /// The window the CPU shares cover.
    pub cpu_window_ms: u64,
    /// `true`: since an earlier call; `false`: this call sampled.
    pub cpu_since_earlier_call: bool,
    pub processes: Vec<ListedProcess>,
}

pub fn definition() -> Tool {
    Tool::new(
        NAME,
        "List the host's processes with pid, parent, user, state, CPU share, memory (RSS), \
         I/O, start time and command line. Sort by cpu (default), memory, pid or start; \
         filter by name, user or state; `limit` rows (default 25). Use this instead of \
         ps or top.",
        schema_for_type::<ProcessListInput>(),
    )
    .with_raw_output_schema(schema_for_output::<ProcessList>())
    .with_annotations(super::read_only_annotations("Process list"))
    .with_meta(crate::apps::dashboard_tool_meta())
}

pub async fn call(
    state: &ToolsState,
    _caller: &Caller,
    arguments: Option<JsonObject>,
    _context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let input: ProcessListInput = super::parse_arguments(arguments, NAME)?;
    let sampler = state.cpu_sampler.clone();
    let listed = tokio::task::spawn_blocking(move || list(&sampler, &input))
        .await
        .map_err(|error| McpError::internal_error(error.to_string(), None))?;
    let list = match listed {
        Ok(list) => list,
        Err(error) => {
            return Ok(CallToolResult::error(vec![ContentBlock::text(
                error.to_string(),
            )]));
        }
    };
    let mut result = CallToolResult::success(vec![ContentBlock::text(render(&list))]);
    result.structured_content = serde_json::to_value(&list).ok();
    Ok(result)
}

/// Answer `input` from the host now: sample what the question needs of every process,
/// then select. Blocks (see [`processes::CpuSampler::sample_scan`]).
pub fn list(
    sampler: &processes::CpuSampler,
    input: &ProcessListInput,
) -> Result<ProcessList, crate::host::HostError> {
    let (sampled, mut completer) = sampler.sample_scan(scan_for(input))?;
    Ok(select_with(sampled, input, |row| completer.complete(row)))
}

/// What `input` needs read of every process: the stat line to sort by CPU or start or to
/// filter by name or state, else the resident memory to sort by memory, else only the
/// pids; the owner to filter by user.
pub fn scan_for(input: &ProcessListInput) -> Scan {
    let each = if matches!(input.sort, SortBy::Cpu | SortBy::Start)
        || input.name.is_some()
        || input.state.is_some()
    {
        PerProcess::Stat
    } else if input.sort == SortBy::Memory {
        PerProcess::Memory
    } else {
        PerProcess::Pid
    };
    Scan {
        each,
        owner: input.user.is_some(),
    }
}

/// Filter, sort and cut the sampled processes, then read the shown ones' details;
/// `complete` fills in a shown row what the scan did not read, `false` when its process
/// ended (the next one is shown instead).
pub fn select_with(
    sampled: Sampled,
    input: &ProcessListInput,
    mut complete: impl FnMut(&mut ProcessRow) -> bool,
) -> ProcessList {
    let total = u32::try_from(sampled.processes.len()).unwrap_or(u32::MAX);
    let name = input.name.as_deref().map(str::to_lowercase);
    let state = input.state.as_deref().map(state_letter);
    let mut rows: Vec<ProcessRow> = sampled
        .processes
        .into_iter()
        .filter(|row| {
            name.as_deref()
                .is_none_or(|name| row.name.to_lowercase().contains(name))
        })
        .filter(|row| {
            input
                .user
                .as_deref()
                .is_none_or(|user| row.user.as_deref() == Some(user) || row.uid.to_string() == user)
        })
        .filter(|row| state.as_deref().is_none_or(|state| row.state == state))
        .collect();
    let matched = u32::try_from(rows.len()).unwrap_or(u32::MAX);
    let share = |row: &ProcessRow| row.cpu_percent.unwrap_or(0.0);
    match input.sort {
        SortBy::Cpu => rows.sort_by(|a, b| {
            share(b)
                .total_cmp(&share(a))
                .then(b.rss_bytes.cmp(&a.rss_bytes))
        }),
        SortBy::Memory => rows.sort_by_key(|row| Reverse(row.rss_bytes)),
        SortBy::Pid => rows.sort_by_key(|row| row.pid),
        SortBy::Start => rows.sort_by_key(|row| Reverse((row.start_ticks, row.pid))),
    }
    let limit = input
        .limit
        .map_or(DEFAULT_LIMIT, |limit| limit as usize)
        .clamp(1, MAX_LIMIT);
    let processes = rows
        .into_iter()
        .filter_map(|mut process| {
            if !complete(&mut process) {
                return None;
            }
            let mut details = processes::details(process.pid);
            cut(&mut details.command_line, MAX_COMMAND_BYTES);
            Some(ListedProcess { process, details })
        })
        .take(limit)
        .collect();
    ProcessList {
        total,
        matched,
        sort: input.sort,
        cpu_window_ms: sampled.window_ms,
        cpu_since_earlier_call: sampled.since_earlier_call,
        processes,
    }
}

/// A state given as a letter or a name, as the letter /proc shows.
fn state_letter(state: &str) -> String {
    let lower = state.to_lowercase();
    for letter in ["R", "S", "D", "Z", "T", "t", "I", "X", "P"] {
        if state == letter || state_name(letter) == lower {
            return letter.to_owned();
        }
    }
    match lower.as_str() {
        "sleep" | "sleeping" => "S",
        "disk" | "uninterruptible" | "blocked" => "D",
        _ => state,
    }
    .to_owned()
}

fn cut(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
}

/// A header line and one line a process.
pub fn render(list: &ProcessList) -> String {
    let sort = match list.sort {
        SortBy::Cpu => "CPU",
        SortBy::Memory => "memory",
        SortBy::Pid => "pid",
        SortBy::Start => "start (newest first)",
    };
    let mut text = format!(
        "{} processes, {} match; {} shown by {sort}; CPU % of one CPU over the last {} ms\n\
         PID PPID USER STATE CPU% RSS STARTED COMMAND\n",
        list.total,
        list.matched,
        list.processes.len(),
        list.cpu_window_ms
    );
    for listed in &list.processes {
        let row = &listed.process;
        let started = jiff::Timestamp::from_second(i64::try_from(row.start_time_unix).unwrap_or(0))
            .map(|t| t.strftime("%m-%d %H:%M").to_string())
            .unwrap_or_default();
        let mut command = if listed.details.command_line.is_empty() {
            format!("[{}]", row.name)
        } else {
            listed.details.command_line.clone()
        };
        if command.chars().count() > TEXT_COMMAND_CHARS {
            command = command.chars().take(TEXT_COMMAND_CHARS).collect::<String>() + "…";
        }
        text.push_str(&format!(
            "{} {} {} {} {:.1} {} {started} {command}\n",
            row.pid,
            row.ppid,
            row.user.clone().unwrap_or_else(|| row.uid.to_string()),
            row.state,
            row.cpu_percent.unwrap_or(0.0),
            units::bytes(row.rss_bytes),
        ));
    }
    text
}

#[cfg(test)]
mod tests;
