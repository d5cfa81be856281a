//! MCP Apps (the `io.modelcontextprotocol/ui` extension, SEP-1865, stable 2026-01-26):
//! what hostmcp declares so that clients which render apps (Claude, ChatGPT, VS Code) show a
//! live panel instead of text. This module owns the extension's identifiers, the server's
//! capability entry, whether a client declared it renders apps, the `_meta.ui` that links a
//! tool to its view, and the views hostmcp serves: [`dashboard`], `ui://hostmcp/dashboard`,
//! and [`approval`], `ui://hostmcp/approval`, the confirmation of a command that waits for a
//! person (linked from `run_command`, `job_start` and `terminal_open`, the tools whose calls
//! may wait for approval).
//!
//! The linkage is metadata only: a tool that names a view still returns its plain-text
//! result (and structured content) unchanged, which is what every other client shows and
//! what a model reads. The view itself reaches the host only through the host's postMessage
//! JSON-RPC bridge: it calls `host_info`, `process_list` and `disk_usage` with the rights of
//! the token the host connected with, through the same role gate and rate limit as any
//! call.

pub mod approval;
pub mod dashboard;

use rmcp::model::{
    ClientCapabilities, JsonObject, MetaObject, ReadResourceResult, ResourceContents,
};
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

/// Whether a client declared (in `initialize`, or a stateless request's `_meta`) that it
/// renders MCP Apps: the extension with the HTML view MIME type.
pub fn renders_apps(capabilities: Option<&ClientCapabilities>) -> bool {
    capabilities
        .and_then(|capabilities| capabilities.extensions.as_ref())
        .and_then(|extensions| extensions.get(EXTENSION_ID))
        .and_then(|settings| settings.get("mimeTypes"))
        .and_then(serde_json::Value::as_array)
        .is_some_and(|types| types.iter().any(|mime| mime == MIME_TYPE))
}

/// The `_meta.ui` of a view resource that loads nothing from outside: empty CSP lists of
/// every kind (the host applies the spec's restrictive default), and a border from the host.
pub fn sealed_view_meta() -> MetaObject {
    let mut meta = JsonObject::new();
    meta.insert(
        "ui".to_owned(),
        json!({
            "csp": {
                "connectDomains": [],
                "resourceDomains": [],
                "frameDomains": [],
                "baseUriDomains": [],
            },
            "prefersBorder": true,
        }),
    );
    MetaObject(meta)
}

/// `resources/read` of a view that loads nothing from outside: its HTML, the view MIME type
/// and [`sealed_view_meta`].
pub fn read_sealed_view(html: &str, uri: &str) -> ReadResourceResult {
    ReadResourceResult::new(vec![
        ResourceContents::text(html, uri)
            .with_mime_type(MIME_TYPE)
            .with_meta(sealed_view_meta()),
    ])
}

/// The `_meta` of a tool whose calls may wait for approval (`run_command`, `job_start`,
/// `terminal_open`): its view is [`approval::URI`], shown beside the waiting call. Visible
/// to the model (the default): the model calls it.
pub fn approval_tool_meta() -> MetaObject {
    let mut meta = JsonObject::new();
    meta.insert("ui".to_owned(), json!({ "resourceUri": approval::URI }));
    meta.insert(LEGACY_RESOURCE_URI_KEY.to_owned(), json!(approval::URI));
    MetaObject(meta)
}

/// The `_meta` of a tool only the approval view calls: `visibility: ["app"]`, so a host
/// keeps it out of the model's tool list and refuses the model's calls of it.
pub fn app_only_tool_meta() -> MetaObject {
    let mut meta = JsonObject::new();
    meta.insert(
        "ui".to_owned(),
        json!({ "resourceUri": approval::URI, "visibility": ["app"] }),
    );
    MetaObject(meta)
}

/// Whether `tool` is for views only: its `_meta.ui.visibility` leaves out `"model"`.
pub fn is_app_only(tool: &rmcp::model::Tool) -> bool {
    tool.meta
        .as_ref()
        .and_then(|meta| meta.0.get("ui"))
        .and_then(|ui| ui.get("visibility"))
        .and_then(serde_json::Value::as_array)
        .is_some_and(|visibility| !visibility.iter().any(|who| who == "model"))
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

    fn capabilities(extensions: serde_json::Value) -> ClientCapabilities {
        serde_json::from_value(json!({ "extensions": extensions })).unwrap()
    }

    #[test]
    fn a_client_renders_apps_only_with_the_extension_and_the_html_mime_type() {
        let apps = capabilities(json!({ EXTENSION_ID: { "mimeTypes": [MIME_TYPE] } }));
        assert!(renders_apps(Some(&apps)));
        for near_miss in [
            json!({ EXTENSION_ID: { "mimeTypes": ["text/html"] } }),
            json!({ EXTENSION_ID: {} }),
            json!({ "io.modelcontextprotocol/other": { "mimeTypes": [MIME_TYPE] } }),
            json!({}),
        ] {
            assert!(
                !renders_apps(Some(&capabilities(near_miss.clone()))),
                "{near_miss}"
            );
        }
        assert!(!renders_apps(Some(&ClientCapabilities::default())));
        assert!(!renders_apps(None));
    }

    #[test]
    fn app_only_tools_are_hidden_from_the_model_and_linked_tools_are_not() {
        let app = serde_json::to_value(app_only_tool_meta()).unwrap();
        assert_eq!(app["ui"]["visibility"], json!(["app"]));
        let linked = serde_json::to_value(approval_tool_meta()).unwrap();
        assert_eq!(linked["ui"]["resourceUri"], "ui://hostmcp/approval");
        assert_eq!(linked["ui/resourceUri"], "ui://hostmcp/approval");
        assert!(linked["ui"].get("visibility").is_none());
        let tool = |meta| {
            rmcp::model::Tool::new("t", "d", std::sync::Arc::new(JsonObject::new())).with_meta(meta)
        };
        assert!(is_app_only(&tool(app_only_tool_meta())));
        assert!(!is_app_only(&tool(approval_tool_meta())));
        assert!(!is_app_only(&tool(dashboard_tool_meta())));
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
