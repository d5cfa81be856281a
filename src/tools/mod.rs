//! The MCP tools and the rmcp `ServerHandler` that serves them on every transport.
//! Each tool lives in its own file: parse the arguments, check the caller's rights,
//! do the work, shape the result. [`TOOLS`] is the one table of them: for each, the least
//! role that may see and call it, its definition and its [`Handler`]. A principal is
//! neither shown nor allowed a tool above its role; the rate limit and the role gate run
//! here, before any handler, and every result is cut to the [result budget](result_budget)
//! after it. Adding a tool is a file with a `definition` and a handler,
//! plus one line in [`TOOLS`].

mod approval_decide;
mod approval_pending;
mod audited;
pub mod authorize;
pub mod command_pipeline;
pub mod disk_usage;
pub mod file_gate;
pub mod file_list;
pub mod file_read;
pub mod file_search;
pub mod file_write;
pub mod host_info;
pub mod jobs;
pub mod log_query;
pub mod network_info;
mod paging;
pub mod process_list;
pub mod process_signal;
pub mod process_tree;
mod progress;
pub mod refusal;
mod resource_calls;
pub mod result_budget;
mod revoked_call;
pub mod run_command;
pub mod schema;
pub mod service_status;
pub mod terminal_close;
pub mod terminal_open;
pub mod terminal_read;
pub mod terminal_resize;
pub mod terminal_send;

use std::sync::{Arc, LazyLock};

use arc_swap::ArcSwap;

use futures::future::BoxFuture;
use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientRequest,
        CompleteRequestMethod, CompleteRequestParams, CompleteResult, ContentBlock,
        GetPromptRequestParams, GetPromptResponse, Implementation, JsonObject, ListPromptsResult,
        ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
        ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
        SubscribeRequestParams, SubscriptionFilter, Tool, UnsubscribeRequestParams,
    },
    service::{RequestContext, SubscriptionContext},
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    audit::{AuditEvent, AuditLog},
    auth::Role,
    caller::{Caller, TraceParent},
    config::{CommandLimits, JobSettings, services::ServiceSettings},
    exec::{
        BaseEnv,
        identities::Identities,
        slots::{CommandSlots, SlotLimits},
    },
    files::FileRoots,
    handler_link::PeerUse,
    jobs::JobRegistry,
    metrics::{self, ToolOutcome},
    policy::Policy,
    ratelimit::RateLimiter,
};

/// What every tool call may use: limits, the command environment, running commands, jobs.
#[derive(Debug)]
pub struct ToolsState {
    /// Swapped whole by a reload ([`ToolsState::reload`]); a call reads it once.
    pub limits: ArcSwap<CommandLimits>,
    pub jobs_settings: JobSettings,
    pub base_env: BaseEnv,
    pub slots: Arc<CommandSlots>,
    pub jobs: Arc<JobRegistry>,
    pub audit: AuditLog,
    /// Tool calls per principal and minute, when limited.
    pub tool_calls: Option<RateLimiter<String>>,
    /// One audit record per principal and minute for the calls `tool_calls` refuses: a
    /// flood of refused calls must not become a flood of records.
    rate_refusals_recorded: RateLimiter<String>,
    /// What commands each principal may run. Swapped whole by a reload; a call loads it
    /// once, so a call in flight keeps the policy it started with.
    pub policy: ArcSwap<Policy>,
    /// As which Unix user.
    pub identities: Identities,
    /// Where `service_status` asks systemd and what `log_query` may read.
    pub services: ServiceSettings,
    /// CPU shares of processes, measured between process_list calls.
    pub cpu_sampler: Arc<crate::host::processes::CpuSampler>,
    /// The directories the file tools may reach. Swapped whole by a reload.
    pub files: ArcSwap<FileRoots>,
    /// The live `resources/subscribe` subscriptions.
    pub subscriptions: Arc<crate::resources::subscriptions::Subscriptions>,
    /// The interactive terminals (`terminal_*`).
    pub terminals: Arc<crate::terminals::TerminalRegistry>,
    /// Commands waiting for a person's approval (`crate::approval`).
    pub approvals: Arc<crate::approval::Approvals>,
}

impl Default for ToolSettings {
    /// Product defaults with the permissive policy (no `[policy]` table).
    fn default() -> Self {
        Self {
            limits: CommandLimits::default(),
            jobs: JobSettings::default(),
            terminals: crate::terminals::TerminalSettings::default(),
            tool_calls_per_minute: None,
            policy: Policy::permissive(),
            run_as: None,
            services: ServiceSettings::default(),
            files: FileRoots::default(),
        }
    }
}

/// The settings tools run under.
#[derive(Debug, Clone)]
pub struct ToolSettings {
    pub limits: CommandLimits,
    pub jobs: JobSettings,
    /// The `[terminals]` table.
    pub terminals: crate::terminals::TerminalSettings,
    pub tool_calls_per_minute: Option<u32>,
    pub policy: Policy,
    /// The Unix user commands run as when the token names none.
    pub run_as: Option<String>,
    /// The `[systemd]` and `[logs]` tables.
    pub services: ServiceSettings,
    /// The `[files]` roots.
    pub files: FileRoots,
}

impl ToolsState {
    /// State for a server whose jobs die with `shutdown`.
    pub fn new(
        settings: ToolSettings,
        base_env: BaseEnv,
        audit: AuditLog,
        shutdown: &CancellationToken,
    ) -> Arc<Self> {
        let ToolSettings {
            limits,
            jobs: jobs_settings,
            terminals,
            tool_calls_per_minute,
            policy,
            run_as,
            services,
            files,
        } = settings;
        let terminals = crate::terminals::TerminalRegistry::new(
            terminals,
            base_env.clone(),
            shutdown.child_token(),
            audit.clone(),
        );
        Arc::new(Self {
            limits: ArcSwap::from_pointee(limits),
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
            audit,
            policy: ArcSwap::from_pointee(policy),
            identities: Identities::new(run_as),
            services,
            cpu_sampler: Arc::default(),
            files: ArcSwap::from_pointee(files),
            subscriptions: crate::resources::subscriptions::Subscriptions::new(),
            terminals,
            approvals: crate::approval::Approvals::new(),
        })
    }

    /// The refusal when `caller`'s principal is over its `tool_calls_per_minute` budget; a
    /// tool call or a `resources/read` (named `what`) spends one call of it. The first
    /// refusal per principal and minute is logged and audited, later ones are not.
    pub async fn rate_limited(&self, caller: &Caller, what: &str) -> Option<String> {
        let principal = &caller.principal;
        let limited = self
            .tool_calls
            .as_ref()?
            .hit(&principal.name().to_owned())
            .err()?;
        let reason = format!(
            "rate limited: too many tool calls for {:?}; retry in {} s",
            principal.name(),
            limited.retry_after.as_secs().max(1)
        );
        if self
            .rate_refusals_recorded
            .hit(&principal.name().to_owned())
            .is_ok()
        {
            tracing::warn!(principal = principal.name(), tool = %what, "tool calls rate limited");
            let event = AuditEvent::ToolDenied {
                tool: what.to_owned(),
                rule: "tool_calls_per_minute".to_owned(),
                reason: format!(
                    "{reason} (the first refusal this minute; later ones are not recorded)"
                ),
            };
            self.audit
                .record_or_log(caller.audit_context(what), event)
                .await;
        }
        Some(reason)
    }

    /// Serve the following calls under `policy`, `limits` and the file roots `files` (a
    /// SIGHUP reload). Calls in flight finish under what they started with; running
    /// commands keep their slots.
    pub fn reload(&self, policy: Policy, limits: CommandLimits, files: FileRoots) {
        self.files.store(Arc::new(files));
        self.slots.set_limits(SlotLimits {
            max_total: limits.max_concurrent_commands,
            max_per_principal: limits.max_concurrent_per_principal,
        });
        self.limits.store(Arc::new(limits));
        self.policy.store(Arc::new(policy));
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

/// What every tool's handler is: the call's state, its caller, its arguments as sent, and
/// the request's context (cancellation, progress token, notifier).
pub type Handler = for<'a> fn(
    &'a ToolsState,
    &'a Caller,
    Option<JsonObject>,
    RequestContext<RoleServer>,
) -> BoxFuture<'a, Result<CallToolResult, McpError>>;

/// The annotations of a tool that only reads: not destructive, idempotent, closed world.
fn read_only_annotations(title: &str) -> rmcp::model::ToolAnnotations {
    rmcp::model::ToolAnnotations::with_title(title)
        .read_only(true)
        .destructive(false)
        .idempotent(true)
        .open_world(false)
}

/// One row of [`TOOLS`].
pub struct ToolEntry {
    /// The least role that may see and call the tool.
    pub least_role: Role,
    /// The tool as `tools/list` shows it; its `name` is the one calls use.
    pub definition: fn() -> Tool,
    pub handler: Handler,
}

/// A [`ToolEntry`] from the least role, the definition and an `async fn` handler with
/// the [`Handler`] arguments.
macro_rules! tool {
    ($least_role:expr, $definition:path, $handler:path) => {
        ToolEntry {
            least_role: $least_role,
            definition: $definition,
            handler: |state, caller, arguments, context| {
                Box::pin($handler(state, caller, arguments, context))
            },
        }
    };
}

/// Every tool: the one table to add a tool to.
pub const TOOLS: &[ToolEntry] = &[
    tool!(Role::Read, host_info::definition, host_info::call),
    tool!(Role::Read, process_list::definition, process_list::call),
    tool!(Role::Read, process_tree::definition, process_tree::call),
    tool!(Role::Read, disk_usage::definition, disk_usage::call),
    tool!(Role::Read, network_info::definition, network_info::call),
    tool!(Role::Read, service_status::definition, service_status::call),
    tool!(Role::Read, log_query::definition, log_query::call),
    tool!(Role::Read, file_read::definition, file_read::call),
    tool!(Role::Read, file_list::definition, file_list::call),
    tool!(Role::Read, file_search::definition, file_search::call),
    tool!(Role::Operator, run_command::definition, run_command::call),
    tool!(Role::Operator, jobs::start_definition, jobs::start),
    tool!(Role::Operator, jobs::output_definition, jobs::output),
    tool!(Role::Operator, jobs::signal_definition, jobs::signal),
    tool!(Role::Operator, jobs::list_definition, jobs::list),
    tool!(Role::Operator, file_write::definition, file_write::call),
    tool!(
        Role::Operator,
        process_signal::definition,
        process_signal::call
    ),
    tool!(
        Role::Operator,
        terminal_open::definition,
        terminal_open::call
    ),
    tool!(
        Role::Operator,
        terminal_send::definition,
        terminal_send::call
    ),
    tool!(
        Role::Operator,
        terminal_read::definition,
        terminal_read::call
    ),
    tool!(
        Role::Operator,
        terminal_resize::definition,
        terminal_resize::call
    ),
    tool!(
        Role::Operator,
        terminal_close::definition,
        terminal_close::call
    ),
    tool!(
        Role::Operator,
        approval_pending::definition,
        approval_pending::call
    ),
    tool!(
        Role::Operator,
        approval_decide::definition,
        approval_decide::call
    ),
];

/// [`TOOLS`] with each definition built once, its schemas made [portable](schema).
static CATALOG: LazyLock<Vec<(&'static ToolEntry, Tool)>> = LazyLock::new(|| {
    TOOLS
        .iter()
        .map(|entry| (entry, schema::portable((entry.definition)())))
        .collect()
});

/// The row and definition of the tool named `name`.
fn find(name: &str) -> Option<&'static (&'static ToolEntry, Tool)> {
    CATALOG.iter().find(|(_, tool)| tool.name == name)
}

impl HostTools {
    pub fn new(state: Arc<ToolsState>) -> Self {
        Self { state }
    }
}

/// hostmcp's tools send nothing through their context's peer (progress goes through the
/// request's notifier, [`progress`]) except a command that may wait for approval: while
/// the policy has an `approve` rule, `run_command`, `job_start` and `terminal_open` may ask the client by
/// elicitation ([`crate::approval`]), which needs the live peer.
impl PeerUse for HostTools {
    fn needs_live_peer(&self, request: &ClientRequest) -> bool {
        match request {
            ClientRequest::CallToolRequest(call) => {
                matches!(
                    call.params.name.as_ref(),
                    run_command::NAME | jobs::START | terminal_open::NAME
                ) && self.state.policy.load().asks_approval()
            }
            _ => false,
        }
    }
}

impl ServerHandler for HostTools {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_extensions_with([crate::apps::extension_capability()].into())
            .enable_tools()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_prompts()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("hostmcp", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Operate this Linux host. host_info, process_list, process_tree, disk_usage and \
                 network_info read its state straight from the kernel: prefer them to ps, df or ss. \
                 run_command runs a command (shell line or argv) with a \
                 timeout and returns exit code, stdout and stderr. For work longer than a minute, \
                 job_start runs it in the background; read it with job_output (cursors page through \
                 the output), stop it with job_signal, see all with job_list. file_read, file_list and \
                 file_search (and file_write) reach files under the configured roots; the \
                 resources host://info, host://load and host://os-release and the diagnose_* \
                 prompts describe the host and how to investigate it.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let role = Caller::of(&context.extensions)
            .ok()
            .map(|caller| caller.principal.role());
        // A tool only an MCP Apps view calls is listed only to a client that renders apps
        // (which keeps it from its model); nothing else could call it (`crate::apps`).
        let renders_apps = crate::apps::renders_apps(context.client_capabilities().as_ref());
        let tools = CATALOG
            .iter()
            .filter(|(entry, _)| role.is_some_and(|role| role >= entry.least_role))
            .filter(|(_, tool)| renders_apps || !crate::apps::is_app_only(tool))
            .map(|(_, tool)| tool.clone())
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult::with_all_items(crate::prompts::list()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        crate::prompts::get(&request.name, request.arguments.as_ref())
            .map(GetPromptResponse::Complete)
            .map_err(|error| McpError::invalid_params(error.to_string(), None))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(crate::resources::list()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(
            crate::resources::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let caller = Caller::of(&context.extensions)
            .map_err(|no_caller| McpError::internal_error(no_caller.to_string(), None))?;
        resource_calls::read(&self.state, caller, &request.uri)
            .await
            .map(ReadResourceResponse::Complete)
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let caller = Caller::of(&context.extensions)
            .map_err(|no_caller| McpError::internal_error(no_caller.to_string(), None))?;
        resource_calls::subscribe(&self.state, caller, &request.uri, &context)
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let caller = Caller::of(&context.extensions)
            .map_err(|no_caller| McpError::internal_error(no_caller.to_string(), None))?;
        resource_calls::unsubscribe(&self.state, caller, &request.uri);
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(resource_calls::accepted_filter(requested))
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        let caller = Caller::of(&context.request_context().extensions)
            .map_err(|no_caller| McpError::internal_error(no_caller.to_string(), None))?
            .clone();
        resource_calls::listen(&self.state, &caller, context).await;
        Ok(())
    }

    async fn complete(
        &self,
        _request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        Err(McpError::method_not_found::<CompleteRequestMethod>())
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        find(name).map(|(_, tool)| tool.clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = match Caller::of(&context.extensions) {
            Ok(caller) => caller.clone(),
            Err(no_caller) => return Err(McpError::internal_error(no_caller.to_string(), None)),
        };
        // `_meta.traceparent` belongs to this one request: it wins over the HTTP header.
        let caller = match TraceParent::received(context.meta.get_traceparent(), "_meta") {
            Some(trace) => caller.with_trace(Some(trace)),
            None => caller,
        };
        let span = match &caller.trace {
            Some(trace) => tracing::info_span!(
                "call",
                trace_id = trace.trace_id(),
                parent_id = trace.parent_id()
            ),
            None => tracing::Span::none(),
        };
        self.call_traced(request, context, caller)
            .instrument(span)
            .await
    }
}

impl HostTools {
    /// [`ServerHandler::call_tool`] once the caller and its trace context are known: every
    /// log line and audit record of the call carries the trace.
    async fn call_traced(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
        caller: Caller,
    ) -> Result<CallToolResponse, McpError> {
        let principal = &caller.principal;
        let Some((entry, _)) = find(&request.name) else {
            return Err(McpError::invalid_params(
                format!("unknown tool {:?}", request.name),
                None,
            ));
        };
        // Before the role check: a refused call counts too, or a read token could make
        // unlimited role-denied calls, each one a log line and an audit record.
        let state = &self.state;
        if let Some(reason) = state.rate_limited(&caller, &request.name).await {
            metrics::tool_call(&request.name, ToolOutcome::RateLimited, None);
            return Ok(CallToolResult::error(vec![ContentBlock::text(reason)]).into());
        }
        if principal.role() < entry.least_role {
            let reason = format!(
                "denied: tool {} needs the {} role; token {:?} has the {} role",
                request.name,
                entry.least_role,
                principal.name(),
                principal.role()
            );
            tracing::warn!(principal = principal.name(), tool = %request.name, "tool denied by role");
            let event = AuditEvent::ToolDenied {
                tool: request.name.to_string(),
                rule: "role".to_owned(),
                reason: reason.clone(),
            };
            let trail = caller.audit_context(&request.name);
            self.state.audit.record_or_log(trail, event).await;
            metrics::tool_call(&request.name, ToolOutcome::Denied, None);
            return Ok(CallToolResult::error(vec![ContentBlock::text(reason)]).into());
        }
        let revoked = revoked_call::RevokedCall {
            cancel: context.ct.clone(),
            id: context.id.to_string(),
            trail: caller.audit_context(&request.name),
        };
        // A command tool may answer `input_required` instead (in-band approval, MRTR).
        let round = crate::approval::mrtr::Round::of(&request, &context);
        let mut context = context;
        if let Some(round) = &round {
            context.extensions.insert(round.clone());
        }
        let started = std::time::Instant::now();
        let work = (entry.handler)(state, &caller, request.arguments, context);
        let result = revoked.cancel_on_end(principal, &state.audit, work).await;
        if let Some(reply) = round.as_ref().and_then(crate::approval::mrtr::Round::reply) {
            metrics::tool_call(&request.name, ToolOutcome::Ok, Some(started.elapsed()));
            return Ok(CallToolResponse::InputRequired(reply));
        }
        metrics::tool_call(&request.name, outcome_of(&result), Some(started.elapsed()));
        let budget = state.limits.load().result_budget_bytes;
        result.map(|result| result_budget::fit(result, budget).into())
    }
}

/// How a call that reached its tool ended, for `hostmcp_tool_calls_total`.
fn outcome_of(result: &Result<CallToolResult, McpError>) -> ToolOutcome {
    match result {
        Ok(result) if result.is_error == Some(true) => ToolOutcome::Error,
        Ok(_) => ToolOutcome::Ok,
        Err(_) => ToolOutcome::Invalid,
    }
}

#[cfg(test)]
mod tests;
