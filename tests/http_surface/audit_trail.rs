//! One decision, one record, counted: a sequence of requests through the router leaves
//! exactly the records its decisions call for, in order, and nothing for a request that
//! decided nothing (bad arguments); no secret (a token, an environment value) is written.

use axum::http::{Method, StatusCode, header};
use serde_json::json;

use crate::bench::{ALICE, BOB, Bench, READER, SESSION_ERA, in_session, list_2026, request};

#[tokio::test]
async fn every_decision_is_exactly_one_record_and_no_secret_is_written() {
    let bench = Bench::new();
    let session = bench.initialize(ALICE).await;
    let ran = bench
        .send(in_session(
            Some(ALICE),
            &session,
            &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
                "name": "run_command",
                "arguments": {"command": "echo hi; exit 3", "env": {"API_KEY": "sup3r-s3cret"}},
            }}),
        ))
        .await;
    assert_eq!(ran.result()["structuredContent"]["exit_code"], 3);
    let denied = bench
        .call(READER, "run_command", json!({"command": "id"}))
        .await;
    assert_eq!(denied.result()["isError"], true);
    let mut wrong = list_2026(None);
    wrong.headers_mut().insert(
        header::AUTHORIZATION,
        "Bearer wrong-guess-0123456789".parse().unwrap(),
    );
    assert_eq!(bench.send(wrong).await.status, StatusCode::UNAUTHORIZED);
    // Decides nothing: refused before any tool runs or is denied.
    let invalid = bench.call(BOB, "run_command", json!({})).await;
    assert_eq!(invalid.answer()["error"]["code"], -32602);
    let closed = bench
        .send(
            request(Method::DELETE, "/mcp")
                .header(header::AUTHORIZATION, ALICE.bearer())
                .header("mcp-session-id", &session)
                .header("mcp-protocol-version", SESSION_ERA)
                .body(Default::default())
                .unwrap(),
        )
        .await;
    assert!(closed.status.is_success(), "{}", closed.status);

    let records = bench.audit.records().await;
    let events: Vec<&str> = records
        .iter()
        .map(|record| record["event"].as_str().expect("an event kind"))
        .collect();
    assert_eq!(
        events,
        [
            "session_opened",
            "command_started",
            "command_finished",
            "tool_denied",
            "auth_failed",
            "session_closed",
        ],
        "{records:#?}"
    );
    let seqs: Vec<u64> = records
        .iter()
        .map(|record| record["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=records.len() as u64).collect::<Vec<_>>());
    let started = &records[1];
    assert_eq!(started["principal"], ALICE.name);
    assert_eq!(started["session"], session.as_str());
    assert_eq!(started["command"], "echo hi; exit 3");
    assert_eq!(
        started["env"],
        json!([{"name": "API_KEY", "value": "[redacted]"}])
    );
    assert_eq!(records[2]["command_id"], started["command_id"]);
    assert_eq!(records[2]["exit_code"], 3);
    assert_eq!(records[3]["principal"], READER.name);

    let written = serde_json::to_string(&records).unwrap();
    for secret in [
        "sup3r-s3cret",
        "wrong-guess-0123456789",
        ALICE.token,
        BOB.token,
        READER.token,
    ] {
        assert!(!written.contains(secret), "{secret} is in the log");
    }
}
