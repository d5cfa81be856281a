//! `terminal_resize`: change a terminal's rows and columns (its program gets SIGWINCH).

use rmcp::{
    ErrorData as McpError, RoleServer,
    handler::server::common::schema_for_type,
    model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations},
    service::RequestContext,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{ToolsState, terminal_open, terminal_send};
use crate::caller::Caller;

pub const NAME: &str = "terminal_resize";

/// Arguments of `terminal_resize`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TerminalResizeInput {
    pub terminal_id: String,
    /// 2 to 500.
    pub rows: u16,
    /// 10 to 1000.
    pub cols: u16,
}

pub fn definition() -> Tool {
    Tool::new(
        NAME,
        "Resize a terminal opened with terminal_open; its program is told (SIGWINCH).",
        schema_for_type::<TerminalResizeInput>(),
    )
    .with_annotations(
        ToolAnnotations::with_title("Resize terminal")
            .read_only(false)
            .destructive(false)
            .idempotent(true)
            .open_world(false),
    )
}

pub async fn call(
    state: &ToolsState,
    caller: &Caller,
    arguments: Option<JsonObject>,
    _context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let input: TerminalResizeInput = super::parse_arguments(arguments, NAME)?;
    let size = terminal_open::size(Some(input.rows), Some(input.cols))?;
    match state
        .terminals
        .resize(caller.principal.name(), &input.terminal_id, size)
    {
        Ok(()) => Ok(CallToolResult::success(vec![ContentBlock::text(format!(
            "terminal {} is now {}x{}",
            input.terminal_id, size.rows, size.cols
        ))])),
        Err(error) => {
            terminal_send::refused(state, caller, NAME, &input.terminal_id, &error);
            Ok(CallToolResult::error(vec![ContentBlock::text(
                error.to_string(),
            )]))
        }
    }
}
