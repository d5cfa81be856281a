//! The gateway's MCP handler: what `hostmcp gateway` serves on every transport `serve`
//! has. It lists the [catalog](super::catalog) by role, and for each call applies the same
//! rate limit and role gate as a host, then lists hosts, forwards the call to the host its
//! `host` argument names ([`super::bus`]) or fans a command out ([`super::fan_out`]);
//! every forwarded call leaves one `fleet_call` audit record, and every result is cut to
//! the result budget. It keeps no state about clients: any gateway can serve any call.

use std::{sync::Arc, time::Instant};

use futures::StreamExt;
use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientRequest, ContentBlock,
        Implementation, JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities,
        ServerConfig, Tool,
    },
    service::RequestContext,
};
use serde::Deserialize;
use serde_json::Value;

use super::{
    bus::{Bus, Principal},
    catalog::{self, HOST_ARGUMENT, Kind},
    fan_out::{self, HostRun},
    fleet_result::{self, Window},
    ids,
    progress::{Progress, Update},
    selector::Selector,
};
use crate::{
    audit::AuditEvent,
    caller::Caller,
    fleet::protocol as wire,
    handler_link::PeerUse,
    tools::{ToolsState, result_budget},
};

/// Everything a gateway call uses.
#[derive(Debug)]
pub struct Gateway {
    pub bus: Arc<Bus>,
    /// The rate limits, result budget and audit log, as `serve` configures them.
    pub tools: Arc<ToolsState>,
    /// Hosts one `fleet_run` reaches at once, unless the call asks for fewer.
    pub fan_out: usize,
}

/// The rmcp handler; cheap to clone.
#[derive(Debug, Clone)]
pub struct GatewayTools {
    gateway: Arc<Gateway>,
}

impl GatewayTools {
    pub fn new(gateway: Gateway) -> Self {
        Self {
            gateway: Arc::new(gateway),
        }
    }
}

/// Nothing goes through a context's peer but progress, which every transport carries.
impl PeerUse for GatewayTools {
    fn needs_live_peer(&self, _request: &ClientRequest) -> bool {
        false
    }
}

impl ServerHandler for GatewayTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "hostmcp-gateway",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "Operate a fleet of Linux hosts. host_list shows the hosts (selector: names, \
                 globs like web-*, labels like env=prod) with presence and facts. Every host \
                 tool (run_command, host_info, job_start, ...) takes a `host` argument naming \
                 the one host it runs on; job and terminal ids name their host. fleet_run \
                 runs one command on every host a selector matches and reports each host's \
                 outcome.",
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
        let tools = catalog::CATALOG
            .iter()
            .filter(|entry| role.is_some_and(|role| role >= entry.least_role))
            .map(|entry| entry.tool.clone())
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        catalog::find(name).map(|entry| entry.tool.clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = Caller::of(&context.extensions)
            .map_err(|no_caller| McpError::internal_error(no_caller.to_string(), None))?
            .clone();
        let Some(entry) = catalog::find(&request.name) else {
            return Err(McpError::invalid_params(
                format!("unknown tool {:?}", request.name),
                None,
            ));
        };
        let state = &self.gateway.tools;
        if let Some(reason) = state.rate_limited(&caller, &request.name).await {
            return Ok(CallToolResult::error(vec![ContentBlock::text(reason)]).into());
        }
        let principal = &caller.principal;
        if principal.role() < entry.least_role {
            let reason = format!(
                "denied: tool {} needs the {} role; token {:?} has the {} role",
                request.name,
                entry.least_role,
                principal.name(),
                principal.role()
            );
            let event = AuditEvent::ToolDenied {
                tool: request.name.to_string(),
                rule: "role".to_owned(),
                reason: reason.clone(),
            };
            state
                .audit
                .record_or_log(caller.audit_context(&request.name), event)
                .await;
            return Ok(CallToolResult::error(vec![ContentBlock::text(reason)]).into());
        }
        let result = match entry.kind {
            Kind::HostList => self.host_list(request.arguments),
            Kind::FleetRun => self.fleet_run(&caller, request.arguments, &context).await,
            Kind::Forward => {
                self.forward(&caller, &request.name, request.arguments, &context)
                    .await
            }
        }?;
        let budget = state.limits.load().result_budget_bytes;
        Ok(result_budget::fit(result, budget).into())
    }
}

fn parse<T: serde::de::DeserializeOwned>(
    arguments: Option<JsonObject>,
    tool: &str,
) -> Result<T, McpError> {
    serde_json::from_value(Value::Object(arguments.unwrap_or_default()))
        .map_err(|error| McpError::invalid_params(format!("{tool}: {error}"), None))
}

fn selector(text: Option<&str>) -> Result<Selector, McpError> {
    Selector::parse(text.unwrap_or_default())
        .map_err(|error| McpError::invalid_params(error.to_string(), None))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostListInput {
    selector: Option<String>,
    #[serde(default)]
    online_only: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetRunInput {
    selector: Option<String>,
    command: Option<String>,
    argv: Option<Vec<String>>,
    timeout_secs: Option<u64>,
    concurrency: Option<usize>,
    /// The first of the matched hosts (in name order) to run on.
    #[serde(default)]
    hosts_offset: usize,
    /// How many of them, from `hosts_offset`; all the rest when absent.
    hosts_limit: Option<usize>,
}

/// Host names a `fleet_call` audit record lists (`hosts_total` counts them all).
const FLEET_HOSTS_LISTED: usize = 64;

/// The per-host timeout of `fleet_run` when the call names none.
const DEFAULT_FLEET_TIMEOUT_SECS: u64 = 60;

impl GatewayTools {
    fn host_list(&self, arguments: Option<JsonObject>) -> Result<CallToolResult, McpError> {
        let input: HostListInput = parse(arguments, catalog::HOST_LIST)?;
        let selector = selector(input.selector.as_deref())?;
        let mut hosts = self.gateway.bus.presence.select(&selector);
        if input.online_only {
            hosts.retain(|host| host.online);
        }
        let online = hosts.iter().filter(|host| host.online).count();
        let mut text = format!("{} hosts ({online} online)\n", hosts.len());
        for host in &hosts {
            let labels: Vec<String> = host
                .labels
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
            text.push_str(&format!(
                "{} {} (last seen {} s ago) version {} {}\n",
                host.name,
                if host.online { "online" } else { "offline" },
                host.last_seen_secs_ago,
                host.version,
                labels.join(",")
            ));
        }
        let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
        result.structured_content = Some(serde_json::json!({ "hosts": hosts }));
        Ok(result)
    }

    async fn forward(
        &self,
        caller: &Caller,
        tool: &str,
        arguments: Option<JsonObject>,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let mut arguments = arguments.unwrap_or_default();
        let host = match arguments.remove(HOST_ARGUMENT) {
            Some(Value::String(host)) => host,
            Some(_) => {
                return Err(McpError::invalid_params(
                    format!("{tool}: `host` must be a string"),
                    None,
                ));
            }
            None => ids::host_named_by(&arguments).ok_or_else(|| {
                McpError::invalid_params(
                    format!("{tool}: missing `host` (the fleet host to run on; see host_list)"),
                    None,
                )
            })?,
        };
        ids::to_host(&mut arguments, &host)
            .map_err(|error| McpError::invalid_params(format!("{tool}: {error}"), None))?;
        let progress = Progress::of(context);
        let mut on_progress = |update: wire::Progress| {
            progress.send(Update {
                progress: update.progress,
                total: update.total,
                message: update.message,
            });
        };
        let started = Instant::now();
        let answer = self
            .gateway
            .bus
            .call(
                &host,
                tool,
                Some(arguments),
                &principal_of(caller),
                &mut on_progress,
                &context.ct,
            )
            .await;
        progress.flush().await;
        let (result, outcome) = match answer {
            Ok(wire::Outcome::Ok { result }) => {
                match serde_json::from_value::<CallToolResult>(result) {
                    Ok(mut result) => {
                        // The host's JSON may omit it; 2026-07-28 clients require it.
                        result
                            .result_type
                            .get_or_insert(rmcp::model::ResultType::COMPLETE);
                        ids::to_client(&mut result, &host);
                        let outcome = if result.is_error == Some(true) {
                            "error"
                        } else {
                            "ok"
                        };
                        (result, outcome.to_owned())
                    }
                    Err(error) => (
                        error_result(format!(
                            "host {host:?} answered something that is not a tool result: {error}"
                        )),
                        "failed".to_owned(),
                    ),
                }
            }
            Ok(wire::Outcome::Error { error, message }) => (
                error_result(format!(
                    "host {host:?} refused the call: {error}: {message}"
                )),
                error.as_str().to_owned(),
            ),
            Err(error) => (error_result(error.to_string()), error.outcome().to_owned()),
        };
        self.record(caller, tool, std::slice::from_ref(&host), outcome, started)
            .await;
        Ok(result)
    }

    async fn fleet_run(
        &self,
        caller: &Caller,
        arguments: Option<JsonObject>,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let input: FleetRunInput = parse(arguments, catalog::FLEET_RUN)?;
        let selector = selector(input.selector.as_deref())?;
        let mut command = JsonObject::new();
        match (input.command, input.argv) {
            (Some(line), None) => {
                command.insert("command".to_owned(), Value::String(line));
            }
            (None, Some(argv)) if !argv.is_empty() => {
                command.insert("argv".to_owned(), serde_json::json!(argv));
            }
            _ => {
                return Err(McpError::invalid_params(
                    "fleet_run: give either `command` (a shell line) or `argv`",
                    None,
                ));
            }
        }
        let timeout = input
            .timeout_secs
            .unwrap_or(DEFAULT_FLEET_TIMEOUT_SECS)
            .max(1);
        command.insert("timeout_secs".to_owned(), Value::from(timeout));
        let mut hosts = self.gateway.bus.presence.select(&selector);
        if hosts.is_empty() {
            return Ok(error_result(
                "fleet_run: no host matches the selector (host_list shows the fleet)".to_owned(),
            ));
        }
        let concurrency = input
            .concurrency
            .unwrap_or(self.gateway.fan_out)
            .clamp(1, self.gateway.fan_out.max(1));
        let window = Window {
            matched: hosts.len(),
            offset: input.hosts_offset,
        };
        hosts.drain(..input.hosts_offset.min(hosts.len()));
        hosts.truncate(input.hosts_limit.unwrap_or(usize::MAX));
        if hosts.is_empty() {
            return Ok(error_result(format!(
                "fleet_run: hosts_offset {} is past the {} matched hosts",
                window.offset, window.matched
            )));
        }
        let progress = Progress::of(context);
        let principal = principal_of(caller);
        let total = hosts.len();
        let started = Instant::now();
        let bus = &self.gateway.bus;
        let names: Vec<String> = hosts.into_iter().map(|host| host.name).collect();
        let runs = futures::stream::iter(names.clone().into_iter().map(|host| {
            let command = command.clone();
            let principal = &principal;
            async move {
                let begun = Instant::now();
                let answer = bus
                    .call(
                        &host,
                        crate::tools::run_command::NAME,
                        Some(command),
                        principal,
                        &mut |_| {},
                        &context.ct,
                    )
                    .await;
                let elapsed = u64::try_from(begun.elapsed().as_millis()).unwrap_or(u64::MAX);
                match answer {
                    Ok(outcome) => HostRun::from_outcome(&host, outcome, elapsed),
                    Err(error) => HostRun::from_error(&host, &error, elapsed),
                }
            }
        }))
        .buffer_unordered(concurrency);
        let mut runs = std::pin::pin!(runs);
        let mut done = Vec::with_capacity(total);
        while let Some(run) = runs.next().await {
            progress.send(Update {
                progress: (done.len() + 1) as f64,
                total: Some(total as f64),
                message: Some(format!("{}: {}", run.host, run.outcome.as_str())),
            });
            done.push(run);
        }
        progress.flush().await;
        self.record(
            caller,
            catalog::FLEET_RUN,
            &names,
            fan_out::summary_line(&fan_out::count(&done)),
            started,
        )
        .await;
        let budget = self.gateway.tools.limits.load().result_budget_bytes;
        Ok(fleet_result::shape(done, window, budget))
    }

    /// One `fleet_call` record for a forwarded call or a fan-out.
    async fn record(
        &self,
        caller: &Caller,
        tool: &str,
        hosts: &[String],
        outcome: String,
        started: Instant,
    ) {
        let event = AuditEvent::FleetCall {
            hosts: hosts.iter().take(FLEET_HOSTS_LISTED).cloned().collect(),
            hosts_total: hosts.len() as u64,
            outcome,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        self.gateway
            .tools
            .audit
            .record_or_log(caller.audit_context(tool), event)
            .await;
    }
}

fn principal_of(caller: &Caller) -> Principal {
    Principal {
        name: caller.principal.name().to_owned(),
        role: caller.principal.role().to_string(),
    }
}

fn error_result(text: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}
