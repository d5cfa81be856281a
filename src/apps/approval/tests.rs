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

#[test]
fn the_csp_allows_the_inline_script_and_style_by_hash_only() {
    let policy = csp();
    for (tag, directive) in [("script", "script-src"), ("style", "style-src")] {
        let hash = base64::engine::general_purpose::STANDARD
            .encode(Sha256::digest(only_inline(tag).as_bytes()));
        let want = format!("{directive} 'sha256-{hash}'");
        assert!(
            policy.contains(&format!("{want};")),
            "the <meta> CSP must say {want:?} (run scripts/dashboard-csp.py after editing \
             assets/approval.html); it says {policy:?}"
        );
    }
    for directive in [
        "default-src 'none'",
        "connect-src 'none'",
        "frame-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} in {policy:?}");
    }
    assert!(!policy.contains("unsafe"), "{policy:?}");
}

#[test]
fn the_page_names_no_outside_resource_and_writes_text_only() {
    // Near miss: the page does speak to its host, through postMessage only.
    assert!(HTML.contains("host.postMessage("));
    let lowered = HTML.to_ascii_lowercase();
    for needle in [
        "http://",
        "https://",
        "src=",
        "<link",
        "url(",
        "fetch(",
        "xmlhttprequest",
        "websocket",
        "innerhtml",
        "outerhtml",
        "insertadjacenthtml",
        "eval(",
    ] {
        assert!(!lowered.contains(needle), "the page contains {needle:?}");
    }
    assert!(HTML.contains(".textContent ="));
}

#[test]
fn the_page_calls_the_app_only_tools_and_reads_the_secrets_from_meta() {
    for needle in [
        "\"ui/initialize\"",
        "\"ui/notifications/initialized\"",
        "\"ui/notifications/tool-input\"",
        "\"ui/notifications/tool-result\"",
        "\"ui/notifications/tool-cancelled\"",
        "\"ui/resource-teardown\"",
        "\"2026-01-26\"",
        "name: \"approval_pending\"",
        "name: \"approval_decide\"",
        "view_secret: secret",
    ] {
        assert!(HTML.contains(needle), "{needle}");
    }
    assert!(HTML.contains(&format!("result._meta[\"{SECRETS_META_KEY}\"]")));
}

#[test]
fn the_page_tells_the_three_waiting_tools_apart_and_says_what_to_call_next() {
    // What was asked: the kind by the request's `tool` (approval_pending), the host's toolInfo.
    for needle in [
        "run_command: {",
        "job_start: {",
        "terminal_open: {",
        "item.tool",
        "context.toolInfo",
        "asked by another token",
        "data.approver === true",
    ] {
        assert!(HTML.contains(needle), "{needle}");
    }
    // What came of it: the job id or terminal id from the result, and the next tools.
    for needle in [
        "data.job_id",
        "data.terminal_id",
        "data.exit_code",
        "job_output",
        "terminal_send",
        "terminal_read",
        "terminal_close",
    ] {
        assert!(HTML.contains(needle), "{needle}");
    }
}

#[test]
fn the_resource_is_listed_and_read_as_an_mcp_app_view() {
    let listed = serde_json::to_value(resource()).unwrap();
    assert_eq!(listed["uri"], "ui://hostmcp/approval");
    assert_eq!(listed["mimeType"], "text/html;profile=mcp-app");
    let read = serde_json::to_value(read()).unwrap();
    let contents = read["contents"].as_array().unwrap();
    assert_eq!(contents.len(), 1);
    assert_eq!(contents[0]["uri"], "ui://hostmcp/approval");
    assert_eq!(contents[0]["mimeType"], "text/html;profile=mcp-app");
    assert!(
        contents[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("<!DOCTYPE html>")
    );
    assert_eq!(
        contents[0]["_meta"]["ui"]["csp"]["connectDomains"],
        serde_json::json!([])
    );
}
