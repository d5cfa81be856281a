//! `process_tree`: one process with its ancestors up to pid 1 and its descendants (breadth
//! first, capped), so a model sees what started it and what it started.

use rmcp::{
    ErrorData as McpError, RoleServer,
    handler::server::common::{schema_for_output, schema_for_type},
    model::{CallToolResult, ContentBlock, JsonObject, Tool},
    service::RequestContext,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::ToolsState;
use crate::{
    caller::Caller,
    host::{
        processes::{self, Tree},
        units,
    },
};

pub const NAME: &str = "process_tree";
const DEFAULT_DESCENDANTS: u32 = 100;
const MAX_DESCENDANTS: u32 = 1000;

/// Arguments of `process_tree`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessTreeInput {
    /// The process to show.
    pub pid: i32,
    /// How many descendants to list at most (default 100, at most 1000).
    #[schemars(range(min = 0, max = 1000))]
    pub max_descendants: Option<u32>,
}

pub fn definition() -> Tool {
    Tool::new(
        NAME,
        "Show one process with its ancestors (parent up to pid 1) and its descendants \
         (children, grandchildren, ...), each with user, state, memory and name.",
        schema_for_type::<ProcessTreeInput>(),
    )
    .with_raw_output_schema(schema_for_output::<Tree>())
    .with_annotations(super::read_only_annotations("Process tree"))
}

pub async fn call(
    _state: &ToolsState,
    _caller: &Caller,
    arguments: Option<JsonObject>,
    _context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let input: ProcessTreeInput = super::parse_arguments(arguments, NAME)?;
    let cap = input
        .max_descendants
        .unwrap_or(DEFAULT_DESCENDANTS)
        .min(MAX_DESCENDANTS) as usize;
    let read = tokio::task::spawn_blocking(move || {
        processes::read_all().and_then(|rows| processes::tree(&rows, input.pid, cap))
    })
    .await
    .map_err(|error| McpError::internal_error(error.to_string(), None))?;
    Ok(match read {
        Ok(tree) => {
            let mut result = CallToolResult::success(vec![ContentBlock::text(render(&tree))]);
            result.structured_content = serde_json::to_value(&tree).ok();
            result
        }
        Err(error) => CallToolResult::error(vec![ContentBlock::text(error.to_string())]),
    })
}

fn label(row: &processes::ProcessRow) -> String {
    format!(
        "{} {} ({}, {}, {})",
        row.pid,
        row.name,
        row.user.clone().unwrap_or_else(|| row.uid.to_string()),
        processes::state_name(&row.state),
        units::bytes(row.rss_bytes)
    )
}

/// The listed children of `pid`, last first (for a stack).
fn children(tree: &Tree, pid: i32) -> Vec<&processes::Descendant> {
    let mut found: Vec<_> = tree
        .descendants
        .iter()
        .filter(|d| d.process.ppid == pid)
        .collect();
    found.reverse();
    found
}

/// The ancestor chain on one line, then the descendants indented by depth.
pub fn render(tree: &Tree) -> String {
    let mut chain: Vec<String> = tree
        .ancestors
        .iter()
        .rev()
        .map(|row| format!("{} {}", row.pid, row.name))
        .collect();
    chain.push(format!("[{}]", label(&tree.process)));
    let mut text = format!("{}\n", chain.join(" → "));
    if tree.descendants.is_empty() {
        text.push_str("no children\n");
    }
    // Depth first, each child under its parent.
    let mut stack: Vec<&processes::Descendant> = children(tree, tree.process.pid);
    while let Some(descendant) = stack.pop() {
        let indent = "  ".repeat(descendant.depth as usize);
        text.push_str(&format!("{indent}{}\n", label(&descendant.process)));
        stack.extend(children(tree, descendant.process.pid));
    }
    if tree.descendants_omitted > 0 {
        text.push_str(&format!(
            "… {} more descendants not listed (raise max_descendants)\n",
            tree.descendants_omitted
        ));
    }
    text
}
