//! `terminal_open`: start a program on an interactive terminal (a PTY) and return its
//! `terminal_id` with its first screen. The program goes through the same pipeline as
//! `run_command` (policy, slot, `command_started`); the terminal is then
//! [`crate::terminals`]' business.

use std::{collections::BTreeMap, time::Duration};

use rmcp::{
    ErrorData as McpError, RoleServer,
    handler::server::common::schema_for_type,
    model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations},
    service::RequestContext,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{
    ToolsState,
    command_pipeline::{self, Admitted, Launch, RunCommandInput},
    terminal_read,
};
use crate::{
    caller::Caller,
    exec::pty::TerminalSize,
    terminals::{OnTerminalEnd, Opening, Wait},
};

pub const NAME: &str = "terminal_open";

/// How long the first screen may take to settle before `terminal_open` answers.
const FIRST_SCREEN_WAIT: Duration = Duration::from_secs(2);
const FIRST_SCREEN_SETTLE: Duration = Duration::from_millis(300);

/// Arguments of `terminal_open`. Exactly one of `command` and `argv`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TerminalOpenInput {
    /// Command line run by `/bin/sh -c` (where the policy allows a shell).
    pub command: Option<String>,
    /// Program and arguments, no shell: e.g. ["python3", "-q"], ["top"], ["bash"].
    pub argv: Option<Vec<String>>,
    /// Directory to run in.
    pub working_dir: Option<String>,
    /// Extra environment variables (TERM is xterm-256color unless set here).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Rows of the terminal (default 24, 2 to 500).
    pub rows: Option<u16>,
    /// Columns of the terminal (default 80, 10 to 1000).
    pub cols: Option<u16>,
}

pub fn definition() -> Tool {
    Tool::new(
        NAME,
        "Start a program on an interactive terminal (a PTY) and return its terminal_id and \
         first screen. Use it for programs that need a terminal: REPLs, installers that ask \
         questions, top, pagers, editors. Give `argv` or `command` as for run_command. Type \
         with terminal_send, look with terminal_read, end it with terminal_close.",
        schema_for_type::<TerminalOpenInput>(),
    )
    .with_annotations(
        ToolAnnotations::with_title("Open terminal")
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(true),
    )
    .with_meta(crate::apps::approval_tool_meta())
}

/// The size asked for, checked.
pub fn size(rows: Option<u16>, cols: Option<u16>) -> Result<TerminalSize, McpError> {
    let size = TerminalSize {
        rows: rows.unwrap_or(24),
        cols: cols.unwrap_or(80),
    };
    if !(2..=500).contains(&size.rows) || !(10..=1000).contains(&size.cols) {
        return Err(McpError::invalid_params(
            "rows must be 2 to 500 and cols 10 to 1000".to_owned(),
            None,
        ));
    }
    Ok(size)
}

pub async fn call(
    state: &ToolsState,
    caller: &Caller,
    arguments: Option<JsonObject>,
    context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let principal = &caller.principal;
    let input: TerminalOpenInput = super::parse_arguments(arguments, NAME)?;
    let size = size(input.rows, input.cols)?;
    let idle = state.terminals.settings().idle_timeout;
    let command = command_pipeline::validate(
        RunCommandInput {
            command: input.command,
            argv: input.argv,
            working_dir: input.working_dir,
            timeout_secs: None,
            env: input.env,
            stdin: None,
        },
        (idle, idle),
    )?;
    tracing::info!(principal = principal.name(), tool = NAME, command = %command.describe_for_log(), "tool call");
    if let Err(error) = state.terminals.check_room(principal.name()) {
        return Ok(error_text(error.to_string()));
    }
    let trail = caller.audit_context(NAME);
    let link = crate::approval::gate::ClientLink::of(&context);
    let admitted =
        command_pipeline::admit(state, principal, trail, command, Launch::Wait, Some(link)).await;
    let Admitted {
        spec,
        audited,
        slot,
        command,
        ..
    } = match admitted {
        Ok(admitted) => admitted,
        Err(refusal) => return Ok(error_text(refusal.to_string())),
    };
    let command_id = audited.owner().command_id.unwrap_or_default();
    let asked = command.command.clone();
    let on_end: OnTerminalEnd = Box::new(move |ended| {
        Box::pin(async move {
            match ended {
                Ok(outcome) => audited.finished(&outcome),
                Err(reason) => audited.not_started(&asked, reason).await,
            }
        })
    });
    let opening = Opening {
        spec,
        lease: principal.lease().clone(),
        session: caller.session.as_ref().map(|id| id.as_str().to_owned()),
        description: command.describe(),
        command_id,
        size,
        slot,
        on_end,
    };
    let opened = match state.terminals.open(principal.name(), opening) {
        Ok(opened) => opened,
        Err(error) => return Ok(error_text(error.to_string())),
    };
    let wait = Wait {
        until: None,
        settle: Some(FIRST_SCREEN_SETTLE),
        timeout: FIRST_SCREEN_WAIT,
    };
    let first = state
        .terminals
        .read(principal.name(), &opened.terminal_id, 0, 0, wait)
        .await;
    let mut text = format!(
        "opened terminal {} (pid {}, {}x{}) running {}; type with terminal_send, look with \
         terminal_read, end it with terminal_close",
        opened.terminal_id,
        opened.pid,
        opened.rows,
        opened.cols,
        command.describe()
    );
    if let Ok(first) = &first {
        text.push('\n');
        text.push_str(&terminal_read::render(first, 0));
    }
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = serde_json::to_value(&opened).ok();
    Ok(result)
}

fn error_text(text: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}
