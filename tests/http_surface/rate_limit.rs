//! `limits.tool_calls_per_minute`: a principal's first N calls of a minute are served, the
//! rest are refused with a "rate limited" `isError` result; the first refusal of the minute
//! is recorded, the others are not (a flood of refusals is not a flood of records); another
//! principal keeps its own budget. Refused calls count too, role-denied ones included.

use axum::http::StatusCode;
use serde_json::json;

use crate::bench::{ALICE, BOB, Bench, READER, Settings, text_of};

const PER_MINUTE: u32 = 3;

fn limited_bench() -> Bench {
    Bench::with(Settings {
        tool_calls_per_minute: Some(PER_MINUTE),
        ..Settings::default()
    })
}

#[tokio::test]
async fn call_n_plus_one_is_rate_limited_with_one_record_and_another_principal_is_not() {
    let bench = limited_bench();
    for call in 1..=PER_MINUTE {
        let served = bench.call(ALICE, "host_info", json!({})).await;
        assert_eq!(served.status, StatusCode::OK, "{}", served.text());
        let result = served.result();
        assert_ne!(result["isError"], true, "call {call}: {result}");
    }
    for call in 1..=3 {
        let refused = bench.call(ALICE, "host_info", json!({})).await;
        assert_eq!(refused.status, StatusCode::OK, "{}", refused.text());
        let result = refused.result();
        assert_eq!(result["isError"], true, "refusal {call}: {result}");
        let text = text_of(&result);
        assert!(text.starts_with("rate limited"), "{text}");
        assert!(text.contains("\"alice\""), "{text}");
    }
    let records = bench.audit.events("tool_denied").await;
    assert_eq!(records.len(), 1, "one record for the minute: {records:?}");
    assert_eq!(records[0]["rule"], "tool_calls_per_minute");
    assert_eq!(records[0]["principal"], ALICE.name);
    assert_eq!(records[0]["tool"], "host_info");

    // Near miss: bob's budget is his own.
    let bobs = bench.call(BOB, "host_info", json!({})).await.result();
    assert_ne!(bobs["isError"], true, "{bobs}");
    assert_eq!(bench.audit.events("tool_denied").await.len(), 1);
}

#[tokio::test]
async fn role_denied_calls_spend_the_budget_too() {
    let bench = limited_bench();
    for _ in 0..PER_MINUTE {
        let denied = bench
            .call(READER, "run_command", json!({"command": "true"}))
            .await
            .result();
        assert!(text_of(&denied).contains("needs the operator role"));
    }
    // The read token's own tool is now over budget: the refusals above counted.
    let refused = bench.call(READER, "host_info", json!({})).await.result();
    assert_eq!(refused["isError"], true);
    assert!(text_of(&refused).starts_with("rate limited"));
    let rules: Vec<_> = bench
        .audit
        .events("tool_denied")
        .await
        .iter()
        .map(|record| record["rule"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(rules, ["role", "role", "role", "tool_calls_per_minute"]);

    // Near miss: without a limit, the same calls never run out.
    let unlimited = Bench::new();
    for _ in 0..=PER_MINUTE {
        let info = unlimited
            .call(READER, "host_info", json!({}))
            .await
            .result();
        assert_ne!(info["isError"], true, "{info}");
    }
}
