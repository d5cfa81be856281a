//! `network_info`: interfaces (state, MTU, MAC, addresses), IPv4 and IPv6 routes, listening
//! sockets and connections with their owning process, read from the kernel
//! (`getifaddrs`, /sys/class/net, /proc/net) without running `ip` or `ss`.

use rmcp::{
    ErrorData as McpError, RoleServer,
    handler::server::common::{schema_for_output, schema_for_type},
    model::{CallToolResult, ContentBlock, JsonObject, Tool},
    service::RequestContext,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ToolsState;
use crate::{
    caller::Caller,
    host::{
        HostError,
        network::{self, Interface, Route},
        sockets::{self, Socket},
        units,
    },
};

pub const NAME: &str = "network_info";
const DEFAULT_CONNECTIONS: u32 = 50;
const MAX_CONNECTIONS: u32 = 500;

/// Arguments of `network_info`; all optional.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkInfoInput {
    /// How many connections (non-listening sockets) to list (default 50, at most 500;
    /// 0 for none). Listening sockets are always all listed.
    #[schemars(range(min = 0, max = 500))]
    pub max_connections: Option<u32>,
}

/// What `network_info` returns.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NetworkInfo {
    pub interfaces: Vec<Interface>,
    pub routes: Vec<Route>,
    pub listening: Vec<Socket>,
    pub connections: Vec<Socket>,
    /// Connections in all, listed or not.
    pub connections_total: u32,
}

pub fn definition() -> Tool {
    Tool::new(
        NAME,
        "Show the network: interfaces (state, MTU, MAC, IPv4/IPv6 addresses, traffic), IPv4 and \
         IPv6 routes, listening TCP/UDP sockets and connections, each with the process that owns \
         it. Use this instead of ip, ss or netstat.",
        schema_for_type::<NetworkInfoInput>(),
    )
    .with_raw_output_schema(schema_for_output::<NetworkInfo>())
    .with_annotations(super::read_only_annotations("Network info"))
}

pub async fn call(
    _state: &ToolsState,
    _caller: &Caller,
    arguments: Option<JsonObject>,
    _context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let input: NetworkInfoInput = super::parse_arguments(arguments, NAME)?;
    let cap = input
        .max_connections
        .unwrap_or(DEFAULT_CONNECTIONS)
        .min(MAX_CONNECTIONS) as usize;
    let read = tokio::task::spawn_blocking(move || gather(cap))
        .await
        .map_err(|error| McpError::internal_error(error.to_string(), None))?;
    Ok(match read {
        Ok(info) => {
            let mut result = CallToolResult::success(vec![ContentBlock::text(render(&info))]);
            result.structured_content = serde_json::to_value(&info).ok();
            result
        }
        Err(error) => CallToolResult::error(vec![ContentBlock::text(error.to_string())]),
    })
}

/// What `network_info` reads, at most `max_connections` connections listed.
pub fn gather(max_connections: usize) -> Result<NetworkInfo, HostError> {
    let (found, connections_total) = sockets::sockets_shown(max_connections)?;
    let connections_total = u32::try_from(connections_total).unwrap_or(u32::MAX);
    Ok(NetworkInfo {
        interfaces: network::interfaces()?,
        routes: network::routes()?
            .into_iter()
            .chain(crate::host::ipv6_routes::routes()?)
            .collect(),
        listening: found.listening,
        connections: found.connections,
        connections_total,
    })
}

fn owner(socket: &Socket) -> String {
    match (&socket.process, socket.pid) {
        (Some(name), Some(pid)) => format!("{name} ({pid})"),
        _ => format!("uid {}", socket.uid),
    }
}

/// Interfaces, routes, listeners and connections, a line each.
pub fn render(info: &NetworkInfo) -> String {
    let mut text = String::from("interfaces:\n");
    for i in &info.interfaces {
        text.push_str(&format!(
            "  {} {}{}{} {}{}\n",
            i.name,
            i.state,
            i.mtu.map(|mtu| format!(" mtu {mtu}")).unwrap_or_default(),
            i.mac
                .as_ref()
                .map(|mac| format!(" {mac}"))
                .unwrap_or_default(),
            i.addresses.join(" "),
            match (i.rx_bytes, i.tx_bytes) {
                (Some(rx), Some(tx)) =>
                    format!(" (rx {}, tx {})", units::bytes(rx), units::bytes(tx)),
                _ => String::new(),
            }
        ));
    }
    text.push_str("routes:\n");
    for r in &info.routes {
        text.push_str(&format!(
            "  {}{} dev {}\n",
            r.destination,
            r.gateway
                .as_ref()
                .map(|g| format!(" via {g}"))
                .unwrap_or_default(),
            r.interface
        ));
    }
    text.push_str(&format!("listening ({}):\n", info.listening.len()));
    for s in &info.listening {
        text.push_str(&format!("  {} {} {}\n", s.protocol, s.local, owner(s)));
    }
    text.push_str(&format!(
        "connections ({} of {} shown):\n",
        info.connections.len(),
        info.connections_total
    ));
    for s in &info.connections {
        text.push_str(&format!(
            "  {} {} {} -> {} {}\n",
            s.protocol,
            s.state,
            s.local,
            s.remote,
            owner(s)
        ));
    }
    text
}
