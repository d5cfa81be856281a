//! `terminal_close`: end a terminal's program (HUP and TERM to its whole session, KILL after
//! a grace period) and forget the terminal; answers how the program ended.

use rmcp::{
    ErrorData as McpError, RoleServer,
    handler::server::common::schema_for_type,
    model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations},
    service::RequestContext,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{ToolsState, terminal_read, terminal_send};
use crate::caller::Caller;

pub const NAME: &str = "terminal_close";

/// Arguments of `terminal_close`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TerminalCloseInput {
    pub terminal_id: String,
}

pub fn definition() -> Tool {
    Tool::new(
        NAME,
        "Close a terminal: its program and everything it started are ended (HUP, TERM, then \
         KILL) and its exit status returned.",
        schema_for_type::<TerminalCloseInput>(),
    )
    .with_annotations(
        ToolAnnotations::with_title("Close terminal")
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(false),
    )
}

pub async fn call(
    state: &ToolsState,
    caller: &Caller,
    arguments: Option<JsonObject>,
    _context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let input: TerminalCloseInput = super::parse_arguments(arguments, NAME)?;
    tracing::info!(
        principal = caller.principal.name(),
        tool = NAME,
        "tool call"
    );
    match state
        .terminals
        .close(caller.principal.name(), &input.terminal_id)
        .await
    {
        Ok(exit) => {
            let text = format!(
                "closed terminal {}: {}",
                input.terminal_id,
                terminal_read::describe_exit(&exit)
            );
            let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
            result.structured_content = serde_json::to_value(&exit).ok();
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
