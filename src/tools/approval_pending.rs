//! `approval_pending`: the commands waiting for approval that the caller may decide (its
//! own, and other tokens' for an approver), for the MCP Apps confirmation view
//! (`crate::apps::approval`) only: `visibility: ["app"]`, refused to a
//! client that renders no apps or a token not named in `[approval] app_view_tokens`
//! (`crate::approval::app_view`). Each request's one-time view secret is in the result's
//! `_meta`, never in its text.

use rmcp::{
    ErrorData as McpError, RoleServer,
    handler::server::common::schema_for_type,
    model::{CallToolResult, ContentBlock, JsonObject, MetaObject, Tool},
    service::RequestContext,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::ToolsState;
use crate::{
    approval::app_view::{self, ViewCaller, ViewRequest},
    caller::Caller,
};

pub const NAME: &str = "approval_pending";

/// Arguments of `approval_pending`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalPendingInput {
    /// Only this request (`ap-…`); default: all this token may decide.
    #[serde(default)]
    pub approval_id: Option<String>,
}

pub fn definition() -> Tool {
    Tool::new(
        NAME,
        "For the approval view only (MCP Apps): the commands that wait for a person's \
         approval which this token may decide.",
        schema_for_type::<ApprovalPendingInput>(),
    )
    .with_annotations(super::read_only_annotations("Pending approvals"))
    .with_meta(crate::apps::app_only_tool_meta())
}

/// One waiting request as the view shows it (no secret).
pub fn shown(item: &ViewRequest) -> serde_json::Value {
    let request = &item.request;
    let argv = match &request.command {
        crate::command::CommandLine::Argv(argv) => Some(argv.clone()),
        crate::command::CommandLine::Shell(_) => None,
    };
    json!({
        "id": request.id,
        "tool": request.tool,
        "own": item.own,
        "principal": request.principal,
        "command": request.command.describe(),
        "argv": argv,
        "program": request.program,
        "working_dir": request.working_dir,
        "run_as": request.run_as,
        "rule": request.rule,
        "reason": request.reason,
        "stdin": request.stdin,
        "expires_in_secs": item.expires_in_secs,
    })
}

pub async fn call(
    state: &ToolsState,
    caller: &Caller,
    arguments: Option<JsonObject>,
    context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let input: ApprovalPendingInput = super::parse_arguments(arguments, NAME)?;
    let capabilities = context.client_capabilities();
    let view = ViewCaller {
        principal: caller.principal.name(),
        role: caller.principal.role(),
        renders_apps: crate::apps::renders_apps(capabilities.as_ref()),
    };
    let listed = match app_view::pending(&state.approvals, view) {
        Ok(mut listed) => {
            if let Some(id) = &input.approval_id {
                listed.retain(|item| &item.request.id == id);
            }
            listed
        }
        Err(refused) => {
            tracing::info!(principal = view.principal, tool = NAME, reason = %refused, "approval view refused");
            return Ok(CallToolResult::error(vec![ContentBlock::text(
                refused.to_string(),
            )]));
        }
    };
    let text = if listed.is_empty() {
        "no command this token may decide waits for approval".to_owned()
    } else {
        let ids: Vec<_> = listed.iter().map(|item| item.request.id.as_str()).collect();
        format!(
            "{} command(s) wait for approval: {}",
            listed.len(),
            ids.join(", ")
        )
    };
    let secrets: serde_json::Map<_, _> = (listed.iter())
        .map(|item| (item.request.id.clone(), json!(item.secret)))
        .collect();
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(json!({
        "requests": listed.iter().map(shown).collect::<Vec<_>>(),
        "approver": view.is_approver(&state.approvals),
    }));
    let mut meta = JsonObject::new();
    meta.insert(
        crate::apps::approval::SECRETS_META_KEY.to_owned(),
        serde_json::Value::Object(secrets),
    );
    result.meta = Some(MetaObject(meta));
    Ok(result)
}
