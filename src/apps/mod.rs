//! MCP Apps (the `io.modelcontextprotocol/ui` extension, SEP-1865, stable 2026-01-26):
//! what hostmcp declares so that clients which render apps (Claude, ChatGPT, VS Code) show a
//! live panel instead of text. This module owns the extension's identifiers, the server's
//! capability entry, the `_meta.ui` that links a tool to its view, and the one view hostmcp
//! serves: [`dashboard`], `ui://hostmcp/dashboard`.
//!
//! The linkage is metadata only: a tool that names a view still returns its plain-text
//! result (and structured content) unchanged, which is what every other client shows and
//! what a model reads. The view itself reaches the host only through the host's postMessage
//! JSON-RPC bridge: it calls `host_info`, `process_list` and `disk_usage` with the rights of
//! the token the host connected with, through the same role gate and rate limit as any
//! call.

pub mod dashboard;

use rmcp::model::{JsonObject, MetaObject};
use serde_json::json;

/// The extension's identifier in `capabilities.extensions`.
pub const EXTENSION_ID: &str = "io.modelcontextprotocol/ui";
/// The MIME type of an HTML view (the spec's only one so far).
pub const MIME_TYPE: &str = "text/html;profile=mcp-app";
/// The flat `_meta` key the spec keeps, deprecated, beside `_meta.ui.resourceUri`; the
/// official server helper still writes both, and older hosts read only this one.
pub const LEGACY_RESOURCE_URI_KEY: &str = "ui/resourceUri";

/// The entry hostmcp puts under `capabilities.extensions`: the extension's id and the view
/// MIME types this server offers (the same settings shape a host declares).
pub fn extension_capability() -> (String, JsonObject) {
    let settings = json!({ "mimeTypes": [MIME_TYPE] });
    let serde_json::Value::Object(settings) = settings else {
        unreachable!("a JSON object literal")
    };
    (EXTENSION_ID.to_owned(), settings)
}

/// The `_meta` of a tool whose results the dashboard renders: `ui.resourceUri` and the
/// legacy flat key, both naming [`dashboard::URI`]. Visibility is left to its default
/// (`["model", "app"]`): the model calls these tools and so does the view.
pub fn dashboard_tool_meta() -> MetaObject {
    let mut meta = JsonObject::new();
    meta.insert("ui".to_owned(), json!({ "resourceUri": dashboard::URI }));
    meta.insert(LEGACY_RESOURCE_URI_KEY.to_owned(), json!(dashboard::URI));
    MetaObject(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_capability_names_the_extension_and_its_mime_type() {
        let (id, settings) = extension_capability();
        assert_eq!(id, "io.modelcontextprotocol/ui");
        assert_eq!(settings["mimeTypes"], json!(["text/html;profile=mcp-app"]));
    }

    #[test]
    fn tool_meta_links_the_dashboard_by_both_keys() {
        let meta = serde_json::to_value(dashboard_tool_meta()).unwrap();
        assert_eq!(meta["ui"]["resourceUri"], "ui://hostmcp/dashboard");
        assert_eq!(meta["ui/resourceUri"], "ui://hostmcp/dashboard");
        // No visibility: the default keeps the tools visible to the model.
        assert!(meta["ui"].get("visibility").is_none());
    }
}
