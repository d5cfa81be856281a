//! `terminal_send`: type text and named keys into a terminal. Every send is audited
//! (`terminal_input`): the text and keys, or with `redact` only the byte count, for input
//! that must not be kept (a passphrase the program asks for).

use rmcp::{
    ErrorData as McpError, RoleServer,
    handler::server::common::schema_for_type,
    model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations},
    service::RequestContext,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::ToolsState;
use crate::{
    audit::{AuditEvent, AuditText},
    caller::Caller,
    terminals::TerminalError,
};

pub const NAME: &str = "terminal_send";

/// Arguments of `terminal_send`: `text`, then `keys`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TerminalSendInput {
    pub terminal_id: String,
    /// Text typed as is (a newline in it is a line feed: to submit a line, add the key Enter).
    #[serde(default)]
    pub text: String,
    /// Keys pressed after the text, in order: Enter, Tab, Escape, Backspace, Delete, Up,
    /// Down, Left, Right, Home, End, PageUp, PageDown, F1-F12, Space, Ctrl-C, Ctrl-D,
    /// Ctrl-Z or any Ctrl-<letter>.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Keep the text out of the audit log (only its length is recorded).
    #[serde(default)]
    pub redact: bool,
}

pub fn definition() -> Tool {
    Tool::new(
        NAME,
        "Type into a terminal opened with terminal_open: `text` as is, then the named `keys` \
         (e.g. text \"print(6*7)\" with keys [\"Enter\"]; keys [\"Ctrl-C\"] to interrupt). \
         Then read the result with terminal_read (settle_ms or wait_for wait for it). \
         redact keeps the text out of the audit log.",
        schema_for_type::<TerminalSendInput>(),
    )
    .with_annotations(
        ToolAnnotations::with_title("Type into terminal")
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(true),
    )
}

pub async fn call(
    state: &ToolsState,
    caller: &Caller,
    arguments: Option<JsonObject>,
    _context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let principal = &caller.principal;
    let input: TerminalSendInput = super::parse_arguments(arguments, NAME)?;
    if input.text.is_empty() && input.keys.is_empty() {
        return Err(McpError::invalid_params(
            "give `text`, `keys` or both".to_owned(),
            None,
        ));
    }
    let sent = state
        .terminals
        .send(
            principal.name(),
            &input.terminal_id,
            &input.text,
            &input.keys,
        )
        .await;
    let (bytes, command_id) = match sent {
        Ok(sent) => sent,
        Err(error) => {
            refused(state, caller, NAME, &input.terminal_id, &error);
            return Ok(CallToolResult::error(vec![ContentBlock::text(
                error.to_string(),
            )]));
        }
    };
    let event = AuditEvent::TerminalInput {
        terminal_id: input.terminal_id.clone(),
        command_id,
        text: (!input.redact && !input.text.is_empty()).then(|| AuditText::from(input.text)),
        keys: input.keys,
        bytes,
        redacted: input.redact,
    };
    state
        .audit
        .record_or_log(caller.audit_context(NAME), event)
        .await;
    Ok(CallToolResult::success(vec![ContentBlock::text(format!(
        "sent {bytes} bytes to {}; read the screen with terminal_read",
        input.terminal_id
    ))]))
}

/// Log a call on another principal's terminal (the caller was told "no terminal" either way).
pub fn refused(state: &ToolsState, caller: &Caller, tool: &str, id: &str, error: &TerminalError) {
    if matches!(error, TerminalError::NotFound(_))
        && state
            .terminals
            .belongs_to_another(caller.principal.name(), id)
    {
        tracing::warn!(
            principal = caller.principal.name(),
            tool,
            "call on another principal's terminal"
        );
    }
}
