//! `run_command`: run a shell command line or an argv on the host, with a timeout and
//! capped output, and report exit code, signal, stdout and stderr within the result budget
//! (head and tail of a long stream, with the exact bytes and lines left out).

use std::time::Duration;

use rmcp::{
    ErrorData as McpError, RoleServer,
    handler::server::common::{schema_for_output, schema_for_type},
    model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations},
    service::RequestContext,
};
use schemars::JsonSchema;
use serde::Serialize;

use super::{
    ToolsState,
    command_pipeline::{self, Admitted, Launch, RunCommandInput},
    progress::ProgressForwarder,
    result_budget,
};
use crate::{
    caller::Caller,
    exec::{self, ExecLimits, ExecOutcome},
};

pub const NAME: &str = "run_command";

/// Structured result of `run_command`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RunCommandOutput {
    /// Exit code, or null when the command was killed by a signal.
    pub exit_code: Option<i32>,
    /// Signal number that ended the command, if any.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The command ran past its timeout and was killed.
    pub timed_out: bool,
    /// The call was cancelled and the command killed.
    pub cancelled: bool,
    /// Output was longer than the capture cap or its share of the result budget: the
    /// middle was left out (marked in the text, with exact bytes and lines).
    pub truncated: bool,
    /// Bytes the command wrote to stdout / stderr, including any cut part.
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    /// Lines (newlines) the command wrote to stdout / stderr, including any cut part.
    pub stdout_lines: u64,
    pub stderr_lines: u64,
    /// Bytes of stdout / stderr not in `stdout` / `stderr`.
    pub stdout_omitted_bytes: u64,
    pub stderr_omitted_bytes: u64,
    pub duration_ms: u64,
    /// The Unix user the command ran as (an allow rule's `run_as` wins over the token's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
    /// The resource limits it ran under, e.g. `memory 512.0 MiB, cpu_seconds 30`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<String>,
    /// The limit that stopped it (`memory`, `cpu_seconds`, `processes`, `file_size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_hit: Option<String>,
    /// Peak resident memory of the command (the largest of its processes it waited for),
    /// in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<u64>,
    /// User + system CPU time of the command, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_time_ms: Option<u64>,
    /// What to do next, when hostmcp's confinement explains the failure (a limit, or
    /// `sudo` refused under `no_new_privs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// How the command was run, for the result: its user and limits.
#[derive(Debug, Clone, Default)]
pub struct RunFacts {
    pub run_as: Option<String>,
    pub limits: exec::ResourceLimits,
}

/// The tool's definition, as listed by `tools/list`.
pub fn definition() -> Tool {
    Tool::new(
        NAME,
        "Run a command on the host and return its exit code, stdout and stderr. \
         Give `command` (a shell command line) or `argv` (program and arguments, no shell). \
         The command runs in its own process group and is killed with all its children \
         when it times out; output beyond the cap keeps its head and tail.",
        schema_for_type::<RunCommandInput>(),
    )
    .with_raw_output_schema(schema_for_output::<RunCommandOutput>())
    .with_annotations(
        ToolAnnotations::with_title("Run command")
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(true),
    )
    .with_meta(crate::apps::approval_tool_meta())
}

/// Handle one call: the [command pipeline](super::command_pipeline) admits the command,
/// then it runs while the caller waits, with progress notifications.
pub async fn call(
    state: &ToolsState,
    caller: &Caller,
    arguments: Option<JsonObject>,
    context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let principal = &caller.principal;
    let command_limits = **state.limits.load();
    let timeouts = (command_limits.default_timeout, command_limits.max_timeout);
    let command = command_pipeline::request(arguments, NAME, timeouts)?;
    tracing::info!(principal = principal.name(), tool = NAME, command = %command.describe_for_log(), "tool call");
    let trail = caller.audit_context(NAME);
    let admitted = match command_pipeline::admit(
        state,
        principal,
        trail,
        command,
        Launch::Wait,
        Some(crate::approval::gate::ClientLink::of(&context)),
    )
    .await
    {
        Ok(admitted) => admitted,
        Err(refusal) => return Ok(error_text(refusal.to_string())),
    };
    let Admitted {
        spec,
        audited,
        slot: _slot,
        command,
        ..
    } = admitted;
    let limits = ExecLimits {
        max_output_bytes: command_limits.max_output_bytes,
        ..ExecLimits::default()
    };
    let facts = RunFacts {
        run_as: audited.run_as().map(str::to_owned),
        limits: audited.limits(),
    };
    let progress = ProgressForwarder::start(&context);
    let outcome = exec::run(
        spec,
        &limits,
        &state.base_env,
        context.ct.clone(),
        progress.as_ref().map(ProgressForwarder::observer),
    )
    .await;
    drop(progress);
    match outcome {
        Ok(outcome) => {
            audited.finished(&outcome);
            Ok(tool_result(
                &outcome,
                &facts,
                state.limits.load().result_budget_bytes,
            ))
        }
        Err(error) => {
            audited
                .not_started(&command.command, error.to_string())
                .await;
            Ok(error_text(error.to_string()))
        }
    }
}

fn error_text(text: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Bytes of a result kept for all but the two streams: status line, stream headers, the
/// other structured fields, markers and the hint.
const RESULT_OVERHEAD_BYTES: usize = 1024;

/// How to get what a result left out, shown when it left something out.
const REST_HINT: &str = "to read all of it, run the command with job_start and page through \
     its output with job_output (stdout_cursor / stderr_cursor), or narrow it (grep, head, \
     tail, a filter of the command's own)";

/// Rounds of [`tool_result`] shrinking the streams' room when JSON escapes (every newline
/// is two bytes on the wire) made the result larger than its raw bytes.
const SHAPING_ROUNDS: usize = 4;

/// Shape an outcome into the text a model reads and the structured content, within the
/// `budget` of the whole serialized result: each stream appears twice (text for the model,
/// `structuredContent` for programs), so each copy gets half the room, shared between
/// stdout and stderr; a stream longer than its share keeps its head and tail.
fn tool_result(outcome: &ExecOutcome, facts: &RunFacts, budget: usize) -> CallToolResult {
    let mut room = budget.saturating_sub(RESULT_OVERHEAD_BYTES) / 2;
    let mut result = shaped(outcome, facts, room);
    for _ in 1..SHAPING_ROUNDS {
        let size = result_budget::serialized_len(&result);
        if size <= budget {
            break;
        }
        room = room * budget / size * 99 / 100;
        result = shaped(outcome, facts, room);
    }
    result
}

/// [`tool_result`] with `room` raw bytes for each copy of the two streams.
fn shaped(outcome: &ExecOutcome, facts: &RunFacts, room: usize) -> CallToolResult {
    let limit_hit = exec::diagnose::limit_hit(outcome, &facts.limits);
    let (stdout_keep, stderr_keep) = share(
        room,
        outcome.stdout.total_bytes(),
        outcome.stderr.total_bytes(),
    );
    let stdout = outcome.stdout.view(stdout_keep);
    let stderr = outcome.stderr.view(stderr_keep);
    let output = RunCommandOutput {
        exit_code: outcome.exit_code,
        signal: outcome.signal,
        truncated: stdout.omitted_bytes > 0 || stderr.omitted_bytes > 0,
        stdout_omitted_bytes: stdout.omitted_bytes,
        stderr_omitted_bytes: stderr.omitted_bytes,
        stdout: stdout.text,
        stderr: stderr.text,
        timed_out: outcome.timed_out,
        cancelled: outcome.cancelled,
        stdout_bytes: outcome.stdout.total_bytes(),
        stderr_bytes: outcome.stderr.total_bytes(),
        stdout_lines: outcome.stdout.total_lines(),
        stderr_lines: outcome.stderr.total_lines(),
        duration_ms: millis(outcome.duration),
        run_as: facts.run_as.clone(),
        limits: (!facts.limits.is_empty()).then(|| facts.limits.describe()),
        peak_memory_bytes: outcome.usage.map(|usage| usage.peak_memory_bytes),
        cpu_time_ms: outcome.usage.map(|usage| millis(usage.cpu_time)),
        hint: limit_hit
            .as_ref()
            .map(|hit| hit.message.clone())
            .or_else(|| exec::diagnose::privilege_hint(outcome).map(str::to_owned)),
        limit_hit: limit_hit.map(|hit| hit.limit.to_owned()),
    };
    let text = render_text(&output);
    let structured = serde_json::to_value(&output).unwrap_or_default();
    let mut result = if outcome.is_success() {
        CallToolResult::success(vec![ContentBlock::text(text)])
    } else {
        CallToolResult::error(vec![ContentBlock::text(text)])
    };
    result.structured_content = Some(structured);
    result
}

/// `room` bytes shared between two streams of `first` and `second` bytes: each gets what it
/// needs if both fit, else a short one keeps all of it and the other the rest, else half each.
fn share(room: usize, first: u64, second: u64) -> (usize, usize) {
    let first = usize::try_from(first).unwrap_or(usize::MAX);
    let second = usize::try_from(second).unwrap_or(usize::MAX);
    let half = room / 2;
    if first.saturating_add(second) <= room {
        (first, second)
    } else if first <= half {
        (first, room - first)
    } else if second <= half {
        (room - second, second)
    } else {
        (half, room - half)
    }
}

fn render_text(output: &RunCommandOutput) -> String {
    let status = match (output.exit_code, output.signal) {
        _ if output.timed_out => "timed out; the process group was killed".to_owned(),
        _ if output.cancelled => "cancelled; the process group was killed".to_owned(),
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "ended without an exit status".to_owned(),
    };
    let mut text = format!("{status} ({} ms)", output.duration_ms);
    if let Some(user) = &output.run_as {
        text.push_str(&format!(", as {user}"));
    }
    if let Some(limits) = &output.limits {
        text.push_str(&format!("; limits: {limits}"));
    }
    if let (Some(peak), Some(cpu)) = (output.peak_memory_bytes, output.cpu_time_ms) {
        text.push_str(&format!(
            "; peak memory {}, CPU {cpu} ms",
            bytesize::ByteSize::b(peak).display().iec()
        ));
    }
    for (name, body, bytes, lines) in [
        (
            "stdout",
            &output.stdout,
            output.stdout_bytes,
            output.stdout_lines,
        ),
        (
            "stderr",
            &output.stderr,
            output.stderr_bytes,
            output.stderr_lines,
        ),
    ] {
        if !body.is_empty() {
            text.push_str(&format!(
                "\n--- {name} ({bytes} bytes, {lines} lines) ---\n{body}"
            ));
            if !body.ends_with('\n') {
                text.push('\n');
            }
        }
    }
    if let Some(hint) = &output.hint {
        text.push_str(&format!("\n[{hint}]"));
    }
    if output.truncated {
        text.push_str(&format!(
            "\n[{} bytes of stdout and {} bytes of stderr were omitted where marked; {REST_HINT}]",
            output.stdout_omitted_bytes, output.stderr_omitted_bytes
        ));
    }
    text
}

#[cfg(test)]
mod tests;
