//! The background-job tools: `job_start`, `job_output`, `job_signal`, `job_list`.
//! Jobs outlive the call that starts them, so long builds and upgrades survive a client's
//! 60-second tool timeout; their output is read page by page with cursors.

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
};
use crate::{
    audit::{AuditEvent, AuditText, JobRefusal},
    caller::Caller,
    jobs::{JobError, JobRead, JobSummary, OnJobEnd, parse_signal},
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
    /// Most bytes returned per stream (default 65536, at most 262144).
    pub max_bytes: Option<usize>,
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

/// Result of `job_list`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct JobListOutput {
    #[schemars(with = "Vec<serde_json::Value>")]
    pub jobs: Vec<JobSummary>,
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
        "List your background jobs (running, and finished in the last 15 minutes).",
        rmcp::handler::server::common::schema_for_empty_input(),
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
    _context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let principal = &caller.principal;
    let settings = &state.jobs_settings;
    let timeouts = (settings.default_timeout, settings.max_timeout);
    let command = command_pipeline::request(arguments, START, timeouts)?;
    tracing::info!(principal = principal.name(), tool = START, command = %command.describe_for_log(), "tool call");
    let trail = caller.audit_context(START);
    let admitted = command_pipeline::admit(state, principal, trail, command, Launch::Job).await;
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
    let max_bytes = input
        .max_bytes
        .unwrap_or(DEFAULT_PAGE_BYTES)
        .clamp(1, MAX_PAGE_BYTES);
    let wait = Duration::from_secs(input.wait_secs.min(MAX_WAIT_SECS));
    let read = state
        .jobs
        .read(
            principal.name(),
            &input.job_id,
            (input.stdout_cursor, input.stderr_cursor),
            max_bytes,
            wait,
        )
        .await;
    if let Err(JobError::NotFound(_)) = &read {
        let action = (OUTPUT, "output".to_owned());
        record_refusal(state, caller, action, &input.job_id).await;
    }
    Ok(match read {
        Ok(read) => {
            let text = render_read(&read);
            structured(&read, text, false)
        }
        Err(error) => job_error(&error),
    })
}

fn render_read(read: &JobRead) -> String {
    let state = serde_json::to_value(&read.state)
        .map(|value| value.to_string())
        .unwrap_or_default();
    let mut text = format!("job {}: {state} ({} ms)", read.job_id, read.duration_ms);
    for (name, body, skipped, cursor) in [
        (
            "stdout",
            &read.stdout,
            read.stdout_skipped,
            read.stdout_cursor,
        ),
        (
            "stderr",
            &read.stderr,
            read.stderr_skipped,
            read.stderr_cursor,
        ),
    ] {
        if skipped > 0 {
            text.push_str(&format!(
                "\n[{skipped} bytes of {name} were no longer kept]"
            ));
        }
        if !body.is_empty() {
            text.push_str(&format!("\n--- {name} (next cursor {cursor}) ---\n{body}"));
        }
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
    _arguments: Option<JsonObject>,
    _context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let jobs = state.jobs.list(caller.principal.name());
    let text = if jobs.is_empty() {
        "no jobs".to_owned()
    } else {
        jobs.iter()
            .map(|job| {
                let state = serde_json::to_value(&job.state)
                    .map(|value| value.to_string())
                    .unwrap_or_default();
                format!("{} {state} {}", job.job_id, job.command)
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    Ok(structured(&JobListOutput { jobs }, text, false))
}
