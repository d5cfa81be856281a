//! The client configurations `serve` prints at start-up, each labelled with the clients that
//! take it exactly as printed: Claude Code's command line, the `"mcpServers"` file of Claude
//! Code (`.mcp.json`) and Cursor (`mcp.json`), and VS Code's `.vscode/mcp.json`, whose key is
//! `"servers"`. Printing only: nothing here reads or writes a client's files.

/// The snippets for a server at `url` (ending in `/mcp`) with `token`.
pub fn client_snippets(url: &str, token: &str) -> String {
    let entry = format!(
        "{{\"hostmcp\": {{\"type\": \"http\", \"url\": \"{url}\", \
         \"headers\": {{\"Authorization\": \"Bearer {token}\"}}}}}}"
    );
    format!(
        "Connect a client, for example:\n\
         \n  Claude Code (command line):\n    \
         claude mcp add --transport http hostmcp {url} --header \"Authorization: Bearer {token}\"\n\
         \n  Claude Code (.mcp.json) and Cursor (~/.cursor/mcp.json):\n    \
         {{\"mcpServers\": {entry}}}\n\
         \n  VS Code (.vscode/mcp.json; its key is \"servers\", not \"mcpServers\"):\n    \
         {{\"servers\": {entry}}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON snippet on the line after the label that contains `label`.
    fn json_after(text: &str, label: &str) -> serde_json::Value {
        let mut lines = text.lines().skip_while(|line| !line.contains(label));
        lines.next().expect("the label");
        serde_json::from_str(lines.next().expect("a snippet").trim()).expect("valid JSON")
    }

    #[test]
    fn each_file_snippet_is_valid_json_under_the_key_its_clients_read() {
        let text = client_snippets("http://127.0.0.1:8000/mcp", "t0k");
        let cursor = json_after(&text, "Cursor");
        let server = &cursor["mcpServers"]["hostmcp"];
        assert_eq!(server["url"], "http://127.0.0.1:8000/mcp");
        assert_eq!(server["headers"]["Authorization"], "Bearer t0k");
        let vscode = json_after(&text, "VS Code");
        assert_eq!(vscode["servers"]["hostmcp"], *server, "the same server");
        assert!(
            vscode.get("mcpServers").is_none(),
            "VS Code reads \"servers\""
        );
        assert!(text.contains(
            "claude mcp add --transport http hostmcp http://127.0.0.1:8000/mcp --header \"Authorization: Bearer t0k\""
        ));
    }
}
