//! `approval_decide`: approve or deny a waiting command (the caller's own, or another
//! token's when the caller is an approver) from the MCP Apps confirmation view (`crate::apps::approval`), with the view secret
//! `approval_pending` gave it. App-only, and refused to a client that renders no apps, to a
//! token not named in `[approval] app_view_tokens`, and without the right secret
//! (`crate::approval::app_view`); each refusal is audited as `approval_refused`. The
//! decision itself is recorded by the waiting call (`approval_decided`, via `mcp-app`).

use rmcp::{
    ErrorData as McpError, RoleServer,
    handler::server::common::schema_for_type,
    model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations},
    service::RequestContext,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::ToolsState;
use crate::{
    approval::app_view::{self, ViewCaller},
    audit::{AuditEvent, AuditText},
    caller::Caller,
};

pub const NAME: &str = "approval_decide";

/// The view's choice.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Approve,
    Deny,
}

/// Arguments of `approval_decide` (no `Debug`: it holds the secret; see [`Secretless`]).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalDecideInput {
    /// The request, `ap-…`.
    pub approval_id: String,
    pub decision: Decision,
    /// The one-time secret `approval_pending` gave the view for this request.
    pub view_secret: String,
}

impl std::fmt::Debug for Secretless<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:?})", self.0.approval_id, self.0.decision)
    }
}

/// The input as it may be logged: without its secret.
struct Secretless<'a>(&'a ApprovalDecideInput);

pub fn definition() -> Tool {
    Tool::new(
        NAME,
        "For the approval view only (MCP Apps): approve or deny a waiting command with the \
         view's secret.",
        schema_for_type::<ApprovalDecideInput>(),
    )
    .with_annotations(
        ToolAnnotations::with_title("Decide approval")
            .read_only(false)
            .destructive(false)
            .idempotent(false)
            .open_world(false),
    )
    .with_meta(crate::apps::app_only_tool_meta())
}

pub async fn call(
    state: &ToolsState,
    caller: &Caller,
    arguments: Option<JsonObject>,
    context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let input: ApprovalDecideInput = super::parse_arguments(arguments, NAME)?;
    let capabilities = context.client_capabilities();
    let view = ViewCaller {
        principal: caller.principal.name(),
        role: caller.principal.role(),
        renders_apps: crate::apps::renders_apps(capabilities.as_ref()),
    };
    tracing::info!(principal = view.principal, tool = NAME, input = ?Secretless(&input), "tool call");
    let approve = input.decision == Decision::Approve;
    match app_view::decide(
        &state.approvals,
        view,
        &input.approval_id,
        approve,
        &input.view_secret,
    ) {
        Ok(request) => {
            let decided = if approve { "approved" } else { "denied" };
            let text = format!(
                "{decided} {}: {}",
                request.id,
                if approve {
                    "the command runs now"
                } else {
                    "the command does not run"
                }
            );
            let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
            result.structured_content = Some(json!({
                "approval_id": request.id,
                "decision": decided,
                "decider": app_view::decider(view.principal),
            }));
            Ok(result)
        }
        Err(refused) => {
            tracing::info!(principal = view.principal, approval_id = %input.approval_id, reason = %refused, "approval view decision refused");
            let event = AuditEvent::ApprovalRefused {
                approval_id: input.approval_id.clone(),
                reason: AuditText::from(format!("mcp-app: {refused}")),
            };
            state
                .audit
                .record_or_log(caller.audit_context(NAME), event)
                .await;
            Ok(CallToolResult::error(vec![ContentBlock::text(
                refused.to_string(),
            )]))
        }
    }
}
