//! `terminal_read`: a terminal's screen as text (rendered by the emulator), its cursor, the
//! scroll-back since a cursor, and how its program ended if it did; optionally after
//! waiting (bounded) for the output to settle or for a pattern to appear.

use std::time::Duration;

use regex::RegexBuilder;
use rmcp::{
    ErrorData as McpError, RoleServer,
    handler::server::common::schema_for_type,
    model::{CallToolResult, ContentBlock, JsonObject, Tool},
    service::RequestContext,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{ToolsState, terminal_send};
use crate::{
    caller::Caller,
    terminals::{EndReason, TerminalExit, TerminalRead, Wait},
};

pub const NAME: &str = "terminal_read";

const DEFAULT_MAX_LINES: u64 = 200;
const MAX_LINES: u64 = 2000;
/// Longest wait honoured.
const MAX_TIMEOUT_MS: u64 = 30_000;
/// The wait when `wait_for` or `settle_ms` is given without `timeout_ms`.
const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Size limit of a compiled `wait_for`.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// Arguments of `terminal_read`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TerminalReadInput {
    pub terminal_id: String,
    /// Return only the scroll-back rows after this one: the `scrollback_cursor` of the
    /// previous read (0 at first).
    #[serde(default)]
    pub scrollback_cursor: u64,
    /// Most scroll-back rows returned (default 200, at most 2000).
    pub max_lines: Option<u64>,
    /// Wait until this regular expression matches the screen or a new scroll-back row.
    pub wait_for: Option<String>,
    /// Wait until the program has written nothing for this many milliseconds.
    pub settle_ms: Option<u64>,
    /// Longest wait in milliseconds (default 10000 when waiting, at most 30000).
    pub timeout_ms: Option<u64>,
}

pub fn definition() -> Tool {
    Tool::new(
        NAME,
        "Read a terminal's screen as text, with the cursor position, the rows that scrolled \
         off since scrollback_cursor, and the exit status once the program ended. settle_ms \
         waits until the output is quiet; wait_for waits for a regex (both bounded by \
         timeout_ms).",
        schema_for_type::<TerminalReadInput>(),
    )
    .with_annotations(super::read_only_annotations("Read terminal"))
}

pub async fn call(
    state: &ToolsState,
    caller: &Caller,
    arguments: Option<JsonObject>,
    _context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let input: TerminalReadInput = super::parse_arguments(arguments, NAME)?;
    let until = input
        .wait_for
        .as_deref()
        .map(|pattern| {
            RegexBuilder::new(pattern)
                .size_limit(PATTERN_SIZE_LIMIT)
                .build()
                .map_err(|error| McpError::invalid_params(format!("wait_for: {error}"), None))
        })
        .transpose()?;
    let settle = input.settle_ms.map(Duration::from_millis);
    let waiting = until.is_some() || settle.is_some();
    let timeout = match input.timeout_ms {
        Some(ms) => ms.min(MAX_TIMEOUT_MS),
        None if waiting => DEFAULT_TIMEOUT_MS,
        None => 0,
    };
    let wait = Wait {
        until,
        settle,
        timeout: Duration::from_millis(timeout),
    };
    let max_lines = input.max_lines.unwrap_or(DEFAULT_MAX_LINES).min(MAX_LINES);
    let read = state
        .terminals
        .read(
            caller.principal.name(),
            &input.terminal_id,
            input.scrollback_cursor,
            usize::try_from(max_lines).unwrap_or(usize::MAX),
            wait,
        )
        .await;
    match read {
        Ok(read) => {
            let text = render(&read, input.scrollback_cursor);
            let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
            result.structured_content = serde_json::to_value(&read).ok();
            Ok(result)
        }
        Err(error) => {
            terminal_send::refused(state, caller, NAME, &input.terminal_id, &error);
            Ok(CallToolResult::error(vec![ContentBlock::text(
                error.to_string(),
            )]))
        }
    }
}

/// How a program ended, in words.
pub fn describe_exit(exit: &TerminalExit) -> String {
    let status = match (exit.exit_code, exit.signal) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "no exit status".to_owned(),
    };
    let why = match exit.reason {
        EndReason::Exited => "the program exited",
        EndReason::Closed => "closed",
        EndReason::IdleTimeout => "ended after its idle timeout",
        EndReason::SessionEnded => "ended with its session",
        EndReason::Revoked => "ended: its token was revoked",
        EndReason::Shutdown => "ended by the server's shutdown",
    };
    match &exit.hint {
        Some(hint) => format!("{why} ({status}); {hint}"),
        None => format!("{why} ({status})"),
    }
}

/// The text a model reads: state, screen, new scroll-back.
pub fn render(read: &TerminalRead, since: u64) -> String {
    let view = &read.view;
    let state = match (&read.exit, &read.hint) {
        (None, None) => "running".to_owned(),
        (None, Some(hint)) => format!("running; {hint}"),
        (Some(exit), _) => describe_exit(exit),
    };
    let mut text = format!(
        "terminal {}: {state}; {}x{}, cursor at row {} col {}{}",
        read.terminal_id,
        view.rows,
        view.cols,
        view.cursor_row,
        view.cursor_col,
        if view.alternate_screen {
            " (full-screen program)"
        } else {
            ""
        }
    );
    match read.matched {
        Some(true) => text.push_str("; wait_for matched"),
        Some(false) => text.push_str("; wait_for did not match before the timeout"),
        None => {}
    }
    if view.scrollback_skipped > 0 {
        text.push_str(&format!(
            "\n[{} scroll-back rows after row {since} are no longer kept]",
            view.scrollback_skipped
        ));
    }
    if !view.scrollback.is_empty() {
        text.push_str(&format!(
            "\n--- scroll-back rows {} to {} ---\n{}",
            view.scrollback_cursor - view.scrollback.len() as u64,
            view.scrollback_cursor,
            view.scrollback.join("\n")
        ));
    }
    text.push_str(&format!(
        "\n--- screen ---\n{}\n--- end of screen (scrollback_cursor={}) ---",
        view.screen, view.scrollback_cursor
    ));
    text
}
