//! The live dashboard view, `ui://hostmcp/dashboard`: one self-contained HTML file
//! (`assets/dashboard.html`, compiled in) that shows load, memory, disks and the top
//! processes and refreshes them every few seconds. This file owns its resource entry, its
//! `resources/read` contents and the `_meta.ui` a host builds the view's sandbox from.
//!
//! Why the page speaks the bridge by hand instead of inlining the ext-apps `App` class:
//! the view needs five messages (`ui/initialize`, `ui/notifications/initialized`,
//! `tools/call`, the `tool-result` notification, `ui/resource-teardown`), about 80 lines
//! of script, while the package's self-contained build (`app-with-deps.js`) is 530 KB of
//! script that would need a vendoring step and `'unsafe-inline'` for all of it. The
//! browser test drives the page from the package's own host side (`AppBridge`), so the
//! hand-written side is checked against the official implementation.
//!
//! CSP: the resource declares no outside origin (`_meta.ui.csp` with empty lists: no
//! connection, no outside script, style, image or frame), so a host applies the spec's
//! restrictive default. The page adds its own `<meta>` policy on top, stricter than the
//! host's: `default-src 'none'`, its one inline script and one inline style allowed by
//! SHA-256 hash only (checked below against the file), `connect-src 'none'`,
//! `base-uri 'none'`, `form-action 'none'`. Every figure is written with `textContent`,
//! so a process name cannot become markup.

use rmcp::model::{ReadResourceResult, Resource};

use super::MIME_TYPE;

/// The view's URI.
pub const URI: &str = "ui://hostmcp/dashboard";
/// The page, as served.
pub const HTML: &str = include_str!("../../assets/dashboard.html");

/// The view as `resources/list` shows it.
pub fn resource() -> Resource {
    Resource::new(URI, "dashboard")
        .with_title("Host dashboard")
        .with_description(
            "A live panel of load, memory, disks and the top processes (MCP Apps view, \
             io.modelcontextprotocol/ui) for clients that render apps; host_info and \
             process_list link to it. Other clients use those tools' text.",
        )
        .with_mime_type(MIME_TYPE)
        .with_meta(super::sealed_view_meta())
}

/// `resources/read` of the view: the HTML with its `_meta.ui`.
pub fn read() -> ReadResourceResult {
    super::read_sealed_view(HTML, URI)
}

#[cfg(test)]
mod tests;
