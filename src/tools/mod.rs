//! The MCP tools and the rmcp `ServerHandler` that serves them on every transport.
//! Each tool lives in its own file: parse the arguments, check the caller's rights,
//! do the work, shape the result. The catalog below says which role each tool needs:
//! a principal is neither shown nor allowed a tool above its role.

mod audited;
pub mod authorize;
pub mod command_pipeline;
pub mod host_info;
pub mod jobs;
mod progress;
pub mod refusal;
mod revoked_call;
pub mod run_command;

use std::sync::{Arc, LazyLock};

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientRequest,
        CompleteRequestMethod, CompleteRequestParams, CompleteResult, ContentBlock, Implementation,
        ListPromptsRequestMethod, ListPromptsResult, ListResourceTemplatesRequestMethod,
        ListResourceTemplatesResult, ListResourcesRequestMethod, ListResourcesResult,
        ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
};
use tokio_util::sync::CancellationToken;

use authorize::Identities;

use crate::{
    audit::{AuditEvent, AuditLog},
    auth::{Principal, Role},
    config::{CommandLimits, JobSettings},
    exec::{
        BaseEnv,
        slots::{CommandSlots, SlotLimits},
    },
    jobs::JobRegistry,
    policy::Policy,
    ratelimit::RateLimiter,
    transport::direct_call::PeerUse,
};

/// What every tool call may use: limits, the command environment, running commands, jobs.
#[derive(Debug)]
pub struct ToolsState {
    pub limits: CommandLimits,
    pub jobs_settings: JobSettings,
    pub base_env: BaseEnv,
    /// The caller on transports without HTTP authentication (stdio).
    pub local_principal: Option<Principal>,
    pub slots: Arc<CommandSlots>,
    pub jobs: Arc<JobRegistry>,
    pub audit: AuditLog,
    /// Tool calls per principal and minute, when limited.
    pub tool_calls: Option<RateLimiter<String>>,
    /// One audit record per principal and minute for the calls `tool_calls` refuses: a
    /// flood of refused calls must not become a flood of records.
    rate_refusals_recorded: RateLimiter<String>,
    /// What commands each principal may run.
    pub policy: Policy,
    /// As which Unix user.
    pub identities: Identities,
}

impl Default for ToolSettings {
    /// Product defaults with the permissive policy (no `[policy]` table).
    fn default() -> Self {
        Self {
            limits: CommandLimits::default(),
            jobs: JobSettings::default(),
            tool_calls_per_minute: None,
            policy: Policy::permissive(),
            run_as: None,
        }
    }
}

/// The settings tools run under.
#[derive(Debug, Clone)]
pub struct ToolSettings {
    pub limits: CommandLimits,
    pub jobs: JobSettings,
    pub tool_calls_per_minute: Option<u32>,
    pub policy: Policy,
    /// The Unix user commands run as when the token names none.
    pub run_as: Option<String>,
}

impl ToolsState {
    /// State for a server whose jobs die with `shutdown`.
    pub fn new(
        settings: ToolSettings,
        base_env: BaseEnv,
        local_principal: Option<Principal>,
        audit: AuditLog,
        shutdown: &CancellationToken,
    ) -> Arc<Self> {
        let ToolSettings {
            limits,
            jobs: jobs_settings,
            tool_calls_per_minute,
            policy,
            run_as,
        } = settings;
        Arc::new(Self {
            limits,
            jobs_settings,
            tool_calls: tool_calls_per_minute.map(|limit| RateLimiter::new(limit, MINUTE)),
            rate_refusals_recorded: RateLimiter::new(1, MINUTE),
            slots: CommandSlots::new(SlotLimits {
                max_total: limits.max_concurrent_commands,
                max_per_principal: limits.max_concurrent_per_principal,
            }),
            jobs: JobRegistry::new(
                jobs_settings.registry,
                base_env.clone(),
                shutdown.child_token(),
                audit.clone(),
            ),
            base_env,
            local_principal,
            audit,
            policy,
            identities: Identities::new(run_as),
        })
    }
}

const MINUTE: std::time::Duration = std::time::Duration::from_secs(60);

/// Parse a tool's JSON arguments; a mismatch is `invalid_params` naming the tool.
fn parse_arguments<T: serde::de::DeserializeOwned>(
    arguments: Option<rmcp::model::JsonObject>,
    tool: &str,
) -> Result<T, McpError> {
    serde_json::from_value(serde_json::Value::Object(arguments.unwrap_or_default()))
        .map_err(|error| McpError::invalid_params(format!("{tool}: {error}"), None))
}

/// The rmcp handler. Cheap to clone: the session layers clone it for every call.
#[derive(Debug, Clone)]
pub struct HostTools {
    state: Arc<ToolsState>,
}

/// A tool and the least role that may see and call it.
struct CatalogEntry {
    required_role: Role,
    tool: Tool,
}

/// Every tool, built once.
static CATALOG: LazyLock<Vec<CatalogEntry>> = LazyLock::new(|| {
    let operator = |tool| CatalogEntry {
        required_role: Role::Operator,
        tool,
    };
    vec![
        CatalogEntry {
            required_role: Role::Read,
            tool: host_info::definition(),
        },
        operator(run_command::definition()),
        operator(jobs::start_definition()),
        operator(jobs::output_definition()),
        operator(jobs::signal_definition()),
        operator(jobs::list_definition()),
    ]
});

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

/// hostmcp's tools send nothing through their context's peer: progress goes through the
/// request's notifier ([`progress`]), and no tool asks the client anything.
impl PeerUse for HostTools {
    fn needs_live_peer(&self, _request: &ClientRequest) -> bool {
        false
    }
}

impl ServerHandler for HostTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("hostmcp", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Operate this Linux host. run_command runs a command (shell line or argv) with a \
                 timeout and returns exit code, stdout and stderr. For work longer than a minute, \
                 job_start runs it in the background; read it with job_output (cursors page through \
                 the output), stop it with job_signal, see all with job_list.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let role = self.principal(&context).map(|principal| principal.role());
        let tools = CATALOG
            .iter()
            .filter(|entry| role.is_some_and(|role| role >= entry.required_role))
            .map(|entry| entry.tool.clone())
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    // hostmcp declares only the tools capability: the rest are not found, not empty.
    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Err(McpError::method_not_found::<ListPromptsRequestMethod>())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Err(McpError::method_not_found::<ListResourcesRequestMethod>())
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Err(McpError::method_not_found::<
            ListResourceTemplatesRequestMethod,
        >())
    }

    async fn complete(
        &self,
        _request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        Err(McpError::method_not_found::<CompleteRequestMethod>())
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        CATALOG
            .iter()
            .find(|entry| entry.tool.name == name)
            .map(|entry| entry.tool.clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let Some(principal) = self.principal(&context) else {
            return Err(McpError::internal_error("request has no principal", None));
        };
        let Some(entry) = CATALOG.iter().find(|entry| entry.tool.name == request.name) else {
            return Err(McpError::invalid_params(
                format!("unknown tool {:?}", request.name),
                None,
            ));
        };
        // Before the role check: a refused call counts too, or a read token could make
        // unlimited role-denied calls, each one a log line and an audit record.
        let state = &self.state;
        if let Some(Err(limited)) = state
            .tool_calls
            .as_ref()
            .map(|limiter| limiter.hit(&principal.name().to_owned()))
        {
            let reason = format!(
                "rate limited: too many tool calls for {:?}; retry in {} s",
                principal.name(),
                limited.retry_after.as_secs().max(1)
            );
            if state
                .rate_refusals_recorded
                .hit(&principal.name().to_owned())
                .is_ok()
            {
                tracing::warn!(principal = principal.name(), tool = %request.name, "tool calls rate limited");
                let event = AuditEvent::ToolDenied {
                    tool: request.name.to_string(),
                    rule: "tool_calls_per_minute".to_owned(),
                    reason: format!(
                        "{reason} (the first refusal this minute; later ones are not recorded)"
                    ),
                };
                let trail = audited::context_of(&context, &principal, &request.name);
                state.audit.record_or_log(trail, event).await;
            }
            return Ok(CallToolResult::error(vec![ContentBlock::text(reason)]).into());
        }
        if principal.role() < entry.required_role {
            let reason = format!(
                "denied: tool {} needs the {} role; token {:?} has the {} role",
                request.name,
                entry.required_role,
                principal.name(),
                principal.role()
            );
            tracing::warn!(principal = principal.name(), tool = %request.name, "tool denied by role");
            let event = AuditEvent::ToolDenied {
                tool: request.name.to_string(),
                rule: "role".to_owned(),
                reason: reason.clone(),
            };
            let trail = audited::context_of(&context, &principal, &request.name);
            self.state.audit.record_or_log(trail, event).await;
            return Ok(CallToolResult::error(vec![ContentBlock::text(reason)]).into());
        }
        let arguments = request.arguments;
        let revoked = revoked_call::RevokedCall {
            cancel: context.ct.clone(),
            id: context.id.to_string(),
            trail: audited::context_of(&context, &principal, &request.name),
        };
        let work = async {
            match request.name.as_ref() {
                host_info::NAME => Ok(host_info::call()),
                run_command::NAME => run_command::call(state, &principal, arguments, context).await,
                jobs::START => jobs::start(state, &principal, arguments, &context).await,
                jobs::OUTPUT => jobs::output(state, &principal, arguments, &context).await,
                jobs::SIGNAL => jobs::signal(state, &principal, arguments, &context).await,
                jobs::LIST => Ok(jobs::list(state, &principal)),
                other => Err(McpError::internal_error(
                    format!("tool {other} has no handler"),
                    None,
                )),
            }
        };
        let result = revoked.cancel_on_end(&principal, &state.audit, work).await;
        result.map(Into::into)
    }
}
