//! `host_info`: the host at a glance ([`crate::host::snapshot`]): identity, uptime, load,
//! CPU and pressure, memory and swap, the root disk, virtualisation hints, logged-in users
//! and the process count, read from the kernel and /etc without running anything. A
//! `read` token may call it.

use rmcp::{
    ErrorData as McpError, RoleServer,
    handler::server::common::{schema_for_empty_input, schema_for_output},
    model::{CallToolResult, ContentBlock, JsonObject, Tool},
    service::RequestContext,
};

use super::ToolsState;
use crate::{
    caller::Caller,
    host::{
        snapshot::{self, Snapshot},
        units,
    },
};

pub const NAME: &str = "host_info";

pub fn definition() -> Tool {
    Tool::new(
        NAME,
        "Describe the host: hostname, distribution, kernel, architecture, uptime, load, CPU \
         count and model, CPU/memory/IO pressure, memory and swap, the root filesystem, \
         container or VM hints, logged-in users and the number of processes. Reads the \
         kernel's own figures; runs nothing. Start here before other host tools.",
        schema_for_empty_input(),
    )
    .with_raw_output_schema(schema_for_output::<Snapshot>())
    .with_annotations(super::read_only_annotations("Host info"))
    .with_meta(crate::apps::dashboard_tool_meta())
}

/// Handle one call: anyone with the `read` role gets the same report; no arguments.
pub async fn call(
    _state: &ToolsState,
    _caller: &Caller,
    _arguments: Option<JsonObject>,
    _context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let read = tokio::task::spawn_blocking(snapshot::load)
        .await
        .map_err(|error| McpError::internal_error(error.to_string(), None))?;
    Ok(match read {
        Ok(snapshot) => report(&snapshot),
        Err(error) => CallToolResult::error(vec![ContentBlock::text(error.to_string())]),
    })
}

/// The snapshot as text and as structured content.
pub fn report(snapshot: &Snapshot) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(render(snapshot))]);
    result.structured_content = serde_json::to_value(snapshot).ok();
    result
}

/// A few lines a model reads at a glance; every number is also in the structured part.
pub fn render(s: &Snapshot) -> String {
    let os = &s.os;
    let distribution = os
        .distribution
        .as_ref()
        .and_then(|d| d.pretty_name.clone())
        .unwrap_or_else(|| "unknown distribution".to_owned());
    let mut lines = vec![format!(
        "{} — {distribution}, kernel {} ({}){}",
        os.hostname,
        os.kernel,
        os.architecture,
        runs_in(s)
    )];
    let booted = jiff::Timestamp::from_second(i64::try_from(os.boot_time_unix).unwrap_or(0))
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    lines.push(format!(
        "up {} (booted {booted})",
        units::duration(os.uptime_secs)
    ));
    let cpu = &s.cpu;
    let mut load = format!(
        "load {:.2} {:.2} {:.2} on {} CPU{}",
        cpu.load.one,
        cpu.load.five,
        cpu.load.fifteen,
        cpu.count,
        if cpu.count == 1 { "" } else { "s" }
    );
    if let Some(model) = &cpu.model {
        load.push_str(&format!(" ({model})"));
    }
    if let Some(pressure) = &cpu.pressure {
        let part = |name: &str, stall: Option<crate::host::cpu::Stall>| {
            stall.map(|stall| format!("{name} {:.1} %", stall.avg60))
        };
        let parts: Vec<String> = [
            part("CPU", pressure.cpu),
            part("memory", pressure.memory),
            part("IO", pressure.io),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !parts.is_empty() {
            load.push_str(&format!("; waiting (PSI, 60 s): {}", parts.join(", ")));
        }
    }
    lines.push(load);
    let memory = &s.memory;
    let swap = if memory.swap_total_bytes == 0 {
        "no swap".to_owned()
    } else {
        format!(
            "swap {} of {} free",
            units::bytes(memory.swap_free_bytes),
            units::bytes(memory.swap_total_bytes)
        )
    };
    lines.push(format!(
        "memory {} of {} available ({:.0} %); {swap}",
        units::bytes(memory.available_bytes),
        units::bytes(memory.total_bytes),
        units::percent(memory.available_bytes, memory.total_bytes)
    ));
    if let Some(root) = &s.root_disk {
        lines.push(format!(
            "root disk: {} of {} free ({:.0} % used), {} on {}",
            units::bytes(root.available_bytes),
            units::bytes(root.size_bytes),
            root.used_percent,
            root.fs_type,
            root.source
        ));
    }
    let users = match &s.users {
        None => "no login records (no utmp)".to_owned(),
        Some(users) if users.is_empty() => "nobody logged in".to_owned(),
        Some(users) => {
            let mut names: Vec<&str> = users.iter().map(|u| u.user.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            format!("logged in: {}", names.join(", "))
        }
    };
    lines.push(format!(
        "{} processes ({} threads); {users}",
        s.processes, cpu.load.threads
    ));
    lines.join("\n")
}

fn runs_in(s: &Snapshot) -> String {
    let vm = s.virtualisation.vm.as_deref().map(|vm| match vm {
        "vm" => "a virtual machine".to_owned(),
        named => format!("a {named} virtual machine"),
    });
    match (&s.virtualisation.container, vm) {
        (Some(container), Some(vm)) => format!(", {container} container on {vm}"),
        (Some(container), None) => format!(", {container} container"),
        (None, Some(vm)) => format!(", on {vm}"),
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_host_it_runs_on_in_human_units() {
        let snapshot = snapshot::load().unwrap();
        let result = report(&snapshot);
        assert_eq!(result.is_error, Some(false));
        let structured = result.structured_content.unwrap();
        assert_eq!(structured["hostname"], snapshot.os.hostname);
        assert!(structured["memory"]["total_bytes"].as_u64().unwrap() > 0);
        let text = render(&snapshot);
        assert!(text.contains(" GiB") || text.contains(" MiB"), "{text}");
        assert!(text.contains("up "), "{text}");
        assert!(text.contains(&format!("{} processes", snapshot.processes)));
        assert!(text.contains("root disk: "), "{text}");
    }

    #[test]
    fn the_output_schema_is_portable_as_the_catalog_shows_it() {
        let tool = crate::tools::schema::portable(definition());
        let schema = serde_json::to_string(&*tool.output_schema.unwrap()).unwrap();
        assert!(!schema.contains("uint"), "{schema}");
        assert!(!schema.contains("\"items\":true"), "{schema}");
    }
}
