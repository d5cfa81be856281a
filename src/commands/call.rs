//! `hostmcp call URL TOOL [JSON]`: call one tool of a remote server, like curl for MCP.
//! Progress and log notifications go to stderr, the result to stdout (its text, or the whole
//! CallToolResult with `--json`); exit status 0, 1 when the result says `isError`, 2 when the
//! server cannot be reached or the call is refused, 130 when Ctrl-C cancelled the call.

use serde_json::{Map, Value, json};

use super::{
    CommandError,
    remote::{EXIT_UNREACHABLE, client_error, endpoint},
    runtime,
};
use crate::{
    cli::CallArgs,
    client::{ClientError, session::Session},
};

/// The exit status after Ctrl-C (128 + SIGINT, as a shell reports it).
const EXIT_INTERRUPTED: u8 = 130;

/// The progress token of the one call.
const PROGRESS_TOKEN: &str = "hostmcp-call";

pub fn run(args: CallArgs) -> Result<(), CommandError> {
    let arguments = parse_arguments(&args.arguments)?;
    let endpoint = endpoint(&args.remote)?;
    let result = runtime()?.block_on(async {
        let mut session = Session::open(&endpoint).await?;
        let params = json!({
            "name": args.tool,
            "arguments": arguments,
            "_meta": {"progressToken": PROGRESS_TOKEN},
        });
        // Ctrl-C cancels the call on the server (then DELETE ends the session), so the
        // command does not run on to its timeout.
        let mut on_notification = print_notification;
        let result = tokio::select! {
            result = session.request("tools/call", params, &mut on_notification) => result,
            _ = tokio::signal::ctrl_c() => Err(ClientError::Interrupted),
        };
        if matches!(result, Err(ClientError::Interrupted)) {
            session.cancel_last("interrupted (Ctrl-C)").await;
        }
        session.close().await;
        result
    });
    let result = result.map_err(|error| match error {
        ClientError::Interrupted => CommandError::new(error).with_exit_code(EXIT_INTERRUPTED),
        error => client_error(error),
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&result).unwrap_or_default()
        );
    } else {
        print!("{}", result_text(&result));
    }
    if result["isError"] == Value::Bool(true) {
        return Err(CommandError::new(format!(
            "the tool {} reported an error",
            args.tool
        )));
    }
    Ok(())
}

/// The JSON argument: an object (exit status 2 otherwise, before anything is sent).
fn parse_arguments(text: &str) -> Result<Map<String, Value>, CommandError> {
    let refused = |reason: String| {
        CommandError::new(format!(
            "the tool arguments are not a JSON object: {reason}"
        ))
        .with_hint(r#"give them as one argument, e.g. '{"command": "uptime"}'"#)
        .with_exit_code(EXIT_UNREACHABLE)
    };
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(refused(format!("got {other}"))),
        Err(error) => Err(refused(error.to_string())),
    }
}

/// Progress and log notifications, one line each on stderr.
fn print_notification(notification: &Value) {
    if let Some(line) = notification_line(notification) {
        eprintln!("{line}");
    }
}

fn notification_line(notification: &Value) -> Option<String> {
    let params = &notification["params"];
    match notification["method"].as_str()? {
        "notifications/progress" => {
            let mut line = format!("progress: {}", params["progress"]);
            if !params["total"].is_null() {
                line.push_str(&format!("/{}", params["total"]));
            }
            if let Some(message) = params["message"].as_str() {
                line.push(' ');
                line.push_str(message);
            }
            Some(line)
        }
        "notifications/message" => {
            let data = match &params["data"] {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            Some(format!(
                "log {}: {data}",
                params["level"].as_str().unwrap_or("info")
            ))
        }
        _ => None,
    }
}

/// A CallToolResult as text: the text of each content item, a line naming any other kind;
/// the structured content when there is no content at all. Ends with a newline.
fn result_text(result: &Value) -> String {
    let mut parts = Vec::new();
    for item in result["content"].as_array().into_iter().flatten() {
        let part = match item["type"].as_str().unwrap_or("") {
            "text" => item["text"].as_str().unwrap_or("").to_owned(),
            "resource_link" => format!("[resource {}]", item["uri"].as_str().unwrap_or("")),
            "resource" => match item["resource"]["text"].as_str() {
                Some(text) => text.to_owned(),
                None => format!(
                    "[resource {}]",
                    item["resource"]["uri"].as_str().unwrap_or("")
                ),
            },
            kind => format!(
                "[{kind} {}, {} bytes of base64]",
                item["mimeType"].as_str().unwrap_or("?"),
                item["data"].as_str().map_or(0, str::len)
            ),
        };
        parts.push(part);
    }
    if parts.is_empty() && !result["structuredContent"].is_null() {
        parts.push(serde_json::to_string_pretty(&result["structuredContent"]).unwrap_or_default());
    }
    let mut text = parts.join("\n");
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_must_be_a_json_object() {
        assert_eq!(parse_arguments("{}").unwrap().len(), 0);
        assert_eq!(
            parse_arguments(r#"{"command":"uptime"}"#).unwrap()["command"],
            "uptime"
        );
        for wrong in ["[]", "\"uptime\"", "{", "null"] {
            let error = parse_arguments(wrong).unwrap_err();
            assert_eq!(error.exit_code(), EXIT_UNREACHABLE, "{wrong}");
        }
    }

    #[test]
    fn a_result_prints_its_text_items_and_names_the_others() {
        let result = json!({"content": [
            {"type": "text", "text": "exit 0"},
            {"type": "image", "mimeType": "image/png", "data": "AAAA"},
            {"type": "text", "text": "done\n"},
        ]});
        assert_eq!(
            result_text(&result),
            "exit 0\n[image image/png, 4 bytes of base64]\ndone\n"
        );
        let structured = json!({"content": [], "structuredContent": {"a": 1}});
        assert_eq!(result_text(&structured), "{\n  \"a\": 1\n}\n");
        assert_eq!(result_text(&json!({"content": []})), "");
    }

    #[test]
    fn progress_and_log_notifications_are_one_line_each() {
        let progress = json!({"method": "notifications/progress",
            "params": {"progressToken": "t", "progress": 2, "total": 5, "message": "2 lines"}});
        assert_eq!(
            notification_line(&progress).unwrap(),
            "progress: 2/5 2 lines"
        );
        let bare = json!({"method": "notifications/progress", "params": {"progress": 1}});
        assert_eq!(notification_line(&bare).unwrap(), "progress: 1");
        let log = json!({"method": "notifications/message", "params": {"level": "warning", "data": "hot"}});
        assert_eq!(notification_line(&log).unwrap(), "log warning: hot");
        assert!(
            notification_line(&json!({"method": "notifications/tools/list_changed"})).is_none()
        );
    }
}
