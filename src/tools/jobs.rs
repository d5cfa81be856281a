//! The background-job tools: `job_start`, `job_output`, `job_signal`, `job_list`.
//! Jobs outlive the call that starts them, so long builds and upgrades survive a client's
//! 60-second tool timeout; their output is read page by page with cursors, each page sized
//! to the result budget, and the list pages with an opaque cursor. The text a model reads
//! says each job's state in words and units; `structuredContent` keeps the raw data.

use std::time::Duration;

use rmcp::{
    ErrorData as McpError, RoleServer,
    handler::server::common::{schema_for_output, schema_for_type},
    model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations},
    service::RequestContext,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    ToolsState,
    command_pipeline::{self, Admitted, Launch, RunCommandInput},
    paging, result_budget,
};
use crate::{
    audit::{AuditEvent, AuditText, JobRefusal},
    caller::Caller,
    host::units,
    jobs::{JobError, JobRead, JobState, JobSummary, OnJobEnd, parse_signal},
    log_excerpt::log_excerpt,
};

pub const START: &str = "job_start";
pub const OUTPUT: &str = "job_output";
pub const SIGNAL: &str = "job_signal";
pub const LIST: &str = "job_list";

/// Largest page `job_output` returns per stream.
const MAX_PAGE_BYTES: usize = 256 * 1024;
const DEFAULT_PAGE_BYTES: usize = 64 * 1024;
/// Longest `wait_secs` honoured by `job_output`.
const MAX_WAIT_SECS: u64 = 30;
/// Bytes of a `job_output` result kept for all but the two pages (state line, headers,
/// the other structured fields, the hint).
const READ_OVERHEAD_BYTES: usize = 1024;
/// Reads of `job_output` with a smaller page when JSON escapes made a page larger on the
/// wire than its bytes.
const READ_ROUNDS: usize = 4;

/// Arguments of `job_output`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobOutputInput {
    pub job_id: String,
    /// Where to continue reading stdout: the `stdout_cursor` of the previous read (0 at first).
    #[serde(default)]
    pub stdout_cursor: u64,
    /// Where to continue reading stderr: the `stderr_cursor` of the previous read (0 at first).
    #[serde(default)]
    pub stderr_cursor: u64,
    /// Most bytes returned per stream (default 65536, at most 262144, and never more than
    /// fits the server's result budget: about a quarter of it per stream).
    pub max_bytes: Option<u64>,
    /// Wait up to this many seconds (at most 30) for new output or the end of the job.
    #[serde(default)]
    pub wait_secs: u64,
}

/// Arguments of `job_signal`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSignalInput {
    pub job_id: String,
    /// TERM, KILL, INT, HUP, QUIT, USR1, USR2, STOP or CONT. Omit it to stop the job the
    /// safe way: TERM to its process group, then KILL two seconds later.
    pub signal: Option<String>,
}

/// Arguments of `job_list`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobListInput {
    /// Where to continue: the `next_cursor` of the previous page (omit it for the first).
    pub cursor: Option<String>,
    /// Most jobs on this page (default 50, at most 100).
    pub limit: Option<u64>,
}

/// Result of `job_list`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct JobListOutput {
    /// Your jobs on this page, oldest first.
    pub jobs: Vec<JobSummary>,
    /// Pass it as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

pub fn start_definition() -> Tool {
    Tool::new(
        START,
        "Start a command in the background and return its job_id at once. Same arguments as \
         run_command; timeout_secs defaults to 3600. Read its output with job_output.",
        schema_for_type::<RunCommandInput>(),
    )
    .with_annotations(
        ToolAnnotations::with_title("Start background job")
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(true),
    )
    .with_meta(crate::apps::approval_tool_meta())
}

pub fn output_definition() -> Tool {
    Tool::new(
        OUTPUT,
        "Read a background job's state and its output from the given cursors; pass the returned \
         cursors next time to continue without repeats or gaps. *_skipped counts bytes that were \
         no longer kept. wait_secs waits for new output or the end of the job.",
        schema_for_type::<JobOutputInput>(),
    )
    .with_annotations(
        ToolAnnotations::with_title("Read job output")
            .read_only(true)
            .open_world(false),
    )
}

pub fn signal_definition() -> Tool {
    Tool::new(
        SIGNAL,
        "Send a signal to a background job's whole process group; without `signal`, stop it \
         (TERM, then KILL after two seconds).",
        schema_for_type::<JobSignalInput>(),
    )
    .with_annotations(
        ToolAnnotations::with_title("Signal job")
            .read_only(false)
            .destructive(true)
            .open_world(false),
    )
}

pub fn list_definition() -> Tool {
    Tool::new(
        LIST,
        "List your background jobs (running, and finished in the last 15 minutes), oldest \
         first, a page at a time: pass next_cursor as cursor for the next page.",
        schema_for_type::<JobListInput>(),
    )
    .with_raw_output_schema(schema_for_output::<JobListOutput>())
    .with_annotations(
        ToolAnnotations::with_title("List jobs")
            .read_only(true)
            .open_world(false),
    )
}

fn structured<T: Serialize>(value: &T, text: String, is_error: bool) -> CallToolResult {
    let mut result = if is_error {
        CallToolResult::error(vec![ContentBlock::text(text)])
    } else {
        CallToolResult::success(vec![ContentBlock::text(text)])
    };
    result.structured_content = serde_json::to_value(value).ok();
    result
}

fn job_error(error: &JobError) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(error.to_string())])
}

/// Handle one `job_start` call: the [command pipeline](super::command_pipeline) admits the
/// command, then the job registry runs it in the background.
pub async fn start(
    state: &ToolsState,
    caller: &Caller,
    arguments: Option<JsonObject>,
    context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let principal = &caller.principal;
    let settings = &state.jobs_settings;
    let timeouts = (settings.default_timeout, settings.max_timeout);
    let command = command_pipeline::request(arguments, START, timeouts)?;
    tracing::info!(principal = principal.name(), tool = START, command = %command.describe_for_log(), "tool call");
    let trail = caller.audit_context(START);
    let link = crate::approval::gate::ClientLink::of(&context);
    let admitted =
        command_pipeline::admit(state, principal, trail, command, Launch::Job, Some(link)).await;
    let Admitted {
        spec,
        audited,
        slot,
        command,
        job_id,
    } = match admitted {
        Ok(admitted) => admitted,
        Err(refusal) => {
            return Ok(CallToolResult::error(vec![ContentBlock::text(
                refusal.to_string(),
            )]));
        }
    };
    let Some(job_id) = job_id else {
        unreachable!("a job launch always has a job id")
    };
    let description = command.describe();
    let asked = command.command;
    let on_end: OnJobEnd = Box::new(move |ended| {
        Box::pin(async move {
            match ended {
                Ok(outcome) => audited.finished(&outcome),
                Err(reason) => audited.not_started(&asked, reason).await,
            }
        })
    });
    match state.jobs.start(
        job_id,
        principal.name(),
        principal.lease().clone(),
        description,
        spec,
        slot,
        on_end,
    ) {
        Ok(summary) => {
            let text = format!(
                "started job {} ({}); read its output with job_output",
                summary.job_id, summary.command
            );
            Ok(structured(&summary, text, false))
        }
        Err(error) => Ok(job_error(&error)),
    }
}

/// Record a call that named a job the caller does not own, or no job at all: the caller's
/// answer is the same "no job" either way, the log says which.
async fn record_refusal(
    state: &ToolsState,
    caller: &Caller,
    (tool, action): (&str, String),
    job_id: &str,
) {
    let principal = &caller.principal;
    let reason = if state.jobs.belongs_to_another(principal.name(), job_id) {
        tracing::warn!(
            principal = principal.name(),
            tool,
            "call on another principal's job"
        );
        JobRefusal::AnotherPrincipalsJob
    } else {
        JobRefusal::NoSuchJob
    };
    let event = AuditEvent::JobRefused {
        job_id: AuditText::from(job_id),
        action,
        reason,
    };
    let trail = caller.audit_context(tool);
    state.audit.record_or_log(trail, event).await;
}

pub async fn output(
    state: &ToolsState,
    caller: &Caller,
    arguments: Option<JsonObject>,
    _context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let principal = &caller.principal;
    let input: JobOutputInput = super::parse_arguments(arguments, OUTPUT)?;
    let budget = state.limits.load().result_budget_bytes;
    // Each page appears twice (text and structuredContent), for two streams.
    let fits = budget.saturating_sub(READ_OVERHEAD_BYTES) / 4;
    let asked = input
        .max_bytes
        .map_or(DEFAULT_PAGE_BYTES, |max| {
            usize::try_from(max).unwrap_or(usize::MAX)
        })
        .clamp(1, MAX_PAGE_BYTES);
    let mut page = asked.min(fits).max(1);
    let mut wait = Duration::from_secs(input.wait_secs.min(MAX_WAIT_SECS));
    let cursors = (input.stdout_cursor, input.stderr_cursor);
    let mut shaped = None;
    for _ in 0..READ_ROUNDS {
        let read = state
            .jobs
            .read(principal.name(), &input.job_id, cursors, page, wait)
            .await;
        wait = Duration::ZERO;
        let read = match read {
            Ok(read) => read,
            Err(error) => {
                if let JobError::NotFound(_) = &error {
                    let action = (OUTPUT, "output".to_owned());
                    record_refusal(state, caller, action, &input.job_id).await;
                }
                return Ok(job_error(&error));
            }
        };
        let text = render_read(&read, page, cursors);
        let result = structured(&read, text, false);
        let size = result_budget::serialized_len(&result);
        shaped = Some(result);
        if size <= budget || page == 1 {
            break;
        }
        // Escapes made the page larger on the wire: read a smaller one from the same
        // cursors (reading moves nothing).
        page = (page * budget / size * 95 / 100).max(1);
    }
    Ok(shaped.unwrap_or_else(|| job_error(&JobError::NotFound(input.job_id))))
}

/// A job's state in words: "running for 12.3 s", "exited with code 0 after 1.2 s".
fn describe_state(state: &JobState, duration_ms: u64) -> String {
    let took = units::duration_ms(duration_ms);
    match state {
        JobState::Running => format!("running for {took}"),
        JobState::Exited { exit_code } => format!("exited with code {exit_code} after {took}"),
        JobState::Killed { signal } => format!("killed by signal {signal} after {took}"),
        JobState::TimedOut => format!("timed out after {took}; its process group was killed"),
        JobState::Cancelled => format!("cancelled after {took}; its process group was killed"),
        JobState::FailedToStart { reason } => format!("failed to start: {reason}"),
    }
}

/// The text of a `job_output` page: the state, each stream's new bytes with where they sit
/// in the stream, and how to go on.
fn render_read(read: &JobRead, page: usize, cursors: (u64, u64)) -> String {
    let mut text = format!(
        "job {}: {}",
        read.job_id,
        describe_state(&read.state, read.duration_ms)
    );
    let mut more = read.state == JobState::Running;
    for (name, body, skipped, (from, to)) in [
        (
            "stdout",
            &read.stdout,
            read.stdout_skipped,
            (cursors.0, read.stdout_cursor),
        ),
        (
            "stderr",
            &read.stderr,
            read.stderr_skipped,
            (cursors.1, read.stderr_cursor),
        ),
    ] {
        if skipped > 0 {
            text.push_str(&format!(
                "\n[{skipped} bytes of {name} after byte {from} were no longer kept]"
            ));
        }
        if !body.is_empty() {
            let start = from + skipped;
            text.push_str(&format!(
                "\n--- {name}, bytes {start} to {to} ({}) ---\n{body}",
                units::bytes(to.saturating_sub(start))
            ));
            if !body.ends_with('\n') {
                text.push('\n');
            }
        }
        // A full page may have more behind it.
        let shown = to.saturating_sub(from).saturating_sub(skipped);
        more |= usize::try_from(shown).is_ok_and(|shown| shown >= page);
    }
    if read.stdout.is_empty() && read.stderr.is_empty() {
        text.push_str("\n(no new output)");
    }
    if more {
        text.push_str(&format!(
            "\n[to read on: job_output with stdout_cursor={} and stderr_cursor={}{}]",
            read.stdout_cursor,
            read.stderr_cursor,
            if read.state == JobState::Running {
                "; wait_secs waits for new output"
            } else {
                ""
            }
        ));
    } else {
        text.push_str("\n[that is all of its output]");
    }
    text
}

pub async fn signal(
    state: &ToolsState,
    caller: &Caller,
    arguments: Option<JsonObject>,
    _context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let principal = &caller.principal;
    let input: JobSignalInput = super::parse_arguments(arguments, SIGNAL)?;
    let signal_name = input.signal.as_deref().unwrap_or("stop");
    let job = log_excerpt(&input.job_id);
    tracing::info!(principal = principal.name(), tool = SIGNAL, %job, signal = signal_name, "tool call");
    let result = match input.signal.as_deref() {
        None => state.jobs.kill(principal.name(), &input.job_id),
        Some(name) => {
            let Some(signal) = parse_signal(name) else {
                return Err(McpError::invalid_params(
                    format!(
                        "job_signal: unknown signal {name:?}; use TERM, KILL, INT, HUP, QUIT, USR1, USR2, STOP or CONT"
                    ),
                    None,
                ));
            };
            state.jobs.signal(principal.name(), &input.job_id, signal)
        }
    };
    let action = format!("signal {signal_name}");
    match &result {
        Ok(_) => {
            let event = AuditEvent::JobAction {
                job_id: input.job_id.clone(),
                action,
            };
            let trail = caller.audit_context(SIGNAL);
            state.audit.record_or_log(trail, event).await;
        }
        Err(JobError::NotFound(_)) => {
            record_refusal(state, caller, (SIGNAL, action), &input.job_id).await;
        }
        Err(_) => {}
    }
    Ok(match result {
        Ok(summary) => {
            let text = format!("{signal_name} sent to job {}", summary.job_id);
            structured(&summary, text, false)
        }
        Err(error) => job_error(&error),
    })
}

pub async fn list(
    state: &ToolsState,
    caller: &Caller,
    arguments: Option<JsonObject>,
    _context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let input: JobListInput = super::parse_arguments(arguments, LIST)?;
    let jobs = state.jobs.list(caller.principal.name());
    let total = jobs.len();
    let limit = input
        .limit
        .map(|limit| usize::try_from(limit).unwrap_or(usize::MAX));
    let page = paging::page(jobs, list_order, input.cursor.as_deref(), limit)
        .map_err(|bad| McpError::invalid_params(format!("{LIST}: {bad}"), None))?;
    let text = render_list(&page.items, total, page.next_cursor.as_deref());
    let output = JobListOutput {
        jobs: page.items,
        next_cursor: page.next_cursor,
    };
    Ok(structured(&output, text, false))
}

/// The order `job_list` pages in: start time, then id (both fixed for a job's life).
fn list_order(job: &JobSummary) -> String {
    format!("{:039}:{}", job.started_at_unix_nanos, job.job_id)
}

/// The text of a `job_list` page: one line per job, in words and units.
fn render_list(jobs: &[JobSummary], total: usize, next_cursor: Option<&str>) -> String {
    if total == 0 {
        return "no jobs".to_owned();
    }
    let mut text = if jobs.len() == total {
        format!("{total} job(s):")
    } else {
        format!("{} of {total} job(s):", jobs.len())
    };
    for job in jobs {
        text.push_str(&format!(
            "\n- {} {}: `{}` (stdout {}, stderr {})",
            job.job_id,
            describe_state(&job.state, job.duration_ms),
            job.command,
            units::bytes(job.stdout_bytes),
            units::bytes(job.stderr_bytes),
        ));
    }
    if let Some(cursor) = next_cursor {
        text.push_str(&format!("\n[more jobs: job_list with cursor \"{cursor}\"]"));
    }
    text
}

#[cfg(test)]
mod tests;
