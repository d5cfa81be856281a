//! The tools through the router: what each role sees and may call (a read token's
//! `run_command` is an `isError` result with one `tool_denied` record, an operator's runs),
//! and the two kinds of failure a client must tell apart: arguments the tool cannot take
//! are a JSON-RPC `invalid_params` error (nothing ran), a tool that ran and failed is an
//! `isError` result (the model reads it).

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::bench::{ALICE, Bench, READER, in_session, list_2026, text_of};

fn names(listing: &Value) -> Vec<&str> {
    listing["tools"]
        .as_array()
        .expect("a tool list")
        .iter()
        .map(|tool| tool["name"].as_str().expect("a tool name"))
        .collect()
}

#[tokio::test]
async fn a_read_token_lists_only_read_tools_and_an_operator_lists_run_command() {
    let bench = Bench::new();
    let reader = bench.send(list_2026(Some(READER))).await;
    assert_eq!(reader.status, StatusCode::OK, "{}", reader.text());
    assert_eq!(
        names(&reader.result()),
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

    // Near miss: an operator's list has the command tools.
    let operator = bench.send(list_2026(Some(ALICE))).await.result();
    let operator = names(&operator);
    for tool in [
        "host_info",
        "run_command",
        "job_start",
        "job_output",
        "job_signal",
        "job_list",
        "process_signal",
        "terminal_open",
        "terminal_send",
        "terminal_read",
        "terminal_resize",
        "terminal_close",
    ] {
        assert!(operator.contains(&tool), "{tool} missing from {operator:?}");
    }
}

#[tokio::test]
async fn a_read_token_calling_run_command_gets_is_error_and_one_record_and_runs_nothing() {
    let bench = Bench::new();
    let denied = bench
        .call(READER, "run_command", json!({"command": "echo ran"}))
        .await;
    assert_eq!(denied.status, StatusCode::OK, "{}", denied.text());
    let result = denied.result();
    assert_eq!(result["isError"], true);
    assert!(
        text_of(&result).contains("needs the operator role"),
        "{result}"
    );
    let records = bench.audit.records().await;
    assert_eq!(records.len(), 1, "one record for one decision: {records:?}");
    assert_eq!(records[0]["event"], "tool_denied");
    assert_eq!(records[0]["rule"], "role");
    assert_eq!(records[0]["principal"], READER.name);
    assert_eq!(records[0]["tool"], "run_command");

    // Near miss: the read token's own tool answers.
    let info = bench.call(READER, "host_info", json!({})).await.result();
    assert_ne!(info["isError"], true, "{info}");
}

#[tokio::test]
async fn an_operator_runs_the_command_on_record() {
    let bench = Bench::new();
    let ran = bench
        .call(ALICE, "run_command", json!({"command": "echo ran"}))
        .await;
    assert_eq!(ran.status, StatusCode::OK, "{}", ran.text());
    let result = ran.result();
    assert_ne!(result["isError"], true, "{result}");
    assert_eq!(result["structuredContent"]["stdout"], "ran\n");
    assert_eq!(result["structuredContent"]["exit_code"], 0);
    let started = bench.audit.events("command_started").await;
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(started[0]["principal"], ALICE.name);
    assert_eq!(started[0]["command"], "echo ran");
    assert!(bench.audit.events("tool_denied").await.is_empty());
}

#[tokio::test]
async fn the_role_gate_holds_in_a_session_and_its_record_names_the_session() {
    let bench = Bench::new();
    let session = bench.initialize(READER).await;
    let call = |id: u64, tool: &str, arguments: Value| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": tool, "arguments": arguments}})
    };
    let denied = bench
        .send(in_session(
            Some(READER),
            &session,
            &call(2, "run_command", json!({"command": "id"})),
        ))
        .await;
    assert_eq!(denied.status, StatusCode::OK, "{}", denied.text());
    assert_eq!(denied.result()["isError"], true);
    let records = bench.audit.events("tool_denied").await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["session"], session.as_str());

    // Near miss: the same session's read tool is served.
    let info = bench
        .send(in_session(
            Some(READER),
            &session,
            &call(3, "host_info", json!({})),
        ))
        .await;
    assert_ne!(info.result()["isError"], true);
}

#[tokio::test]
async fn arguments_the_tool_cannot_take_are_invalid_params_and_nothing_runs() {
    let bench = Bench::new();
    for arguments in [
        json!({}),
        json!({"command": "true", "argv": ["true"]}),
        json!({"command": "true", "no_such_argument": 1}),
        json!({"command": 5}),
        json!({"command": "true", "timeout_secs": 0}),
    ] {
        let refused = bench.call(ALICE, "run_command", arguments.clone()).await;
        assert_eq!(
            refused.status,
            StatusCode::OK,
            "{arguments}: {}",
            refused.text()
        );
        let answer = refused.answer();
        assert_eq!(answer["error"]["code"], -32602, "{arguments}: {answer}");
        assert!(answer.get("result").is_none(), "{answer}");
    }
    assert!(
        bench.audit.events("command_started").await.is_empty(),
        "nothing ran"
    );

    // Near miss: well-formed arguments run.
    let ran = bench
        .call(ALICE, "run_command", json!({"command": "true"}))
        .await
        .result();
    assert_ne!(ran["isError"], true, "{ran}");
}

#[tokio::test]
async fn a_command_that_ran_and_failed_is_an_is_error_result_not_a_protocol_error() {
    let bench = Bench::new();
    let failed = bench
        .call(ALICE, "run_command", json!({"argv": ["false"]}))
        .await;
    assert_eq!(failed.status, StatusCode::OK, "{}", failed.text());
    let answer = failed.answer();
    assert!(answer.get("error").is_none(), "{answer}");
    let result = &answer["result"];
    assert_eq!(result["isError"], true, "{result}");
    assert_eq!(result["structuredContent"]["exit_code"], 1);
    let finished = bench.audit.events("command_finished").await;
    assert_eq!(finished.len(), 1, "{finished:?}");
    assert_eq!(finished[0]["exit_code"], 1);

    // Near miss: the command that succeeds is not an error.
    let ran = bench
        .call(ALICE, "run_command", json!({"argv": ["true"]}))
        .await
        .result();
    assert_ne!(ran["isError"], true, "{ran}");
    assert_eq!(ran["structuredContent"]["exit_code"], 0);
}
