//! `file_list`: one directory under the configured roots, a page at a time, each entry with
//! its type, size, modification time and mode. Contained by `crate::files`.

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
    files::list::{Listing, MAX_PAGE, list},
};

pub const NAME: &str = "file_list";
const DEFAULT_PAGE: usize = 100;

/// The arguments of `file_list`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileListInput {
    /// Absolute path of a directory under one of the configured roots.
    pub path: String,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Entries per page (default 100, most 500).
    pub limit: Option<u32>,
}

pub fn definition() -> Tool {
    Tool::new(
        NAME,
        "List a directory under the configured file roots, sorted by name: type, size, \
         modification time and mode of each entry; symlinks shown with their target, not \
         followed. Pages of up to 500; pass next_cursor as cursor for the next.",
        schema_for_type::<FileListInput>(),
    )
    .with_raw_output_schema(schema_for_output::<Listing>())
    .with_annotations(super::read_only_annotations("List directory"))
}

pub async fn call(
    state: &ToolsState,
    caller: &Caller,
    arguments: Option<JsonObject>,
    _context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let input: FileListInput = parse_arguments(arguments, NAME)?;
    let limit = input
        .limit
        .map_or(DEFAULT_PAGE, |limit| limit as usize)
        .min(MAX_PAGE);
    let cursor = input.cursor;
    let outcome = file_gate::read_only(
        state,
        caller,
        NAME,
        FileOperation::List,
        input.path,
        move |located| list(located, cursor.as_deref(), limit),
        |listing: &Listing| &listing.path,
    )
    .await;
    Ok(match outcome {
        Ok(listing) => result(listing),
        Err(refusal) => refusal.into_result(),
    })
}

/// One line per entry, `ls -l` style, under a header with the counts.
fn result(listing: Listing) -> CallToolResult {
    let mut text = format!(
        "{}: {} entries{}, showing {}",
        listing.path,
        listing.total,
        if listing.partial {
            " (first 100,000 read)"
        } else {
            ""
        },
        listing.entries.len()
    );
    if let Some(cursor) = &listing.next_cursor {
        text.push_str(&format!("; more with cursor {cursor:?}"));
    }
    for entry in &listing.entries {
        let when = jiff::Timestamp::from_second(entry.mtime)
            .map(|time| time.strftime("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        let name = match &entry.target {
            Some(target) => format!("{} -> {target}", entry.name),
            None if entry.kind == "dir" => format!("{}/", entry.name),
            None => entry.name.clone(),
        };
        text.push_str(&format!(
            "\n{:<7} {} {:>10} {when} {name}",
            entry.kind,
            entry.mode,
            crate::host::units::bytes(entry.size)
        ));
    }
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = serde_json::to_value(&listing).ok();
    result
}
