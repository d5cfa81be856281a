//! `host_info`: the host's identity and state (OS, kernel, uptime, load, memory, root disk),
//! read from the kernel and /etc without running anything: the one tool of the `read` role.

use rmcp::{
    ErrorData as McpError, RoleServer,
    handler::server::common::{schema_for_empty_input, schema_for_output},
    model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations},
    service::RequestContext,
};
use schemars::JsonSchema;
use serde::Serialize;

use super::ToolsState;
use crate::caller::Caller;

pub const NAME: &str = "host_info";

/// What `host_info` reports.
#[derive(Debug, Serialize, JsonSchema)]
pub struct HostInfo {
    pub hostname: String,
    /// PRETTY_NAME of /etc/os-release.
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub uptime_secs: u64,
    /// Load averages over 1, 5 and 15 minutes.
    pub load: [f64; 3],
    pub cpus: usize,
    pub memory_total_bytes: u64,
    pub memory_available_bytes: Option<u64>,
    pub processes: u16,
    pub root_disk_total_bytes: Option<u64>,
    pub root_disk_available_bytes: Option<u64>,
}

pub fn definition() -> Tool {
    Tool::new(
        NAME,
        "Describe the host: hostname, OS, kernel, uptime, load, CPUs, memory, processes and the \
         root filesystem's size and free space. Runs nothing.",
        schema_for_empty_input(),
    )
    .with_raw_output_schema(schema_for_output::<HostInfo>())
    .with_annotations(
        ToolAnnotations::with_title("Host info")
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(false),
    )
}

/// Handle one call: anyone with the `read` role gets the same report; no arguments.
pub async fn call(
    _state: &ToolsState,
    _caller: &Caller,
    _arguments: Option<JsonObject>,
    _context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    Ok(report())
}

/// The host's state, as text and as structured content.
fn report() -> CallToolResult {
    let info = gather();
    let text = format!(
        "{} — {} (kernel {}), up {} s, load {:.2} {:.2} {:.2}, {} CPUs, memory {} of {} bytes available, {} processes",
        info.hostname,
        info.os.as_deref().unwrap_or("unknown OS"),
        info.kernel.as_deref().unwrap_or("?"),
        info.uptime_secs,
        info.load[0],
        info.load[1],
        info.load[2],
        info.cpus,
        info.memory_available_bytes
            .map_or("?".to_owned(), |bytes| bytes.to_string()),
        info.memory_total_bytes,
        info.processes,
    );
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = serde_json::to_value(&info).ok();
    result
}

fn gather() -> HostInfo {
    let system = nix::sys::sysinfo::sysinfo().ok();
    let root = nix::sys::statvfs::statvfs("/").ok();
    let load = system
        .as_ref()
        .map_or((0.0, 0.0, 0.0), |s| s.load_average());
    HostInfo {
        hostname: nix::unistd::gethostname()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        os: os_release_pretty_name(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|text| text.trim().to_owned()),
        uptime_secs: system.as_ref().map_or(0, |s| s.uptime().as_secs()),
        load: [load.0, load.1, load.2],
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        memory_total_bytes: system.as_ref().map_or(0, |s| s.ram_total()),
        memory_available_bytes: mem_available(),
        processes: system.as_ref().map_or(0, |s| s.process_count()),
        root_disk_total_bytes: root.as_ref().map(|fs| fs.blocks() * fs.fragment_size()),
        root_disk_available_bytes: root
            .as_ref()
            .map(|fs| fs.blocks_available() * fs.fragment_size()),
    }
}

fn os_release_pretty_name() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix("PRETTY_NAME="))?;
    Some(value.trim_matches('"').to_owned())
}

/// MemAvailable of /proc/meminfo (kernel's estimate of memory available without swapping).
fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text
        .lines()
        .find(|line| line.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_host_it_runs_on() {
        let info = gather();
        assert!(!info.hostname.is_empty());
        assert!(info.memory_total_bytes > 0 && info.cpus >= 1);
        assert!(info.root_disk_total_bytes.is_some_and(|total| total > 0));
        let result = report();
        assert_eq!(result.is_error, Some(false));
        assert_eq!(
            result.structured_content.unwrap()["hostname"],
            info.hostname
        );
    }
}
