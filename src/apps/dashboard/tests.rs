use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::*;

/// The text between `<tag>` and `</tag>`, asserting there is exactly one such element.
fn only_inline(tag: &str) -> &'static str {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    assert_eq!(HTML.matches(&open).count(), 1, "one inline <{tag}>");
    let start = HTML.find(&open).unwrap() + open.len();
    let end = HTML[start..].find(&close).unwrap() + start;
    &HTML[start..end]
}

fn csp() -> &'static str {
    let marker = "http-equiv=\"Content-Security-Policy\" content=\"";
    let start = HTML.find(marker).expect("a <meta> CSP") + marker.len();
    let end = HTML[start..].find('"').unwrap() + start;
    &HTML[start..end]
}

fn hash(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
}

#[test]
fn the_csp_allows_the_inline_script_and_style_by_hash_only() {
    let policy = csp();
    for (tag, directive) in [("script", "script-src"), ("style", "style-src")] {
        let want = format!("{directive} 'sha256-{}'", hash(only_inline(tag)));
        assert!(
            policy.contains(&format!("{want};")),
            "the <meta> CSP must say {want:?} (run scripts/dashboard-csp.py after editing \
             assets/dashboard.html); it says {policy:?}"
        );
    }
    for directive in [
        "default-src 'none'",
        "connect-src 'none'",
        "img-src 'none'",
        "frame-src 'none'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} in {policy:?}");
    }
    assert!(!policy.contains("unsafe"), "{policy:?}");
}

#[test]
fn the_page_names_no_outside_resource() {
    // Near miss: the page does speak to its host, through postMessage only.
    assert!(HTML.contains("host.postMessage("));
    let lowered = HTML.to_ascii_lowercase();
    for needle in [
        "http://",
        "https://",
        "//cdn",
        "src=",
        "<link",
        "@import",
        "url(",
        "fetch(",
        "xmlhttprequest",
        "websocket",
        "eventsource",
        "innerhtml",
        "eval(",
    ] {
        assert!(!lowered.contains(needle), "the page contains {needle:?}");
    }
}

#[test]
fn the_resource_is_listed_and_read_as_an_mcp_app_view() {
    let listed = serde_json::to_value(resource()).unwrap();
    assert_eq!(listed["uri"], "ui://hostmcp/dashboard");
    assert_eq!(listed["mimeType"], "text/html;profile=mcp-app");
    assert_eq!(listed["_meta"]["ui"]["prefersBorder"], true);

    let read = serde_json::to_value(read()).unwrap();
    let contents = &read["contents"];
    assert_eq!(contents.as_array().unwrap().len(), 1);
    let content = &contents[0];
    assert_eq!(content["uri"], "ui://hostmcp/dashboard");
    assert_eq!(content["mimeType"], "text/html;profile=mcp-app");
    assert!(
        content["text"]
            .as_str()
            .unwrap()
            .starts_with("<!DOCTYPE html>")
    );
    let csp = &content["_meta"]["ui"]["csp"];
    for list in [
        "connectDomains",
        "resourceDomains",
        "frameDomains",
        "baseUriDomains",
    ] {
        assert_eq!(csp[list], serde_json::json!([]), "{list}");
    }
    assert_eq!(content["_meta"]["ui"]["prefersBorder"], true);
}

#[test]
fn the_page_speaks_the_bridge_protocol_of_the_stable_spec() {
    for method in [
        "\"ui/initialize\"",
        "\"ui/notifications/initialized\"",
        "\"ui/notifications/tool-result\"",
        "\"ui/resource-teardown\"",
        "\"ui/notifications/size-changed\"",
        "\"tools/call\"",
        "\"2026-01-26\"",
    ] {
        assert!(HTML.contains(method), "{method}");
    }
    // Figures are written as text, never parsed as markup.
    assert!(HTML.contains(".textContent ="));
}
