//! The gateway's tools as `tools/list` shows them: `host_list`, `fleet_run`, and every
//! host tool, built from the host's own definitions ([`crate::tools::TOOLS`], made
//! portable as a host serves them) with one more required argument, `host`, declared with
//! `x-mcp-header: Host` so a 2026-07-28 client also sends it as `Mcp-Param-Host` (a load
//! balancer can route on it; the transport checks header and argument agree).

use std::sync::{Arc, LazyLock};

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

use crate::auth::Role;

/// The argument naming the host a forwarded call goes to.
pub const HOST_ARGUMENT: &str = "host";
/// Its `x-mcp-header` name: the header is `Mcp-Param-Host`.
pub const HOST_HEADER: &str = "Host";

pub const HOST_LIST: &str = "host_list";
pub const FLEET_RUN: &str = "fleet_run";

/// What the gateway does with a call to a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    HostList,
    FleetRun,
    /// A host tool, forwarded to the host its `host` argument names.
    Forward,
}

/// One gateway tool.
#[derive(Debug)]
pub struct Entry {
    pub kind: Kind,
    /// The least role that may see and call it on the gateway (hosts decide again).
    pub least_role: Role,
    pub tool: Tool,
}

/// Every gateway tool, built once.
pub static CATALOG: LazyLock<Vec<Entry>> = LazyLock::new(|| {
    let mut entries = vec![
        Entry {
            kind: Kind::HostList,
            least_role: Role::Read,
            tool: host_list_definition(),
        },
        Entry {
            kind: Kind::FleetRun,
            least_role: Role::Operator,
            tool: fleet_run_definition(),
        },
    ];
    // Tools only an MCP Apps view calls (the approval view's) are not forwarded: the view
    // talks to its own host's server.
    entries.extend(
        (crate::tools::TOOLS.iter())
            .filter(|entry| !crate::apps::is_app_only(&(entry.definition)()))
            .map(|entry| Entry {
                kind: Kind::Forward,
                least_role: entry.least_role,
                tool: with_host_argument(crate::tools::schema::portable((entry.definition)())),
            }),
    );
    entries
});

/// The entry of the tool named `name`.
pub fn find(name: &str) -> Option<&'static Entry> {
    CATALOG.iter().find(|entry| entry.tool.name == name)
}

fn host_property() -> Value {
    json!({
        "type": "string",
        "description": "The fleet host to run this on (a name host_list shows).",
        "x-mcp-header": HOST_HEADER,
    })
}

/// `tool` as the gateway serves it: a required `host` argument first, the description
/// saying so, no `_meta` (the host's UI resources are not served here).
pub fn with_host_argument(mut tool: Tool) -> Tool {
    let mut schema: JsonObject = (*tool.input_schema).clone();
    let mut properties = JsonObject::new();
    properties.insert(HOST_ARGUMENT.to_owned(), host_property());
    if let Some(Value::Object(existing)) = schema.remove("properties") {
        properties.extend(existing);
    }
    schema.insert("properties".to_owned(), Value::Object(properties));
    let mut required = vec![Value::String(HOST_ARGUMENT.to_owned())];
    if let Some(Value::Array(existing)) = schema.remove("required") {
        required.extend(existing);
    }
    schema.insert("required".to_owned(), Value::Array(required));
    schema.insert("type".to_owned(), Value::String("object".to_owned()));
    tool.input_schema = Arc::new(schema);
    if let Some(description) = tool.description.as_mut() {
        *description = format!(
            "On the fleet host named by `host`: {description} Job and terminal ids name \
             their host (`<host>:<id>`)."
        )
        .into();
    }
    tool.meta = None;
    tool
}

fn object_schema(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(object) => Arc::new(object),
        _ => Arc::default(),
    }
}

fn host_list_definition() -> Tool {
    Tool::new(
        HOST_LIST,
        "List the fleet's hosts that match a selector, with presence (online, last seen, \
         version), labels and a facts summary (OS, kernel, CPUs, memory, load). A selector is \
         words separated by spaces or commas: host names, globs (`web-*`) and labels \
         (`env=prod`); a host matches any name and every label. Empty selects all.",
        object_schema(json!({
            "type": "object",
            "properties": {
                "selector": {
                    "type": "string",
                    "description": "Names, globs and key=value labels; empty: every host."
                },
                "online_only": {
                    "type": "boolean",
                    "description": "Only hosts that are online now (default false)."
                }
            }
        })),
    )
    .with_annotations(
        ToolAnnotations::with_title("Fleet hosts")
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(false),
    )
}

fn fleet_run_definition() -> Tool {
    Tool::new(
        FLEET_RUN,
        "Run one command on every fleet host that matches a selector, at most `concurrency` \
         hosts at a time, each with its own timeout; progress is reported as hosts finish. \
         The result gives the count per outcome (failed, timed_out, denied, offline, \
         cancelled, ok), then the hosts grouped by identical outcome and output, failures \
         first, names as ranges (web-[001-950]), each output cut with a marker to fit the \
         result budget, then one row per host as far as they fit. A large fleet can be run \
         in windows: hosts_offset/hosts_limit over the matched hosts in name order; \
         next_offset says where the next window starts. Each host applies its own policy \
         and audits the command.",
        object_schema(json!({
            "type": "object",
            "properties": {
                "selector": {
                    "type": "string",
                    "description": "Names, globs and key=value labels; empty: every host."
                },
                "command": {
                    "type": "string",
                    "description": "A shell command line, as run_command takes it."
                },
                "argv": {
                    "type": "array",
                    "items": { "type": "string" },
                    "description": "Or the program and its arguments, without a shell."
                },
                "timeout_secs": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Per-host timeout in seconds (default 60)."
                },
                "concurrency": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Hosts run at once (default: the gateway's --fan-out)."
                },
                "hosts_offset": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Run on the matched hosts (in name order) from this one \
                                    on: the `next_offset` of a previous window (default 0)."
                },
                "hosts_limit": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Run on at most this many of them (default: all)."
                }
            }
        })),
    )
    .with_annotations(
        ToolAnnotations::with_title("Run on many hosts")
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(false),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_host_tool_is_served_with_a_required_host_header_argument() {
        for entry in crate::tools::TOOLS {
            let name = (entry.definition)().name;
            if crate::apps::is_app_only(&(entry.definition)()) {
                assert!(find(&name).is_none(), "{name} is for views only");
                continue;
            }
            let served = find(&name).unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(served.kind, Kind::Forward);
            assert_eq!(served.least_role, entry.least_role);
            let schema = &served.tool.input_schema;
            assert_eq!(schema["properties"]["host"]["x-mcp-header"], "Host");
            let required = schema["required"].as_array().unwrap();
            assert_eq!(required[0], "host", "{name}");
            assert!(served.tool.meta.is_none());
        }
    }

    #[test]
    fn the_host_tools_keep_their_own_arguments() {
        let served = find("run_command").unwrap();
        let host = crate::tools::schema::portable(crate::tools::run_command::definition());
        for (key, value) in host.input_schema["properties"].as_object().unwrap() {
            assert_eq!(&served.tool.input_schema["properties"][key], value, "{key}");
        }
        assert_eq!(served.tool.output_schema, host.output_schema);
    }

    #[test]
    fn gateway_tools_are_listed_and_an_unknown_one_is_not() {
        assert_eq!(find(HOST_LIST).unwrap().kind, Kind::HostList);
        assert_eq!(find(FLEET_RUN).unwrap().kind, Kind::FleetRun);
        assert!(find("no_such_tool").is_none());
        // The two app-only approval tools are not forwarded.
        assert_eq!(CATALOG.len(), crate::tools::TOOLS.len() + 2 - 2);
    }
}
