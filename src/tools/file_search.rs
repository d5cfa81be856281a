//! `file_search`: files under a directory of the configured roots whose name matches a glob
//! and/or whose content matches a substring or regex; bounded in entries, bytes, time and
//! matches (see `crate::files::search`).

use rmcp::{
    ErrorData as McpError, RoleServer,
    handler::server::common::{schema_for_output, schema_for_type},
    model::{CallToolResult, ContentBlock, JsonObject, Tool},
    service::RequestContext,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{ToolsState, file_gate, parse_arguments};
use crate::{
    audit::FileOperation,
    caller::Caller,
    files::search::{MAX_MATCHES, Query, SearchLimits, SearchOutcome, search},
};

pub const NAME: &str = "file_search";

/// The arguments of `file_search`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSearchInput {
    /// Absolute path of the directory to search, under one of the configured roots.
    pub path: String,
    /// Glob over file names (`*.conf`), or over the path below `path` when it holds a `/`
    /// (`nginx/**/*.conf`).
    pub name: Option<String>,
    /// Text to find in file contents (a substring unless `regex` is true).
    pub content: Option<String>,
    /// `content` is a regular expression (Rust regex syntax).
    #[serde(default)]
    pub regex: bool,
    /// Most matches to return (default 100, most 500).
    pub limit: Option<u32>,
}

pub fn definition() -> Tool {
    Tool::new(
        NAME,
        "Search below a directory under the configured file roots for files by name (glob) \
         and/or content (substring or regex); give name, content or both. Bounded: 20,000 \
         entries, 32 MiB read (1 MiB per file), 5 s and 500 matches; the result says which \
         bound stopped it. Symlinks are not followed; binary files are skipped for content.",
        schema_for_type::<FileSearchInput>(),
    )
    .with_raw_output_schema(schema_for_output::<SearchOutcome>())
    .with_annotations(super::read_only_annotations("Search files"))
}

pub async fn call(
    state: &ToolsState,
    caller: &Caller,
    arguments: Option<JsonObject>,
    _context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let input: FileSearchInput = parse_arguments(arguments, NAME)?;
    let limits = SearchLimits {
        max_matches: input
            .limit
            .map_or(SearchLimits::default().max_matches, |limit| limit as usize)
            .clamp(1, MAX_MATCHES),
        ..SearchLimits::default()
    };
    let query = Query::new(input.name.as_deref(), input.content.as_deref(), input.regex);
    let outcome = file_gate::read_only(
        state,
        caller,
        NAME,
        FileOperation::Search,
        input.path,
        move |located| search(located, &query?, limits),
        |outcome: &SearchOutcome| &outcome.path,
    )
    .await;
    Ok(match outcome {
        Ok(outcome) => result(outcome),
        Err(refusal) => refusal.into_result(),
    })
}

/// One line per match (`path:line: text`, or the path alone for a name search).
fn result(outcome: SearchOutcome) -> CallToolResult {
    let stopped = match outcome.stopped_by {
        Some(bound) => format!("; stopped at the {bound} bound, narrow the search for more"),
        None => String::new(),
    };
    let mut text = format!(
        "{} matches under {} ({} entries visited, {} bytes read){stopped}",
        outcome.matches.len(),
        outcome.path,
        outcome.entries_visited,
        outcome.bytes_read
    );
    for found in &outcome.matches {
        match (found.line, &found.text) {
            (Some(line), Some(line_text)) => {
                text.push_str(&format!("\n{}:{line}: {line_text}", found.path));
            }
            _ => text.push_str(&format!("\n{}", found.path)),
        }
    }
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = serde_json::to_value(&outcome).ok();
    result
}
