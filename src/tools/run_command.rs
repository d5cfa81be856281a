//! `run_command`: run a shell command line or an argv on the host, with a timeout and
//! capped output, and report exit code, signal, stdout and stderr.

use std::{borrow::Cow, collections::BTreeMap, path::PathBuf, time::Duration};

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
    audited::AuditedCommand,
    authorize::{Authorized, ToolCommand, authorize},
    progress::ProgressForwarder,
};
use crate::{
    caller::Caller,
    exec::{self, ExecLimits, ExecOutcome, Program},
};

pub const NAME: &str = "run_command";
/// Bytes of each stream shown in the text a model reads (head and tail); the whole
/// capture is in `structuredContent`. About 8,000 tokens per stream at most.
const TEXT_VIEW_HEAD_BYTES: usize = 8 * 1024;
const TEXT_VIEW_TAIL_BYTES: usize = 24 * 1024;

/// Arguments of `run_command`. Exactly one of `command` and `argv`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunCommandInput {
    /// Command line run by `/bin/sh -c`: use it for pipes, redirections, globs and `&&`.
    pub command: Option<String>,
    /// Program and arguments run without a shell (no quoting or expansion): use it to pass
    /// arguments verbatim. The program is looked up in PATH.
    pub argv: Option<Vec<String>>,
    /// Directory to run in (absolute, or relative to the server's directory).
    pub working_dir: Option<String>,
    /// Seconds before the command's whole process group is killed (default 30; the
    /// server caps it).
    pub timeout_secs: Option<u64>,
    /// Extra environment variables for the command.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Text written to the command's standard input (closed when absent).
    pub stdin: Option<String>,
}

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

/// Parse the JSON arguments of `run_command` (and `job_start`).
pub(super) fn parse_input(
    arguments: Option<JsonObject>,
    tool: &str,
) -> Result<RunCommandInput, McpError> {
    super::parse_arguments(arguments, tool)
}

/// Handle one call.
pub async fn call(
    state: &ToolsState,
    caller: &Caller,
    arguments: Option<JsonObject>,
    context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let principal = &caller.principal;
    let input = parse_input(arguments, NAME)?;
    let command = validate(
        input,
        (state.limits.default_timeout, state.limits.max_timeout),
    )?;
    tracing::info!(principal = principal.name(), tool = NAME, command = %command.describe_for_log(), "tool call");
    let trail = caller.audit_context(NAME);
    let Authorized { spec, facts } = match authorize(state, principal, &command, &trail).await {
        Ok(authorized) => authorized,
        Err(refusal) => return Ok(error_text(refusal)),
    };
    let _slot = match state.slots.try_acquire(principal.name()) {
        Ok(slot) => slot,
        Err(full) => return Ok(error_text(full.to_string())),
    };
    let audited = match AuditedCommand::start(&state.audit, trail, &command, &facts, None).await {
        Ok(audited) => audited,
        Err(refusal) => return Ok(error_text(refusal)),
    };
    let limits = ExecLimits {
        max_output_bytes: state.limits.max_output_bytes,
        ..ExecLimits::default()
    };
    let progress = ProgressForwarder::start(&context);
    let outcome = exec::run(
        spec.owned_by(audited.owner()),
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
                .not_started(&command.program, error.to_string())
                .await;
            Ok(error_text(error.to_string()))
        }
    }
}

fn error_text(text: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

/// Validate the arguments, with `timeouts` = (default, max).
pub(super) fn validate(
    input: RunCommandInput,
    timeouts: (Duration, Duration),
) -> Result<ToolCommand, McpError> {
    let invalid = |message: String| McpError::invalid_params(message, None);
    let program = match (input.command, input.argv) {
        (Some(command), None) if !command.trim().is_empty() => Program::Shell(command),
        (None, Some(argv)) if !argv.is_empty() && !argv[0].is_empty() => Program::Argv(argv),
        (Some(_), Some(_)) => {
            return Err(invalid("give either `command` or `argv`, not both".into()));
        }
        (None, None) => {
            return Err(invalid(
                "give `command` (a shell command line) or `argv`".into(),
            ));
        }
        _ => return Err(invalid("`command` or `argv` is empty".into())),
    };
    let timeout = match input.timeout_secs {
        Some(0) => return Err(invalid("timeout_secs must be at least 1".into())),
        Some(seconds) => Duration::from_secs(seconds).min(timeouts.1),
        None => timeouts.0,
    };
    if let Some(name) = input.env.keys().find(|name| !is_valid_env_name(name)) {
        return Err(invalid(format!(
            "env: {name:?} is not a valid variable name"
        )));
    }
    if input.env.values().any(|value| value.contains('\0')) {
        return Err(invalid("env: a value contains a NUL byte".into()));
    }
    Ok(ToolCommand {
        program,
        working_dir: input.working_dir.map(PathBuf::from),
        env: input.env.into_iter().collect(),
        stdin: input.stdin.map(String::into_bytes),
        timeout,
    })
}

fn is_valid_env_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['=', '\0'])
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
