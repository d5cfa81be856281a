//! `file_write` (operator): replace or create one file under a writable root, atomically,
//! optionally only if it still has the content the caller read (`expected_sha256`). The
//! write is on the audit record before it is renamed into place (`crate::files::write`).

use rmcp::{
    ErrorData as McpError, RoleServer,
    handler::server::common::{schema_for_output, schema_for_type},
    model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations},
    service::RequestContext,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{
    ToolsState,
    file_gate::{self, Access, FileRefusal},
    parse_arguments,
};
use crate::{
    audit::FileOperation,
    caller::Caller,
    files::write::{WriteOutcome, prepare},
};

pub const NAME: &str = "file_write";

/// The arguments of `file_write`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileWriteInput {
    /// Absolute path of the file, under a root configured with write = true.
    pub path: String,
    /// The whole new content (UTF-8 text, at most 4 MiB).
    pub content: String,
    /// The sha256 file_read returned: the write happens only if the file still has that
    /// content. Give it when editing an existing file, so a concurrent edit is not lost.
    pub expected_sha256: Option<String>,
}

pub fn definition() -> Tool {
    Tool::new(
        NAME,
        "Replace (or create) a file under a writable file root, atomically: readers see the \
         old or the new content, never a mix; the file keeps its mode. With expected_sha256 \
         (from file_read) the write is refused if the file changed since it was read. \
         Symlinks and files with several hard links are refused.",
        schema_for_type::<FileWriteInput>(),
    )
    .with_raw_output_schema(schema_for_output::<WriteOutcome>())
    .with_annotations(
        ToolAnnotations::with_title("Write file")
            .read_only(false)
            .destructive(true)
            .idempotent(true)
            .open_world(false),
    )
}

pub async fn call(
    state: &ToolsState,
    caller: &Caller,
    arguments: Option<JsonObject>,
    _context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let input: FileWriteInput = parse_arguments(arguments, NAME)?;
    Ok(match write(state, caller, input).await {
        Ok(outcome) => result(outcome),
        Err(refusal) => refusal.into_result(),
    })
}

/// Gate, stage, record, rename; every refusal recorded with its rule.
async fn write(
    state: &ToolsState,
    caller: &Caller,
    input: FileWriteInput,
) -> Result<WriteOutcome, FileRefusal> {
    let staged = match file_gate::check_identity(state, caller) {
        Ok(()) => {
            let roots = state.files.load_full();
            let path = input.path.clone();
            let expected = input.expected_sha256.clone();
            let content = input.content.clone().into_bytes();
            file_gate::blocking(move || {
                let located = roots.locate(&path)?;
                let prepared = prepare(&located, &content, expected.as_deref())?;
                Ok((located, prepared))
            })
            .await
        }
        Err(refusal) => Err(refusal),
    };
    let (located, prepared) = match staged {
        Ok(staged) => staged,
        Err(refusal) => {
            record(&input.path, None, None)
                .refused(state, caller, &refusal)
                .await;
            return Err(refusal);
        }
    };
    let resolved = prepared.path().to_owned();
    let sha256 = prepared.outcome().sha256.clone();
    // On the record before the rename; a write that cannot be recorded is not made (the
    // staged file goes with `prepared`).
    record(&input.path, Some(&resolved), Some(sha256.clone()))
        .done(state, caller)
        .await?;
    let committed = file_gate::blocking(move || Ok(prepared.commit(&located)?)).await;
    if let Err(refusal) = &committed {
        record(&input.path, Some(&resolved), Some(sha256))
            .refused(state, caller, refusal)
            .await;
    }
    committed
}

fn record<'a>(requested: &'a str, resolved: Option<&'a str>, sha256: Option<String>) -> Access<'a> {
    Access {
        tool: NAME,
        operation: FileOperation::Write,
        requested,
        resolved,
        sha256,
    }
}

fn result(outcome: WriteOutcome) -> CallToolResult {
    let text = format!(
        "{} {} ({}, mode {}), sha256 {}",
        if outcome.created {
            "created"
        } else {
            "replaced"
        },
        outcome.path,
        crate::host::units::bytes(outcome.bytes),
        outcome.mode,
        outcome.sha256
    );
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = serde_json::to_value(&outcome).ok();
    result
}
