//! The fixture `ServerHandler`: routes each MCP method to the fixture data and tools,
//! choosing the 2025 or 2026-07-28 fixtures by the protocol version of the request.
//! `run_command` is hostmcp's real tool, served by a wrapped [`HostTools`].

#![allow(deprecated)] // Logging and resource subscriptions are SEP-2577-deprecated in rmcp.

use std::sync::Arc;

use hostmcp::{
    tools::{HostTools, run_command},
    transport::direct_call::PeerUse,
};
use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientRequest,
        CompleteRequestParams, CompleteResult, CompletionInfo, ContentBlock,
        GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
        ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
        ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
        ServerCapabilities, ServerConfig, SetLevelRequestParams, SubscribeRequestParams,
        SubscriptionFilter, Tool, UnsubscribeRequestParams,
    },
    service::{RequestContext, SubscriptionContext},
};
use serde_json::json;

use super::{
    fixtures, input_required,
    interactive::{self, Elicitation},
    reconnect,
    request_state::StateSealer,
    subscriptions::{ChangeHub, ListChange},
};

/// The fixture server. Cheap to clone: the session layers clone it for every call.
#[derive(Debug, Clone)]
pub struct FixtureServer {
    host: HostTools,
    sealer: Arc<StateSealer>,
    changes: ChangeHub,
}

/// True when the request speaks the stateless 2026-07-28 protocol.
fn is_modern(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|version| version.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

fn text(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

fn unknown_tool(name: &str) -> McpError {
    McpError::invalid_params(format!("unknown tool: {name}"), None)
}

impl FixtureServer {
    pub fn new(host: HostTools) -> Self {
        Self {
            host,
            sealer: Arc::new(StateSealer::random()),
            changes: ChangeHub::new(),
        }
    }

    /// Tools with no fixture data: the benchmark's `echo` and hostmcp's `run_command`.
    fn extra_tools(&self) -> impl Iterator<Item = Tool> {
        std::iter::once(fixtures::echo_tool()).chain(self.host.get_tool(run_command::NAME))
    }

    /// Tools of the 2025 wire: they send requests and notifications while running.
    async fn call_legacy_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let name = request.name.as_ref();
        let arguments = request.arguments.as_ref();
        if let Some(elicitation) = Elicitation::of_tool(name) {
            return elicitation.run(arguments, &context).await;
        }
        match name {
            "test_tool_with_logging" => interactive::log_three_messages(&context).await,
            "test_sampling" => interactive::sample(arguments, &context).await,
            reconnect::TOOL => {
                // The stream is cut by the reconnect layer; the result goes to the resumed one.
                tokio::time::sleep(reconnect::TOOL_DURATION).await;
                Ok(text(
                    "Reconnection test completed successfully. If you received this, \
                         the client properly reconnected after stream closure.",
                ))
            }
            _ => Err(unknown_tool(name)),
        }
    }

    /// Tools of the 2026-07-28 wire: input-required rounds instead of requests.
    async fn call_modern_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let capabilities = context.meta.client_capabilities();
        if let Some(response) = input_required::call_tool(&request, capabilities, &self.sealer) {
            return response;
        }
        let name = request.name.as_ref();
        if let Some(change) = ListChange::of_trigger_tool(name) {
            self.changes.announce(change);
            return Ok(text(format!("{change:?} list changed").to_lowercase()).into());
        }
        let result = match name {
            "test_tool_with_logging" | "test_logging_tool" => {
                interactive::log_if_requested(&context).await
            }
            "test_missing_capability" => missing_capability(&context),
            "test_custom_header" => Ok(text("custom header matched the region argument")),
            _ => Err(unknown_tool(name)),
        };
        result.map(Into::into)
    }
}

/// `test_missing_capability`: needs sampling, which the probe leaves out (-32021).
fn missing_capability(context: &RequestContext<RoleServer>) -> Result<CallToolResult, McpError> {
    let declared = context
        .meta
        .client_capabilities()
        .is_some_and(|capabilities| capabilities.sampling.is_some());
    if declared {
        Ok(text("the client declared sampling"))
    } else {
        Err(McpError::missing_required_client_capability(
            fixtures::parse(json!({ "sampling": {} })),
        ))
    }
}

/// `echo`: the `text` argument, unchanged.
fn echo(request: &CallToolRequestParams) -> Result<CallToolResult, McpError> {
    let text_argument = request
        .arguments
        .as_ref()
        .and_then(|arguments| arguments.get("text"))
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| McpError::invalid_params("echo needs a string argument \"text\"", None))?;
    Ok(text(text_argument))
}

/// `echo`, `run_command`, `test_reconnection` and the fixed-result tools run directly
/// (they send nothing through the peer); the rest may log, report progress, ask the client, or keep a peer
/// for subscriptions, so they get a live peer.
impl PeerUse for FixtureServer {
    fn needs_live_peer(&self, request: &ClientRequest) -> bool {
        let ClientRequest::CallToolRequest(call) = request else {
            return true;
        };
        let name = call.params.name.as_ref();
        let direct = ["echo", run_command::NAME, reconnect::TOOL];
        !(direct.contains(&name) || fixtures::fixed_tool_result(name).is_some())
    }
}

impl ServerHandler for FixtureServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_logging()
            .enable_completions()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_list_changed()
            .enable_resources_subscribe()
            .enable_tools()
            .enable_tool_list_changed()
            .build();
        ServerConfig::new(capabilities).with_server_info(Implementation::new(
            "hostmcp-conformance-fixtures",
            env!("CARGO_PKG_VERSION"),
        ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let mut tools = fixtures::tools(is_modern(&context));
        tools.extend(self.extra_tools());
        Ok(ListToolsResult::with_all_items(tools))
    }

    /// rmcp reads the input schema from here to check `Mcp-Param-*` headers (SEP-2243).
    fn get_tool(&self, name: &str) -> Option<Tool> {
        fixtures::tool(name).or_else(|| self.extra_tools().find(|tool| tool.name == name))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        if let Some(result) = fixtures::fixed_tool_result(&request.name) {
            return Ok(result.into());
        }
        match request.name.as_ref() {
            "echo" => echo(&request).map(Into::into),
            run_command::NAME => self.host.call_tool(request, context).await,
            "test_tool_with_progress" => {
                interactive::report_progress(&context).await.map(Into::into)
            }
            _ if is_modern(&context) => self.call_modern_tool(request, context).await,
            _ => self
                .call_legacy_tool(request, context)
                .await
                .map(Into::into),
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(fixtures::resources()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(
            fixtures::resource_templates(),
        ))
    }

    /// Unknown URIs get -32002 with the URI; rmcp turns it into -32602 on 2026-07-28
    /// (SEP-2164).
    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        match fixtures::read_resource(&request.uri) {
            Some(contents) => Ok(ReadResourceResult::new(contents).into()),
            None => Err(McpError::resource_not_found(
                "resource not found",
                Some(json!({ "uri": request.uri })),
            )),
        }
    }

    async fn subscribe(
        &self,
        _request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        Ok(())
    }

    async fn unsubscribe(
        &self,
        _request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult::with_all_items(fixtures::prompts(
            is_modern(&context),
        )))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        if request.name == input_required::PROMPT && is_modern(&context) {
            return input_required::get_prompt(&request);
        }
        let arguments = request.arguments.unwrap_or_default();
        fixtures::get_prompt(&request.name, &arguments)
            .map(Into::into)
            .ok_or_else(|| {
                McpError::invalid_params(format!("unknown prompt: {}", request.name), None)
            })
    }

    async fn complete(
        &self,
        _request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let mut completion = CompletionInfo::default();
        completion.total = Some(0);
        completion.has_more = Some(false);
        Ok(CompleteResult::new(completion))
    }

    async fn set_level(
        &self,
        _request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.clone())
    }

    async fn listen(&self, subscription: SubscriptionContext) -> Result<(), McpError> {
        self.changes.listen(subscription).await
    }
}
