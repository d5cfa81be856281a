//! The product's MCP handler ([`hostmcp::tools::HostTools`]) against rmcp's own client over
//! an in-memory pipe (`tokio::io::duplex`), as `hostmcp stdio` serves it: the caller is the
//! local principal the server was started for. One round trip each: initialize,
//! `tools/list` by role, `tools/call` (served, role-denied, `invalid_params`).

use std::time::Duration;

use hostmcp::{caller::Caller, transport::stdio::WithCaller};
use rmcp::{
    RoleClient, ServiceExt as _,
    model::{CallToolRequestParams, ErrorCode},
    service::{RunningService, ServiceError},
    transport::async_rw::AsyncRwTransport,
};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bench::{ALICE, READER, Settings, TempAudit, Who, host_tools};

/// Generous: only a hang reaches it.
const WITHIN: Duration = Duration::from_secs(60);

/// A client connected to the product's handler serving `who`.
struct Pipe {
    client: RunningService<RoleClient, ()>,
    server: JoinHandle<()>,
    shutdown: CancellationToken,
    audit: TempAudit,
}

impl Pipe {
    async fn open(who: Who) -> Self {
        let (server_end, client_end) = tokio::io::duplex(64 * 1024);
        let shutdown = CancellationToken::new();
        let audit = TempAudit::new();
        let handler = host_tools(&Settings::default(), audit.log.clone(), &shutdown);
        // As `hostmcp stdio` serves: every request carries the local caller.
        let (read, write) = tokio::io::split(server_end);
        let transport = WithCaller {
            inner: AsyncRwTransport::new_server(read, write),
            caller: Caller::stdio(who.principal()),
        };
        let server = tokio::spawn(async move {
            let running = handler
                .serve(transport)
                .await
                .expect("the server side of initialize");
            running.waiting().await.expect("the server ends cleanly");
        });
        let client = tokio::time::timeout(WITHIN, ().serve(client_end))
            .await
            .expect("initialize in time")
            .expect("initialize succeeds");
        Self {
            client,
            server,
            shutdown,
            audit,
        }
    }

    async fn tool_names(&self) -> Vec<String> {
        let tools = tokio::time::timeout(WITHIN, self.client.list_all_tools())
            .await
            .expect("tools/list in time")
            .expect("tools/list succeeds");
        tools
            .into_iter()
            .map(|tool| tool.name.into_owned())
            .collect()
    }

    async fn call(
        &self,
        tool: &'static str,
        arguments: Value,
    ) -> Result<rmcp::model::CallToolResult, ServiceError> {
        let Value::Object(arguments) = arguments else {
            panic!("arguments are an object")
        };
        let params = CallToolRequestParams::new(tool).with_arguments(arguments);
        tokio::time::timeout(WITHIN, self.client.call_tool(params))
            .await
            .expect("tools/call in time")
    }

    /// Close the pipe from the client's side; the server's service ends with it.
    async fn close(self) {
        let Self {
            client,
            server,
            shutdown,
            ..
        } = self;
        tokio::time::timeout(WITHIN, client.cancel())
            .await
            .expect("the client closes in time")
            .expect("the client closes");
        tokio::time::timeout(WITHIN, server)
            .await
            .expect("the server ends in time")
            .expect("the server task did not panic");
        shutdown.cancel();
    }
}

fn text(result: &rmcp::model::CallToolResult) -> String {
    result
        .content
        .first()
        .and_then(|block| block.as_text())
        .map(|text| text.text.clone())
        .expect("a text content block")
}

#[tokio::test]
async fn initialize_names_the_server_and_offers_tools() {
    let pipe = Pipe::open(ALICE).await;
    let info = pipe
        .client
        .peer_info()
        .expect("the server's initialize result");
    let server = info.server_info.as_ref().expect("the server names itself");
    assert_eq!(server.name, "hostmcp");
    assert!(info.capabilities.tools.is_some());
    // Issue 13: resources (with subscribe) and prompts are declared beside tools.
    assert!(info.capabilities.prompts.is_some());
    let resources = info.capabilities.resources.as_ref().expect("resources");
    assert_eq!(resources.subscribe, Some(true));
    pipe.close().await;
}

#[tokio::test]
async fn an_operator_lists_and_runs_run_command() {
    let pipe = Pipe::open(ALICE).await;
    let names = pipe.tool_names().await;
    assert!(names.iter().any(|name| name == "run_command"), "{names:?}");
    let result = pipe
        .call("run_command", json!({"argv": ["echo", "over the pipe"]}))
        .await
        .expect("a tool result");
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let structured = result
        .structured_content
        .clone()
        .expect("structured output");
    assert_eq!(structured["stdout"], "over the pipe\n");
    let started = pipe.audit.events("command_started").await;
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(started[0]["principal"], ALICE.name);
    pipe.close().await;
}

#[tokio::test]
async fn a_reader_lists_only_the_read_tools_and_is_refused_run_command_on_record() {
    let pipe = Pipe::open(READER).await;
    assert_eq!(
        pipe.tool_names().await,
        [
            "host_info",
            "process_list",
            "process_tree",
            "disk_usage",
            "network_info",
            "service_status",
            "log_query",
            "file_read",
            "file_list",
            "file_search",
        ]
    );
    let denied = pipe
        .call("run_command", json!({"command": "echo ran"}))
        .await
        .expect("a tool result, not a protocol error");
    assert_eq!(denied.is_error, Some(true));
    assert!(
        text(&denied).contains("needs the operator role"),
        "{denied:?}"
    );
    let records = pipe.audit.records().await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["event"], "tool_denied");
    assert_eq!(records[0]["principal"], READER.name);

    // Near miss: the reader's own tool answers.
    let info = pipe
        .call("host_info", json!({}))
        .await
        .expect("a tool result");
    assert_ne!(info.is_error, Some(true), "{info:?}");
    pipe.close().await;
}

#[tokio::test]
async fn bad_arguments_are_invalid_params_and_a_failed_command_is_is_error() {
    let pipe = Pipe::open(ALICE).await;
    match pipe.call("run_command", json!({"command": ""})).await {
        Err(ServiceError::McpError(error)) => {
            assert_eq!(error.code, ErrorCode::INVALID_PARAMS, "{error:?}");
        }
        other => panic!("expected invalid_params, got {other:?}"),
    }
    // Near miss: arguments it can take, for a command that fails: a result, marked isError.
    let failed = pipe
        .call("run_command", json!({"command": "exit 3"}))
        .await
        .expect("a tool result");
    assert_eq!(failed.is_error, Some(true));
    assert_eq!(
        failed.structured_content.expect("structured")["exit_code"],
        3
    );
    pipe.close().await;
}
