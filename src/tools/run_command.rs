//! `run_command`: run a shell command line or an argv on the host, with a timeout and
//! capped output, and report exit code, signal, stdout and stderr.

use std::{borrow::Cow, time::Duration};

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
};
use crate::{
    caller::Caller,
    exec::{self, ExecLimits, ExecOutcome},
};

pub const NAME: &str = "run_command";
/// Bytes of each stream shown in the text a model reads (head and tail); the whole
/// capture is in `structuredContent`. About 8,000 tokens per stream at most.
const TEXT_VIEW_HEAD_BYTES: usize = 8 * 1024;
const TEXT_VIEW_TAIL_BYTES: usize = 24 * 1024;

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
    /// Output was longer than the cap; the middle was cut.
    pub truncated: bool,
    /// Bytes the command wrote to stdout / stderr, including any cut part.
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    pub duration_ms: u64,
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
    let admitted =
        match command_pipeline::admit(state, principal, trail, command, Launch::Wait).await {
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
            Ok(tool_result(outcome))
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

/// Shape an outcome into the text a model reads and the structured content.
fn tool_result(outcome: ExecOutcome) -> CallToolResult {
    let outcome_success = outcome.is_success();
    let output = RunCommandOutput {
        exit_code: outcome.exit_code,
        signal: outcome.signal,
        stdout: outcome.stdout.to_text(),
        stderr: outcome.stderr.to_text(),
        timed_out: outcome.timed_out,
        cancelled: outcome.cancelled,
        truncated: outcome.stdout.is_truncated() || outcome.stderr.is_truncated(),
        stdout_bytes: outcome.stdout.total_bytes(),
        stderr_bytes: outcome.stderr.total_bytes(),
        duration_ms: millis(outcome.duration),
    };
    let failed = !outcome_success;
    let text = render_text(&output);
    let structured = serde_json::to_value(&output).unwrap_or_default();
    let mut result = if failed {
        CallToolResult::error(vec![ContentBlock::text(text)])
    } else {
        CallToolResult::success(vec![ContentBlock::text(text)])
    };
    result.structured_content = Some(structured);
    result
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
    for (name, body, bytes) in [
        ("stdout", &output.stdout, output.stdout_bytes),
        ("stderr", &output.stderr, output.stderr_bytes),
    ] {
        if !body.is_empty() {
            let body = text_view(body);
            text.push_str(&format!("\n--- {name} ({bytes} bytes) ---\n{body}"));
            if !body.ends_with('\n') {
                text.push('\n');
            }
        }
    }
    if output.truncated {
        text.push_str("\n[output was longer than the cap; the middle was cut]");
    }
    text
}

/// The head and tail of a long stream, cut on character boundaries, for the text view.
fn text_view(body: &str) -> Cow<'_, str> {
    if body.len() <= TEXT_VIEW_HEAD_BYTES + TEXT_VIEW_TAIL_BYTES {
        return Cow::Borrowed(body);
    }
    let head_end = floor_char_boundary(body, TEXT_VIEW_HEAD_BYTES);
    let tail_start = ceil_char_boundary(body, body.len() - TEXT_VIEW_TAIL_BYTES);
    Cow::Owned(format!(
        "{}\n[... {} bytes not shown here; structuredContent has the whole capture ...]\n{}",
        &body[..head_end],
        tail_start - head_end,
        &body[tail_start..]
    ))
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

fn ceil_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index += 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_output_is_shown_whole() {
        assert_eq!(text_view("abc\n"), "abc\n");
    }

    #[test]
    fn long_output_keeps_head_and_tail_on_char_boundaries() {
        let body = format!(
            "{}{}{}",
            "é".repeat(10_000),
            "x".repeat(100_000),
            "ü".repeat(20_000)
        );
        let view = text_view(&body);
        assert!(view.starts_with("é"));
        assert!(view.ends_with("ü"));
        assert!(view.contains("bytes not shown here"));
        assert!(view.len() < TEXT_VIEW_HEAD_BYTES + TEXT_VIEW_TAIL_BYTES + 200);
    }
}
