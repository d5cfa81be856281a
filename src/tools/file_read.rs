//! `file_read`: a byte or line range of one file under the configured roots, capped in
//! size; binary content is reported, not dumped. Contained by `crate::files`.

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
    files::read::{MAX_READ_BYTES, Range, ReadOutcome, read},
};

pub const NAME: &str = "file_read";
/// Lines a line range holds unless the caller says.
const DEFAULT_LINES: u64 = 200;

/// The arguments of `file_read`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileReadInput {
    /// Absolute path of a file under one of the configured roots.
    pub path: String,
    /// Byte offset to start at (default 0). Not with `line`.
    pub offset: Option<u64>,
    /// Bytes to read (default and most: 262144).
    pub length: Option<u64>,
    /// First line to read, counting from 1: the range is then in lines.
    pub line: Option<u64>,
    /// Lines to read from `line` (default 200).
    pub lines: Option<u64>,
    /// Also return the whole file's sha256 when only part of it is read (it costs a read of
    /// the whole file, up to 16 MiB). A read that returns the whole file always has it.
    pub sha256: Option<bool>,
}

pub fn definition() -> Tool {
    Tool::new(
        NAME,
        "Read a file under the configured file roots: a byte range (offset, length) or a line \
         range (line, lines), at most 256 KiB per call; `next` says where to continue. Binary \
         files are reported, not shown. Returns the file's sha256 (for file_write's \
         expected_sha256) when the whole file was read, or when sha256=true.",
        schema_for_type::<FileReadInput>(),
    )
    .with_raw_output_schema(schema_for_output::<ReadOutcome>())
    .with_annotations(super::read_only_annotations("Read file"))
}

pub async fn call(
    state: &ToolsState,
    caller: &Caller,
    arguments: Option<JsonObject>,
    _context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let input: FileReadInput = parse_arguments(arguments, NAME)?;
    let range = match (input.line, input.offset) {
        (Some(_), Some(_)) => {
            return Err(McpError::invalid_params(
                "file_read: give offset or line, not both",
                None,
            ));
        }
        (Some(first), None) => Range::Lines {
            first,
            count: input.lines.unwrap_or(DEFAULT_LINES),
        },
        (None, offset) => Range::Bytes {
            offset: offset.unwrap_or(0),
            length: input.length.unwrap_or(MAX_READ_BYTES),
        },
    };
    let hash = input.sha256.unwrap_or(false);
    let outcome = file_gate::read_only(
        state,
        caller,
        NAME,
        FileOperation::Read,
        input.path,
        move |located| read(located, range, MAX_READ_BYTES, hash),
        |outcome: &ReadOutcome| &outcome.path,
    )
    .await;
    Ok(match outcome {
        Ok(outcome) => result(outcome),
        Err(refusal) => refusal.into_result(),
    })
}

/// The text a model reads: what was read and from where, then the content.
fn result(outcome: ReadOutcome) -> CallToolResult {
    let what = match (outcome.first_line, outcome.lines) {
        (Some(first), Some(1)) => format!("line {first}"),
        (Some(first), Some(lines)) if lines > 0 => {
            format!("lines {first}-{}", first + lines - 1)
        }
        (Some(first), _) => format!("no lines from line {first}"),
        _ => format!(
            "bytes {}-{}",
            outcome.offset,
            outcome.offset + outcome.bytes
        ),
    };
    let more = match (outcome.next, outcome.first_line) {
        (Some(next), Some(_)) => format!("; more from line {next}"),
        (Some(next), None) => format!("; more from offset {next}"),
        (None, _) => String::new(),
    };
    let header = format!(
        "{} ({}, mode {}): {what} of {} bytes{more}",
        outcome.path,
        crate::host::units::bytes(outcome.size),
        outcome.mode,
        outcome.size,
    );
    let text = match &outcome.content {
        Some(content) => format!("{header}\n{content}"),
        None => format!(
            "{header}\nbinary content (NUL bytes or not UTF-8): not shown; use run_command \
             with `file` or `od` to inspect it"
        ),
    };
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = serde_json::to_value(&outcome).ok();
    result
}
