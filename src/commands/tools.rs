//! `hostmcp tools URL`: the tools a remote server offers this token, one line each (name and
//! the first line of its description), or the whole list as JSON with `--json`.

use serde_json::{Value, json};

use super::{
    CommandError,
    remote::{client_error, endpoint},
    runtime,
};
use crate::{
    cli::ToolsArgs,
    client::{ClientError, session::Session},
};

/// Most pages of `tools/list` read (a server that never stops paging is not followed).
const MAX_PAGES: usize = 100;

pub fn run(args: ToolsArgs) -> Result<(), CommandError> {
    let endpoint = endpoint(&args.remote)?;
    let tools = runtime()?
        .block_on(async {
            let mut session = Session::open(&endpoint).await?;
            let tools = list_all(&mut session).await;
            session.close().await;
            tools
        })
        .map_err(client_error)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&tools).unwrap_or_default()
        );
    } else {
        print!("{}", summary(&tools));
    }
    Ok(())
}

/// Every page of `tools/list`.
async fn list_all(session: &mut Session) -> Result<Vec<Value>, ClientError> {
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = match &cursor {
            Some(cursor) => json!({"cursor": cursor}),
            None => json!({}),
        };
        let page = session.request("tools/list", params, &mut |_| {}).await?;
        if let Some(list) = page["tools"].as_array() {
            tools.extend(list.iter().cloned());
        }
        match page["nextCursor"].as_str() {
            Some(next) if !next.is_empty() => cursor = Some(next.to_owned()),
            _ => return Ok(tools),
        }
    }
    tracing::warn!(pages = MAX_PAGES, "stopped following tools/list pages");
    Ok(tools)
}

/// One line per tool: its name, padded, and the first line of its description.
fn summary(tools: &[Value]) -> String {
    let name = |tool: &Value| tool["name"].as_str().unwrap_or("?").to_owned();
    let width = tools.iter().map(|tool| name(tool).len()).max().unwrap_or(0);
    let mut text = String::new();
    for tool in tools {
        let description = tool["description"].as_str().unwrap_or("");
        let first_line = description.lines().next().unwrap_or("").trim();
        let line = format!("{:width$}  {first_line}", name(tool));
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tool_is_one_line_with_the_first_line_of_its_description() {
        let tools = vec![
            json!({"name": "run_command", "description": "Run a command.\nMore detail."}),
            json!({"name": "jobs", "description": "Manage jobs."}),
            json!({"name": "bare"}),
        ];
        assert_eq!(
            summary(&tools),
            "run_command  Run a command.\njobs         Manage jobs.\nbare\n"
        );
        assert_eq!(summary(&[]), "");
    }
}
