//! `disk_usage`: mounted filesystems with size, use, inodes, type and options (pseudo
//! filesystems left out unless asked), block devices, and — given a `path` — the largest
//! directories under it, walked within a time and entry budget without crossing into
//! other filesystems (unless asked). It reads directory names and sizes, never file
//! contents.

use std::{path::PathBuf, time::Duration};

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
        disks::{self, BlockDevice, Filesystem},
        du::{self, DirectoryUsage, WalkLimits},
        units,
    },
};

pub const NAME: &str = "disk_usage";
const DEFAULT_BUDGET_MS: u64 = 2_000;
const MAX_BUDGET_MS: u64 = 10_000;
const MAX_ENTRIES: u64 = 500_000;

/// Arguments of `disk_usage`; all optional.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiskUsageInput {
    /// List every mount, pseudo filesystems (proc, sysfs, cgroup, ...) included.
    #[serde(default)]
    pub all_mounts: bool,
    /// Also find the largest directories under this absolute path.
    pub path: Option<String>,
    /// Levels below `path` to list (1: its children; at most 3).
    #[schemars(range(min = 1, max = 3))]
    pub depth: Option<u32>,
    /// How many directories to list (default 10, at most 50).
    #[schemars(range(min = 1, max = 50))]
    pub top: Option<u32>,
    /// Milliseconds the walk may take (default 2000, at most 10000); past it the sizes
    /// are lower bounds and `complete` is false.
    #[schemars(range(min = 1, max = 10000))]
    pub time_budget_ms: Option<u64>,
    /// Walk into other filesystems mounted below `path` (default: stay on its own).
    #[serde(default)]
    pub cross_filesystems: bool,
}

/// What `disk_usage` returns.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DiskUsage {
    pub filesystems: Vec<Filesystem>,
    pub block_devices: Vec<BlockDevice>,
    /// The walk of `path`, when one was asked for.
    pub largest_directories: Option<DirectoryUsage>,
}

pub fn definition() -> Tool {
    Tool::new(
        NAME,
        "Show disk space: mounted filesystems (size, used, available, use %, inodes, type, \
         options), block devices, and with `path` the largest directories under it (like \
         du, bounded in time, staying on one filesystem). Use this instead of df or du.",
        schema_for_type::<DiskUsageInput>(),
    )
    .with_raw_output_schema(schema_for_output::<DiskUsage>())
    .with_annotations(super::read_only_annotations("Disk usage"))
}

pub async fn call(
    _state: &ToolsState,
    _caller: &Caller,
    arguments: Option<JsonObject>,
    _context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let input: DiskUsageInput = super::parse_arguments(arguments, NAME)?;
    let walk = match &input.path {
        Some(path) if !path.starts_with('/') => {
            return Err(McpError::invalid_params(
                "disk_usage: path must be absolute",
                None,
            ));
        }
        Some(path) => Some((
            PathBuf::from(path),
            WalkLimits {
                depth: input.depth.unwrap_or(1).clamp(1, 3),
                top: input.top.unwrap_or(10).clamp(1, 50) as usize,
                time_budget: Duration::from_millis(
                    input
                        .time_budget_ms
                        .unwrap_or(DEFAULT_BUDGET_MS)
                        .clamp(1, MAX_BUDGET_MS),
                ),
                max_entries: MAX_ENTRIES,
                one_filesystem: !input.cross_filesystems,
            },
        )),
        None => None,
    };
    let all = input.all_mounts;
    let read = tokio::task::spawn_blocking(move || gather(all, walk))
        .await
        .map_err(|error| McpError::internal_error(error.to_string(), None))?;
    Ok(match read {
        Ok(usage) => {
            let mut result = CallToolResult::success(vec![ContentBlock::text(render(&usage))]);
            result.structured_content = serde_json::to_value(&usage).ok();
            result
        }
        Err(error) => CallToolResult::error(vec![ContentBlock::text(error.to_string())]),
    })
}

/// What `disk_usage` reads: the mounts, the block devices and the walk asked for.
pub fn gather(all: bool, walk: Option<(PathBuf, WalkLimits)>) -> Result<DiskUsage, HostError> {
    Ok(DiskUsage {
        filesystems: disks::filesystems(all)?,
        block_devices: disks::block_devices().unwrap_or_default(),
        largest_directories: walk
            .map(|(path, limits)| du::largest_directories(&path, limits))
            .transpose()?,
    })
}

/// One line a filesystem, a line for the block devices, then the largest directories.
pub fn render(usage: &DiskUsage) -> String {
    let mut text = String::new();
    for fs in &usage.filesystems {
        text.push_str(&format!(
            "{}: {} of {} free ({:.0} % used; inodes {:.0} % used), {} on {}{}\n",
            fs.mount_point,
            units::bytes(fs.available_bytes),
            units::bytes(fs.size_bytes),
            fs.used_percent,
            fs.inodes_used_percent,
            fs.fs_type,
            fs.source,
            if fs.read_only { ", read-only" } else { "" }
        ));
    }
    if !usage.block_devices.is_empty() {
        let devices: Vec<String> = usage
            .block_devices
            .iter()
            .map(|d| format!("{} {}", d.name, units::bytes(d.size_bytes)))
            .collect();
        text.push_str(&format!("block devices: {}\n", devices.join(", ")));
    }
    if let Some(walk) = &usage.largest_directories {
        text.push_str(&format!(
            "largest under {} ({} in all{}; {} entries in {} ms{}):\n",
            walk.path,
            units::bytes(walk.total_bytes),
            if walk.complete {
                ""
            } else {
                ", PARTIAL: the time budget ran out, sizes are lower bounds"
            },
            walk.entries_scanned,
            walk.elapsed_ms,
            if walk.unreadable > 0 {
                format!(", {} unreadable", walk.unreadable)
            } else {
                String::new()
            }
        ));
        for dir in &walk.largest {
            text.push_str(&format!("  {} {}\n", units::bytes(dir.bytes), dir.path));
        }
    }
    text
}
