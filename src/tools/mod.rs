//! The MCP tools and the rmcp `ServerHandler` that serves them on every transport.
//! Each tool lives in its own file: parse the arguments, check the caller's rights,
//! do the work, shape the result.

mod progress;
pub mod run_command;

use std::sync::Arc;

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
};

use crate::{
    auth::{Principal, Role},
    config::CommandLimits,
    exec::BaseEnv,
};

/// What every tool call may use: limits and the command environment.
#[derive(Debug)]
pub struct ToolsState {
    pub limits: CommandLimits,
    pub base_env: BaseEnv,
    /// The caller on transports without HTTP authentication (stdio).
    pub local_principal: Option<Principal>,
}

/// The rmcp handler. Cheap to clone: one per MCP session.
#[derive(Debug, Clone)]
pub struct HostTools {
    state: Arc<ToolsState>,
}

/// The tools this server offers, each with the role it needs.
struct ToolEntry {
    required_role: Role,
    definition: fn() -> Tool,
}

const TOOLS: &[ToolEntry] = &[ToolEntry {
    required_role: Role::Operator,
    definition: run_command::definition,
}];

impl HostTools {
    pub fn new(state: Arc<ToolsState>) -> Self {
        Self { state }
    }

    /// The principal of a request: set by the HTTP auth layer, or the local one on stdio.
    fn principal(&self, context: &RequestContext<RoleServer>) -> Option<Principal> {
        context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Principal>().cloned())
            .or_else(|| self.state.local_principal.clone())
    }
}

impl ServerHandler for HostTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("hostmcp", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Operate this Linux host: run_command runs a shell command (or an argv) \
                 with a timeout and returns exit code, stdout and stderr.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let role = self.principal(&context).map(|principal| principal.role());
        let tools = TOOLS
            .iter()
            .filter(|entry| role.is_some_and(|role| role >= entry.required_role))
            .map(|entry| (entry.definition)())
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        TOOLS
            .iter()
            .map(|entry| (entry.definition)())
            .find(|tool| tool.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let Some(principal) = self.principal(&context) else {
            return Err(McpError::internal_error("request has no principal", None));
        };
        let Some(entry) = TOOLS
            .iter()
            .find(|entry| (entry.definition)().name == request.name)
        else {
            return Err(McpError::invalid_params(
                format!("unknown tool {:?}", request.name),
                None,
            ));
        };
        if principal.role() < entry.required_role {
            tracing::warn!(principal = principal.name(), tool = %request.name, "tool denied by role");
            return Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "denied: tool {} needs the {} role; token {:?} has the {} role",
                request.name,
                entry.required_role,
                principal.name(),
                principal.role()
            ))])
            .into());
        }
        match request.name.as_ref() {
            run_command::NAME => {
                run_command::call(&self.state, &principal, request.arguments, context)
                    .await
                    .map(Into::into)
            }
            other => Err(McpError::internal_error(
                format!("tool {other} has no handler"),
                None,
            )),
        }
    }
}
